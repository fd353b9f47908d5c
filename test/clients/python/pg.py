"""PostgreSQL client program of test/clients: psycopg 3 or psycopg2 (Debian packages).

Usage: pg.py psycopg|psycopg2 SCENARIO DSN TABLE
Prints one line per result row, command status or error (severity, SQLSTATE, message).
"""
import io
import sys

driver, scenario, dsn, T = sys.argv[1:5]
if driver == "psycopg":
    import psycopg as db
    from psycopg import errors as dberrors  # noqa: F401
else:
    import psycopg2 as db


def out(*a):
    print(*a, flush=True)


def fmt(v):
    if isinstance(v, memoryview):
        v = bytes(v)
    return repr(v)


def err(what, e):
    if driver == "psycopg":
        d = e.diag
        out(f"{what}: error {d.severity_nonlocalized} {e.sqlstate} {d.message_primary}")
    else:
        d = getattr(e, "diag", None)
        if d is not None and e.pgcode:
            out(f"{what}: error {d.severity} {e.pgcode} {d.message_primary}")
        else:
            out(f"{what}: error {type(e).__name__} {str(e).strip()}")


def q(conn, what, sql, params=None, **kw):
    """Runs sql, prints its rows and status, or its error (and rolls back then)."""
    try:
        cur = conn.cursor()
        cur.execute(sql, params, **kw)
        if cur.description is not None:
            for r in cur.fetchall():
                out("row:", "|".join(fmt(v) for v in r))
        out(f"{what}: {cur.statusmessage} rowcount={cur.rowcount}")
        cur.close()
    except db.Error as e:
        err(what, e)
        if not conn.autocommit:
            conn.rollback()


def connect(**kw):
    try:
        return db.connect(dsn, **kw)
    except db.Error as e:
        err("connect", e)
        sys.exit(0)


def basic():
    c = connect()
    q(c, "all rows", f"SELECT * FROM {T} ORDER BY id")
    q(c, "params", "SELECT %s::int + 1, %s::text, %s::bytea, %s::numeric, %s::text IS NULL",
      (41, "ünï 🐘", b"\x00\x01\xff", "3.14159", None))
    q(c, "literals", "SELECT 1::int2, 3::int8, 1.5::float4, '{\"a\":1}'::json, ARRAY['a',NULL,'c'], "
      "'2001-02-03'::date, NULL::text, '{1,2}'::int[]")
    c.commit()


def errors():
    c = connect()
    q(c, "syntax", "SELEC 1")
    q(c, "unique", f"INSERT INTO {T} VALUES (%s, %s)", (1, "dup"))
    q(c, "division", "SELECT 1 / %s", (0,))
    q(c, "undefined table", "SELECT * FROM no_such_table_x")
    q(c, "after errors", f"SELECT count(*) FROM {T}")
    c.commit()


def tx():
    c = connect()
    q(c, "insert", f"INSERT INTO {T} VALUES (10, 'ten')")
    c.rollback()
    out("rolled back")
    q(c, "insert", f"INSERT INTO {T} VALUES (11, 'eleven')")
    c.commit()
    out("committed")
    q(c, "after commit", f"SELECT id, v FROM {T} ORDER BY id")
    c.commit()
    c.autocommit = True
    q(c, "autocommit insert", f"INSERT INTO {T} VALUES (12, 'twelve')")
    q(c, "autocommit read", f"SELECT count(*) FROM {T}")


def prepared():
    c = connect()
    c.autocommit = True
    for i in range(15):
        q(c, "execute", f"SELECT v FROM {T} WHERE id = %s", (i % 4,))
    if driver == "psycopg":
        for i in range(12):
            q(c, "prepare=True", f"SELECT %s::int * 2, v FROM {T} WHERE id = %s", (i, i % 4), prepare=True)
    else:
        q(c, "prepare", f"PREPARE p(int) AS SELECT v FROM {T} WHERE id = $1")
        for i in range(12):
            q(c, "execute p", "EXECUTE p(%s)", (i % 4,))
        q(c, "deallocate", "DEALLOCATE p")


def copy():
    """issue 9 PG item 11: COPY in, then COPY out and a read right after it."""
    c = connect()
    data = "4\tfour\n5\tfive\n6\tsix\n"
    try:
        cur = c.cursor()
        if driver == "psycopg":
            with cur.copy(f"COPY {T} (id, v) FROM STDIN") as cp:
                cp.write(data)
        else:
            cur.copy_from(io.StringIO(data), T, columns=("id", "v"))
        out("copy in:", cur.rowcount)
        c.commit()
    except db.Error as e:
        err("copy in", e)
        c.rollback()
    q(c, "count", f"SELECT count(*) FROM {T}")
    try:
        cur = c.cursor()
        buf = io.StringIO()
        if driver == "psycopg":
            with cur.copy(f"COPY (SELECT * FROM {T} ORDER BY id) TO STDOUT") as cp:
                for chunk in cp:
                    buf.write(bytes(chunk).decode())
        else:
            cur.copy_to(buf, T)  # a fresh table: rows come back in insertion order
        out("copy out:", repr(buf.getvalue()))
        c.commit()
    except db.Error as e:
        err("copy out", e)
        c.rollback()


def read_only_after_commit():
    """issue 9 PG item 11: a read-only transaction right after a commit sees the write."""
    c = connect()
    q(c, "insert", f"INSERT INTO {T} VALUES (30, 'thirty')")
    c.commit()
    if driver == "psycopg":
        c.read_only = True
    else:
        c.set_session(readonly=True)
    q(c, "read", f"SELECT v FROM {T} WHERE id = 30")
    q(c, "write in read-only", f"INSERT INTO {T} VALUES (31, 'x')")
    c.commit()


{"basic": basic, "errors": errors, "tx": tx, "prepared": prepared, "copy": copy,
 "read_only_after_commit": read_only_after_commit}[scenario]()
