// PostgreSQL client program of test/clients: pgJDBC (Debian libpostgresql-jdbc-java).
// Usage: java PgJdbc SCENARIO JDBC_URL TABLE
// Prints one line per result row, update count and error (SQLSTATE and message).

import java.sql.*;
import java.util.*;

public class PgJdbc {
    static String T;

    static void out(String s) {
        System.out.println(s);
        System.out.flush();
    }

    static String fmt(Object v) throws SQLException {
        if (v == null) return "NULL";
        if (v instanceof byte[]) {
            StringBuilder b = new StringBuilder("0x");
            for (byte x : (byte[]) v) b.append(String.format("%02x", x));
            return b.toString();
        }
        if (v instanceof java.sql.Array) {
            Object a = ((java.sql.Array) v).getArray();
            return "Array:" + Arrays.deepToString((Object[]) a);
        }
        return v.getClass().getSimpleName() + ":" + v;
    }

    static void err(String what, SQLException e) {
        out(what + ": error " + e.getSQLState() + " " + e.getMessage());
        SQLException next = e.getNextException();
        if (next != null && next != e) out(what + ": next error " + next.getSQLState() + " " + next.getMessage());
    }

    static void rows(String what, ResultSet rs) throws SQLException {
        int n = rs.getMetaData().getColumnCount();
        while (rs.next()) {
            StringBuilder b = new StringBuilder("row: ");
            for (int i = 1; i <= n; i++) {
                if (i > 1) b.append('|');
                b.append(fmt(rs.getObject(i)));
            }
            out(b.toString());
        }
        out(what + ": done");
    }

    static void q(Connection c, String what, String sql) {
        try (Statement s = c.createStatement()) {
            if (s.execute(sql)) rows(what, s.getResultSet());
            else out(what + ": " + s.getUpdateCount());
        } catch (SQLException e) {
            err(what, e);
        }
    }

    static void ps(PreparedStatement p, String what, Object... args) {
        try {
            for (int i = 0; i < args.length; i++) p.setObject(i + 1, args[i]);
            if (p.execute()) rows(what, p.getResultSet());
            else out(what + ": " + p.getUpdateCount());
        } catch (SQLException e) {
            err(what, e);
        }
    }

    static void basic(Connection c) throws SQLException {
        q(c, "all rows", "SELECT * FROM " + T + " ORDER BY id");
        try (PreparedStatement p = c.prepareStatement("SELECT ?::int + 1, ?::text, ?::bytea, ?::numeric, ?::text IS NULL")) {
            ps(p, "params", 41, "ünï 🐘", new byte[] {0, 1, (byte) 255}, new java.math.BigDecimal("3.14159"), null);
        }
        q(c, "literals", "SELECT 1::int2, 3::int8, 1.5::float4, '{\"a\":1}'::json, ARRAY['a',NULL,'c'], '2001-02-03'::date, NULL::text");
    }

    static void errors(Connection c) throws SQLException {
        q(c, "syntax", "SELEC 1");
        try (PreparedStatement p = c.prepareStatement("INSERT INTO " + T + " VALUES (?, ?)")) {
            ps(p, "unique", 1, "dup");
        }
        try (PreparedStatement p = c.prepareStatement("SELECT 1 / ?")) {
            ps(p, "division", 0);
        }
        q(c, "undefined table", "SELECT * FROM no_such_table_x");
        q(c, "after errors", "SELECT count(*) FROM " + T);
    }

    static void tx(Connection c) throws SQLException {
        c.setAutoCommit(false);
        q(c, "insert", "INSERT INTO " + T + " VALUES (10, 'ten')");
        c.rollback();
        out("rolled back");
        q(c, "insert", "INSERT INTO " + T + " VALUES (11, 'eleven')");
        q(c, "failing insert", "INSERT INTO " + T + " VALUES (1, 'dup')");
        q(c, "in failed tx", "SELECT 1");
        try {
            c.commit();
            out("commit: ok");
        } catch (SQLException e) {
            err("commit", e);
        }
        q(c, "insert", "INSERT INTO " + T + " VALUES (12, 'twelve')");
        c.commit();
        q(c, "after commit", "SELECT id, v FROM " + T + " ORDER BY id");
        c.commit();
    }

