package router

import "strings"

// What the MySQL classifier knows about names followed by '('.

// myFnKind is what calling a MySQL function means for routing.
type myFnKind uint8

const (
	myFnDeny      myFnKind = iota + 1 // reads or changes per-node or per-session state: primary
	myFnLock                          // takes a user-level lock held by the session: primary, PinAdvisoryLock
	myFnUnlockAll                     // RELEASE_ALL_LOCKS(): primary, may Unpin PinAdvisoryLock
	myFnLockOther                     // releases or inspects user-level locks: primary
)

// mySpecialFuncs never run on a replica, whatever a hint or the allow-list says.
var mySpecialFuncs = func() map[string]myFnKind {
	m := map[string]myFnKind{
		"get_lock": myFnLock, "service_get_read_locks": myFnLock, "service_get_write_locks": myFnLock,
		"version_tokens_lock_shared": myFnLock, "version_tokens_lock_exclusive": myFnLock,
		"release_all_locks": myFnUnlockAll,
		"release_lock":      myFnLockOther, "is_used_lock": myFnLockOther, "is_free_lock": myFnLockOther,
		"service_release_locks": myFnLockOther, "version_tokens_unlock": myFnLockOther,
	}
	for _, f := range strings.Fields(myDenyFuncs) {
		m[f] = myFnDeny
	}
	return m
}()

// myDenyFuncs read the state of the session on one node (LAST_INSERT_ID, FOUND_ROWS, ROW_COUNT,
// sequences, the connection id), wait for replication, or read server files.
const myDenyFuncs = `last_insert_id found_rows row_count nextval setval lastval currval load_file
connection_id ps_current_thread_id ps_thread_id master_pos_wait source_pos_wait
master_gtid_wait wait_for_executed_gtid_set wait_until_sql_thread_after_gtids binlog_gtid_pos
wsrep_last_seen_gtid wsrep_last_written_gtid wsrep_sync_wait_upto_gtid sys_exec sys_eval`

// myLastStatementFuncs and myLastStatementVars (both also in myDenyFuncs / myNodeVars) read the
// outcome of the session's previous statement on the node that ran it: a statement that reads
// nothing else primary-only gets a LastStatementReason.
const (
	myLastStatementFuncs = `found_rows row_count`
	myLastStatementVars  = `warning_count error_count`
)

// mySafeFuncs are the built-in functions that neither write nor depend on the node or on
// session state that the proxy does not replay. SLEEP, BENCHMARK, RAND and UUID are harmless
// on a replica. Names the server parses as syntax (CAST, CONVERT, JSON_TABLE, window functions)
// are here too.
const mySafeFuncs = `
avg bit_and bit_or bit_xor count group_concat json_arrayagg json_objectagg max min std stddev
stddev_pop stddev_samp sum var_pop var_samp variance any_value grouping cume_dist dense_rank
first_value lag last_value lead nth_value ntile percent_rank rank row_number median
percentile_cont percentile_disc
if ifnull nullif coalesce greatest least isnull interval strcmp nvl nvl2 decode_oracle
ascii bin bit_length char char_length character_length concat concat_ws elt export_set field
find_in_set format from_base64 hex insert instr lcase left length locate lower lpad ltrim
make_set mid octet_length oct ord position quote regexp_instr regexp_like regexp_replace
regexp_substr repeat replace reverse right rpad rtrim soundex space substr substring
substring_index to_base64 trim ucase unhex upper weight_string chr sformat natural_sort_key
to_char lengthb crc32 crc32c collation charset coercibility convert cast uncompress
uncompressed_length compress sha sha1 sha2 md5 aes_encrypt aes_decrypt random_bytes
statement_digest statement_digest_text validate_password_strength kdf encode decode
des_encrypt des_decrypt encrypt password old_password to_number
abs acos asin atan atan2 ceil ceiling conv cos cot degrees exp floor ln log log10 log2 mod pi
pow power radians rand round sign sin sqrt tan truncate
adddate addtime convert_tz curdate current_date current_time current_timestamp curtime date
date_add date_format date_sub datediff day dayname dayofmonth dayofweek dayofyear extract
from_days from_unixtime get_format hour last_day localtime localtimestamp makedate maketime
microsecond minute month monthname now period_add period_diff quarter sec_to_time second
str_to_date subdate subtime sysdate time time_format time_to_sec timediff timestamp
timestampadd timestampdiff to_days to_seconds unix_timestamp utc_date utc_time utc_timestamp
week weekday weekofyear year yearweek add_months months_between trunc sleep
json_array json_array_append json_array_insert json_contains json_contains_path json_depth
json_extract json_insert json_keys json_length json_merge json_merge_patch json_merge_preserve
json_object json_overlaps json_pretty json_quote json_remove json_replace json_schema_valid
json_schema_validation_report json_search json_set json_storage_free json_storage_size
json_table json_type json_unquote json_valid json_value json_exists json_query json_compact
json_detailed json_loose json_normalize json_equals json_key_value json_array_intersect
json_object_filter_keys json_object_to_array
benchmark current_role current_user database icu_version roles_graphml schema session_user
system_user user version format_bytes format_pico_time uuid uuid_short uuid_to_bin bin_to_uuid
is_uuid sys_guid inet_aton inet_ntoa inet6_aton inet6_ntoa is_ipv4 is_ipv4_compat
is_ipv4_mapped is_ipv6 name_const default values gtid_subset gtid_subtract bit_count
column_get column_json column_list column_exists column_check column_create column_add
column_delete
st_area st_asbinary st_aswkb st_asgeojson st_astext st_aswkt st_buffer st_buffer_strategy
st_centroid st_collect st_contains st_convexhull st_crosses st_difference st_dimension
st_disjoint st_distance st_distance_sphere st_endpoint st_envelope st_equals st_exteriorring
st_frechetdistance st_geohash st_geomcollfromtext st_geomcollfromwkb
st_geometrycollectionfromtext st_geometrycollectionfromwkb st_geometryn st_geometrytype
st_geomfromgeojson st_geomfromtext st_geomfromwkb st_geometryfromtext st_geometryfromwkb
st_hausdorffdistance st_interiorringn st_intersection st_intersects st_isclosed st_isempty
st_issimple st_isvalid st_latfromgeohash st_latitude st_length st_linefromtext st_linefromwkb
st_lineinterpolatepoint st_lineinterpolatepoints st_linestringfromtext st_linestringfromwkb
st_longfromgeohash st_longitude st_makeenvelope st_mlinefromtext st_mlinefromwkb
st_mpointfromtext st_mpointfromwkb st_mpolyfromtext st_mpolyfromwkb st_numgeometries
st_numinteriorring st_numinteriorrings st_numpoints st_overlaps st_pointatdistance
st_pointfromgeohash st_pointfromtext st_pointfromwkb st_pointn st_polyfromtext st_polyfromwkb
st_polygonfromtext st_polygonfromwkb st_relate st_simplify st_srid st_startpoint st_swapxy
st_symdifference st_touches st_transform st_union st_validate st_within st_x st_y
mbrcontains mbrcoveredby mbrcovers mbrdisjoint mbrequals mbrintersects mbroverlaps mbrtouches
mbrwithin point linestring polygon multipoint multilinestring multipolygon geometrycollection
vector_dim string_to_vector vector_to_string to_vector from_vector vec_fromtext vec_totext
vec_distance vec_distance_euclidean vec_distance_cosine`

