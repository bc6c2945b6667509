// Drives the PostgreSQL JDBC driver (pgjdbc) through the emulator's proxy.
//
// Usage: java -cp postgresql.jar:. ProxyCheck 'jdbc:postgresql://host:port/db?user=...' [check ...]
//
// Each check runs on a connection of its own, so one failure does not hide the others. Every
// check prints exactly one line, "OK <name>" or "FAIL <name>: <reason>"; the exit status is 1 if
// any check failed. tests/clients/test_jdbc.py reads these lines, one test per check.
//
// What each check makes pgjdbc send (it uses the extended protocol for everything by default):
//   simple_query        a one-off SELECT: Parse/Bind/Describe/Execute/Sync with the unnamed
//                       statement, then again with preferQueryMode=simple (a Query message)
//   server_prepared     after prepareThreshold (5) executions, a named statement "S_n", reused
//   batch_insert        several Bind/Execute pairs behind one Sync
//   rollback            BEGIN ... ROLLBACK, with a savepoint in the middle
//   error_recovery      an error inside the pipeline, then the same connection used again
//   fetch_size          a named portal read 1000 rows at a time (Execute with a row limit,
//                       PortalSuspended), 100,000 rows in all
//   large_object        the LargeObject API, which uses FunctionCall ('F') messages
//   copy                CopyManager: COPY FROM STDIN and COPY TO STDOUT, 20,000 rows each way
//   cancel              Statement.cancel(): a CancelRequest on a new connection, with the key
//                       from BackendKeyData, ends a running pg_sleep

import java.io.ByteArrayOutputStream;
import java.io.StringReader;
import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.Savepoint;
import java.sql.Statement;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Random;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;

import org.postgresql.PGConnection;
import org.postgresql.copy.CopyManager;
import org.postgresql.largeobject.LargeObject;
import org.postgresql.largeobject.LargeObjectManager;

public final class ProxyCheck {

    interface Check {
        void run(Connection conn) throws Exception;
    }

    private static final class Failure extends Exception {
        private static final long serialVersionUID = 1L;

        Failure(String message) {
            super(message);
        }
    }

    private static void expect(boolean condition, String message) throws Failure {
        if (!condition) {
            throw new Failure(message);
        }
    }

    private static long queryLong(Connection conn, String sql) throws SQLException, Failure {
        try (Statement st = conn.createStatement(); ResultSet rs = st.executeQuery(sql)) {
            expect(rs.next(), "no row from: " + sql);
            return rs.getLong(1);
        }
    }

    private static String url;

    private static void selectOneRow(Connection conn) throws Exception {
        try (Statement st = conn.createStatement();
             ResultSet rs = st.executeQuery("SELECT 1 AS one, 'héllo'::text AS greeting")) {
            expect(rs.next(), "no row");
            expect(rs.getInt("one") == 1, "one = " + rs.getInt("one"));
            expect("héllo".equals(rs.getString("greeting")), "greeting = " + rs.getString("greeting"));
            expect(!rs.next(), "more than one row");
        }
    }

    static void simpleQuery(Connection conn) throws Exception {
        selectOneRow(conn);
        String sep = url.contains("?") ? "&" : "?";
        try (Connection simple = DriverManager.getConnection(url + sep + "preferQueryMode=simple")) {
            selectOneRow(simple);
        }
    }

    static void serverPrepared(Connection conn) throws Exception {
        String sql = "SELECT ?::int * 2 AS doubled, ?::text AS label /* proxycheck_prepared */";
        try (PreparedStatement ps = conn.prepareStatement(sql)) {
            for (int i = 0; i < 10; i++) {
                ps.setInt(1, i);
                ps.setString(2, "row " + i);
                try (ResultSet rs = ps.executeQuery()) {
                    expect(rs.next(), "no row at execution " + i);
                    expect(rs.getInt(1) == 2 * i, "execution " + i + ": doubled = " + rs.getInt(1));
                    expect(("row " + i).equals(rs.getString(2)),
                           "execution " + i + ": label = " + rs.getString(2));
                }
            }
        }
        // Past prepareThreshold the driver must have switched to a named server-side statement;
        // if it had not, this check would not be exercising the named-statement path at all.
        long named = queryLong(conn,
            "SELECT count(*) FROM pg_prepared_statements WHERE statement LIKE '%proxycheck_prepared%'");
        expect(named >= 1, "no server-side prepared statement after 10 executions");
    }

