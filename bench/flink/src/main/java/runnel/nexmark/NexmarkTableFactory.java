package runnel.nexmark;

import org.apache.flink.api.connector.source.SourceReaderContext;
import org.apache.flink.configuration.ConfigOption;
import org.apache.flink.configuration.ConfigOptions;
import org.apache.flink.connector.datagen.source.DataGeneratorSource;
import org.apache.flink.connector.datagen.source.GeneratorFunction;
import org.apache.flink.table.connector.ChangelogMode;
import org.apache.flink.table.connector.source.DynamicTableSource;
import org.apache.flink.table.connector.source.ScanTableSource;
import org.apache.flink.table.connector.source.SourceProvider;
import org.apache.flink.table.connector.source.abilities.SupportsProjectionPushDown;
import org.apache.flink.table.data.GenericRowData;
import org.apache.flink.table.data.RowData;
import org.apache.flink.table.data.TimestampData;
import org.apache.flink.table.factories.DynamicTableSourceFactory;
import org.apache.flink.table.factories.FactoryUtil;
import org.apache.flink.table.runtime.typeutils.InternalTypeInfo;
import org.apache.flink.table.types.DataType;
import org.apache.flink.table.types.logical.RowType;

import java.util.List;
import java.util.Set;

/**
 * `'connector' = 'runnel-nexmark'`: Runnel's generator as a Flink table of columns
 * (person ROW, auction ROW, bid ROW, rowtime TIMESTAMP(3)), one of the three rows set per event,
 * as Runnel's `nexmark` table is. Event n of the stream is a function of n (a FLIP-27
 * DataGeneratorSource), and like Runnel's source it builds only the rows a query reads
 * (top-level projection push-down), so both engines generate the same objects.
 */
public final class NexmarkTableFactory implements DynamicTableSourceFactory {
    static final ConfigOption<Long> EVENTS = ConfigOptions.key("events").longType().noDefaultValue();
    static final ConfigOption<Long> SEED = ConfigOptions.key("seed").longType().defaultValue(0L);
    static final ConfigOption<Long> BASE_TIME = ConfigOptions.key("base-time").longType().defaultValue(1_700_000_000_000_000L)
            .withDescription("Event time of event 0, µs since the epoch");

    @Override
    public String factoryIdentifier() {
        return "runnel-nexmark";
    }

    @Override
    public Set<ConfigOption<?>> requiredOptions() {
        return Set.of(EVENTS);
    }

    @Override
    public Set<ConfigOption<?>> optionalOptions() {
        return Set.of(SEED, BASE_TIME);
    }

    @Override
    public DynamicTableSource createDynamicTableSource(Context context) {
        FactoryUtil.TableFactoryHelper helper = FactoryUtil.createTableFactoryHelper(this, context);
        helper.validate();
        var o = helper.getOptions();
        List<String> names = context.getCatalogTable().getResolvedSchema().getColumnNames();
        int[] layout = new int[names.size()];
        for (int i = 0; i < layout.length; i++) layout[i] = column(names.get(i));
        return new Source(o.get(EVENTS), o.get(SEED), o.get(BASE_TIME), layout, context.getPhysicalRowDataType());
    }

    /** 0 person, 1 auction, 2 bid, 3 the event time. */
    private static int column(String name) {
        switch (name) {
            case "person": return 0;
            case "auction": return 1;
            case "bid": return 2;
            case "rowtime": return 3;
            default: throw new IllegalArgumentException("runnel-nexmark has columns person, auction, bid, rowtime; not " + name);
        }
    }

    static final class Source implements ScanTableSource, SupportsProjectionPushDown {
        private final long events, seed, base;
        private int[] layout;
        private DataType produced;

        Source(long events, long seed, long base, int[] layout, DataType produced) {
            this.events = events;
            this.seed = seed;
            this.base = base;
            this.layout = layout;
            this.produced = produced;
        }

        @Override
        public ChangelogMode getChangelogMode() {
            return ChangelogMode.insertOnly();
        }

        @Override
        public ScanRuntimeProvider getScanRuntimeProvider(ScanContext context) {
            RowType type = (RowType) produced.getLogicalType();
            return SourceProvider.of(new DataGeneratorSource<>(new Events(seed, base, layout), events, InternalTypeInfo.of(type)));
        }

        @Override
        public boolean supportsNestedProjection() {
            return false;
        }

        @Override
        public void applyProjection(int[][] projected, DataType producedDataType) {
            int[] next = new int[projected.length];
            for (int i = 0; i < projected.length; i++) next[i] = layout[projected[i][0]];
            layout = next;
            produced = producedDataType;
        }

        @Override
        public DynamicTableSource copy() {
            return new Source(events, seed, base, layout.clone(), produced);
        }

        @Override
        public String asSummaryString() {
            return "runnel-nexmark";
        }
    }

    /** Event n as a row of the projected columns; the generator is built per reader (its pools are not shipped). */
    static final class Events implements GeneratorFunction<Long, RowData> {
        private final long seed, base;
        private final int[] layout;
        private transient Generator gen;
        private transient boolean person, auction, bid;

        Events(long seed, long base, int[] layout) {
            this.seed = seed;
            this.base = base;
            this.layout = layout;
        }

        @Override
        public void open(SourceReaderContext context) {
            gen = new Generator(seed, base, 1);
            for (int c : layout) {
                person |= c == 0;
                auction |= c == 1;
                bid |= c == 2;
            }
        }

        @Override
        public RowData map(Long index) {
            long n = index;
            long time = gen.time(n);
            int kind = Generator.kind(n);
            GenericRowData event = null;
            if (kind == 0) {
                if (person) event = gen.person(n, time);
            } else if (kind == 1) {
                if (auction) event = gen.auction(n, time);
            } else if (bid) {
                event = gen.bid(n, time);
            }
            GenericRowData row = new GenericRowData(layout.length);
            for (int j = 0; j < layout.length; j++) {
                int c = layout[j];
                if (c == kind) row.setField(j, event);
                // Flink's event time has millisecond precision; windows of whole milliseconds hold the same events.
                else if (c == 3) row.setField(j, TimestampData.fromEpochMillis(Math.floorDiv(time, 1000)));
            }
            return row;
        }
    }
}