    // PreparedStatement past prepareThreshold (5): the driver switches to a named server-side
    // statement.
    static void prepared(Connection c) throws SQLException {
        try (PreparedStatement p = c.prepareStatement("SELECT v FROM " + T + " WHERE id = ?")) {
            for (int i = 0; i < 15; i++) ps(p, "execute", i % 4);
        }
        try (PreparedStatement p = c.prepareStatement("INSERT INTO " + T + " VALUES (?, ?)")) {
            for (int i = 0; i < 12; i++) ps(p, "insert", 100 + i, "v" + i);
            ps(p, "insert dup", 100, "dup");
        }
        q(c, "count", "SELECT count(*) FROM " + T);
    }

    static void batch(Connection c) throws SQLException {
        try (PreparedStatement p = c.prepareStatement("INSERT INTO " + T + " VALUES (?, ?)")) {
            for (int i = 0; i < 20; i++) {
                p.setInt(1, 100 + i);
                p.setString(2, "v" + i);
                p.addBatch();
            }
            out("batch: " + Arrays.toString(p.executeBatch()));
            for (int i = 0; i < 3; i++) {
                p.setInt(1, 200 + i * 100 - (i == 2 ? 300 : 0)); // the third row is a duplicate of id 100
                p.setString(2, "w" + i);
                p.addBatch();
            }
            try {
                out("batch with a duplicate: " + Arrays.toString(p.executeBatch()));
            } catch (BatchUpdateException e) {
                out("batch with a duplicate: " + Arrays.toString(e.getUpdateCounts()));
                err("batch with a duplicate", e);
            }
        }
        try (Statement s = c.createStatement()) {
            s.addBatch("UPDATE " + T + " SET v = 'x' WHERE id < 3");
            s.addBatch("DELETE FROM " + T + " WHERE id = 3");
            out("statement batch: " + Arrays.toString(s.executeBatch()));
        }
        q(c, "count", "SELECT count(*), sum(id) FROM " + T);
    }

    // issue 9 PG item 1: autosave=always wraps each statement of a transaction in a savepoint, so a
    // failed statement does not abort the transaction.
    static void autosave(Connection c) throws SQLException {
        c.setAutoCommit(false);
        try (PreparedStatement p = c.prepareStatement("SELECT v FROM " + T + " WHERE id = ?")) {
            for (int i = 0; i < 8; i++) ps(p, "select", i % 4);
        }
        q(c, "insert", "INSERT INTO " + T + " VALUES (10, 'ten')");
        q(c, "failing insert", "INSERT INTO " + T + " VALUES (1, 'dup')");
        q(c, "after the failure", "SELECT count(*) FROM " + T);
        c.commit();
        out("committed");
        q(c, "after commit", "SELECT id FROM " + T + " ORDER BY id");
        c.commit();
    }

    // setReadOnly(true): read-only transactions; one right after a commit sees the write (issue 9
    // PG item 11).
    static void readOnly(Connection c) throws SQLException {
        c.setAutoCommit(false);
        q(c, "insert", "INSERT INTO " + T + " VALUES (30, 'thirty')");
        c.commit();
        c.setReadOnly(true);
        q(c, "read after commit", "SELECT v FROM " + T + " WHERE id = 30");
        q(c, "write in read-only", "INSERT INTO " + T + " VALUES (31, 'x')");
        c.rollback();
        q(c, "read again", "SELECT count(*) FROM " + T);
        c.commit();
        c.setAutoCommit(true);
        q(c, "read-only autocommit read", "SELECT count(*) FROM " + T);
        q(c, "read-only autocommit write", "INSERT INTO " + T + " VALUES (32, 'x')");
    }

    public static void main(String[] a) throws Exception {
        String scenario = a[0];
        T = a[2];
        Connection c;
        try {
            c = DriverManager.getConnection(a[1]);
        } catch (SQLException e) {
            err("connect", e);
            return;
        }
        try {
            switch (scenario) {
                case "basic": basic(c); break;
                case "errors": errors(c); break;
                case "tx": tx(c); break;
                case "prepared": prepared(c); break;
                case "batch": batch(c); break;
                case "autosave": autosave(c); break;
                case "read_only": readOnly(c); break;
                default: throw new IllegalArgumentException("no scenario " + scenario);
            }
        } catch (SQLException e) {
            err("scenario", e);
        }
        c.close();
    }
}
