/**
 * The Nexmark event generator, deterministic per (seed, event number).
 *
 * Event n is a person when n % 50 == 0, an auction when n % 50 is 1..3, else a
 * bid (1:3:46). Person and auction ids grow with n; bids go to recent auctions
 * and bidders, half of them to a "hot" auction and most to a "hot" bidder, as
 * in the reference generator. Every value of event n comes from a small PRNG
 * seeded by (seed, n), so the stream does not depend on parallelism or restarts.
 * Strings come from pools built once, so an event costs one or two allocations.
 */

export const PERSON_PROPORTION = 1;
export const AUCTION_PROPORTION = 3;
export const TOTAL_PROPORTION = 50;
export const FIRST_PERSON_ID = 1000;
export const FIRST_AUCTION_ID = 1000;
export const FIRST_CATEGORY_ID = 10;
const NUM_CATEGORIES = 5;
const NUM_ACTIVE_PEOPLE = 1000;
const NUM_IN_FLIGHT_AUCTIONS = 100;
const PERSON_ID_LEAD = 10;
const AUCTION_ID_LEAD = 10;
const HOT_AUCTION_RATIO = 2;
const HOT_BIDDER_RATIO = 4;
const HOT_SELLER_RATIO = 4;
const HOT_CHANNEL_RATIO = 2;
const NUM_CHANNELS = 10_000;
/** Events until an auction is expected to close: in-flight auctions × events per auction. */
const EVENTS_PER_AUCTION_HORIZON = (NUM_IN_FLIGHT_AUCTIONS * TOTAL_PROPORTION) / AUCTION_PROPORTION;

export interface Person {
  id: number;
  name: string;
  email_address: string;
  credit_card: string;
  city: string;
  state: string;
  datetime: number;
  /** Null when the query does not read it. */
  extra: string | null;
}

export interface Auction {
  id: number;
  item_name: string;
  description: string;
  initial_bid: number;
  reserve: number;
  datetime: number;
  expires: number;
  seller: number;
  category: number;
  /** Null when the query does not read it. */
  extra: string | null;
}

export interface Bid {
  auction: number;
  bidder: number;
  price: number;
  channel: string;
  url: string;
  datetime: number;
  /** Null when the query does not read it. */
  extra: string | null;
}

// ------------------------------------------------------------------ ids

/** The base-0 id of the last person created at or before event n. */
export function lastBase0PersonId(n: number): number {
  return Math.floor(n / TOTAL_PROPORTION);
}

/** The base-0 id of the last auction created at or before event n. */
export function lastBase0AuctionId(n: number): number {
  let epoch = Math.floor(n / TOTAL_PROPORTION);
  let offset = n - epoch * TOTAL_PROPORTION;
  if (offset < PERSON_PROPORTION) {
    epoch--;
    offset = AUCTION_PROPORTION - 1;
  } else if (offset >= PERSON_PROPORTION + AUCTION_PROPORTION) {
    offset = AUCTION_PROPORTION - 1;
  } else {
    offset -= PERSON_PROPORTION;
  }
  const id = epoch * AUCTION_PROPORTION + offset;
  return id < 0 ? 0 : id;
}

// ------------------------------------------------------------------ PRNG

// One generator state for the module: reseeded per event, stepped per value.
let state = 0;
const U32 = 2.3283064365386963e-10; // 2^-32

/** Seeds the PRNG for event n of the stream `seed`. */
function reseed(seedLo: number, seedHi: number, n: number): void {
  const lo = n >>> 0;
  const hi = (n / 4294967296) >>> 0;
  let h = Math.imul(lo ^ seedLo ^ 0x9e3779b9, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h ^ hi ^ seedHi, 0xc2b2ae35);
  h ^= h >>> 16;
  h = Math.imul(h ^ lo, 0x27d4eb2f);
  state = h ^ (h >>> 15);
}

/** Mulberry32 step: a uniform uint32. */
function next32(): number {
  const s = (state = (state + 0x6d2b79f5) | 0);
  let t = Math.imul(s ^ (s >>> 15), 1 | s);
  t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
  return (t ^ (t >>> 14)) >>> 0;
}

/** Uniform integer in [0, bound). */
function below(bound: number): number {
  return Math.floor(next32() * U32 * bound);
}

// ------------------------------------------------------------------ pools

const FIRST_NAMES = ["Peter", "Paul", "Luke", "John", "Saul", "Vicky", "Kate", "Julie", "Sarah", "Deiter", "Walter"];
const LAST_NAMES = ["Shultz", "Abrams", "Spencer", "White", "Bartels", "Walton", "Smith", "Jones", "Noris"];
const CITIES = ["Phoenix", "Los Angeles", "San Francisco", "Boise", "Portland", "Bend", "Redmond", "Seattle", "Kent", "Cheyenne"];
const STATES = ["AZ", "CA", "ID", "OR", "WA", "WY"];
const HOT_CHANNELS = ["Google", "Facebook", "Baidu", "Apple"];
const LETTERS = "abcdefghijklmnopqrstuvwxyz";