    static void batchInsert(Connection conn) throws Exception {
        try (Statement st = conn.createStatement()) {
            st.execute("CREATE TEMP TABLE batch_items (id int PRIMARY KEY, name text)");
        }
        try (PreparedStatement ps =
                 conn.prepareStatement("INSERT INTO batch_items (id, name) VALUES (?, ?)")) {
            for (int i = 1; i <= 250; i++) {
                ps.setInt(1, i);
                ps.setString(2, "item " + i);
                ps.addBatch();
            }
            int[] counts = ps.executeBatch();
            expect(counts.length == 250, "executeBatch returned " + counts.length + " counts");
            for (int c : counts) {
                expect(c == 1 || c == Statement.SUCCESS_NO_INFO, "a batch entry reported " + c);
            }
        }
        expect(queryLong(conn, "SELECT count(*) FROM batch_items") == 250, "row count after batch");
        expect(queryLong(conn, "SELECT sum(id) FROM batch_items") == 250L * 251 / 2, "sum of ids");
    }

    static void rollback(Connection conn) throws Exception {
        try (Statement st = conn.createStatement()) {
            st.execute("CREATE TEMP TABLE tx_items (id int)");
        }
        conn.setAutoCommit(false);
        try (Statement st = conn.createStatement()) {
            st.executeUpdate("INSERT INTO tx_items VALUES (1)");
            Savepoint sp = conn.setSavepoint("sp1");
            st.executeUpdate("INSERT INTO tx_items VALUES (2)");
            conn.rollback(sp);
            expect(queryLong(conn, "SELECT count(*) FROM tx_items") == 1, "count after savepoint rollback");
            conn.rollback();
        }
        conn.setAutoCommit(true);
        expect(queryLong(conn, "SELECT count(*) FROM tx_items") == 0, "count after rollback");
    }

    static void errorRecovery(Connection conn) throws Exception {
        try (Statement st = conn.createStatement()) {
            st.executeQuery("SELECT 1/0");
            throw new Failure("division by zero did not raise");
        } catch (SQLException e) {
            expect("22012".equals(e.getSQLState()), "SQLSTATE " + e.getSQLState() + ": " + e.getMessage());
        }
        try (PreparedStatement ps = conn.prepareStatement("SELECT ?::int")) {
            ps.setString(1, "not a number");
            ps.executeQuery();
            throw new Failure("bad integer did not raise");
        } catch (SQLException e) {
            expect("22P02".equals(e.getSQLState()), "SQLSTATE " + e.getSQLState() + ": " + e.getMessage());
        }
        expect(queryLong(conn, "SELECT 42") == 42, "connection unusable after errors");
    }

    static void fetchSize(Connection conn) throws Exception {
        conn.setAutoCommit(false);  // pgjdbc uses a cursor (portal) only inside a transaction
        long rows = 0;
        long sum = 0;
        try (Statement st = conn.createStatement()) {
            st.setFetchSize(1000);
            try (ResultSet rs = st.executeQuery(
                     "SELECT g, repeat('x', 100) AS pad FROM generate_series(1, 100000) AS g")) {
                while (rs.next()) {
                    rows++;
                    long g = rs.getLong(1);
                    expect(g == rows, "row " + rows + " came as " + g);
                    expect(rs.getString(2).length() == 100, "padding of row " + rows);
                    sum += g;
                }
            }
        }
        conn.commit();
        conn.setAutoCommit(true);
        expect(rows == 100000, "rows = " + rows);
        expect(sum == 100000L * 100001 / 2, "sum = " + sum);
    }

    static void largeObject(Connection conn) throws Exception {
        conn.setAutoCommit(false);  // large object descriptors live only inside a transaction
        LargeObjectManager lom = conn.unwrap(PGConnection.class).getLargeObjectAPI();
        byte[] data = new byte[3 * 1024 * 1024 + 7];
        new Random(20241125L).nextBytes(data);
        long oid = lom.createLO(LargeObjectManager.READWRITE);
        try (LargeObject lo = lom.open(oid, LargeObjectManager.WRITE)) {
            int chunk = 256 * 1024;
            for (int off = 0; off < data.length; off += chunk) {
                lo.write(data, off, Math.min(chunk, data.length - off));
            }
        }
        conn.commit();

        byte[] back;
        try (LargeObject lo = lom.open(oid, LargeObjectManager.READ)) {
            expect(lo.size64() == data.length, "size64 = " + lo.size64());
            back = lo.read(data.length);
            lo.seek(1000);
            byte[] slice = lo.read(16);
            expect(Arrays.equals(slice, Arrays.copyOfRange(data, 1000, 1016)), "read after seek");
        }
        MessageDigest md = MessageDigest.getInstance("SHA-256");
        expect(Arrays.equals(md.digest(back), MessageDigest.getInstance("SHA-256").digest(data)),
               "large object content differs after a round trip");
        lom.delete(oid);
        conn.commit();
        conn.setAutoCommit(true);
    }

