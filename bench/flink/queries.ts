/**
 * The Nexmark queries in Flink SQL over the `runnel-nexmark` table (Runnel's generator ported to
 * Java), written from the Flink community's Nexmark SQL with the windows scaled as
 * bench/nexmark-queries.ts scales Runnel's (seconds become milliseconds, a "day" 10 ms), and with
 * Runnel's columns, so both engines do the same work.
 *
 * Event time: Flink's rowtime has millisecond precision, so the table carries `rowtime` (the event
 * time cut to the millisecond: windows of whole milliseconds hold exactly Runnel's events) beside
 * each row's `datetime` (microseconds, Runnel's value, used where a query compares or orders times).
 * The watermark trails by 1 s, Runnel's default.
 */

/** Flink's three tables over the generator, as Runnel's NEXMARK_VIEWS are. */
export const FLINK_SOURCE = (events: number) => `CREATE TABLE nexmark (
  person ROW<id BIGINT, name STRING, email_address STRING, credit_card STRING, city STRING, state STRING, \`datetime\` TIMESTAMP(6), extra STRING>,
  auction ROW<id BIGINT, item_name STRING, description STRING, initial_bid BIGINT, reserve BIGINT, \`datetime\` TIMESTAMP(6),
    expires TIMESTAMP(6), seller BIGINT, category BIGINT, extra STRING>,
  bid ROW<auction BIGINT, bidder BIGINT, price BIGINT, channel STRING, url STRING, \`datetime\` TIMESTAMP(6), extra STRING>,
  rowtime TIMESTAMP(3),
  WATERMARK FOR rowtime AS rowtime - INTERVAL '1' SECOND
) WITH ('connector' = 'runnel-nexmark', 'events' = '${events}');
CREATE VIEW person AS SELECT person.id AS id, person.name AS name, person.email_address AS email_address, person.credit_card AS credit_card,
  person.city AS city, person.state AS state, person.\`datetime\` AS \`datetime\`, person.extra AS extra, rowtime
  FROM nexmark WHERE person IS NOT NULL;
CREATE VIEW auction AS SELECT auction.id AS id, auction.item_name AS item_name, auction.description AS description, auction.initial_bid AS initial_bid,
  auction.reserve AS reserve, auction.\`datetime\` AS \`datetime\`, auction.expires AS expires, auction.seller AS seller, auction.category AS category,
  auction.extra AS extra, rowtime
  FROM nexmark WHERE auction IS NOT NULL;
CREATE VIEW bid AS SELECT bid.auction AS auction, bid.bidder AS bidder, bid.price AS price, bid.channel AS channel, bid.url AS url,
  bid.\`datetime\` AS \`datetime\`, bid.extra AS extra, rowtime
  FROM nexmark WHERE bid IS NOT NULL;
`;

export interface FlinkQuery {
  /** The query (the runner inserts it into a counting blackhole, unless it is an INSERT); absent when Flink cannot do the same work. */
  sql?: string;
  /** Statements before it (`{dir}` is a scratch directory holding side_input.json). */
  setup?: string;
  /** Why the query is left out, when it is. */
  skip?: string;
  /** Runnel's side, when it is not bench/nexmark.ts's query of that name (`{out}` as below). */
  runnel?: string;
  /**
   * The query writes files into `{out}` (a fresh folder per run) instead of a counting blackhole: its
   * rows are the lines of the files there, counted after the run, on both sides.
   */
  output?: boolean;
}

/** A window length of `n` milliseconds. */
const ms = (n: number) => `INTERVAL '0.${String(n).padStart(3, "0")}' SECOND`;
const tumble = (table: string, n: number) => `TABLE(TUMBLE(TABLE ${table}, DESCRIPTOR(rowtime), ${ms(n)}))`;
/** A "day" (10 ms of event time), as a key. */
const DAY = "DATE_FORMAT(rowtime, 'yyyy-MM-dd HH:mm:ss.SS')";
const RANK1 = "price < 10000";
const RANK2 = "price >= 10000 AND price < 1000000";
const RANK3 = "price >= 1000000";

