package clients

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgproto3"
)

// pgwireClient speaks the PostgreSQL protocol message by message (pgconn connects and
// authenticates, then the connection is hijacked), to send exactly the sequences real drivers
// send (pgJDBC's autosave, a Bind with a wrong format count) and print every reply message.
var pgwireClient = &client{
	name: "pgproto3",
	pg:   true,
	need: func() error { return nil },
	run: func(ctx context.Context, tg target, sc scenario, T string) string {
		o := &out{}
		f := pgwireScenarios[sc.name]
		if f == nil {
			panic("BUG: pgproto3 has no scenario " + sc.name)
		}
		f(ctx, o, tg, T)
		return o.String()
	},
	scens: []scenario{
		{name: "autosave_sequence", want: []string{"CommandComplete SAVEPOINT", "DataRow [\"1\"]"}},
		{name: "ext_then_simple", want: []string{"DataRow [\"ext\"]", "DataRow [\"simple\"]"}},
		{name: "bind_result_formats", want: []string{"ERROR 08P01 bind message has 2 result formats but query has 1 columns", "DataRow [\"2\"]"}},
		{name: "startup_bad_param", want: []string{"FATAL 42704"}},
		{name: "startup_bad_param_options", want: []string{"FATAL 42704"}},
		{name: "client_encoding", want: []string{"client_encoding=LATIN1"}},
		{name: "client_encoding_options", want: []string{"client_encoding=LATIN1"}},
		{name: "application_name_default", want: []string{`DataRow [""]`}},
	},
}

// pgwireConnect connects with extra startup parameters and takes over the raw connection.
func pgwireConnect(ctx context.Context, o *out, tg target, params map[string]string) *pgconn.HijackedConn {
	cfg, err := pgconn.ParseConfig(tg.pgURL())
	if err != nil {
		o.err("config", err)
		return nil
	}
	for k, v := range params {
		cfg.RuntimeParams[k] = v
	}
	pc, err := pgconn.ConnectConfig(ctx, cfg)
	if err != nil {
		o.err("connect", err)
		return nil
	}
	for _, p := range []string{"client_encoding", "application_name", "search_path", "DateStyle", "TimeZone"} {
		o.linef("status %s=%s", p, pc.ParameterStatus(p))
	}
	if err := pc.SyncConn(ctx); err != nil {
		o.err("sync conn", err)
		pc.Close(ctx)
		return nil
	}
	hc, err := pc.Hijack()
	if err != nil {
		o.err("hijack", err)
		return nil
	}
	deadline, ok := ctx.Deadline()
	if !ok {
		deadline = time.Now().Add(10 * time.Second)
	}
	hc.Conn.SetDeadline(deadline)
	return hc
}

// exchange sends msgs and prints every reply until the n-th ReadyForQuery.
func exchange(o *out, hc *pgconn.HijackedConn, n int, msgs ...pgproto3.FrontendMessage) {
	for _, m := range msgs {
		hc.Frontend.Send(m)
	}
	if err := hc.Frontend.Flush(); err != nil {
		o.err("send", err)
		return
	}
	for n > 0 {
		m, err := hc.Frontend.Receive()
		if err != nil {
			o.err("receive", err)
			return
		}
		o.linef("%s", fmtBackendMsg(m))
		if _, ok := m.(*pgproto3.ReadyForQuery); ok {
			n--
		}
	}
}

func fmtBackendMsg(m pgproto3.BackendMessage) string {
	switch m := m.(type) {
	case *pgproto3.ReadyForQuery:
		return "ReadyForQuery " + string(m.TxStatus)
	case *pgproto3.CommandComplete:
		return "CommandComplete " + string(m.CommandTag)
	case *pgproto3.DataRow:
		vals := make([]string, len(m.Values))
		for i, v := range m.Values {
			if v == nil {
				vals[i] = "NULL"
			} else {
				vals[i] = fmt.Sprintf("%q", v)
			}
		}
		return "DataRow [" + strings.Join(vals, " ") + "]"
	case *pgproto3.RowDescription:
		names := make([]string, len(m.Fields))
		for i, f := range m.Fields {
			names[i] = fmt.Sprintf("%s:%d", f.Name, f.DataTypeOID)
		}
		return "RowDescription [" + strings.Join(names, " ") + "]"
	case *pgproto3.ErrorResponse:
		return fmt.Sprintf("ErrorResponse %s %s %s", m.Severity, m.Code, m.Message)
	case *pgproto3.NoticeResponse:
		return fmt.Sprintf("NoticeResponse %s %s %s", m.Severity, m.Code, m.Message)
	case *pgproto3.ParameterStatus:
		return fmt.Sprintf("ParameterStatus %s=%s", m.Name, m.Value)
	default:
		return strings.TrimPrefix(fmt.Sprintf("%T", m), "*pgproto3.")
	}
}