    static void copy(Connection conn) throws Exception {
        try (Statement st = conn.createStatement()) {
            st.execute("CREATE TEMP TABLE copy_items (id int, name text)");
        }
        StringBuilder input = new StringBuilder();
        for (int i = 1; i <= 20000; i++) {
            input.append(i).append('\t').append("name ").append(i).append(" é\n");
        }
        CopyManager copier = conn.unwrap(PGConnection.class).getCopyAPI();
        long in = copier.copyIn("COPY copy_items FROM STDIN", new StringReader(input.toString()));
        expect(in == 20000, "COPY FROM STDIN reported " + in + " rows");
        ByteArrayOutputStream output = new ByteArrayOutputStream();
        long out = copier.copyOut("COPY (SELECT * FROM copy_items ORDER BY id) TO STDOUT", output);
        expect(out == 20000, "COPY TO STDOUT reported " + out + " rows");
        expect(input.toString().equals(output.toString(StandardCharsets.UTF_8)),
               "the rows copied out differ from the rows copied in");
        expect(queryLong(conn, "SELECT count(*) FROM copy_items") == 20000, "row count after COPY");
    }

    static void cancel(Connection conn) throws Exception {
        ExecutorService pool = Executors.newSingleThreadExecutor();
        try (Statement st = conn.createStatement()) {
            long started = System.nanoTime();
            Future<?> sleeping = pool.submit(() -> st.execute("SELECT pg_sleep(30)"));
            Thread.sleep(500);  // let the query reach the server first
            st.cancel();
            try {
                sleeping.get(20, TimeUnit.SECONDS);
                throw new Failure("pg_sleep(30) finished despite the cancel");
            } catch (java.util.concurrent.ExecutionException e) {
                Throwable cause = e.getCause();
                expect(cause instanceof SQLException, "unexpected " + cause);
                String state = ((SQLException) cause).getSQLState();
                expect("57014".equals(state), "SQLSTATE " + state + ": " + cause.getMessage());
            }
            long seconds = TimeUnit.NANOSECONDS.toSeconds(System.nanoTime() - started);
            expect(seconds < 10, "the cancel took " + seconds + " s to land");
        } finally {
            pool.shutdownNow();
        }
        expect(queryLong(conn, "SELECT 7") == 7, "connection unusable after the cancel");
    }

    public static void main(String[] args) throws Exception {
        if (args.length < 1) {
            System.err.println("usage: java ProxyCheck JDBC_URL [check ...]");
            System.exit(2);
        }
        url = args[0];
        List<String> only = Arrays.asList(args).subList(1, args.length);

        String[] names = {
            "simple_query", "server_prepared", "batch_insert", "rollback",
            "error_recovery", "fetch_size", "large_object", "copy", "cancel",
        };
        Check[] checks = {
            ProxyCheck::simpleQuery, ProxyCheck::serverPrepared, ProxyCheck::batchInsert,
            ProxyCheck::rollback, ProxyCheck::errorRecovery, ProxyCheck::fetchSize,
            ProxyCheck::largeObject, ProxyCheck::copy, ProxyCheck::cancel,
        };

        List<String> unknown = new ArrayList<>(only);
        unknown.removeAll(Arrays.asList(names));
        if (!unknown.isEmpty()) {
            System.err.println("unknown checks: " + String.join(", ", unknown));
            System.exit(2);
        }

        int failures = 0;
        for (int i = 0; i < names.length; i++) {
            if (!only.isEmpty() && !only.contains(names[i])) {
                continue;
            }
            try (Connection conn = DriverManager.getConnection(url)) {
                checks[i].run(conn);
                System.out.println("OK " + names[i]);
            } catch (Throwable t) {
                failures++;
                String reason = String.valueOf(t.getMessage()).replace('\n', ' ');
                System.out.println("FAIL " + names[i] + ": " + t.getClass().getSimpleName() + ": " + reason);
                t.printStackTrace(System.err);
            }
            System.out.flush();
        }
        System.exit(failures == 0 ? 0 : 1);
    }
}
