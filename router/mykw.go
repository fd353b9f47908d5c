package router

// myKw is the code of a MySQL word the classifier looks at (kwNone for every other word). The
// lexer sets it once per word, so that the rest of the classifier compares small integers.
type myKw uint8

const (
	kwNone myKw = iota
	// statement heads
	kwAlter
	kwAnalyze
	kwBackup
	kwBegin
	kwBinlog
	kwCache
	kwCall
	kwChange
	kwCheck
	kwChecksum
	kwClone
	kwCommit
	kwCreate
	kwDeallocate
	kwDelete
	kwDesc
	kwDescribe
	kwDo
	kwDrop
	kwExecute
	kwExplain
	kwFlush
	kwGet
	kwGrant
	kwHandler
	kwHelp
	kwImport
	kwInsert
	kwInstall
	kwKill
	kwLoad
	kwLock
	kwOptimize
	kwPrepare
	kwPurge
	kwRelease
	kwRename
	kwRepair
	kwReplace
	kwReset
	kwResignal
	kwRestart
	kwRevoke
	kwRollback
	kwSavepoint
	kwSelect
	kwSet
	kwShow
	kwShutdown
	kwSignal
	kwStart
	kwStop
	kwTable
	kwTruncate
	kwUninstall
	kwUnlock
	kwUpdate
	kwUse
	kwValues
	kwWith
	kwXa
	// words inside statements
	kwAnd
	kwAny
	kwAs
	kwAtomic
	kwCase
	kwIf
	kwLoop
	kwRepeat
	kwWhile
	kwChain
	kwCharacter
	kwCharset
	kwColumns
	kwConnection
	kwConsistent
	kwDefault
	kwDefiner
	kwEnd
	kwExport
	kwFor
	kwFormat
	kwFrom
	kwFunction
	kwGlobal
	kwInto
	kwLocal
	kwNames
	kwNext
	kwNo
	kwNot
	kwOnly
	kwOpen
	kwPassword
	kwPersist
	kwPersistOnly
	kwPrevious
	kwRead
	kwRecursive
	kwReturning
	kwRole
	kwSome
	kwConvert
	kwJSONTable
	kwRollup
	kwSession
	kwShare
	kwSnapshot
	kwSQLCalcFoundRows
	kwStatement
	kwTemporary
	kwTo
	kwTransaction
	kwValue
	kwWork
	kwWrite
	// CREATE objects
	kwDatabase
	kwEvent
	kwIndex
	kwPackage
	kwProcedure
	kwSchema
	kwSequence
	kwTrigger
	kwUser
	kwView
	// SHOW subjects
	kwCount
	kwErrors
	kwProfile
	kwProfiles
	kwWarnings
	kwAll
	kwBinary
	kwEngine
	kwExtended
	kwFull
	kwInnodb
	kwMaster
	kwMutex
	kwProcesslist
	kwRelaylog
	kwReplica
	kwReplicas
	kwSlave
	kwStatus
	kwPartitions
	// schemas
	kwInformationSchema
	kwPerformanceSchema
	kwLast // sentinel
)

// myKwNames spells every code, lower case.
var myKwNames = [kwLast]string{
	kwAlter: "alter", kwAnalyze: "analyze", kwBackup: "backup", kwBegin: "begin", kwBinlog: "binlog",
	kwCache: "cache", kwCall: "call", kwChange: "change", kwCheck: "check", kwChecksum: "checksum",
	kwClone: "clone", kwCommit: "commit", kwCreate: "create", kwDeallocate: "deallocate",
	kwDelete: "delete", kwDesc: "desc", kwDescribe: "describe", kwDo: "do", kwDrop: "drop",
	kwExecute: "execute", kwExplain: "explain", kwFlush: "flush", kwGet: "get", kwGrant: "grant",
	kwHandler: "handler", kwHelp: "help", kwImport: "import", kwInsert: "insert",
	kwInstall: "install", kwKill: "kill", kwLoad: "load", kwLock: "lock", kwOptimize: "optimize",
	kwPrepare: "prepare", kwPurge: "purge", kwRelease: "release", kwRename: "rename",
	kwRepair: "repair", kwReplace: "replace", kwReset: "reset", kwResignal: "resignal",
	kwRestart: "restart", kwRevoke: "revoke", kwRollback: "rollback", kwSavepoint: "savepoint",
	kwSelect: "select", kwSet: "set", kwShow: "show", kwShutdown: "shutdown", kwSignal: "signal",
	kwStart: "start", kwStop: "stop", kwTable: "table", kwTruncate: "truncate",
	kwUninstall: "uninstall", kwUnlock: "unlock", kwUpdate: "update", kwUse: "use",
	kwValues: "values", kwWith: "with", kwXa: "xa",

	kwAnd: "and", kwAny: "any", kwAs: "as", kwAtomic: "atomic", kwCase: "case", kwIf: "if", kwLoop: "loop",
	kwRepeat: "repeat", kwWhile: "while", kwChain: "chain", kwCharacter: "character",
	kwCharset: "charset", kwColumns: "columns", kwConnection: "connection",
	kwConsistent: "consistent", kwDefault: "default", kwDefiner: "definer", kwEnd: "end",
	kwExport: "export", kwFor: "for", kwFormat: "format", kwFrom: "from", kwFunction: "function",
	kwGlobal: "global", kwInto: "into", kwLocal: "local", kwNames: "names", kwNext: "next",
	kwNo: "no", kwNot: "not", kwOnly: "only", kwOpen: "open", kwPassword: "password",
	kwPersist: "persist", kwPersistOnly: "persist_only", kwPrevious: "previous", kwRead: "read",
	kwRecursive: "recursive", kwReturning: "returning", kwRole: "role", kwSome: "some",
	kwConvert: "convert", kwJSONTable: "json_table", kwRollup: "rollup",
	kwSession: "session", kwShare: "share", kwSnapshot: "snapshot",
	kwSQLCalcFoundRows: "sql_calc_found_rows", kwStatement: "statement",
	kwTemporary: "temporary", kwTo: "to", kwTransaction: "transaction", kwValue: "value",
	kwWork: "work", kwWrite: "write",

	kwDatabase: "database", kwEvent: "event", kwIndex: "index", kwPackage: "package",
	kwProcedure: "procedure", kwSchema: "schema", kwSequence: "sequence", kwTrigger: "trigger",
	kwUser: "user", kwView: "view",

	kwCount: "count", kwErrors: "errors", kwProfile: "profile", kwProfiles: "profiles",
	kwWarnings: "warnings", kwAll: "all", kwBinary: "binary", kwEngine: "engine",
	kwExtended: "extended", kwFull: "full", kwInnodb: "innodb", kwMaster: "master",
	kwMutex: "mutex", kwProcesslist: "processlist", kwRelaylog: "relaylog", kwReplica: "replica",
	kwReplicas: "replicas", kwSlave: "slave", kwStatus: "status", kwPartitions: "partitions",

	kwInformationSchema: "information_schema", kwPerformanceSchema: "performance_schema",
}

// myLower writes the lower-case form of w into buf and returns it (as a view of buf); ok is
// false when w does not fit.
func myLower(w string, buf []byte) ([]byte, bool) {
	if len(w) > len(buf) {
		return nil, false
	}
	for i := 0; i < len(w); i++ {
		c := w[i]
		if c >= 'A' && c <= 'Z' {
			c += 'a' - 'A'
		}
		buf[i] = c
	}
	return buf[:len(w)], true
}
