package runnel.nexmark;

import org.apache.flink.table.data.GenericRowData;
import org.apache.flink.table.data.StringData;
import org.apache.flink.table.data.TimestampData;
import org.apache.flink.table.data.binary.BinaryStringData;

import java.nio.charset.StandardCharsets;

/**
 * A port of Runnel's generator (plugins/connector-nexmark/generator.ts), value for value:
 * the same PRNG reseeded per (seed, event number), the same pools and text buffers, the same
 * draws in the same order. `bun bench/flink/check-generator.ts` compares the two field by field.
 *
 * JavaScript's uint32 values are Java longs here and int32 ones Java ints; doubles are computed
 * in the same order so that every floor() lands where V8/JSC's does. Times stay in microseconds.
 */
public final class Generator {
    static final int PERSON_PROPORTION = 1;
    static final int AUCTION_PROPORTION = 3;
    static final int TOTAL_PROPORTION = 50;
    static final long FIRST_PERSON_ID = 1000;
    static final long FIRST_AUCTION_ID = 1000;
    static final long FIRST_CATEGORY_ID = 10;
    static final int NUM_CATEGORIES = 5;
    static final long NUM_ACTIVE_PEOPLE = 1000;
    static final long NUM_IN_FLIGHT_AUCTIONS = 100;
    static final long PERSON_ID_LEAD = 10;
    static final long AUCTION_ID_LEAD = 10;
    static final long HOT_AUCTION_RATIO = 2;
    static final long HOT_BIDDER_RATIO = 4;
    static final int HOT_SELLER_RATIO = 4;
    static final int HOT_CHANNEL_RATIO = 2;
    static final int NUM_CHANNELS = 10_000;
    static final double EVENTS_PER_AUCTION_HORIZON = (NUM_IN_FLIGHT_AUCTIONS * TOTAL_PROPORTION) / (double) AUCTION_PROPORTION;
    static final int AVG_PERSON_BYTES = 200;
    static final int AVG_AUCTION_BYTES = 500;
    static final int AVG_BID_BYTES = 100;
    static final double U32 = 2.3283064365386963e-10;
    static final int TEXT_BYTES = 1 << 20;

    static final String[] FIRST_NAMES = {"Peter", "Paul", "Luke", "John", "Saul", "Vicky", "Kate", "Julie", "Sarah", "Deiter", "Walter"};
    static final String[] LAST_NAMES = {"Shultz", "Abrams", "Spencer", "White", "Bartels", "Walton", "Smith", "Jones", "Noris"};
    static final String[] CITIES = {"Phoenix", "Los Angeles", "San Francisco", "Boise", "Portland", "Bend", "Redmond", "Seattle", "Kent", "Cheyenne"};
    static final String[] STATES = {"AZ", "CA", "ID", "OR", "WA", "WY"};
    static final String[] HOT_CHANNELS = {"Google", "Facebook", "Baidu", "Apple"};
    static final String LETTERS = "abcdefghijklmnopqrstuvwxyz";

    // ------------------------------------------------------------------ PRNG (one state, reseeded per event)
    private int state;

    private void reseed(int seedLo, int seedHi, long n) {
        int lo = (int) n;
        int hi = (int) (n >>> 32);
        int h = (lo ^ seedLo ^ 0x9e3779b9) * 0x85ebca6b;
        h ^= h >>> 13;
        h = (h ^ hi ^ seedHi) * 0xc2b2ae35;
        h ^= h >>> 16;
        h = (h ^ lo) * 0x27d4eb2f;
        state = h ^ (h >>> 15);
    }

    /** Mulberry32 step: a uniform uint32. */
    private long next32() {
        int s = state = state + 0x6d2b79f5;
        int t = (s ^ (s >>> 15)) * (1 | s);
        t = (t + (t ^ (t >>> 7)) * (61 | t)) ^ t;
        return (t ^ (t >>> 14)) & 0xffffffffL;
    }

    private long below(long bound) {
        return (long) Math.floor(next32() * U32 * bound);
    }

    // ------------------------------------------------------------------ pools (seed-independent)
    final StringData[] names;
    final StringData[] channels;
    final StringData[] channelUrls;
    final StringData[] hotChannels;
    final StringData[] hotUrls;
    final StringData[] cities;
    final StringData[] states;
    final long[] prices = new long[65536];
    /** Random text (one byte per letter) to cut strings from without copying, as the TypeScript slices do. */
    final byte[] words = new byte[TEXT_BYTES];
    final byte[] letters = new byte[TEXT_BYTES];

    private String randomWord(int len) {
        StringBuilder s = new StringBuilder(len);
        for (int i = 0; i < len; i++) s.append(LETTERS.charAt((int) below(26)));
        return s.toString();
    }

