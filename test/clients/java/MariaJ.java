// MySQL/MariaDB client program of test/clients: MariaDB Connector/J (Debian libmariadb-java).
// Usage: java MariaJ SCENARIO JDBC_URL TABLE
// Prints one line per result row, update count and error (error code, SQLSTATE, message).

import java.sql.*;
import java.util.*;

public class MariaJ {
    static String T;

    static void out(String s) {
        System.out.println(s);
        System.out.flush();
    }

    static String fmt(Object v) {
        if (v == null) return "NULL";
        if (v instanceof byte[]) {
            StringBuilder b = new StringBuilder("0x");
            for (byte x : (byte[]) v) b.append(String.format("%02x", x));
            return b.toString();
        }
        return v.getClass().getSimpleName() + ":" + v;
    }

    static void err(String what, SQLException e) {
        out(what + ": error " + e.getClass().getSimpleName() + " " + e.getErrorCode() + " " + e.getSQLState() + " " + e.getMessage());
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
        try (PreparedStatement p = c.prepareStatement("SELECT * FROM " + T + " WHERE id = ?")) {
            ps(p, "by id", 1);
        }
        try (PreparedStatement p = c.prepareStatement("SELECT ? + 1, ?, ?, ? IS NULL")) {
            ps(p, "params", 41, "ünï 🐘", new byte[] {0, 1, (byte) 255}, null);
        }
        q(c, "literals", "SELECT 1, 2.50, 'x', NULL, CAST('2001-02-03' AS DATE)");
    }

    static void errors(Connection c) throws SQLException {
        q(c, "syntax", "SELEC 1");
        try (PreparedStatement p = c.prepareStatement("INSERT INTO " + T + " VALUES (?, ?)")) {
            ps(p, "unique", 1, "dup");
        }
        q(c, "strict division", "INSERT INTO " + T + " VALUES (1/0, 'x')");
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
        c.commit();
        out("committed");
        q(c, "after commit", "SELECT id, v FROM " + T + " ORDER BY id");
        c.commit();
        c.setReadOnly(true);
        q(c, "read-only tx", "SELECT count(*) FROM " + T);
        c.commit();
    }

    // useServerPrepStmts=true: COM_STMT_PREPARE once, COM_STMT_EXECUTE ×15.
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

    // rewriteBatchedStatements=true: one multi-row INSERT for the batch.
    static void batch(Connection c) throws SQLException {
        try (PreparedStatement p = c.prepareStatement("INSERT INTO " + T + " VALUES (?, ?)")) {
            for (int i = 0; i < 20; i++) {
                p.setInt(1, 100 + i);
                p.setString(2, "v" + i);
                p.addBatch();
            }
            out("batch: " + Arrays.toString(p.executeBatch()));
            for (int i = 0; i < 3; i++) {
                p.setInt(1, i == 2 ? 100 : 200 + i);
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
        q(c, "count", "SELECT count(*), sum(id) FROM " + T);
    }

    // Polls from k inside a transaction (through baton: on the primary, where the other
    // connection's transaction runs) until a statement containing marker runs.
    static void waitRunning(Connection k, String marker) throws Exception {
        k.setAutoCommit(false);
        try (PreparedStatement p = k.prepareStatement(
                "SELECT count(*) FROM information_schema.processlist WHERE info LIKE ? AND info NOT LIKE '%processlist%'")) {
            p.setString(1, "%" + marker + "%");
            for (int i = 0; i < 500; i++) {
                try (ResultSet rs = p.executeQuery()) {
                    rs.next();
                    if (rs.getInt(1) > 0) break;
                }
                Thread.sleep(10);
            }
        }
        k.commit();
        k.setAutoCommit(true);
    }

    // issue 9 MySQL item 3: Statement.cancel() (KILL QUERY of the handshake's thread id from a new
    // connection).
    static void cancel(Connection c, String url) throws Exception {
        c.setAutoCommit(false);
        Statement s = c.createStatement();
        long began = System.currentTimeMillis();
        // The canceller's result is printed after the statement's: the two threads race.
        String[] cancelled = {"cancel: not run"};
        Thread t = new Thread(() -> {
            try (Connection k = DriverManager.getConnection(url)) {
                waitRunning(k, "cancel_marker_java");
                s.cancel();
                cancelled[0] = "cancel: sent";
            } catch (Exception e) {
                cancelled[0] = "cancel: " + e;
            }
        });
        t.start();
        try {
            ResultSet rs = s.executeQuery("SELECT SLEEP(5) AS cancel_marker_java");
            rows("sleep", rs);
        } catch (SQLException e) {
            err("sleep", e);
        }
        t.join();
        out(cancelled[0]);
        out("interrupted: " + (System.currentTimeMillis() - began < 4000));
        q(c, "after cancel", "SELECT 1");
        c.commit();
    }

    // issue 9 MySQL item 3: setQueryTimeout.
    static void queryTimeout(Connection c) throws SQLException {
        long began = System.currentTimeMillis();
        try (Statement s = c.createStatement()) {
            s.setQueryTimeout(1);
            rows("sleep", s.executeQuery("SELECT SLEEP(5) FROM " + T + " WHERE id = 1"));
        } catch (SQLException e) {
            err("sleep", e);
        }
        out("timed out: " + (System.currentTimeMillis() - began < 4000));
        q(c, "after timeout", "SELECT 1");
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
                case "server_prepared": prepared(c); break;
                case "rewrite_batch": batch(c); break;
                case "cancel": cancel(c, a[1]); break;
                case "query_timeout": queryTimeout(c); break;
                default: throw new IllegalArgumentException("no scenario " + scenario);
            }
        } catch (SQLException e) {
            err("scenario", e);
        }
        c.close();
    }
}
