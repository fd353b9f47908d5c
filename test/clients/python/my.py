"""MySQL/MariaDB client program of test/clients: PyMySQL or mysqlclient (MySQLdb), from Debian.

Usage: my.py pymysql|MySQLdb SCENARIO HOST PORT USER PASSWORD DB TABLE
Prints one line per result row, affected-row count or error (number and message).
"""
import sys

driver, scenario, host, port, user, password, dbname, T = sys.argv[1:9]
if driver == "pymysql":
    import pymysql as db
else:
    import MySQLdb as db


def out(*a):
    print(*a, flush=True)


def connect():
    try:
        if driver == "pymysql":
            return db.connect(host=host, port=int(port), user=user, password=password, database=dbname,
                              charset="utf8mb4")
        return db.connect(host=host, port=int(port), user=user, passwd=password, db=dbname, charset="utf8mb4")
    except db.Error as e:
        out("connect: error", e.args)
        sys.exit(0)


def q(c, what, sql, params=None):
    try:
        cur = c.cursor()
        n = cur.execute(sql, params)
        if cur.description is not None:
            for r in cur.fetchall():
                out("row:", "|".join(repr(v) for v in r))
        out(f"{what}: {n} rowcount={cur.rowcount}")
        cur.close()
    except db.Error as e:
        out(f"{what}: error", e.args)


def basic():
    c = connect()
    q(c, "all rows", f"SELECT * FROM {T} ORDER BY id")
    q(c, "params", "SELECT %s + 1, %s, %s, %s IS NULL", (41, "ünï 🐘", b"\x00\x01\xff", None))
    q(c, "literals", "SELECT 1, 2.50, 'x', NULL, CAST('2001-02-03' AS DATE), JSON_OBJECT('a', 1)")
    c.commit()


def errors():
    c = connect()
    c.autocommit(True)
    q(c, "syntax", "SELEC 1")
    q(c, "unique", f"INSERT INTO {T} VALUES (%s, %s)", (1, "dup"))
    q(c, "strict division", f"INSERT INTO {T} VALUES (1/0, 'x')")
    q(c, "undefined table", "SELECT * FROM no_such_table_x")
    q(c, "after errors", f"SELECT count(*) FROM {T}")


def tx():
    c = connect()
    q(c, "insert", f"INSERT INTO {T} VALUES (10, 'ten')")
    c.rollback()
    out("rolled back")
    q(c, "insert", f"INSERT INTO {T} VALUES (11, 'eleven')")
    q(c, "failing insert", f"INSERT INTO {T} VALUES (1, 'dup')")
    c.commit()
    out("committed")
    q(c, "after commit", f"SELECT id, v FROM {T} ORDER BY id")
    c.commit()


def many():
    c = connect()
    c.autocommit(True)
    for i in range(15):
        q(c, "execute", f"SELECT v FROM {T} WHERE id = %s", (i % 4,))
    try:
        cur = c.cursor()
        n = cur.executemany(f"INSERT INTO {T} VALUES (%s, %s)", [(100 + i, f"v{i}") for i in range(12)])
        out("executemany:", n)
    except db.Error as e:
        out("executemany: error", e.args)
    q(c, "count", f"SELECT count(*) FROM {T}")


def warnings():
    """issue 9 MySQL item 4."""
    c = connect()
    c.autocommit(True)
    q(c, "warns", f"SELECT CAST('abc' AS INT) + 1/0 FROM {T} WHERE id = 1")
    q(c, "show warnings", "SHOW WARNINGS")
    q(c, "select warns", "SELECT 1/0")
    q(c, "warning_count", "SELECT @@warning_count")


def row_count():
    """issue 9 MySQL item 6."""
    c = connect()
    c.autocommit(True)
    q(c, "insert", f"INSERT INTO {T} VALUES (6, 'six'), (7, 'seven')")
    q(c, "row_count", "SELECT ROW_COUNT()")


{"basic": basic, "errors": errors, "tx": tx, "many": many, "warnings": warnings,
 "row_count": row_count}[scenario]()