interface Pools {
  names: string[];
  channels: string[];
  channelUrls: string[];
  hotUrls: string[];
  /** Bid prices, skewed: price(u) = round(10^(6u) × 100) cents-ish, u uniform. */
  prices: Float64Array;
}

let pools: Pools | null = null;

function randomWord(len: number): string {
  let s = "";
  for (let i = 0; i < len; i++) s += LETTERS[below(26)];
  return s;
}

function baseUrl(): string {
  return `https://www.nexmark.com/${randomWord(5)}/${randomWord(5)}/${randomWord(5)}/item.htm?query=1`;
}

/** Builds the string pools once (independently of the seed, so pools are shared). */
export function getPools(): Pools {
  if (pools) return pools;
  state = 0x2545f491;
  const names: string[] = [];
  for (const f of FIRST_NAMES) for (const l of LAST_NAMES) names.push(`${f} ${l}`);
  const channels: string[] = new Array(NUM_CHANNELS);
  const channelUrls: string[] = new Array(NUM_CHANNELS);
  for (let i = 0; i < NUM_CHANNELS; i++) {
    channels[i] = `channel-${i}`;
    channelUrls[i] = below(10) > 0 ? `${baseUrl()}&channel_id=${Math.abs(Math.imul(i, 0x5bd1e995))}` : baseUrl();
  }
  const hotUrls = HOT_CHANNELS.map((_, i) => `https://www.nexmark.com/item.htm?query=1&channel_id=${i}`);
  const prices = new Float64Array(65536);
  for (let k = 0; k < prices.length; k++) prices[k] = Math.round(Math.pow(10, ((k + 0.5) / prices.length) * 6) * 100);
  pools = { names, channels, channelUrls, hotUrls, prices };
  return pools;
}

// ------------------------------------------------------------------ events

export const KIND_PERSON = 0;
export const KIND_AUCTION = 1;
export const KIND_BID = 2;

export function eventKind(n: number): number {
  const m = n % TOTAL_PROPORTION;
  return m < PERSON_PROPORTION ? KIND_PERSON : m < PERSON_PROPORTION + AUCTION_PROPORTION ? KIND_AUCTION : KIND_BID;
}

function nextBase0PersonId(n: number): number {
  const numPeople = lastBase0PersonId(n) + 1;
  const active = numPeople < NUM_ACTIVE_PEOPLE ? numPeople : NUM_ACTIVE_PEOPLE;
  return numPeople - active + below(active + PERSON_ID_LEAD);
}

function nextBase0AuctionId(n: number): number {
  const maxAuction = lastBase0AuctionId(n);
  const minAuction = maxAuction > NUM_IN_FLIGHT_AUCTIONS ? maxAuction - NUM_IN_FLIGHT_AUCTIONS : 0;
  return minAuction + below(maxAuction - minAuction + 1 + AUCTION_ID_LEAD);
}

/**
 * Generates the events of one stream: `seed` fixes every value, `interEventDelay`
 * (µs, may be fractional) spaces event times from `base`.
 */
export class NexmarkGenerator {
  private readonly seedLo: number;
  private readonly seedHi: number;
  private readonly p: Pools;
  private readonly auctionHorizon: number;

  /**
   * `extras`: per kind (person, auction, bid), whether events carry their
   * padding; without, `extra` is null. It is each event's last value drawn, so
   * leaving it out changes nothing else, and cutting it is most of a bid's cost.
   */
  constructor(
    seed: number,
    readonly base: number,
    readonly interEventDelay: number,
    private readonly extras: readonly [boolean, boolean, boolean] = [true, true, true],
  ) {
    this.seedLo = seed >>> 0;
    this.seedHi = Math.floor(seed / 4294967296) >>> 0;
    this.p = getPools();
    textBuffers();
    this.auctionHorizon = Math.max(2 * EVENTS_PER_AUCTION_HORIZON * interEventDelay, 1);
  }

  /** Event time (µs) of event n. */
  time(n: number): number {
    return this.base + Math.floor(n * this.interEventDelay);
  }

  person(n: number, datetime: number): Person {
    reseed(this.seedLo, this.seedHi, n);
    const p = this.p;
    const name = p.names[below(p.names.length)]!;
    const email = `${randomString(7)}@${randomString(5)}.com`;
    const cc = next32();
    const cc2 = next32();
    const credit_card =
      pad4(cc % 10000) + " " + pad4(Math.floor(cc / 10000) % 10000) + " " + pad4(cc2 % 10000) + " " + pad4(Math.floor(cc2 / 10000) % 10000);
    const city = CITIES[below(CITIES.length)]!;
    const st = STATES[below(STATES.length)]!;
    // Beam's Person.sizeInBytes.
    const size = 8 + name.length + 1 + email.length + 1 + credit_card.length + 1 + city.length + 1 + st.length + 8 + 1;
    return {
      id: lastBase0PersonId(n) + FIRST_PERSON_ID,
      name,
      email_address: email,
      credit_card,
      city,
      state: st,
      datetime,
      extra: this.extras[KIND_PERSON] ? extraPadding(size, AVG_PERSON_BYTES) : null,
    };
  }