func pgwireClose(hc *pgconn.HijackedConn) {
	if hc == nil {
		return
	}
	hc.Frontend.Send(&pgproto3.Terminate{})
	hc.Frontend.Flush()
	hc.Conn.Close()
}

var pgwireScenarios = map[string]func(context.Context, *out, target, string){
	// issue 9 PG item 1: what pgJDBC sends with autosave=always at the start of a transaction.
	"autosave_sequence": func(ctx context.Context, o *out, tg target, T string) {
		hc := pgwireConnect(ctx, o, tg, nil)
		if hc == nil {
			return
		}
		defer pgwireClose(hc)
		exchange(o, hc, 2,
			&pgproto3.Parse{Query: "BEGIN"}, &pgproto3.Bind{}, &pgproto3.Execute{},
			&pgproto3.Query{String: "SAVEPOINT PGJDBC_AUTOSAVE"},
			&pgproto3.Parse{Query: "select 1"}, &pgproto3.Bind{}, &pgproto3.Describe{ObjectType: 'P'}, &pgproto3.Execute{},
			&pgproto3.Sync{})
		exchange(o, hc, 1, &pgproto3.Query{String: "COMMIT"})
	},
	// issue 9 PG item 1: a Query after extended-protocol messages without a Sync.
	"ext_then_simple": func(ctx context.Context, o *out, tg target, T string) {
		hc := pgwireConnect(ctx, o, tg, nil)
		if hc == nil {
			return
		}
		defer pgwireClose(hc)
		exchange(o, hc, 1,
			&pgproto3.Parse{Query: "select 'ext'"}, &pgproto3.Bind{}, &pgproto3.Describe{ObjectType: 'P'}, &pgproto3.Execute{},
			&pgproto3.Query{String: "select 'simple'"})
		exchange(o, hc, 1, &pgproto3.Query{String: "select 'after'"})
	},
	// issue 9 PG item 8.
	"bind_result_formats": func(ctx context.Context, o *out, tg target, T string) {
		hc := pgwireConnect(ctx, o, tg, nil)
		if hc == nil {
			return
		}
		defer pgwireClose(hc)
		exchange(o, hc, 1,
			&pgproto3.Parse{Query: "select 1"}, &pgproto3.Bind{ResultFormatCodes: []int16{0, 0}}, &pgproto3.Execute{},
			&pgproto3.Sync{})
		exchange(o, hc, 1, &pgproto3.Query{String: "select 2"})
	},
	// issue 9 PG item 6: startup parameters.
	"startup_bad_param": func(ctx context.Context, o *out, tg target, T string) {
		pgwireClose(pgwireConnect(ctx, o, tg, map[string]string{"doesnotexist": "foo"}))
	},
	"startup_bad_param_options": func(ctx context.Context, o *out, tg target, T string) {
		pgwireClose(pgwireConnect(ctx, o, tg, map[string]string{"options": "-c doesnotexist=foo"}))
	},
	"client_encoding": func(ctx context.Context, o *out, tg target, T string) {
		hc := pgwireConnect(ctx, o, tg, map[string]string{"client_encoding": "LATIN1"})
		if hc == nil {
			return
		}
		defer pgwireClose(hc)
		exchange(o, hc, 1, &pgproto3.Query{String: "SHOW client_encoding; SELECT 'grüße' AS s"})
	},
	"client_encoding_options": func(ctx context.Context, o *out, tg target, T string) {
		hc := pgwireConnect(ctx, o, tg, map[string]string{"options": "-c client_encoding=LATIN1 -c work_mem=2MB"})
		if hc == nil {
			return
		}
		defer pgwireClose(hc)
		exchange(o, hc, 1, &pgproto3.Query{String: "SHOW client_encoding; SHOW work_mem; SELECT 'grüße' AS s"})
	},
	"application_name_default": func(ctx context.Context, o *out, tg target, T string) {
		hc := pgwireConnect(ctx, o, tg, nil)
		if hc == nil {
			return
		}
		defer pgwireClose(hc)
		exchange(o, hc, 1, &pgproto3.Query{String: "SHOW application_name"})
		exchange(o, hc, 1, &pgproto3.Query{String: "SELECT application_name FROM pg_stat_activity WHERE pid = pg_backend_pid()"})
	},
}
