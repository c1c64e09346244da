/**
 * `nexmark`: the Nexmark benchmark generator (persons, auctions, bids), with
 * Arroyo's schema: three nullable struct columns, exactly one set per row.
 * Deterministic for a seed. The event sequence is cut into N splits fixed at
 * the job's first start (N = that run's parallelism): split k generates events
 * k, k+N, k+2N, … and keeps its own position, so a restore at another
 * parallelism (split k → subtask k mod p) neither loses nor repeats events.
 */
import { defineConnector, definePlugin, field, opt, t, type Field, type Row, type SourceContext, type SourcePoll, type SourceReader } from "../../core/plugin-api/index.ts";
import { RateLimiter, sleep } from "../shared/rate.ts";
import { parseTimestampOption } from "../shared/time.ts";
import { assignGeneratorSplits, GENERATOR_SPLIT_STATE_VERSION, shareOut, type GeneratorSplitState } from "../shared/generator-splits.ts";
import { NexmarkGenerator, PERSON_PROPORTION, AUCTION_PROPORTION, TOTAL_PROPORTION } from "./generator.ts";

const options = {
  event_rate: opt.number({
    min: 0,
    default: 10_000,
    description: "Events per second for the whole source (0: unthrottled); also spaces event times (1e6 / event_rate µs apart)",
  }),
  runtime: opt.duration({ min: 0, description: "Bounded run: generate event_rate × runtime events in total, then end ('60s'; a bare number is seconds)" }),
  message_count: opt.integer({ min: 0, description: "Total events across all subtasks, after which the source ends" }),
  seed: opt.integer({ default: 0, description: "Seed of the generator: the same seed gives the same events" }),
  base_time: opt.string({ description: "Event time of event 0 (RFC 3339 or µs since the epoch); default: the wall clock at the first start" }),
};

type Options = {
  event_rate: number;
  runtime?: number;
  message_count?: number;
  seed: number;
  base_time?: string;
};

const nn = (name: string, type: ReturnType<typeof t.bigint>) => field(name, type, false);

const PERSON_FIELDS: Field[] = [
  nn("id", t.bigint()),
  nn("name", t.string()),
  nn("email_address", t.string()),
  nn("credit_card", t.string()),
  nn("city", t.string()),
  nn("state", t.string()),
  nn("datetime", t.timestamp()),
  nn("extra", t.string()),
];
const AUCTION_FIELDS: Field[] = [
  nn("id", t.bigint()),
  nn("item_name", t.string()),
  nn("description", t.string()),
  nn("initial_bid", t.bigint()),
  nn("reserve", t.bigint()),
  nn("datetime", t.timestamp()),
  nn("expires", t.timestamp()),
  nn("seller", t.bigint()),
  nn("category", t.bigint()),
  nn("extra", t.string()),
];
const BID_FIELDS: Field[] = [
  nn("auction", t.bigint()),
  nn("bidder", t.bigint()),
  nn("price", t.bigint()),
  nn("channel", t.string()),
  nn("url", t.string()),
  nn("datetime", t.timestamp()),
  nn("extra", t.string()),
];

export function nexmarkColumns(): Field[] {
  return [
    field("person", t.struct(PERSON_FIELDS.map((f) => ({ ...f })))),
    field("auction", t.struct(AUCTION_FIELDS.map((f) => ({ ...f })))),
    field("bid", t.struct(BID_FIELDS.map((f) => ({ ...f })))),
  ];
}

/** Total number of events the options bound the source to (Infinity when unbounded). */
export function totalEvents(o: Options): number {
  let total = Infinity;
  if (o.message_count !== undefined) total = o.message_count;
  if (o.runtime !== undefined && o.event_rate > 0) total = Math.min(total, Math.floor((o.event_rate * o.runtime) / 1e6));
  return total;
}

interface NexmarkState extends GeneratorSplitState {
  /** The split's next event number. */
  next: number;
  /** Event time of event 0 (µs), the same for every split. */
  base: number;
}

/** One generator split: events k, k+N, k+2N, … of N splits. */
interface NexmarkSplit {
  id: string;
  next: number;
}

class NexmarkReader implements SourceReader {
  private readonly owned: NexmarkSplit[];
  /** Splits not yet exhausted; what `splits()` lists. */
  private active: NexmarkSplit[];
  private activeIds: string[];
  private readonly gen: NexmarkGenerator;
  private readonly total: number;
  /** Number of splits of the whole generator: the stride between a split's events. */
  private readonly step: number;
  private readonly limiter: RateLimiter;
  private readonly wantPerson: boolean;
  private readonly wantAuction: boolean;
  private readonly wantBid: boolean;
  /** 0 person, 1 auction, 2 bid, -1 other, per output position. */
  private readonly layout: number[];
  private readonly standard: boolean;
  /** Per kind (person, auction, bid): whether its rows are emitted at all. */
  private readonly emit: boolean[];

