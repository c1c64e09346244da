/**
 * `nexmark`: the Nexmark benchmark generator (persons, auctions, bids), with
 * Arroyo's schema: three nullable struct columns, exactly one set per row.
 * Deterministic for a seed: subtask i of p generates events i, i+p, i+2p, …
 */
import { defineConnector, definePlugin, field, opt, t, type Field, type Row, type SourceContext, type SourcePoll, type SourceReader } from "../../core/plugin-api/index.ts";
import { RateLimiter, sleep } from "../shared/rate.ts";
import { parseTimestampOption } from "../shared/time.ts";
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

interface NexmarkState {
  next: number;
  base: number;
}

class NexmarkReader implements SourceReader {
  private readonly split: string;
  private next: number;
  private readonly gen: NexmarkGenerator;
  private readonly total: number;
  private readonly step: number;
  private readonly limiter: RateLimiter;
  private readonly wantPerson: boolean;
  private readonly wantAuction: boolean;
  private readonly wantBid: boolean;
  /** 0 person, 1 auction, 2 bid, -1 other, per output position. */
  private readonly layout: number[];
  private readonly standard: boolean;

  constructor(private readonly ctx: SourceContext<Options>) {
    const o = ctx.options;
    this.split = `nexmark-${ctx.subtaskIndex}`;
    this.step = ctx.parallelism;
    const restored = ctx.restored[this.split] as NexmarkState | undefined;
    let base = restored?.base;
    if (base === undefined) {
      // Any split's base (e.g. after a change of parallelism) keeps event times continuous.
      for (const s of Object.values(ctx.restored)) {
        const b = (s as Partial<NexmarkState> | null)?.base;
        if (typeof b === "number") base = b;
      }
    }
    if (base === undefined) base = o.base_time !== undefined ? parseTimestampOption(o.base_time, "base_time") : Date.now() * 1000;
    this.next = restored?.next ?? ctx.subtaskIndex;
    const delay = o.event_rate > 0 ? 1e6 / o.event_rate : 1;
    this.gen = new NexmarkGenerator(o.seed, base, delay);
    this.total = totalEvents(o);
    this.limiter = new RateLimiter(o.event_rate / ctx.parallelism);
    const names = ["person", "auction", "bid"];
    this.layout = ctx.fields.map((f) => names.indexOf(f.name));
    this.wantPerson = this.layout.includes(0);
    this.wantAuction = this.layout.includes(1);
    this.wantBid = this.layout.includes(2);
    this.standard = this.layout.length === 3 && this.layout[0] === 0 && this.layout[1] === 1 && this.layout[2] === 2;
  }

  splits(): string[] {
    return [this.split];
  }

  async poll(maxRows: number): Promise<SourcePoll> {
    if (this.next >= this.total) return { end: true };
    const remaining = Math.ceil((this.total - this.next) / this.step);
    const max = remaining < maxRows ? remaining : maxRows;
    let n = this.limiter.take(max);
    if (n === 0) {
      await sleep(this.limiter.waitMs(50), this.ctx.signal);
      n = this.limiter.take(max);
      if (n === 0) return { batches: [] };
    }
    return { batches: [this.generate(n)] };
  }

  private generate(count: number) {
    const rows: Row[] = new Array(count);
    const times: number[] = new Array(count);
    const gen = this.gen;
    const step = this.step;
    const { wantPerson, wantAuction, wantBid, standard, layout } = this;
    let n = this.next;
    for (let i = 0; i < count; i++, n += step) {
      const time = gen.time(n);
      times[i] = time;
      const m = n % TOTAL_PROPORTION;
      let kind: number;
      let obj: object | null;
      if (m < PERSON_PROPORTION) {
        kind = 0;
        obj = wantPerson ? gen.person(n, time) : null;
      } else if (m < PERSON_PROPORTION + AUCTION_PROPORTION) {
        kind = 1;
        obj = wantAuction ? gen.auction(n, time) : null;
      } else {
        kind = 2;
        obj = wantBid ? gen.bid(n, time) : null;
      }
      if (standard) {
        rows[i] = kind === 2 ? [null, null, obj] : kind === 1 ? [null, obj, null] : [obj, null, null];
      } else {
        const row = new Array(layout.length);
        for (let j = 0; j < layout.length; j++) row[j] = layout[j] === kind ? obj : null;
        rows[i] = row;
      }
    }
    this.next = n;
    return { split: this.split, rows, times };
  }

  snapshot(): Record<string, unknown> {
    return { [this.split]: { next: this.next, base: this.gen.base } satisfies NexmarkState };
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
  },
});

export default definePlugin({ name: "connector-nexmark", version: "0.1.0", connectors: [nexmark] });
