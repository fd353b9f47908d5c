package router

import "strings"

// fnKind is what calling a function means for routing.
type fnKind uint8

const (
	fnUnknown      fnKind = iota // not in the catalog nor in the builtin lists: primary (soft)
	fnSafe                       // immutable, stable, or volatile but harmless on a replica
	fnVolatile                   // volatile per the catalog: primary (soft)
	fnDeny                       // writes, session/transaction state, primary-only: primary
	fnAdvLock                    // session-level advisory lock: primary + PinAdvisoryLock
	fnAdvUnlockAll               // pg_advisory_unlock_all: primary, Unpin PinAdvisoryLock
	fnAdvOther                   // transaction-level lock or single unlock: primary
	fnSetConfig                  // set_config: primary; session state unless is_local is true
)

// specialFuncs are pg_catalog functions that must never run on a replica, whatever a catalog or
// a hint says. A replica rejects most of them (25006) or answers about itself, not the primary.
var specialFuncs = map[string]fnKind{
	"pg_advisory_lock": fnAdvLock, "pg_advisory_lock_shared": fnAdvLock,
	"pg_try_advisory_lock": fnAdvLock, "pg_try_advisory_lock_shared": fnAdvLock,
	"pg_advisory_unlock_all": fnAdvUnlockAll,
	"pg_advisory_unlock":     fnAdvOther, "pg_advisory_unlock_shared": fnAdvOther,
	"pg_advisory_xact_lock": fnAdvOther, "pg_advisory_xact_lock_shared": fnAdvOther,
	"pg_try_advisory_xact_lock": fnAdvOther, "pg_try_advisory_xact_lock_shared": fnAdvOther,
	"set_config": fnSetConfig,
}

func init() {
	for _, f := range strings.Fields(denyFuncs) {
		specialFuncs[f] = fnDeny
	}
	for _, f := range strings.Fields(safeFuncs) {
		builtinSafe[f] = struct{}{}
	}
	for _, w := range strings.Fields(syntaxWords) {
		syntaxParen[w] = struct{}{}
	}
}

const denyFuncs = `nextval setval currval lastval
txid_current txid_current_if_assigned pg_current_xact_id pg_current_xact_id_if_assigned
pg_export_snapshot pg_notify loread lowrite
pg_current_wal_lsn pg_current_wal_insert_lsn pg_current_wal_flush_lsn pg_switch_wal
pg_create_restore_point pg_backup_start pg_backup_stop pg_start_backup pg_stop_backup
pg_promote pg_reload_conf pg_rotate_logfile pg_terminate_backend pg_cancel_backend
pg_log_backend_memory_contexts pg_wal_replay_pause pg_wal_replay_resume
pg_create_physical_replication_slot pg_create_logical_replication_slot
pg_drop_replication_slot pg_copy_physical_replication_slot pg_copy_logical_replication_slot
pg_replication_slot_advance pg_logical_slot_get_changes pg_logical_slot_get_binary_changes
pg_logical_emit_message pg_import_system_collations
pg_stat_reset pg_stat_reset_shared pg_stat_reset_single_table_counters
pg_stat_reset_single_function_counters pg_stat_reset_slru pg_stat_reset_replication_slot
pg_stat_reset_subscription_stats pg_replication_origin_create pg_replication_origin_drop
pg_replication_origin_session_setup pg_replication_origin_session_reset
pg_replication_origin_advance pg_replication_origin_xact_setup
pg_file_write pg_file_unlink pg_file_rename pg_file_sync`

// builtinSafe lists common functions that are immutable or stable, plus volatile ones that are
// harmless on a replica (random, clock_timestamp, pg_sleep, size and recovery probes). They
// route to a replica even without a catalog. Some names here are what the grammar turns SQL
// syntax into (EXTRACT -> pg_catalog.extract, TRIM -> btrim, AT TIME ZONE -> timezone ...) or
// type names that look like calls (int4(x), numeric(10,2)).
var builtinSafe = map[string]struct{}{}