  constructor(private readonly ctx: SourceContext<Options>) {
    const o = ctx.options;
    const splits = assignGeneratorSplits<NexmarkState>("nexmark", ctx.restored, ctx.subtaskIndex, ctx.parallelism);
    this.step = splits.count;
    let base = splits.any?.base;
    if (base === undefined) base = o.base_time !== undefined ? parseTimestampOption(o.base_time, "base_time") : ctx.startTimeMicros;
    this.owned = splits.owned.map((s) => ({ id: s.id, next: s.state?.next ?? s.index }));
    this.total = totalEvents(o);
    this.active = this.owned.filter((s) => s.next < this.total);
    this.activeIds = this.active.map((s) => s.id);
    const delay = o.event_rate > 0 ? 1e6 / o.event_rate : 1;
    // The whole source runs at event_rate, each split at its share.
    this.limiter = new RateLimiter((o.event_rate * this.owned.length) / this.step);
    const names = ["person", "auction", "bid"];
    this.layout = ctx.fields.map((f) => names.indexOf(f.name));
    // A struct the query reads only through some fields: its padding is built only if `extra` is one of them.
    const extra = (kind: number) => {
      const at = this.layout.indexOf(kind);
      const fields = at >= 0 ? ctx.fieldsRead?.[at] : undefined;
      return !fields || fields.includes("extra");
    };
    this.gen = new NexmarkGenerator(o.seed, base, delay, [extra(0), extra(1), extra(2)]);
    // Kinds the query reads (pushed down by the planner): the others are numbered and timed but not built.
    const read = (kind: number) => this.layout.some((k, i) => k === kind && (!ctx.columnsRead || ctx.columnsRead.includes(i)));
    this.wantPerson = read(0);
    this.wantAuction = read(1);
    this.wantBid = read(2);
    // Kinds whose rows a pushed-down `IS NOT NULL` leaves out (event times never decrease, so no row's lateness changes).
    const notNull = ctx.notNull;
    this.emit = [0, 1, 2].map((kind) => !notNull || notNull.some((i) => this.layout[i] === kind));
    this.standard = this.layout.length === 3 && this.layout[0] === 0 && this.layout[1] === 1 && this.layout[2] === 2;
  }

  splits(): string[] {
    return this.activeIds;
  }

  private remaining(split: NexmarkSplit): number {
    return Math.ceil((this.total - split.next) / this.step);
  }

  async poll(maxRows: number): Promise<SourcePoll> {
    const active = this.active;
    if (active.length === 0) {
      if (this.total !== Infinity || this.owned.length > 0) return { end: true };
      // Unbounded with no split (more subtasks than splits): idle for good.
      await sleep(100, this.ctx.signal);
      return { batches: [] };
    }
    let remaining = 0;
    for (const split of active) remaining += this.remaining(split);
    const max = remaining < maxRows ? remaining : maxRows;
    let n = this.limiter.take(max);
    if (n === 0) {
      await sleep(this.limiter.waitMs(50), this.ctx.signal);
      n = this.limiter.take(max);
      if (n === 0) return { batches: [] };
    }
    const batches = shareOut(n, active, (s) => this.remaining(s), (s, count) => this.generate(s, count));
    this.retire();
    return { batches };
  }

  /** Drops exhausted splits from the active list (they stop holding the watermark). */
  private retire(): void {
    if (this.total === Infinity || this.active.every((s) => s.next < this.total)) return;
    this.active = this.active.filter((s) => s.next < this.total);
    this.activeIds = this.active.map((s) => s.id);
  }

  private generate(split: NexmarkSplit, count: number) {
    const rows: Row[] = new Array(count);
    const times: number[] = new Array(count);
    const gen = this.gen;
    const step = this.step;
    const { wantPerson, wantAuction, wantBid, standard, layout, emit } = this;
    let n = split.next;
    let out = 0;
    for (let i = 0; i < count; i++, n += step) {
      const m = n % TOTAL_PROPORTION;
      const kind = m < PERSON_PROPORTION ? 0 : m < PERSON_PROPORTION + AUCTION_PROPORTION ? 1 : 2;
      if (!emit[kind]) continue;
      const time = gen.time(n);
      times[out] = time;
      let obj: object | null;
      if (kind === 0) obj = wantPerson ? gen.person(n, time) : null;
      else if (kind === 1) obj = wantAuction ? gen.auction(n, time) : null;
      else obj = wantBid ? gen.bid(n, time) : null;
      if (standard) {
        rows[out] = kind === 2 ? [null, null, obj] : kind === 1 ? [null, obj, null] : [obj, null, null];
      } else {
        const row = new Array(layout.length);
        for (let j = 0; j < layout.length; j++) row[j] = layout[j] === kind ? obj : null;
        rows[out] = row;
      }
      out++;
    }
    split.next = n;
    if (out < count) {
      rows.length = out;
      times.length = out;
      this.ctx.metrics.add("events_left_out", count - out);
    }
    return { split: split.id, rows, times };
  }

  /** Every owned split, finished ones too: the restored checkpoint must hold the whole set. */
  snapshot(): Record<string, unknown> {
    const out: Record<string, unknown> = {};
    const base = this.gen.base;
    for (const split of this.owned) {
      out[split.id] = { v: GENERATOR_SPLIT_STATE_VERSION, next: split.next, base, splits: this.step } satisfies NexmarkState;
    }
    return out;
  }
}

export const nexmark = defineConnector({
  name: "nexmark",
  description: "Nexmark benchmark generator: person, auction and bid events (1:3:46)",
  options,
  columns: () => nexmarkColumns(),
  validate(table) {
    const o = table.options as Options;
    if (o.base_time !== undefined) parseTimestampOption(o.base_time, "base_time");
    if (o.runtime !== undefined && !(o.event_rate > 0)) {
      throw new Error("option 'runtime' needs a positive 'event_rate' (the source generates event_rate × runtime events)");
    }
  },
  source: {
    create: (ctx) => new NexmarkReader(ctx as SourceContext<Options>),
    // Event times grow with the event number: leaving rows out changes no other row's lateness.
    filters: ["not_null"],
  },
});

export default definePlugin({ name: "connector-nexmark", version: "0.1.0", connectors: [nexmark] });
