/**
 * The 23 Nexmark queries (q0–q22 of the Nexmark suite Flink runs), in Runnel's
 * SQL over the `nexmark` generator, and each one's DuckDB form over tables
 * person, auction and bid (times as BIGINT µs) for checking results
 * (test/bench/nexmark-queries.test.ts). Windows are scaled from seconds to
 * milliseconds (`ms` below), as the benchmark has always done, so that many
 * windows open and close in a short run; a "day" becomes 10 ms likewise.
 *
 * Where the Flink text uses what Runnel spells differently: windows are
 * tumble/hop/session in GROUP BY; Flink's window-join patterns (q5's max per
 * window, q7's highest bid) are written as window functions or window joins;
 * DATE_FORMAT patterns are strftime; SPLIT_INDEX(s, d, i) is split_part(s, d,
 * i + 1); REGEXP_EXTRACT(s, p, 2) is regexp_match(s, p)[2]; q12's processing
 * time windows use event time (Runnel has no processing-time windows: refused).
 */

/** Views giving Flink's three tables over the generator's struct columns. */
export const NEXMARK_VIEWS = `CREATE VIEW person AS SELECT person.id AS id, person.name AS name, person.email_address AS email_address,
  person.credit_card AS credit_card, person.city AS city, person.state AS state, person.datetime AS datetime, person.extra AS extra
  FROM nexmark WHERE person IS NOT NULL;
CREATE VIEW auction AS SELECT auction.id AS id, auction.item_name AS item_name, auction.description AS description,
  auction.initial_bid AS initial_bid, auction.reserve AS reserve, auction.datetime AS datetime, auction.expires AS expires,
  auction.seller AS seller, auction.category AS category, auction.extra AS extra
  FROM nexmark WHERE auction IS NOT NULL;
CREATE VIEW bid AS SELECT bid.auction AS auction, bid.bidder AS bidder, bid.price AS price, bid.channel AS channel, bid.url AS url,
  bid.datetime AS datetime, bid.extra AS extra
  FROM nexmark WHERE bid IS NOT NULL;
`;

export interface NexmarkQuery {
  title: string;
  /** Runnel: a SELECT over the views (the benchmark inserts it into a blackhole sink). */
  runnel: string;
  /** DuckDB over person/auction/bid; its rows must equal Runnel's final rows. */
  duck: string;
  /** Columns compared (default: all); for queries whose other columns are arbitrary among ties. */
  compare?: string[];
  /** Extra DDL the query needs: a side input table or a file sink (`{dir}` is a scratch directory). */
  setup?: string;
  /** The query writes into this table (a file sink) rather than being a bare SELECT. */
  into?: string;
}

const MS = 1000; // µs
/** Window sizes: Flink's seconds as milliseconds. */
const W10 = 10 * MS;
const W2 = 2 * MS;
const DAY = 10 * MS;

/** DuckDB: the start of the `width` µs window holding `t`. */
const bucket = (t: string, width: number) => `((${t}) // ${width}) * ${width}`;

/** A "day" (10 ms) as each engine buckets it. */
const RUNNEL_DAY = "date_bin(INTERVAL '10' MILLISECOND, datetime)";
const DUCK_DAY = bucket("datetime", DAY);
const RANK1 = "price < 10000";
const RANK2 = "price >= 10000 AND price < 1000000";
const RANK3 = "price >= 1000000";

const q15 = (day: string) => `SELECT ${day} AS day, count(*) AS total_bids,
  count(*) FILTER (WHERE ${RANK1}) AS rank1_bids, count(*) FILTER (WHERE ${RANK2}) AS rank2_bids, count(*) FILTER (WHERE ${RANK3}) AS rank3_bids,
  count(DISTINCT bidder) AS total_bidders, count(DISTINCT bidder) FILTER (WHERE ${RANK1}) AS rank1_bidders,
  count(DISTINCT bidder) FILTER (WHERE ${RANK2}) AS rank2_bidders, count(DISTINCT bidder) FILTER (WHERE ${RANK3}) AS rank3_bidders,
  count(DISTINCT auction) AS total_auctions, count(DISTINCT auction) FILTER (WHERE ${RANK1}) AS rank1_auctions,
  count(DISTINCT auction) FILTER (WHERE ${RANK2}) AS rank2_auctions, count(DISTINCT auction) FILTER (WHERE ${RANK3}) AS rank3_auctions
FROM bid GROUP BY day`;