const safeFuncs = `random random_normal setseed clock_timestamp timeofday statement_timestamp
transaction_timestamp now gen_random_uuid uuid_generate_v1 uuid_generate_v4 uuidv4 uuidv7
pg_sleep pg_sleep_for pg_sleep_until pg_is_in_recovery pg_last_wal_receive_lsn
pg_last_wal_replay_lsn pg_last_xact_replay_timestamp pg_is_wal_replay_paused
pg_get_wal_replay_pause_state pg_wal_lsn_diff pg_relation_size pg_total_relation_size
pg_table_size pg_indexes_size pg_database_size pg_tablespace_size pg_column_size
pg_size_pretty pg_size_bytes pg_relation_filenode pg_relation_filepath pg_backend_pid
pg_postmaster_start_time pg_conf_load_time pg_stat_get_activity pg_blocking_pids
pg_safe_snapshot_blocking_pids pg_listening_channels pg_notification_queue_usage
pg_trigger_depth pg_jit_available pg_tablespace_location txid_current_snapshot
pg_current_snapshot txid_snapshot_xmin txid_snapshot_xmax pg_snapshot_xmin pg_snapshot_xmax
txid_visible_in_snapshot pg_visible_in_snapshot pg_sequence_last_value
version current_setting current_database current_schema current_schemas current_query
inet_server_addr inet_server_port inet_client_addr inet_client_port pg_client_encoding
pg_typeof format_type pg_get_viewdef pg_get_indexdef pg_get_constraintdef pg_get_expr
pg_get_functiondef pg_get_function_arguments pg_get_function_result pg_get_triggerdef
pg_get_function_identity_arguments pg_get_ruledef pg_get_userbyid pg_get_serial_sequence
pg_get_keywords pg_get_statisticsobjdef pg_get_partkeydef obj_description col_description
shobj_description has_table_privilege has_schema_privilege has_database_privilege
has_column_privilege has_function_privilege has_sequence_privilege has_any_column_privilege
pg_has_role pg_table_is_visible pg_type_is_visible pg_function_is_visible
pg_encoding_to_char pg_char_to_encoding to_regclass to_regtype to_regproc to_regprocedure
to_regnamespace to_regrole to_regoper to_regtypemod
count sum avg min max string_agg array_agg bool_and bool_or every bit_and bit_or bit_xor
stddev stddev_pop stddev_samp variance var_pop var_samp corr covar_pop covar_samp regr_avgx
regr_avgy regr_count regr_intercept regr_r2 regr_slope regr_sxx regr_sxy regr_syy
percentile_cont percentile_disc mode rank dense_rank percent_rank cume_dist row_number ntile
lag lead first_value last_value nth_value any_value range_agg range_intersect_agg xmlagg
json_agg jsonb_agg json_object_agg jsonb_object_agg json_agg_strict jsonb_agg_strict
json_object_agg_strict jsonb_object_agg_strict json_object_agg_unique jsonb_object_agg_unique
lower upper initcap length char_length character_length octet_length bit_length concat
concat_ws format left right lpad rpad ltrim rtrim btrim substr replace reverse repeat
split_part strpos starts_with translate ascii chr md5 sha224 sha256 sha384 sha512 encode
decode to_hex to_bin to_oct quote_ident quote_literal quote_nullable regexp_replace
regexp_match regexp_matches regexp_split_to_array regexp_split_to_table regexp_like
regexp_count regexp_instr regexp_substr string_to_array string_to_table array_to_string
convert convert_from convert_to to_ascii unistr casefold crc32 crc32c bit_count get_bit
set_bit get_byte set_byte
abs round trunc ceil ceiling floor sign sqrt cbrt power pow exp ln log log10 mod div pi
degrees radians sin cos tan asin acos atan atan2 sind cosd tand asind acosd atand atan2d
sinh cosh tanh asinh acosh atanh gcd lcm factorial width_bucket scale min_scale trim_scale
num_nonnulls num_nulls erf erfc gamma lgamma
array_length array_lower array_upper array_ndims array_dims array_append array_prepend
array_cat array_position array_positions array_remove array_replace array_fill
array_reverse array_sort cardinality trim_array unnest generate_series generate_subscripts
date_trunc date_part date_bin age to_char to_date to_timestamp to_number make_date
make_time make_timestamp make_timestamptz make_interval justify_days justify_hours
justify_interval isfinite
to_json to_jsonb row_to_json array_to_json json_build_object jsonb_build_object
json_build_array jsonb_build_array json_object jsonb_object json_array_length
jsonb_array_length json_each jsonb_each json_each_text jsonb_each_text json_extract_path
jsonb_extract_path json_extract_path_text jsonb_extract_path_text json_object_keys
jsonb_object_keys json_populate_record jsonb_populate_record json_populate_recordset
jsonb_populate_recordset json_to_record jsonb_to_record json_to_recordset
jsonb_to_recordset json_array_elements jsonb_array_elements json_array_elements_text
jsonb_array_elements_text json_typeof jsonb_typeof json_strip_nulls jsonb_strip_nulls
jsonb_set jsonb_set_lax jsonb_insert jsonb_pretty jsonb_path_query jsonb_path_query_array
jsonb_path_query_first jsonb_path_exists jsonb_path_match jsonb_path_query_tz
jsonb_path_exists_tz jsonb_path_match_tz jsonb_path_query_array_tz
jsonb_path_query_first_tz jsonb_populate_record_valid
to_tsvector to_tsquery plainto_tsquery phraseto_tsquery websearch_to_tsquery ts_rank
ts_rank_cd ts_headline setweight tsvector_to_array array_to_tsvector strip numnode
querytree get_current_ts_config
isempty lower_inc upper_inc lower_inf upper_inf range_merge int4range int8range numrange
tsrange tstzrange daterange int4multirange int8multirange nummultirange tsmultirange
tstzmultirange datemultirange multirange
host hostmask masklen netmask network broadcast family abbrev set_masklen
inet_same_family inet_merge
point box circle lseg path polygon line area center diameter radius height width npoints
extract overlay position substring timezone overlaps like_escape similar_to_escape
similar_escape pg_collation_for normalize is_normalized xmlexists system_user
xmlcomment xmltext xpath xpath_exists xml_is_well_formed xml_is_well_formed_document
xml_is_well_formed_content query_to_xml table_to_xml
int2 int4 int8 float4 float8 numeric decimal text varchar bpchar char bool boolean date
time timetz timestamp timestamptz interval bytea name oid regclass regtype regproc json
jsonb uuid inet cidr macaddr macaddr8 money bit varbit float int integer smallint bigint
real tsvector tsquery xml`

