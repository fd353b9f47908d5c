package mywire

// Capability flags (the CLIENT_* bits exchanged in the handshake).
const (
	ClientLongPassword               uint32 = 1 << 0 // MySQL: new passwords; MariaDB servers clear it to announce extended capabilities
	ClientFoundRows                  uint32 = 1 << 1
	ClientLongFlag                   uint32 = 1 << 2
	ClientConnectWithDB              uint32 = 1 << 3
	ClientNoSchema                   uint32 = 1 << 4
	ClientCompress                   uint32 = 1 << 5
	ClientODBC                       uint32 = 1 << 6
	ClientLocalFiles                 uint32 = 1 << 7
	ClientIgnoreSpace                uint32 = 1 << 8
	ClientProtocol41                 uint32 = 1 << 9
	ClientInteractive                uint32 = 1 << 10
	ClientSSL                        uint32 = 1 << 11
	ClientIgnoreSIGPIPE              uint32 = 1 << 12
	ClientTransactions               uint32 = 1 << 13
	ClientReserved                   uint32 = 1 << 14
	ClientSecureConnection           uint32 = 1 << 15
	ClientMultiStatements            uint32 = 1 << 16
	ClientMultiResults               uint32 = 1 << 17
	ClientPSMultiResults             uint32 = 1 << 18
	ClientPluginAuth                 uint32 = 1 << 19
	ClientConnectAttrs               uint32 = 1 << 20
	ClientPluginAuthLenencClientData uint32 = 1 << 21
	ClientCanHandleExpiredPasswords  uint32 = 1 << 22
	ClientSessionTrack               uint32 = 1 << 23
	ClientDeprecateEOF               uint32 = 1 << 24
	ClientOptionalResultsetMetadata  uint32 = 1 << 25
	ClientZstdCompression            uint32 = 1 << 26
	ClientQueryAttributes            uint32 = 1 << 27
	ClientMultiFactorAuthentication  uint32 = 1 << 28
	ClientCapabilityExtension        uint32 = 1 << 29
	ClientSSLVerifyServerCert        uint32 = 1 << 30
	ClientRememberOptions            uint32 = 1 << 31
)

// MariaDB extended capabilities: 32 more bits, exchanged in reserved bytes of the greeting and
// of the HandshakeResponse (and SSLRequest) when the server, and then the client, clear
// ClientLongPassword ("CLIENT_MYSQL").
const (
	MariaDBClientProgress           uint32 = 1 << 0 // progress reports inside a response: not honoured by this package
	MariaDBClientComMulti           uint32 = 1 << 1
	MariaDBClientStmtBulkOperations uint32 = 1 << 2 // COM_STMT_BULK_EXECUTE
	MariaDBClientExtendedMetadata   uint32 = 1 << 3 // column definitions carry a data-type field (json, uuid …)
	MariaDBClientCacheMetadata      uint32 = 1 << 4 // result sets may omit unchanged column definitions
)

// Server status flags (OK and EOF packets).
const (
	StatusInTrans             uint16 = 1 << 0
	StatusAutocommit          uint16 = 1 << 1
	StatusMoreResultsExists   uint16 = 1 << 3
	StatusNoGoodIndexUsed     uint16 = 1 << 4
	StatusNoIndexUsed         uint16 = 1 << 5
	StatusCursorExists        uint16 = 1 << 6
	StatusLastRowSent         uint16 = 1 << 7
	StatusDBDropped           uint16 = 1 << 8
	StatusNoBackslashEscapes  uint16 = 1 << 9
	StatusMetadataChanged     uint16 = 1 << 10
	StatusQueryWasSlow        uint16 = 1 << 11
	StatusPSOutParams         uint16 = 1 << 12
	StatusInTransReadonly     uint16 = 1 << 13
	StatusSessionStateChanged uint16 = 1 << 14
)

