/**
 * `impulse`: a counter source (Arroyo-compatible). Each subtask counts from 0 at
 * `event_rate` events per second; with `event_time_interval` the event times
 * are synthetic (start + counter × interval), otherwise the wall clock.
 *
 * The counters are fixed when the job first starts, one per subtask of that
 * run. A restore at another parallelism keeps them: each resumes where it
 * stopped, at `event_rate`, up to `message_count`, on subtask k mod p (a subtask
 * may run several counters, or none), and `subtask_index` stays the counter's
 * number. So the output is that of an uninterrupted run at the first
 * parallelism: nothing lost, nothing repeated.
 */
import { defineConnector, definePlugin, field, opt, t, type Field, type Row, type SourceContext, type SourcePoll, type SourceReader } from "../../core/plugin-api/index.ts";
import { RateLimiter, sleep } from "../shared/rate.ts";
import { parseTimestampOption } from "../shared/time.ts";
import { assignGeneratorSplits, GENERATOR_SPLIT_STATE_VERSION, shareOut, type GeneratorSplitState } from "../shared/generator-splits.ts";

const options = {
  event_rate: opt.number({ required: true, min: 0, description: "Events per second per subtask (per counter once restored at another parallelism; 0: as fast as possible)" }),
  message_count: opt.integer({
    min: 0,
    description: "Events per subtask (per counter once restored at another parallelism), after which the source ends (default: unbounded)",
  }),
  event_time_interval: opt.duration({
    bareUnit: 1,
    min: 0,
    description: "Event time between consecutive events ('10ms'; a bare number is µs). Without it events carry the wall clock",
  }),
  start_time: opt.string({
    description: "Event time of counter 0 (RFC 3339 or µs since the epoch), with event_time_interval; default: the wall clock at the first start",
  }),
};

const COLUMNS: Field[] = [
  field("counter", t.ubigint(), false),
  field("subtask_index", t.ubigint(), false),
  field("timestamp", t.timestamp(), false),
];
const COUNTER = 0;
const SUBTASK = 1;
const TIMESTAMP = 2;

interface ImpulseState extends GeneratorSplitState {
  counter: number;
  start: number;
}

type Options = {
  event_rate: number;
  message_count?: number;
  event_time_interval?: number;
  start_time?: string;
};

/** One counter: a split of the source. */
interface ImpulseSplit {
  id: string;
  /** Its number, shown in the subtask_index column. */
  index: number;
  counter: number;
}

class ImpulseReader implements SourceReader {
  private readonly owned: ImpulseSplit[];
  private active: ImpulseSplit[];
  private activeIds: string[];
  private readonly count: number;
  private readonly start: number;
  private readonly limit: number;
  private readonly interval: number | undefined;
  private readonly limiter: RateLimiter;
  /** Column (COUNTER/SUBTASK/TIMESTAMP, or -1 for an unknown name) of each output position. */
  private readonly layout: number[];
  private readonly standard: boolean;

  constructor(private readonly ctx: SourceContext<Options>) {
    const o = ctx.options;
    const splits = assignGeneratorSplits<ImpulseState>("impulse", ctx.restored, ctx.subtaskIndex, ctx.parallelism);
    this.count = splits.count;
    this.owned = splits.owned.map((s) => ({ id: s.id, index: s.index, counter: s.state?.counter ?? 0 }));
    this.start =
      splits.any?.start ?? (o.start_time !== undefined ? parseTimestampOption(o.start_time, "start_time") : ctx.startTimeMicros);
    this.limit = o.message_count ?? Infinity;
    this.active = this.owned.filter((s) => s.counter < this.limit);
    this.activeIds = this.active.map((s) => s.id);
    this.interval = o.event_time_interval;
    // Each counter runs at event_rate, however many a subtask holds.
    this.limiter = new RateLimiter(o.event_rate * this.owned.length);
    const names = COLUMNS.map((c) => c.name);
    this.layout = ctx.fields.map((f) => names.indexOf(f.name));
    this.standard = this.layout.length === 3 && this.layout[0] === 0 && this.layout[1] === 1 && this.layout[2] === 2;
  }

  splits(): string[] {
    return this.activeIds;
  }

  async poll(maxRows: number): Promise<SourcePoll> {
    const active = this.active;
    if (active.length === 0) {
      if (this.limit !== Infinity || this.owned.length > 0) return { end: true };
      // Unbounded with no counter (more subtasks than counters): idle for good.
      await sleep(100, this.ctx.signal);
      return { batches: [] };
    }
    let remaining = 0;
    for (const split of active) remaining += this.limit - split.counter;
    const max = remaining < maxRows ? remaining : maxRows;
    let n = this.limiter.take(max);
    if (n === 0) {
      await sleep(this.limiter.waitMs(50), this.ctx.signal);
      n = this.limiter.take(max);
      if (n === 0) return { batches: [] };
    }
    const batches = shareOut(n, active, (s) => this.limit - s.counter, (s, count) => this.generate(s, count));
    if (!active.every((s) => s.counter < this.limit)) {
      this.active = active.filter((s) => s.counter < this.limit);
      this.activeIds = this.active.map((s) => s.id);
    }
    return { batches };
  }

  private generate(split: ImpulseSplit, n: number) {
    const rows: Row[] = new Array(n);
    const times: number[] = new Array(n);
    const first = split.counter;
    const sub = split.index;
    const interval = this.interval;
    if (interval !== undefined) {
      const start = this.start;
      for (let i = 0; i < n; i++) times[i] = start + (first + i) * interval;
    } else {
      times.fill(Date.now() * 1000);
    }
    if (this.standard) {
      for (let i = 0; i < n; i++) rows[i] = [first + i, sub, times[i]];
    } else {
      const layout = this.layout;
      const width = layout.length;
      for (let i = 0; i < n; i++) {
        const row = new Array(width);
        for (let j = 0; j < width; j++) {
          const c = layout[j];
          row[j] = c === COUNTER ? first + i : c === SUBTASK ? sub : c === TIMESTAMP ? times[i] : null;
        }
        rows[i] = row;
      }
    }
    split.counter = first + n;
    return { split: split.id, rows, times };
  }

  /** Every owned counter, finished ones too: the restored checkpoint must hold the whole set. */
  snapshot(): Record<string, unknown> {
    const out: Record<string, unknown> = {};
    for (const split of this.owned) {
      out[split.id] = {
        v: GENERATOR_SPLIT_STATE_VERSION,
        counter: split.counter,
        start: this.start,
        splits: this.count,
      } satisfies ImpulseState;
    }
    return out;
  }
}

export const impulse = defineConnector({
  name: "impulse",
  description: "Counter source: counter, subtask_index and timestamp at a fixed rate per subtask",
  options,
  columns: () => COLUMNS.map((c) => ({ ...c })),
  validate(table) {
    if (table.options.start_time !== undefined) parseTimestampOption(table.options.start_time, "start_time");
  },
  source: {
    create: (ctx) => new ImpulseReader(ctx as SourceContext<Options>),
  },
});

export default definePlugin({ name: "connector-impulse", version: "0.1.0", connectors: [impulse] });
