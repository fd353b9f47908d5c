package myproxy

import (
	"errors"
	"fmt"
	"time"

	"github.com/baton-proxy/baton/proxy/mywire"
)

// Queries baton runs itself on a backend connection, reading the answer instead of relaying it.

// errQuery is a server's ERR answer to a query baton injected.
type errQuery struct{ e *mywire.ERR }

func (e errQuery) Error() string { return fmt.Sprintf("server error %d: %s", e.e.Code, e.e.Message) }

// queryValue runs q, whose answer is one row of one column, on b and returns that value (null:
// SQL NULL). An I/O or protocol error closes b (its stream is out of step); an ERR answer is an
// errQuery and leaves b usable.
func (b *backend) queryValue(q string, timeout time.Duration) (val string, null bool, err error) {
	row, _, err := b.queryRow(q, timeout)
	if err != nil {
		return "", false, err
	}
	if row[0] == nil {
		return "", true, nil
	}
	return string(row[0]), false, nil
}

// queryRow runs q, whose answer is one row, on b and returns the row's values (nil: SQL NULL)
// and the columns' types (the MYSQL_TYPE_* byte). Errors as queryValue.
func (b *backend) queryRow(q string, timeout time.Duration) (row [][]byte, types []byte, err error) {
	if err := b.drain(nil); err != nil {
		return nil, nil, err
	}
	c := b.cc.Conn
	c.SetDeadline(time.Now().Add(timeout))
	defer c.SetDeadline(time.Time{})
	fail := func(err error) ([][]byte, []byte, error) {
		b.close()
		return nil, nil, err
	}
	out, _ := mywire.AppendPacket(nil, 0, append([]byte{mywire.ComQuery}, q...))
	if _, err := b.w.Write(out); err != nil {
		return fail(err)
	}
	if err := b.w.Flush(); err != nil {
		return fail(err)
	}
	// Column count, the column definitions, EOF (unless DEPRECATE_EOF), the row, the end.
	t := mywire.NewTracker(mywire.ComQuery, b.cc.Caps)
	var cols uint64
	var raw []byte
	gotRow := false
	for i := 0; ; i++ {
		p, _, err := b.cc.R.Next()
		if err != nil {
			return fail(err)
		}
		done, err := t.Feed(p)
		if err != nil {
			return fail(err)
		}
		switch {
		case done:
		case i == 0:
			cols, _, _ = mywire.ReadLenEncInt(p) // the tracker checked it
		case uint64(i) <= cols:
			typ, _ := mywire.ColumnDefType(p, b.extMeta())
			types = append(types, typ)
		case !gotRow && (uint64(i) > cols+1 || (b.cc.Caps&mywire.ClientDeprecateEOF != 0 && uint64(i) == cols+1)):
			raw, gotRow = append(raw[:0], p...), true
		}
		if done {
			break
		}
	}
	if e := t.Err(); e != nil {
		return nil, nil, errQuery{e}
	}
	if !gotRow {
		return nil, nil, errors.New("myproxy: the query returned no row")
	}
	for range cols {
		if len(raw) > 0 && raw[0] == 0xfb {
			row, raw = append(row, nil), raw[1:]
			continue
		}
		v, n, ok := mywire.ReadLenEncString(raw)
		if !ok {
			return nil, nil, errors.New("myproxy: malformed row")
		}
		row, raw = append(row, append([]byte{}, v...)), raw[n:]
	}
	return row, types, nil
}
