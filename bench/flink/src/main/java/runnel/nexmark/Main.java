package runnel.nexmark;

import org.apache.flink.configuration.Configuration;
import org.apache.flink.streaming.api.environment.StreamExecutionEnvironment;
import org.apache.flink.table.api.Table;
import org.apache.flink.table.api.TableDescriptor;
import org.apache.flink.table.api.TableResult;
import org.apache.flink.table.api.bridge.java.StreamTableEnvironment;
import org.apache.flink.table.data.GenericRowData;
import org.apache.flink.table.data.StringData;
import org.apache.flink.table.data.TimestampData;

import java.io.BufferedWriter;
import java.io.OutputStreamWriter;
import java.lang.management.ManagementFactory;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;

/**
 * `run FILE`: runs the statements of FILE in a local mini cluster (parallelism 1, object reuse, heap
 * state, checkpoints every 10 s as Runnel's benchmark takes them, mini-batches as the Flink suite runs); the last statement is a query, inserted
 * into a counting blackhole, or an INSERT into a table of its own (rows then -1: the runner counts the files). Prints one JSON line: rows to the sink and this process's CPU seconds
 * at main's start, once the job is planned and submitted, and at the end.
 *
 * `explain FILE` prints the plans of that query instead, `print FILE` its result rows (to check a query).
 *
 * `dump EVENTS SEED BASE_US`: prints the generator's first EVENTS events, one per line, for
 * bench/flink/check-generator.ts to compare with Runnel's generator; `pools` prints its price table
 * and channel URLs.
 */
public final class Main {
    private static double cpu() {
        return ((com.sun.management.OperatingSystemMXBean) ManagementFactory.getOperatingSystemMXBean()).getProcessCpuTime() / 1e9;
    }

    public static void main(String[] args) throws Exception {
        if (args.length == 4 && args[0].equals("dump")) dump(Long.parseLong(args[1]), Long.parseLong(args[2]), Long.parseLong(args[3]));
        else if (args.length == 2 && List.of("run", "explain", "print").contains(args[0])) run(Path.of(args[1]), args[0]);
        else if (args.length == 1 && args[0].equals("pools")) pools();
        else throw new IllegalArgumentException("usage: run|explain|print FILE | dump EVENTS SEED BASE_US");
    }

    private static void run(Path file, String mode) throws Exception {
        double atStart = cpu();
        List<String> statements = new ArrayList<>();
        for (String s : Files.readString(file).split(";\\s*(\\n|$)")) if (!s.isBlank()) statements.add(s.trim());
        Path checkpoints = Files.createTempDirectory("runnel-flink-checkpoints-");
        Configuration conf = new Configuration();
        conf.setString("pipeline.object-reuse", "true");
        conf.setString("parallelism.default", "1");
        conf.setString("execution.runtime-mode", "STREAMING");
        conf.setString("execution.checkpointing.interval", "10s");
        conf.setString("execution.checkpointing.dir", checkpoints.toUri().toString());
        conf.setString("state.backend.type", "hashmap");
        // Nothing to commit at the end (a blackhole): finish without waiting up to an interval for a last checkpoint.
        conf.setString("execution.checkpointing.checkpoints-after-tasks-finish", "false");
        // The Flink Nexmark suite's table settings: updating aggregates and joins fold a batch of rows before
        // emitting, as Runnel's operators fold each batch. (Its distinct-aggregate split is left off: a remedy
        // for skew across subtasks, it only adds a stage at parallelism 1.)
        conf.setString("table.exec.mini-batch.enabled", "true");
        conf.setString("table.exec.mini-batch.allow-latency", "2s");
        conf.setString("table.exec.mini-batch.size", "50000");
        StreamExecutionEnvironment env = StreamExecutionEnvironment.getExecutionEnvironment(conf);
        StreamTableEnvironment tEnv = StreamTableEnvironment.create(env);
        tEnv.createTemporarySystemFunction("count_char", CountChar.class);
        for (int i = 0; i < statements.size() - 1; i++) tEnv.executeSql(statements.get(i));
        String last = statements.get(statements.size() - 1);
        if (mode.equals("explain") && last.regionMatches(true, 0, "INSERT", 0, 6)) {
            System.out.println(tEnv.explainSql(last));
            System.exit(0);
        }
        if (mode.equals("run") && last.regionMatches(true, 0, "INSERT", 0, 6)) {
            // A query with its own sink (q10's files): the runner counts what it wrote.
            TableResult result = tEnv.executeSql(last);
            double atSubmit = cpu();
            result.await();
            finish(checkpoints, -1, atStart, atSubmit);
        }
        Table query = tEnv.sqlQuery(last);
        if (!mode.equals("run")) {
            if (mode.equals("explain")) System.out.println(query.explain());
            else query.execute().print();
            System.exit(0);
        }
        TableResult result = query.executeInsert(TableDescriptor.forConnector("counting-blackhole")
                .schema(org.apache.flink.table.api.Schema.newBuilder().fromResolvedSchema(query.getResolvedSchema()).build())
                .build());
        double atSubmit = cpu();
        result.await();
        finish(checkpoints, CountingBlackhole.ROWS.get(), atStart, atSubmit);
    }

    /** Prints the JSON line (rows -1: the sink is not the blackhole) and exits. */
    private static void finish(Path checkpoints, long rows, double atStart, double atSubmit) throws Exception {
        double atEnd = cpu();
        try (var paths = Files.walk(checkpoints)) {
            paths.sorted(Comparator.reverseOrder()).forEach(p -> p.toFile().delete());
        }
        System.out.println("{\"rows\":" + rows + ",\"cpuAtStart\":" + atStart + ",\"cpuAtSubmit\":" + atSubmit
                + ",\"cpuAtEnd\":" + atEnd + "}");
        System.exit(0);
    }

    /** The seed-independent pools: every price and every channel's URL, one per line. */
    private static void pools() {
        Generator gen = new Generator(0, 0, 1);
        StringBuilder out = new StringBuilder();
        for (long p : gen.prices) out.append(p).append('\n');
        for (StringData url : gen.channelUrls) out.append(Generator.text(url)).append('\n');
        System.out.print(out);
    }

    private static void dump(long events, long seed, long base) throws Exception {
        Generator gen = new Generator(seed, base, 1);
        BufferedWriter out = new BufferedWriter(new OutputStreamWriter(System.out, StandardCharsets.UTF_8), 1 << 16);
        for (long n = 0; n < events; n++) {
            long time = gen.time(n);
            int kind = Generator.kind(n);
            GenericRowData row = kind == 0 ? gen.person(n, time) : kind == 1 ? gen.auction(n, time) : gen.bid(n, time);
            StringBuilder line = new StringBuilder().append(kind);
            for (int i = 0; i < row.getArity(); i++) {
                Object v = row.getField(i);
                line.append('\t');
                if (v instanceof StringData s) line.append(Generator.text(s));
                else if (v instanceof TimestampData t) line.append(t.getMillisecond() * 1000 + t.getNanoOfMillisecond() / 1000);
                else line.append(v);
            }
            out.write(line.append('\n').toString());
        }
        out.flush();
    }
}