export const FLINK_QUERIES: Record<string, FlinkQuery> = {
  q0: { sql: "SELECT auction, bidder, price, `datetime`, extra FROM bid" },
  q1: { sql: "SELECT auction, bidder, 0.908 * price AS price, `datetime`, extra FROM bid" },
  q2: { sql: "SELECT auction, price FROM bid WHERE MOD(auction, 123) = 0" },
  q3: {
    sql: `SELECT P.name, P.city, P.state, A.id FROM auction AS A INNER JOIN person AS P ON A.seller = P.id
WHERE A.category = 10 AND (P.state = 'OR' OR P.state = 'ID' OR P.state = 'CA')`,
  },
  q4: {
    sql: `SELECT Q.category, AVG(Q.final) AS avg_final FROM (
  SELECT MAX(B.price) AS final, A.category FROM auction A JOIN bid B ON A.id = B.auction
  WHERE B.\`datetime\` BETWEEN A.\`datetime\` AND A.expires GROUP BY A.id, A.category) Q
GROUP BY Q.category`,
  },
  q5: {
    // Flink's window top-N takes ROW_NUMBER only (RANK is refused): one auction per window where Runnel keeps every tie.
    sql: `SELECT auction, num FROM (
  SELECT auction, num, ROW_NUMBER() OVER (PARTITION BY window_start, window_end ORDER BY num DESC) AS r FROM (
    SELECT auction, window_start, window_end, COUNT(*) AS num
    FROM TABLE(HOP(TABLE bid, DESCRIPTOR(rowtime), ${ms(2)}, ${ms(10)})) GROUP BY auction, window_start, window_end))
WHERE r <= 1`,
  },
  q6: {
    skip:
      "Flink has no OVER aggregate over an updating input (the max per auction), and its OVER windows must be ordered by a time attribute; the Flink Nexmark suite lists q6 as unsupported",
  },
  q7: {
    sql: `SELECT B.auction, B.price, B.bidder, B.\`datetime\` FROM (
  SELECT window_start, window_end, auction, price, bidder, \`datetime\` FROM ${tumble("bid", 10)}
  GROUP BY window_start, window_end, auction, price, bidder, \`datetime\`) B
JOIN (SELECT window_start, window_end, MAX(price) AS maxprice FROM ${tumble("bid", 10)} GROUP BY window_start, window_end) B1
ON B.window_start = B1.window_start AND B.window_end = B1.window_end AND B.price = B1.maxprice`,
  },
  q8: {
    sql: `SELECT P.id, P.name, P.window_start AS starttime FROM (
  SELECT id, name, window_start, window_end FROM ${tumble("person", 10)} GROUP BY id, name, window_start, window_end) P
JOIN (SELECT seller, window_start, window_end FROM ${tumble("auction", 10)} GROUP BY seller, window_start, window_end) A
ON P.id = A.seller AND P.window_start = A.window_start AND P.window_end = A.window_end`,
  },
  q9: {
    sql: `SELECT id, item_name, seller, category, auction, bidder, price, bid_datetime FROM (
  SELECT A.id, A.item_name, A.seller, A.category, B.auction, B.bidder, B.price, B.\`datetime\` AS bid_datetime,
    ROW_NUMBER() OVER (PARTITION BY A.id ORDER BY B.price DESC, B.\`datetime\` ASC) AS rownum
  FROM auction A JOIN bid B ON A.id = B.auction WHERE B.\`datetime\` BETWEEN A.\`datetime\` AND A.expires)
WHERE rownum <= 1`,
  },
  q10: {
    // The Flink suite's q10 (CSV through the filesystem sink, partitioned by dt and hm, a success file per
    // partition once the watermark passes it): Runnel's generator is 1M events per second of event time, so a
    // whole run falls in one real minute; the "minute" of hm is scaled to 100 ms (seconds → milliseconds gives
    // 60 ms; a date pattern's nearest is a tenth of a second), and with it the commit delay (1 min → 60 ms).
    // The rolling options are processing time, as the suite has them.
    setup: `CREATE TABLE fs_sink (auction BIGINT, bidder BIGINT, price BIGINT, \`datetime\` TIMESTAMP(6), extra STRING, dt STRING, hm STRING)
PARTITIONED BY (dt, hm) WITH (
  'connector' = 'filesystem', 'path' = 'file://{out}', 'format' = 'csv',
  'sink.partition-commit.trigger' = 'partition-time', 'sink.partition-commit.delay' = '60 ms',
  'sink.partition-commit.policy.kind' = 'success-file',
  'partition.time-extractor.timestamp-pattern' = '$dt $hm', 'partition.time-extractor.timestamp-formatter' = 'yyyy-MM-dd HH:mm:ss.S',
  'sink.rolling-policy.rollover-interval' = '1min', 'sink.rolling-policy.check-interval' = '1min')`,
    sql: `INSERT INTO fs_sink SELECT auction, bidder, price, \`datetime\`, extra, DATE_FORMAT(rowtime, 'yyyy-MM-dd'),
  SUBSTRING(DATE_FORMAT(rowtime, 'HH:mm:ss.SSS'), 1, 10) FROM bid`,
    // The same rows by the same dt and hm on Runnel's filesystem sink (bench/nexmark.ts's q10 writes Parquet), as
    // CSV like Flink's, without a header row as Flink's csv format writes none (and the bench counts lines as
    // rows). Runnel's files also hold dt and hm (Flink leaves partition columns out of the file).
    runnel: `CREATE TABLE fs_sink (auction BIGINT, bidder BIGINT, price BIGINT, datetime TIMESTAMP, extra TEXT, dt TEXT, hm TEXT) WITH (
  connector = 'filesystem', path = '{out}', format = 'csv', header = 'false', type = 'sink', 'partitioning.fields' = 'dt,hm');
INSERT INTO fs_sink SELECT auction, bidder, price, datetime, extra, to_char(datetime, '%Y-%m-%d') AS dt,
  substr(to_char(datetime, '%H:%M:%S%.3f'), 1, 10) AS hm FROM bid;`,
    output: true,
  },
  q11: {
    sql: `SELECT bidder, COUNT(*) AS bid_count, SESSION_START(rowtime, ${ms(10)}) AS starttime, SESSION_END(rowtime, ${ms(10)}) AS endtime
FROM bid GROUP BY bidder, SESSION(rowtime, ${ms(10)})`,
  },
  q12: {
    sql: `SELECT bidder, COUNT(*) AS bid_count, window_start AS starttime FROM ${tumble("bid", 10)} GROUP BY bidder, window_start, window_end`,
  },
  q13: {
    setup: "CREATE TABLE side_input (key BIGINT, `value` STRING) WITH ('connector' = 'filesystem', 'path' = 'file://{dir}/side_input.json', 'format' = 'json')",
    sql: "SELECT B.auction, B.bidder, B.price, B.`datetime`, S.`value` FROM bid B JOIN side_input S ON MOD(B.auction, 10000) = S.key",
  },
  q14: {
    sql: `SELECT auction, bidder, 0.908 * price AS price,
  CASE WHEN HOUR(\`datetime\`) >= 8 AND HOUR(\`datetime\`) <= 18 THEN 'dayTime'
       WHEN HOUR(\`datetime\`) <= 6 OR HOUR(\`datetime\`) >= 20 THEN 'nightTime' ELSE 'otherTime' END AS bid_time_type,
  \`datetime\`, extra, count_char(extra, 'c') AS c_counts
FROM bid WHERE 0.908 * price > 1000000 AND 0.908 * price < 50000000`,
  },
  q15: {
    sql: `SELECT ${DAY} AS \`day\`, COUNT(*) AS total_bids,
  COUNT(*) FILTER (WHERE ${RANK1}) AS rank1_bids, COUNT(*) FILTER (WHERE ${RANK2}) AS rank2_bids, COUNT(*) FILTER (WHERE ${RANK3}) AS rank3_bids,
  COUNT(DISTINCT bidder) AS total_bidders, COUNT(DISTINCT bidder) FILTER (WHERE ${RANK1}) AS rank1_bidders,
  COUNT(DISTINCT bidder) FILTER (WHERE ${RANK2}) AS rank2_bidders, COUNT(DISTINCT bidder) FILTER (WHERE ${RANK3}) AS rank3_bidders,
  COUNT(DISTINCT auction) AS total_auctions, COUNT(DISTINCT auction) FILTER (WHERE ${RANK1}) AS rank1_auctions,
  COUNT(DISTINCT auction) FILTER (WHERE ${RANK2}) AS rank2_auctions, COUNT(DISTINCT auction) FILTER (WHERE ${RANK3}) AS rank3_auctions
FROM bid GROUP BY ${DAY}`,
  },
  q16: {
    sql: `SELECT channel, ${DAY} AS \`day\`, MAX(DATE_FORMAT(\`datetime\`, 'HH:mm')) AS \`minute\`, COUNT(*) AS total_bids,
  COUNT(*) FILTER (WHERE ${RANK1}) AS rank1_bids, COUNT(*) FILTER (WHERE ${RANK3}) AS rank3_bids,
  COUNT(DISTINCT bidder) AS total_bidders, COUNT(DISTINCT bidder) FILTER (WHERE ${RANK3}) AS rank3_bidders,
  COUNT(DISTINCT auction) AS total_auctions, COUNT(DISTINCT auction) FILTER (WHERE ${RANK1}) AS rank1_auctions
FROM bid GROUP BY channel, ${DAY}`,
  },
  q17: {
    sql: `SELECT auction, ${DAY} AS \`day\`, COUNT(*) AS total_bids,
  COUNT(*) FILTER (WHERE ${RANK1}) AS rank1_bids, COUNT(*) FILTER (WHERE ${RANK2}) AS rank2_bids, COUNT(*) FILTER (WHERE ${RANK3}) AS rank3_bids,
  MIN(price) AS min_price, MAX(price) AS max_price, AVG(price) AS avg_price, SUM(price) AS sum_price
FROM bid GROUP BY auction, ${DAY}`,
  },
  q18: {
    // Ordered by the event time attribute, as the Flink suite writes it, so Flink plans its deduplication operator.
    sql: `SELECT auction, bidder, price, channel, \`datetime\` FROM (
  SELECT *, ROW_NUMBER() OVER (PARTITION BY bidder, auction ORDER BY rowtime DESC) AS rank_number FROM bid)
WHERE rank_number <= 1`,
  },
  q19: {
    sql: `SELECT auction, price, rank_number FROM (
  SELECT *, ROW_NUMBER() OVER (PARTITION BY auction ORDER BY price DESC) AS rank_number FROM bid)
WHERE rank_number <= 10`,
  },
  q20: {
    sql: `SELECT B.auction, B.bidder, B.price, B.channel, B.\`datetime\`, A.item_name, A.initial_bid, A.reserve, A.\`datetime\` AS a_datetime,
  A.expires, A.seller, A.category
FROM bid AS B INNER JOIN auction AS A ON B.auction = A.id WHERE A.category = 10`,
  },
  q21: {
    sql: `SELECT auction, bidder, price, channel,
  CASE WHEN LOWER(channel) = 'apple' THEN '0' WHEN LOWER(channel) = 'google' THEN '1' WHEN LOWER(channel) = 'facebook' THEN '2'
       WHEN LOWER(channel) = 'baidu' THEN '3' ELSE REGEXP_EXTRACT(url, '(&|^)channel_id=([^&]*)', 2) END AS channel_id
FROM bid WHERE REGEXP_EXTRACT(url, '(&|^)channel_id=([^&]*)', 2) IS NOT NULL OR LOWER(channel) IN ('apple', 'google', 'facebook', 'baidu')`,
  },
  q22: {
    sql: "SELECT auction, bidder, price, channel, SPLIT_INDEX(url, '/', 3) AS dir1, SPLIT_INDEX(url, '/', 4) AS dir2, SPLIT_INDEX(url, '/', 5) AS dir3 FROM bid",
  },
};