    private String baseUrl() {
        String a = randomWord(5), b = randomWord(5), c = randomWord(5);
        return "https://www.nexmark.com/" + a + "/" + b + "/" + c + "/item.htm?query=1";
    }

    private static StringData[] strings(String[] values) {
        StringData[] out = new StringData[values.length];
        for (int i = 0; i < values.length; i++) out[i] = StringData.fromString(values[i]);
        return out;
    }

    private final int seedLo;
    private final int seedHi;
    final long base;
    final double interEventDelay;
    private final double auctionHorizon;

    /** `base` (µs) is event 0's time; `interEventDelay` (µs, may be fractional) spaces the events. */
    public Generator(long seed, long base, double interEventDelay) {
        state = 0x2545f491;
        String[] n = new String[FIRST_NAMES.length * LAST_NAMES.length];
        int k = 0;
        for (String f : FIRST_NAMES) for (String l : LAST_NAMES) n[k++] = f + " " + l;
        names = strings(n);
        String[] ch = new String[NUM_CHANNELS];
        String[] urls = new String[NUM_CHANNELS];
        for (int i = 0; i < NUM_CHANNELS; i++) {
            ch[i] = "channel-" + i;
            urls[i] = below(10) > 0 ? baseUrl() + "&channel_id=" + Math.abs((long) (i * 0x5bd1e995)) : baseUrl();
        }
        channels = strings(ch);
        channelUrls = strings(urls);
        hotChannels = strings(HOT_CHANNELS);
        String[] hot = new String[HOT_CHANNELS.length];
        for (int i = 0; i < hot.length; i++) hot[i] = "https://www.nexmark.com/item.htm?query=1&channel_id=" + i;
        hotUrls = strings(hot);
        cities = strings(CITIES);
        states = strings(STATES);
        for (int i = 0; i < prices.length; i++) prices[i] = Math.round(Math.pow(10, ((i + 0.5) / prices.length) * 6) * 100);
        state = 0x1b873593;
        for (int i = 0; i < TEXT_BYTES; i++) {
            words[i] = below(13) == 0 ? (byte) ' ' : (byte) LETTERS.charAt((int) below(26));
            letters[i] = (byte) LETTERS.charAt((int) below(26));
        }
        this.seedLo = (int) seed;
        this.seedHi = (int) (seed >> 32);
        this.base = base;
        this.interEventDelay = interEventDelay;
        this.auctionHorizon = Math.max(2 * EVENTS_PER_AUCTION_HORIZON * interEventDelay, 1);
    }

    // ------------------------------------------------------------------ ids

    static long lastBase0PersonId(long n) {
        return n / TOTAL_PROPORTION;
    }

    static long lastBase0AuctionId(long n) {
        long epoch = n / TOTAL_PROPORTION;
        long offset = n - epoch * TOTAL_PROPORTION;
        if (offset < PERSON_PROPORTION) {
            epoch--;
            offset = AUCTION_PROPORTION - 1;
        } else if (offset >= PERSON_PROPORTION + AUCTION_PROPORTION) {
            offset = AUCTION_PROPORTION - 1;
        } else {
            offset -= PERSON_PROPORTION;
        }
        long id = epoch * AUCTION_PROPORTION + offset;
        return id < 0 ? 0 : id;
    }

    /** 0 person, 1 auction, 2 bid. */
    public static int kind(long n) {
        long m = n % TOTAL_PROPORTION;
        return m < PERSON_PROPORTION ? 0 : m < PERSON_PROPORTION + AUCTION_PROPORTION ? 1 : 2;
    }

    private long nextBase0PersonId(long n) {
        long numPeople = lastBase0PersonId(n) + 1;
        long active = Math.min(numPeople, NUM_ACTIVE_PEOPLE);
        return numPeople - active + below(active + PERSON_ID_LEAD);
    }

    private long nextBase0AuctionId(long n) {
        long maxAuction = lastBase0AuctionId(n);
        long minAuction = maxAuction > NUM_IN_FLIGHT_AUCTIONS ? maxAuction - NUM_IN_FLIGHT_AUCTIONS : 0;
        return minAuction + below(maxAuction - minAuction + 1 + AUCTION_ID_LEAD);
    }

    // ------------------------------------------------------------------ events

    /** Event time (µs) of event n. */
    public long time(long n) {
        return base + (long) Math.floor(n * interEventDelay);
    }

    /** The reference's nextString: 3 to max − 1 characters, a space about one in 13, trimmed. */
    private StringData randomString(int max) {
        int len = 3 + (int) below(max - 3);
        int at = (int) below(TEXT_BYTES - len);
        int end = at + len;
        while (at < end && words[at] == ' ') at++;
        while (end > at && words[end - 1] == ' ') end--;
        return BinaryStringData.fromBytes(words, at, end - at);
    }