  auction(n: number, datetime: number): Auction {
    reseed(this.seedLo, this.seedHi, n);
    const p = this.p;
    const seller =
      below(HOT_SELLER_RATIO) > 0
        ? Math.floor(lastBase0PersonId(n) / HOT_SELLER_RATIO) * HOT_SELLER_RATIO
        : nextBase0PersonId(n);
    const initial = p.prices[next32() >>> 16]!;
    const reserve = initial + p.prices[next32() >>> 16]!;
    const item_name = randomString(20);
    const description = randomString(100);
    const expires = datetime + 1000 + Math.floor(next32() * U32 * this.auctionHorizon);
    const category = FIRST_CATEGORY_ID + below(NUM_CATEGORIES);
    // Beam's Auction.sizeInBytes.
    const size = 8 + item_name.length + 1 + description.length + 1 + 8 + 8 + 8 + 8 + 8 + 8 + 1;
    return {
      id: lastBase0AuctionId(n) + FIRST_AUCTION_ID,
      item_name,
      description,
      initial_bid: initial,
      reserve,
      datetime,
      expires,
      seller: seller + FIRST_PERSON_ID,
      category,
      extra: this.extras[KIND_AUCTION] ? extraPadding(size, AVG_AUCTION_BYTES) : null,
    };
  }

  bid(n: number, datetime: number): Bid {
    reseed(this.seedLo, this.seedHi, n);
    const p = this.p;
    const auction =
      (next32() & 1) !== 0 // 1 in HOT_AUCTION_RATIO (2) is not hot
        ? Math.floor(lastBase0AuctionId(n) / HOT_AUCTION_RATIO) * HOT_AUCTION_RATIO
        : nextBase0AuctionId(n);
    const bidder =
      below(HOT_BIDDER_RATIO) > 0
        ? Math.floor(lastBase0PersonId(n) / HOT_BIDDER_RATIO) * HOT_BIDDER_RATIO + 1
        : nextBase0PersonId(n);
    const price = p.prices[next32() >>> 16]!;
    let channel: string;
    let url: string;
    if (below(HOT_CHANNEL_RATIO) > 0) {
      const i = next32() & 3;
      channel = HOT_CHANNELS[i]!;
      url = p.hotUrls[i]!;
    } else {
      const i = below(NUM_CHANNELS);
      channel = p.channels[i]!;
      url = p.channelUrls[i]!;
    }
    // Beam's Bid.sizeInBytes: the four numbers and the extra.
    return { auction: auction + FIRST_AUCTION_ID, bidder: bidder + FIRST_PERSON_ID, price, channel, url, datetime, extra: this.extras[KIND_BID] ? extraPadding(8 + 8 + 8 + 8 + 1, AVG_BID_BYTES) : null };
  }
}

/** The reference's average event sizes, in its own byte count (sizeInBytes). */
export const AVG_PERSON_BYTES = 200;
export const AVG_AUCTION_BYTES = 500;
export const AVG_BID_BYTES = 100;

/**
 * Random text to cut strings from: per event, a slice at a random offset costs
 * no per-character work (JavaScript slices share the buffer), and its content
 * and length are as random as the reference's per-character loop.
 */
const TEXT_BYTES = 1 << 20;
let words = "";
let letters = "";
const SPACE = 0x20;
const A = 0x61;

function textBuffers(): void {
  if (letters) return;
  const saved = state;
  state = 0x1b873593;
  // Character codes decoded once: a million one-character strings joined cost a tenth of a second per job.
  const w = new Uint8Array(TEXT_BYTES);
  const l = new Uint8Array(TEXT_BYTES);
  for (let i = 0; i < TEXT_BYTES; i++) {
    w[i] = below(13) === 0 ? SPACE : A + below(26);
    l[i] = A + below(26);
  }
  words = Buffer.from(w.buffer).toString("latin1");
  letters = Buffer.from(l.buffer).toString("latin1");
  state = saved;
}

/** The reference's nextString: 3 to max − 1 characters, a space about one in 13, trimmed. */
function randomString(max: number): string {
  const len = 3 + below(max - 3);
  const at = below(TEXT_BYTES - len);
  return words.slice(at, at + len).trim();
}

/** The reference's nextExtra: letters making the event `average` bytes ±20 % (none when it is already larger). */
function extraPadding(size: number, average: number): string {
  if (size > average) return "";
  const want = average - size;
  const delta = Math.round(want * 0.2);
  const len = want - delta + below(2 * delta);
  const at = below(TEXT_BYTES - len);
  return letters.slice(at, at + len);
}

function pad4(v: number): string {
  return v >= 1000 ? String(v) : v >= 100 ? "0" + v : v >= 10 ? "00" + v : "000" + v;
}
