package runnel.nexmark;

import org.apache.flink.api.connector.sink2.Sink;
import org.apache.flink.api.connector.sink2.SinkWriter;
import org.apache.flink.api.connector.sink2.WriterInitContext;
import org.apache.flink.configuration.ConfigOption;
import org.apache.flink.table.connector.ChangelogMode;
import org.apache.flink.table.connector.sink.DynamicTableSink;
import org.apache.flink.table.connector.sink.SinkV2Provider;
import org.apache.flink.table.data.RowData;
import org.apache.flink.table.factories.DynamicTableSinkFactory;
import org.apache.flink.types.RowKind;

import java.util.Set;
import java.util.concurrent.atomic.AtomicLong;

/**
 * `'connector' = 'counting-blackhole'`: Flink's blackhole sink (it also drops UPDATE_BEFORE from
 * the changelog it asks for) that counts the rows it discards, so the report shows how many rows
 * each engine sent to its sink. The count is a static: the mini cluster runs in this JVM.
 */
public final class CountingBlackhole implements DynamicTableSinkFactory {
    static final AtomicLong ROWS = new AtomicLong();

    @Override
    public String factoryIdentifier() {
        return "counting-blackhole";
    }

    @Override
    public Set<ConfigOption<?>> requiredOptions() {
        return Set.of();
    }

    @Override
    public Set<ConfigOption<?>> optionalOptions() {
        return Set.of();
    }

    @Override
    public DynamicTableSink createDynamicTableSink(Context context) {
        return new TableSink();
    }

    static final class TableSink implements DynamicTableSink {
        @Override
        public ChangelogMode getChangelogMode(ChangelogMode requested) {
            ChangelogMode.Builder b = ChangelogMode.newBuilder();
            for (RowKind kind : requested.getContainedKinds()) if (kind != RowKind.UPDATE_BEFORE) b.addContainedKind(kind);
            return b.build();
        }

        @Override
        public SinkRuntimeProvider getSinkRuntimeProvider(Context context) {
            return SinkV2Provider.of(new Counting());
        }

        @Override
        public DynamicTableSink copy() {
            return new TableSink();
        }

        @Override
        public String asSummaryString() {
            return "counting-blackhole";
        }
    }

    static final class Counting implements Sink<RowData> {
        @Override
        public SinkWriter<RowData> createWriter(WriterInitContext context) {
            return new SinkWriter<>() {
                private long rows;

                @Override
                public void write(RowData row, Context ctx) {
                    rows++;
                }

                @Override
                public void flush(boolean endOfInput) {
                    ROWS.addAndGet(rows);
                    rows = 0;
                }

                @Override
                public void close() {
                    ROWS.addAndGet(rows);
                    rows = 0;
                }
            };
        }
    }
}