// Command bytes (the first byte of a command-phase packet).
const (
	ComSleep            byte = 0x00
	ComQuit             byte = 0x01
	ComInitDB           byte = 0x02
	ComQuery            byte = 0x03
	ComFieldList        byte = 0x04
	ComCreateDB         byte = 0x05
	ComDropDB           byte = 0x06
	ComRefresh          byte = 0x07
	ComShutdown         byte = 0x08
	ComStatistics       byte = 0x09
	ComProcessInfo      byte = 0x0a
	ComConnect          byte = 0x0b
	ComProcessKill      byte = 0x0c
	ComDebug            byte = 0x0d
	ComPing             byte = 0x0e
	ComTime             byte = 0x0f
	ComDelayedInsert    byte = 0x10
	ComChangeUser       byte = 0x11
	ComBinlogDump       byte = 0x12
	ComTableDump        byte = 0x13
	ComConnectOut       byte = 0x14
	ComRegisterSlave    byte = 0x15
	ComStmtPrepare      byte = 0x16
	ComStmtExecute      byte = 0x17
	ComStmtSendLongData byte = 0x18
	ComStmtClose        byte = 0x19
	ComStmtReset        byte = 0x1a
	ComSetOption        byte = 0x1b
	ComStmtFetch        byte = 0x1c
	ComDaemon           byte = 0x1d
	ComBinlogDumpGTID   byte = 0x1e
	ComResetConnection  byte = 0x1f
)

// COM_SET_OPTION values.
const (
	OptionMultiStatementsOn  uint16 = 0
	OptionMultiStatementsOff uint16 = 1
)

// COM_STMT_EXECUTE cursor flags (the byte after the statement id).
const (
	CursorTypeNoCursor   byte = 0
	CursorTypeReadOnly   byte = 1
	CursorTypeForUpdate  byte = 2
	CursorTypeScrollable byte = 4
)

// Packet header bytes.
const (
	headerOK          byte = 0x00
	headerAuthMore    byte = 0x01
	headerLocalInfile byte = 0xfb
	headerEOF         byte = 0xfe
	headerERR         byte = 0xff
)

// Authentication plugin names.
const (
	PluginNativePassword      = "mysql_native_password"
	PluginCachingSHA2Password = "caching_sha2_password"
	PluginClearPassword       = "mysql_clear_password"
)

// caching_sha2_password AuthMoreData codes.
const (
	sha2RequestPublicKey = 2
	sha2FastAuthSuccess  = 3
	sha2PerformFullAuth  = 4
)

// Error codes and SQLSTATEs that this package sends.
const (
	ErAccessDenied         uint16 = 1045 // ER_ACCESS_DENIED_ERROR, SQLSTATE 28000
	ErHandshake            uint16 = 1043 // ER_HANDSHAKE_ERROR "Bad handshake", SQLSTATE 08S01
	ErNetPacketsOutOfOrder uint16 = 1156 // ER_NET_PACKETS_OUT_OF_ORDER, SQLSTATE 08S01
	ErNetPacketTooLarge    uint16 = 1153 // ER_NET_PACKET_TOO_LARGE, SQLSTATE 08S01
	ErUnknownCom           uint16 = 1047 // ER_UNKNOWN_COM_ERROR, SQLSTATE 08S01
	ErNotSupportedAuth     uint16 = 1251 // ER_NOT_SUPPORTED_AUTH_MODE, SQLSTATE 08004
)

// Session-state entry types (OK.SessionState, SERVER_SESSION_STATE_CHANGED).
const (
	SessionTrackSystemVariables            byte = 0
	SessionTrackSchema                     byte = 1
	SessionTrackStateChange                byte = 2
	SessionTrackGTIDs                      byte = 3
	SessionTrackTransactionCharacteristics byte = 4
	SessionTrackTransactionState           byte = 5
)

// MaxPayload is the largest payload of one wire packet. A logical packet whose payload is at
// least this long is sent as several parts; see PacketReader and AppendPacket.
const MaxPayload = 1<<24 - 1