    /** The reference's nextExtra: letters making the event `average` bytes ±20 % (none when it is already larger). */
    private StringData extraPadding(int size, int average) {
        if (size > average) return BinaryStringData.EMPTY_UTF8;
        int want = average - size;
        int delta = (int) Math.round(want * 0.2);
        int len = want - delta + (int) below(2L * delta);
        int at = (int) below(TEXT_BYTES - len);
        return BinaryStringData.fromBytes(letters, at, len);
    }

    private static String pad4(long v) {
        return v >= 1000 ? String.valueOf(v) : v >= 100 ? "0" + v : v >= 10 ? "00" + v : "000" + v;
    }

    static TimestampData micros(long us) {
        return TimestampData.fromEpochMillis(Math.floorDiv(us, 1000), (int) Math.floorMod(us, 1000) * 1000);
    }

    /** Person row: id, name, email_address, credit_card, city, state, datetime, extra. */
    public GenericRowData person(long n, long datetime) {
        reseed(seedLo, seedHi, n);
        StringData name = names[(int) below(names.length)];
        StringData user = randomString(7);
        StringData host = randomString(5);
        StringData email = StringData.fromString(user + "@" + host + ".com");
        long cc = next32();
        long cc2 = next32();
        StringData card = StringData.fromString(pad4(cc % 10000) + " " + pad4((cc / 10000) % 10000) + " " + pad4(cc2 % 10000) + " " + pad4((cc2 / 10000) % 10000));
        StringData city = cities[(int) below(cities.length)];
        StringData st = states[(int) below(states.length)];
        // Beam's Person.sizeInBytes (all these strings are ASCII: bytes = characters).
        int size = 8 + ((BinaryStringData) name).getSizeInBytes() + 1 + ((BinaryStringData) email).getSizeInBytes() + 1
                + ((BinaryStringData) card).getSizeInBytes() + 1 + ((BinaryStringData) city).getSizeInBytes() + 1
                + ((BinaryStringData) st).getSizeInBytes() + 8 + 1;
        return GenericRowData.of(lastBase0PersonId(n) + FIRST_PERSON_ID, name, email, card, city, st, micros(datetime),
                extraPadding(size, AVG_PERSON_BYTES));
    }

    /** Auction row: id, item_name, description, initial_bid, reserve, datetime, expires, seller, category, extra. */
    public GenericRowData auction(long n, long datetime) {
        reseed(seedLo, seedHi, n);
        long seller = below(HOT_SELLER_RATIO) > 0
                ? (lastBase0PersonId(n) / HOT_SELLER_RATIO) * HOT_SELLER_RATIO
                : nextBase0PersonId(n);
        long initial = prices[(int) (next32() >>> 16)];
        long reserve = initial + prices[(int) (next32() >>> 16)];
        StringData item = randomString(20);
        StringData description = randomString(100);
        long expires = datetime + 1000 + (long) Math.floor(next32() * U32 * auctionHorizon);
        long category = FIRST_CATEGORY_ID + below(NUM_CATEGORIES);
        int size = 8 + ((BinaryStringData) item).getSizeInBytes() + 1 + ((BinaryStringData) description).getSizeInBytes() + 1 + 8 + 8 + 8 + 8 + 8 + 8 + 1;
        return GenericRowData.of(lastBase0AuctionId(n) + FIRST_AUCTION_ID, item, description, initial, reserve,
                micros(datetime), micros(expires), seller + FIRST_PERSON_ID, category, extraPadding(size, AVG_AUCTION_BYTES));
    }

    /** Bid row: auction, bidder, price, channel, url, datetime, extra. */
    public GenericRowData bid(long n, long datetime) {
        reseed(seedLo, seedHi, n);
        long auction = (next32() & 1) != 0
                ? (lastBase0AuctionId(n) / HOT_AUCTION_RATIO) * HOT_AUCTION_RATIO
                : nextBase0AuctionId(n);
        long bidder = below(HOT_BIDDER_RATIO) > 0
                ? (lastBase0PersonId(n) / HOT_BIDDER_RATIO) * HOT_BIDDER_RATIO + 1
                : nextBase0PersonId(n);
        long price = prices[(int) (next32() >>> 16)];
        StringData channel;
        StringData url;
        if (below(HOT_CHANNEL_RATIO) > 0) {
            int i = (int) (next32() & 3);
            channel = hotChannels[i];
            url = hotUrls[i];
        } else {
            int i = (int) below(NUM_CHANNELS);
            channel = channels[i];
            url = channelUrls[i];
        }
        return GenericRowData.of(auction + FIRST_AUCTION_ID, bidder + FIRST_PERSON_ID, price, channel, url, micros(datetime),
                extraPadding(8 + 8 + 8 + 8 + 1, AVG_BID_BYTES));
    }

    static String text(StringData s) {
        return new String(((BinaryStringData) s).toBytes(), StandardCharsets.UTF_8);
    }
}