// syntaxParen: keywords that are followed by '(' in SQL syntax but never name a function when
// written unquoted and unqualified (reserved and col_name keywords, PostgreSQL 17).
var syntaxParen = map[string]struct{}{}

const syntaxWords = `all and any array as asc between both case cast check coalesce collate
column constraint create current_date current_time current_timestamp default desc distinct
do else end except exists extract false fetch for from grant greatest group grouping having
in inout intersect into json json_array json_arrayagg json_exists json_object
json_objectagg json_query json_scalar json_serialize json_table json_value lateral leading
least limit localtime localtimestamp national nchar none normalize not null nullif offset on
only or order out overlay placing position precision returning row select setof some
substring symmetric table then to trailing trim true union unique using values variadic when
where window with xmlattributes xmlconcat xmlelement xmlexists xmlforest xmlnamespaces
xmlparse xmlpi xmlroot xmlserialize xmltable`

// lookupFunc classifies a call of schema.name (name already folded or unquoted; schema "" when
// unqualified). cat may be nil.
func lookupFunc(cat Catalog, schema, name string) fnKind {
	builtin := schema == "" || schema == "pg_catalog"
	if builtin {
		if k, ok := specialFuncs[name]; ok {
			return k
		}
		if strings.HasPrefix(name, "lo_") || strings.HasPrefix(name, "dblink") {
			return fnDeny
		}
		if _, ok := builtinSafe[name]; ok {
			return fnSafe
		}
	}
	if cat != nil {
		if v, ok := cat.Volatility(schema, name); ok {
			if v == 'i' || v == 's' {
				return fnSafe
			}
			return fnVolatile
		}
	}
	return fnUnknown
}
