package router

import (
	pg_query "github.com/pganalyze/pg_query_go/v6"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// treeFacts is what a walk over a whole parse tree found.
type treeFacts struct {
	into     bool   // SELECT ... INTO
	intoTemp bool   // SELECT ... INTO TEMP
	locking  bool   // FOR UPDATE / NO KEY UPDATE / SHARE / KEY SHARE anywhere
	modify   bool   // INSERT / UPDATE / DELETE / MERGE anywhere (a data-modifying CTE under a SELECT)
	temp     bool   // a relation marked TEMP or qualified with pg_temp
	hard     string // reason of the first call that must run on the primary
	soft     string // reason of the first call of an unknown or volatile function
	pin      Pin
	unpin    Pin
	session  bool // set_config(..., false): session state
}

// scanTree walks every message under root (the generated protobuf types, through reflection,
// so that no node type can be missed) and collects treeFacts.
func scanTree(cat Catalog, root *pg_query.Node) treeFacts {
	var f treeFacts
	walkMsg(root.ProtoReflect(), func(m proto.Message) {
		switch x := m.(type) {
		case *pg_query.SelectStmt:
			if x.GetIntoClause() != nil {
				f.into = true
				f.intoTemp = f.intoTemp || isTempRel(x.GetIntoClause().GetRel())
			}
			if len(x.GetLockingClause()) > 0 {
				f.locking = true
			}
		case *pg_query.InsertStmt, *pg_query.UpdateStmt, *pg_query.DeleteStmt, *pg_query.MergeStmt:
			f.modify = true
		case *pg_query.RangeVar:
			f.temp = f.temp || isTempRel(x)
		case *pg_query.FuncCall:
			f.call(cat, x)
		}
	})
	return f
}

// walkMsg calls visit for m and every message below it, depth first.
func walkMsg(m protoreflect.Message, visit func(proto.Message)) {
	visit(m.Interface())
	m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		if fd.Kind() != protoreflect.MessageKind || fd.IsMap() {
			return true
		}
		if fd.IsList() {
			l := v.List()
			for i := 0; i < l.Len(); i++ {
				walkMsg(l.Get(i).Message(), visit)
			}
			return true
		}
		walkMsg(v.Message(), visit)
		return true
	})
}

// call records the effect of one function call.
func (f *treeFacts) call(cat Catalog, fc *pg_query.FuncCall) {
	names := fc.GetFuncname()
	if len(names) == 0 {
		return
	}
	name := names[len(names)-1].GetString_().GetSval()
	schema, qual := "", name
	if len(names) > 1 {
		schema = names[len(names)-2].GetString_().GetSval()
		qual = schema + "." + name
	}
	setHard := func(r string) {
		if f.hard == "" {
			f.hard = r
		}
	}
	switch lookupFunc(cat, schema, name) {
	case fnSafe:
	case fnUnknown:
		if f.soft == "" {
			f.soft = "unknown-function:" + qual
		}
	case fnVolatile:
		if f.soft == "" {
			f.soft = "volatile-function:" + qual
		}
	case fnDeny:
		setHard("volatile-function:" + name)
	case fnAdvLock:
		setHard("advisory-lock")
		f.pin |= PinAdvisoryLock
	case fnAdvUnlockAll:
		setHard("advisory-lock")
		f.unpin |= PinAdvisoryLock
	case fnAdvOther:
		setHard("advisory-lock")
	case fnSetConfig:
		setHard("set-config")
		args := fc.GetArgs()
		if len(args) < 3 || !isConstTrue(args[2]) {
			f.session = true // set_config(name, value, false): lasts for the session
		}
	}
}

// withEffects adds the pins and session state found in f to v.
func withEffects(v verdict, f treeFacts) verdict {
	v.Pin |= f.pin
	v.Unpin |= f.unpin
	v.SessionState = v.SessionState || f.session
	return v
}

// isConstTrue reports whether n is the literal true (true, 'true', 'on', 1 ...).
func isConstTrue(n *pg_query.Node) bool {
	if c := n.GetAConst(); c != nil && !c.GetIsnull() {
		return defBool(n, false)
	}
	if tc := n.GetTypeCast(); tc != nil { // 'true'::boolean
		return isConstTrue(tc.GetArg())
	}
	return false
}

func isTempRel(rv *pg_query.RangeVar) bool {
	return rv != nil && (rv.GetRelpersistence() == "t" || isTempSchema(rv.GetSchemaname()))
}

// nestingEstimate bounds the depth of the parse tree of s from its tokens: parentheses and
// brackets nest; within one level, every operator-like token may deepen a left-deep chain
// (1+1+1..., a IS NULL IS NULL..., UNION chains), while ',' AND OR separate siblings (PostgreSQL
// flattens AND / OR lists).
func nestingEstimate(s stmt) int {
	var stack [64]int // chain lengths of the enclosing levels (deeper levels are summed)
	depth, outer, cur, est := 0, 0, 0, 0
	for i, t := range s.toks {
		switch t.kind {
		case tkLParen, tkLBracket:
			if depth < len(stack) {
				stack[depth] = cur
			}
			outer += cur
			depth++
			cur = 0
		case tkRParen, tkRBracket:
			if depth > 0 {
				depth--
				prev := 0
				if depth < len(stack) {
					prev = stack[depth]
				}
				outer -= prev
				cur = prev
			}
		case tkComma, tkSemi:
			cur = 0
		case tkOp, tkCast:
			cur++
		case tkIdent:
			switch {
			case s.is(i, "and"), s.is(i, "or"):
				cur = 0
			case isChainWord(s, i):
				cur++
			}
		}
		est = max(est, depth+outer+cur)
	}
	return est
}

// isChainWord: keywords that build a node around the expression before them.
func isChainWord(s stmt, i int) bool {
	for _, w := range [...]string{"not", "is", "isnull", "notnull", "collate", "at", "between", "like",
		"ilike", "similar", "in", "union", "intersect", "except", "case", "overlaps", "select"} {
		if s.is(i, w) {
			return true
		}
	}
	return false
}

// lexicalEffects guesses, from tokens alone, the pins and session state of a statement the
// parser could not read, erring towards pinning.
func lexicalEffects(s stmt, v *verdict) {
	declare := s.is(0, "declare")
	for i, t := range s.toks {
		if t.kind != tkIdent && t.kind != tkQIdent {
			continue
		}
		name, ok := identName(s.src, t)
		if !ok {
			continue
		}
		switch {
		case specialFuncs[name] == fnAdvLock:
			v.Pin |= PinAdvisoryLock
		case specialFuncs[name] == fnSetConfig:
			v.SessionState = true
		case name == "temp" || name == "temporary" || isTempSchema(name):
			v.Pin |= PinTempTable
		case name == "hold" && declare:
			v.Pin |= PinHoldCursor
		case i == 0 && (name == "set" || name == "reset"):
			v.SessionState = true
		case i == 0 && name == "listen":
			v.Pin |= PinListen
		case i == 0 && name == "prepare":
			v.Pin |= PinPrepare
		}
	}
}