// mySymFuncs are the built-ins the server recognises only when '(' follows the name directly
// (sql/lex.h SYM_FN): "count (*)" calls a stored function named count, unless the session runs
// with IGNORE_SPACE.
const mySymFuncs = `adddate bit_and bit_or bit_xor cast count curdate curtime date_add date_sub
extract group_concat json_arrayagg json_objectagg max mid min now position session_user
st_collect std stddev stddev_pop stddev_samp subdate substr substring sum sysdate system_user
trim var_pop var_samp variance`

// mySyntaxWords are reserved words that may stand before '(' as syntax, never as a call: a
// reserved word cannot name a stored function unless quoted. Reserved type names (CAST(x AS
// DECIMAL(10,2)), JSON_TABLE columns) are here as well.
const mySyntaxWords = `and or xor not in exists select from where having on using when then
else case as values over partition index key by join lateral union intersect except all
distinct distinctrow div like regexp rlike between is row match against of escape
straight_join limit window group elseif while until return set separator inner cross outer
natural binary character varchar varcharacter varbinary decimal dec numeric float float4 float8
double real int int1 int2 int3 int4 int8 integer tinyint smallint mediumint middleint bigint
precision unsigned tinyblob blob mediumblob longblob tinytext mediumtext longtext long varying`

// myTypeWords are non-reserved type names: they stand before '(' as a type only after AS or
// RETURNING, in a JSON_TABLE column list, or as CONVERT's second argument.
const myTypeWords = `date datetime time timestamp year bit bool boolean text nchar nvarchar national
enum fixed json serial geometry signed number raw varchar2 nvarchar2 clob uuid inet4 inet6 vector`

// myNodeVars are system variables whose value differs from node to node (or is the outcome of
// the session's last statement on the node that ran it): reading them is a primary matter.
const myNodeVars = `server_id server_uuid hostname read_only super_read_only innodb_read_only
gtid_executed gtid_purged gtid_current_pos gtid_binlog_pos gtid_slave_pos gtid_binlog_state
gtid_io_pos last_gtid identity last_insert_id insert_id warning_count error_count
pseudo_thread_id rpl_semi_sync_master_enabled
rpl_semi_sync_source_enabled rpl_semi_sync_slave_enabled rpl_semi_sync_replica_enabled`

var (
	mySafeSet   = wordSet(mySafeFuncs)
	mySymSet    = wordSet(mySymFuncs)
	mySyntaxSet = wordSet(mySyntaxWords)
	myTypeSet   = wordSet(myTypeWords)
	myNodeSet   = wordSet(myNodeVars)
)

func wordSet(words string) map[string]struct{} {
	m := map[string]struct{}{}
	for _, w := range strings.Fields(words) {
		m[w] = struct{}{}
	}
	return m
}

// myNodeTables are information_schema tables that describe the node itself (sessions, locks,
// running transactions). performance_schema as a whole is per node.
var myNodeTables = wordSet(`processlist innodb_trx innodb_locks innodb_lock_waits
user_statistics client_statistics index_statistics table_statistics`)
