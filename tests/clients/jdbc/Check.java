// JDBC (pgjdbc) compatibility cases; prints a transcript that must be the same
// straight to the database and through pgtether.
// Usage: java -cp postgresql.jar:. Check HOST PORT KILL_SCRIPT
import java.io.ByteArrayOutputStream;
import java.io.StringReader;
import java.security.MessageDigest;
import java.sql.*;
import java.util.Properties;
import org.postgresql.PGConnection;
import org.postgresql.PGNotification;
import org.postgresql.copy.CopyManager;

public class Check {
    static String host, port, kill;

    static void say(Object... a) {
        StringBuilder b = new StringBuilder();
        for (Object o : a) b.append(b.length() > 0 ? " " : "").append(o);
        System.out.println(b);
    }

    static Connection connect() throws SQLException {
        Properties p = new Properties();
        p.setProperty("user", "app");
        String pw = System.getenv("PGPASSWORD");
        if (pw != null) p.setProperty("password", pw);
        p.setProperty("connectTimeout", "10");
        return DriverManager.getConnection("jdbc:postgresql://" + host + ":" + port + "/postgres", p);
    }

    static String hex(byte[] b) throws Exception {
        StringBuilder s = new StringBuilder();
        for (byte x : MessageDigest.getInstance("MD5").digest(b)) s.append(String.format("%02x", x));
        return s.toString();
    }

    static String code(SQLException e) {
        return e.getSQLState() == null ? "connection lost" : e.getSQLState() + " " + e.getMessage().split("\n")[0];
    }

    public static void main(String[] args) throws Exception {
        host = args[0]; port = args[1]; kill = args[2];
        Connection c = connect();
        try (Statement s = c.createStatement(); ResultSet r = s.executeQuery("select current_user")) {
            r.next();
            say("connected as", r.getString(1));
        }
        // startup settings: currentSchema is sent as search_path, options as options
        {
            Properties p = new Properties();
            p.setProperty("user", "app");
            String pw = System.getenv("PGPASSWORD");
            if (pw != null) p.setProperty("password", pw);
            p.setProperty("currentSchema", "app");
            p.setProperty("options", "-c statement_timeout=4321");
            try (Connection sc = DriverManager.getConnection("jdbc:postgresql://" + host + ":" + port + "/postgres", p);
                 Statement s = sc.createStatement();
                 ResultSet r = s.executeQuery("select current_setting('search_path'), current_setting('statement_timeout')")) {
                r.next();
                say("startup settings", r.getString(1), r.getString(2));
            }
        }
        try (Statement s = c.createStatement()) {
            s.execute("create table app.jdbc (id int primary key, v text, b bytea)");
        }
        // past prepareThreshold (5) the driver uses a named server-side statement and binary transfer
        try (PreparedStatement ps = c.prepareStatement("insert into app.jdbc values (?, ?, ?)")) {
            for (int i = 0; i < 12; i++) {
                ps.setInt(1, i);
                ps.setString(2, "v" + i);
                ps.setBytes(3, new byte[] {(byte) i, 0, (byte) 255});
                ps.executeUpdate();
            }
        }
        try (Statement s = c.createStatement();
             ResultSet r = s.executeQuery("select count(*) from pg_prepared_statements where statement like 'insert into app.jdbc%'")) {
            r.next();
            say("prepared executions 12, server-side statements", r.getInt(1));
        }
        byte[] blob = new byte[256];
        for (int i = 0; i < 256; i++) blob[i] = (byte) i;
        try (PreparedStatement ps = c.prepareStatement("select ?::bytea, 9007199254740993::int8, 1.5e300::float8, 12345.678901234567890::numeric, '2024-02-29 12:34:56.789+00'::timestamptz")) {
            for (int i = 0; i < 7; i++) { // the last ones are binary
                ps.setBytes(1, blob);
                try (ResultSet r = ps.executeQuery()) {
                    r.next();
                    if (i == 0 || i == 6)
                        say("bytea", r.getBytes(1).length, hex(r.getBytes(1)), "values", r.getLong(2), r.getDouble(3),
                            r.getBigDecimal(4), r.getTimestamp(5).toInstant());
                }
            }
        }
        CopyManager cm = c.unwrap(PGConnection.class).getCopyAPI();
        StringBuilder in = new StringBuilder();
        for (int i = 100; i < 1100; i++) in.append(i).append("\tcopied ").append(i).append("\n");
        say("copied in", cm.copyIn("copy app.jdbc (id, v) from stdin", new StringReader(in.toString())));
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        long n = cm.copyOut("copy (select id, v from app.jdbc order by id) to stdout", out);
        say("copied out", n, "bytes", out.size(), hex(out.toByteArray()));

        Connection l = connect();
        try (Statement s = l.createStatement()) { s.execute("listen chan"); }
        try (Statement s = c.createStatement()) { s.execute("notify chan, 'payload from jdbc'"); }
        PGNotification[] got = l.unwrap(PGConnection.class).getNotifications(10000);
        if (got != null)
            for (PGNotification m : got) say("notification", m.getName(), m.getParameter());
        l.close();

        for (String q : new String[] {"select 1/0", "select * from nowhere", "insert into app.jdbc values (1, 'dup')"}) {
            try (Statement s = c.createStatement()) {
                s.execute(q);
                say("error none");
            } catch (SQLException e) {
                say("error", code(e));
            }
        }
        // Statement.cancel() from another thread: pgjdbc's cancel request
        try (Statement s = c.createStatement()) {
            new Thread(() -> {
                try { Thread.sleep(300); s.cancel(); } catch (Exception e) { }
            }).start();
            s.execute("select pg_sleep(5)");
            say("cancel none");
        } catch (SQLException e) {
            say("cancel", code(e));
        }
        try (Statement s = c.createStatement()) { s.execute("drop table app.jdbc"); }

        int pid;
        try (Statement s = c.createStatement(); ResultSet r = s.executeQuery("select pg_backend_pid()")) {
            r.next();
            pid = r.getInt(1);
        }
        Process p = new ProcessBuilder(kill, String.valueOf(pid)).redirectErrorStream(true).start();
        String o = new String(p.getInputStream().readAllBytes()).trim();
        say("terminated", o, p.waitFor() == 0);
        try (Statement s = c.createStatement()) {
            s.execute("select 1");
            say("after terminate no error");
        } catch (SQLException e) {
            say("after terminate", code(e));
        }
        c.close();
        c = connect();
        try (Statement s = c.createStatement(); ResultSet r = s.executeQuery("select 42")) {
            r.next();
            say("reconnected", r.getInt(1));
        }
        c.close();
    }
}