const q16 = (day: string, minute: string) => `SELECT channel, ${day} AS day, max(${minute}) AS minute, count(*) AS total_bids,
  count(*) FILTER (WHERE ${RANK1}) AS rank1_bids, count(*) FILTER (WHERE ${RANK3}) AS rank3_bids,
  count(DISTINCT bidder) AS total_bidders, count(DISTINCT bidder) FILTER (WHERE ${RANK3}) AS rank3_bidders,
  count(DISTINCT auction) AS total_auctions, count(DISTINCT auction) FILTER (WHERE ${RANK1}) AS rank1_auctions
FROM bid GROUP BY channel, day`;

const q17 = (day: string) => `SELECT auction, ${day} AS day, count(*) AS total_bids,
  count(*) FILTER (WHERE ${RANK1}) AS rank1_bids, count(*) FILTER (WHERE ${RANK2}) AS rank2_bids, count(*) FILTER (WHERE ${RANK3}) AS rank3_bids,
  min(price) AS min_price, max(price) AS max_price, avg(price) AS avg_price, sum(price) AS sum_price
FROM bid GROUP BY auction, day`;

export const NEXMARK_QUERIES: Record<string, NexmarkQuery> = {
  q0: {
    title: "pass-through",
    runnel: "SELECT auction, bidder, price, datetime, extra FROM bid",
    duck: "SELECT auction, bidder, price, datetime, extra FROM bid",
  },
  q1: {
    title: "currency conversion",
    runnel: "SELECT auction, bidder, 0.908 * price AS price, datetime, extra FROM bid",
    duck: "SELECT auction, bidder, 0.908 * price AS price, datetime, extra FROM bid",
  },
  q2: {
    title: "selection",
    runnel: "SELECT auction, price FROM bid WHERE auction % 123 = 0",
    duck: "SELECT auction, price FROM bid WHERE auction % 123 = 0",
  },
  q3: {
    title: "local item suggestion (updating join)",
    runnel: `SELECT P.name, P.city, P.state, A.id FROM auction AS A INNER JOIN person AS P ON A.seller = P.id
WHERE A.category = 10 AND (P.state = 'OR' OR P.state = 'ID' OR P.state = 'CA')`,
    duck: `SELECT P.name, P.city, P.state, A.id FROM auction AS A INNER JOIN person AS P ON A.seller = P.id
WHERE A.category = 10 AND (P.state = 'OR' OR P.state = 'ID' OR P.state = 'CA')`,
  },
  q4: {
    title: "average closing price per category",
    runnel: `SELECT Q.category, avg(Q.final) AS avg_final FROM (
  SELECT max(B.price) AS final, A.category FROM auction A JOIN bid B ON A.id = B.auction
  WHERE B.datetime BETWEEN A.datetime AND A.expires GROUP BY A.id, A.category) Q
GROUP BY Q.category`,
    duck: `SELECT Q.category, avg(Q.final) AS avg_final FROM (
  SELECT max(B.price) AS final, A.category FROM auction A JOIN bid B ON A.id = B.auction
  WHERE B.datetime BETWEEN A.datetime AND A.expires GROUP BY A.id, A.category) Q
GROUP BY Q.category`,
  },
  q5: {
    title: "hot items: most bids per hop window (top-1 per window)",
    runnel: `SELECT auction, num FROM (
  SELECT auction, num, rank() OVER (PARTITION BY window ORDER BY num DESC) AS r FROM (
    SELECT auction, hop(INTERVAL '2' MILLISECOND, INTERVAL '10' MILLISECOND) AS window, count(*) AS num FROM bid GROUP BY auction, window))
WHERE r <= 1`,
    duck: `WITH w AS (SELECT auction, unnest(generate_series(${bucket("datetime", W2)} - ${W10 - W2}, ${bucket("datetime", W2)}, ${W2})) AS ws FROM bid),
c AS (SELECT auction, ws, count(*) AS num FROM w GROUP BY auction, ws)
SELECT auction, num FROM c WHERE num = (SELECT max(num) FROM c c2 WHERE c2.ws = c.ws)`,
  },
  q6: {
    title: "average selling price by seller (last 10 closed auctions, updating window function)",
    runnel: `SELECT seller, id, avg(final) OVER (PARTITION BY seller ORDER BY closed, id ROWS BETWEEN 10 PRECEDING AND CURRENT ROW) AS avg_price FROM (
  SELECT A.id, A.seller, max(B.price) AS final, max(A.expires) AS closed FROM auction A JOIN bid B ON A.id = B.auction
  WHERE B.datetime BETWEEN A.datetime AND A.expires GROUP BY A.id, A.seller)`,
    duck: `SELECT seller, id, avg(final) OVER (PARTITION BY seller ORDER BY closed, id ROWS BETWEEN 10 PRECEDING AND CURRENT ROW) AS avg_price FROM (
  SELECT A.id, A.seller, max(B.price) AS final, max(A.expires) AS closed FROM auction A JOIN bid B ON A.id = B.auction
  WHERE B.datetime BETWEEN A.datetime AND A.expires GROUP BY A.id, A.seller)`,
  },
  q7: {
    title: "highest bid per 10 ms window (window join)",
    runnel: `SELECT B.auction, B.price, B.bidder, B.datetime FROM (
  SELECT tumble(INTERVAL '10' MILLISECOND) AS window, auction, price, bidder, datetime FROM bid GROUP BY window, auction, price, bidder, datetime) B
JOIN (SELECT tumble(INTERVAL '10' MILLISECOND) AS window, max(price) AS maxprice FROM bid GROUP BY window) B1
ON B.price = B1.maxprice`,
    duck: `SELECT B.auction, B.price, B.bidder, B.datetime FROM bid B
JOIN (SELECT ${bucket("datetime", W10)} AS ws, max(price) AS maxprice FROM bid GROUP BY ws) B1
ON B.price = B1.maxprice AND ${bucket("B.datetime", W10)} = B1.ws`,
  },
  q8: {
    title: "monitor new users (window join of persons and auctions)",
    runnel: `SELECT P.id, P.name, P.window.start AS starttime FROM (
  SELECT id, name, tumble(INTERVAL '10' MILLISECOND) AS window FROM person GROUP BY id, name, window) P
JOIN (SELECT seller, tumble(INTERVAL '10' MILLISECOND) AS window FROM auction GROUP BY seller, window) A
ON P.id = A.seller`,
    duck: `SELECT P.id, P.name, P.ws AS starttime FROM (SELECT DISTINCT id, name, ${bucket("datetime", W10)} AS ws FROM person) P
JOIN (SELECT DISTINCT seller, ${bucket("datetime", W10)} AS ws FROM auction) A ON P.id = A.seller AND P.ws = A.ws`,
  },
  q9: {
    title: "winning bids (updating top-1 per auction)",
    runnel: `SELECT id, item_name, seller, category, auction, bidder, price, bid_datetime FROM (
  SELECT A.id, A.item_name, A.seller, A.category, B.auction, B.bidder, B.price, B.datetime AS bid_datetime,
    row_number() OVER (PARTITION BY A.id ORDER BY B.price DESC, B.datetime ASC) AS rownum
  FROM auction A JOIN bid B ON A.id = B.auction WHERE B.datetime BETWEEN A.datetime AND A.expires)
WHERE rownum <= 1`,
    duck: `SELECT id, item_name, seller, category, auction, bidder, price, bid_datetime FROM (
  SELECT A.id, A.item_name, A.seller, A.category, B.auction, B.bidder, B.price, B.datetime AS bid_datetime,
    row_number() OVER (PARTITION BY A.id ORDER BY B.price DESC, B.datetime ASC) AS rownum
  FROM auction A JOIN bid B ON A.id = B.auction WHERE B.datetime BETWEEN A.datetime AND A.expires)
WHERE rownum <= 1`,
  },
  q10: {
    title: "log to a file system (Parquet, partitioned by event time)",
    setup: `CREATE TABLE fs_sink (auction BIGINT, bidder BIGINT, price BIGINT, datetime TIMESTAMP, extra TEXT, dt TEXT, hm TEXT) WITH (
  connector = 'filesystem', path = '{dir}/q10', format = 'parquet', type = 'sink', 'partitioning.time_pattern' = 'dt=%Y-%m-%d/hm=%H%M');`,
    into: "fs_sink",
    runnel: "SELECT auction, bidder, price, datetime, extra, to_char(datetime, '%Y-%m-%d') AS dt, to_char(datetime, '%H:%M') AS hm FROM bid",
    duck: "SELECT auction, bidder, price, datetime, extra, strftime(make_timestamp(datetime), '%Y-%m-%d') AS dt, strftime(make_timestamp(datetime), '%H:%M') AS hm FROM bid",
  },
  q11: {
    title: "user sessions (session windows, 10 ms gap)",
    runnel: `SELECT bidder, bid_count, window.start AS starttime, window.end AS endtime FROM (
  SELECT bidder, session(INTERVAL '10' MILLISECOND) AS window, count(*) AS bid_count FROM bid GROUP BY bidder, window)`,
    duck: `WITH g AS (SELECT bidder, datetime, CASE WHEN datetime - lag(datetime) OVER (PARTITION BY bidder ORDER BY datetime) < ${W10} THEN 0 ELSE 1 END AS fresh FROM bid),
s AS (SELECT bidder, datetime, sum(fresh) OVER (PARTITION BY bidder ORDER BY datetime) AS sid FROM g)
SELECT bidder, count(*) AS bid_count, min(datetime) AS starttime, max(datetime) + ${W10} AS endtime FROM s GROUP BY bidder, sid`,
  },
  q12: {
    title: "bids per bidder per 10 ms window (Flink: processing time; Runnel: event time)",
    runnel: `SELECT bidder, bid_count, window.start AS starttime FROM (
  SELECT bidder, tumble(INTERVAL '10' MILLISECOND) AS window, count(*) AS bid_count FROM bid GROUP BY bidder, window)`,
    duck: `SELECT bidder, count(*) AS bid_count, ${bucket("datetime", W10)} AS starttime FROM bid GROUP BY bidder, starttime`,
  },
  q13: {
    title: "bounded side input join (a file)",
    setup: `CREATE TABLE side_input (key BIGINT, value TEXT) WITH (connector = 'single_file', path = '{dir}/side_input.json', format = 'json', type = 'source');`,
    runnel: "SELECT B.auction, B.bidder, B.price, B.datetime, S.value FROM bid B JOIN side_input S ON B.auction % 10000 = S.key",
    duck: "SELECT B.auction, B.bidder, B.price, B.datetime, S.value FROM bid B JOIN side_input S ON B.auction % 10000 = S.key",
  },
  q14: {
    title: "calculation with a TypeScript UDF (count_char)",
    runnel: `SELECT auction, bidder, 0.908 * price AS price,
  CASE WHEN date_part('hour', datetime) >= 8 AND date_part('hour', datetime) <= 18 THEN 'dayTime'
       WHEN date_part('hour', datetime) <= 6 OR date_part('hour', datetime) >= 20 THEN 'nightTime' ELSE 'otherTime' END AS bid_time_type,
  datetime, extra, count_char(extra, 'c') AS c_counts
FROM bid WHERE 0.908 * price > 1000000 AND 0.908 * price < 50000000`,
    duck: `SELECT auction, bidder, 0.908 * price AS price,
  CASE WHEN hour(make_timestamp(datetime)) >= 8 AND hour(make_timestamp(datetime)) <= 18 THEN 'dayTime'
       WHEN hour(make_timestamp(datetime)) <= 6 OR hour(make_timestamp(datetime)) >= 20 THEN 'nightTime' ELSE 'otherTime' END AS bid_time_type,
  datetime, extra, length(extra) - length(replace(extra, 'c', '')) AS c_counts
FROM bid WHERE 0.908 * price > 1000000 AND 0.908 * price < 50000000`,
  },
  q15: {
    title: "bidding statistics per 'day' (count DISTINCT with FILTER)",
    runnel: q15(RUNNEL_DAY),
    duck: q15(DUCK_DAY),
  },
  q16: {
    title: "channel statistics per 'day'",
    runnel: q16(RUNNEL_DAY, "to_char(datetime, '%H:%M')"),
    duck: q16(DUCK_DAY, "strftime(make_timestamp(datetime), '%H:%M')"),
  },
  q17: {
    title: "auction statistics per 'day'",
    runnel: q17(RUNNEL_DAY),
    duck: q17(DUCK_DAY),
  },
  q18: {
    title: "last bid per bidder and auction (updating deduplication)",
    runnel: `SELECT auction, bidder, price, channel, datetime FROM (
  SELECT *, row_number() OVER (PARTITION BY bidder, auction ORDER BY datetime DESC) AS rank_number FROM bid)
WHERE rank_number <= 1`,
    duck: `SELECT auction, bidder, price, channel, datetime FROM (
  SELECT *, row_number() OVER (PARTITION BY bidder, auction ORDER BY datetime DESC) AS rank_number FROM bid)
WHERE rank_number <= 1`,
  },
  q19: {
    title: "top 10 bids per auction (updating top-N)",
    runnel: `SELECT auction, price, rank_number FROM (
  SELECT *, row_number() OVER (PARTITION BY auction ORDER BY price DESC) AS rank_number FROM bid)
WHERE rank_number <= 10`,
    duck: `SELECT auction, price, rank_number FROM (
  SELECT *, row_number() OVER (PARTITION BY auction ORDER BY price DESC) AS rank_number FROM bid)
WHERE rank_number <= 10`,
  },
  q20: {
    title: "expand bids with their auction (updating join, category 10)",
    runnel: `SELECT B.auction, B.bidder, B.price, B.channel, B.datetime, A.item_name, A.initial_bid, A.reserve, A.datetime AS a_datetime, A.expires, A.seller, A.category
FROM bid AS B INNER JOIN auction AS A ON B.auction = A.id WHERE A.category = 10`,
    duck: `SELECT B.auction, B.bidder, B.price, B.channel, B.datetime, A.item_name, A.initial_bid, A.reserve, A.datetime AS a_datetime, A.expires, A.seller, A.category
FROM bid AS B INNER JOIN auction AS A ON B.auction = A.id WHERE A.category = 10`,
  },
  q21: {
    title: "add channel id (CASE and regular expressions)",
    runnel: `SELECT auction, bidder, price, channel,
  CASE WHEN lower(channel) = 'apple' THEN '0' WHEN lower(channel) = 'google' THEN '1' WHEN lower(channel) = 'facebook' THEN '2'
       WHEN lower(channel) = 'baidu' THEN '3' ELSE regexp_match(url, '(&|^)channel_id=([^&]*)')[2] END AS channel_id
FROM bid WHERE regexp_match(url, '(&|^)channel_id=([^&]*)')[2] IS NOT NULL OR lower(channel) IN ('apple', 'google', 'facebook', 'baidu')`,
    duck: `SELECT auction, bidder, price, channel,
  CASE WHEN lower(channel) = 'apple' THEN '0' WHEN lower(channel) = 'google' THEN '1' WHEN lower(channel) = 'facebook' THEN '2'
       WHEN lower(channel) = 'baidu' THEN '3' ELSE nullif(regexp_extract(url, '(&|^)channel_id=([^&]*)', 2), '') END AS channel_id
FROM bid WHERE nullif(regexp_extract(url, '(&|^)channel_id=([^&]*)', 2), '') IS NOT NULL OR lower(channel) IN ('apple', 'google', 'facebook', 'baidu')`,
  },
  q22: {
    title: "URL directories (split_part)",
    runnel: "SELECT auction, bidder, price, channel, split_part(url, '/', 4) AS dir1, split_part(url, '/', 5) AS dir2, split_part(url, '/', 6) AS dir3 FROM bid",
    duck: "SELECT auction, bidder, price, channel, split_part(url, '/', 4) AS dir1, split_part(url, '/', 5) AS dir2, split_part(url, '/', 6) AS dir3 FROM bid",
  },
};

/** The side input of q13: one row per key 0..9999. */
export function sideInputRows(): { key: number; value: string }[] {
  return Array.from({ length: 10_000 }, (_, key) => ({ key, value: `side-${key % 97}` }));
}
