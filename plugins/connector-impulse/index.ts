/**
 * `impulse`: a counter source (Arroyo-compatible). Each subtask counts from 0 at
 * `event_rate` events per second; with `event_time_interval` the event times
 * are synthetic (start + counter × interval), otherwise the wall clock.
 */
import { defineConnector, definePlugin, field, opt, t, type Field, type Row, type SourceContext, type SourcePoll, type SourceReader } from "../../core/plugin-api/index.ts";
import { RateLimiter, sleep } from "../shared/rate.ts";
import { parseTimestampOption } from "../shared/time.ts";

const options = {
  event_rate: opt.number({ required: true, min: 0, description: "Events per second per subtask (0: as fast as possible)" }),
  message_count: opt.integer({ min: 0, description: "Events per subtask, after which the source ends (default: unbounded)" }),
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

interface ImpulseState {
  counter: number;
  start: number;
}

type Options = {
  event_rate: number;
  message_count?: number;
  event_time_interval?: number;
  start_time?: string;
};

class ImpulseReader implements SourceReader {
  private readonly split: string;
  private counter: number;
  private readonly start: number;
  private readonly limit: number;
  private readonly interval: number | undefined;
  private readonly limiter: RateLimiter;
  /** Column (COUNTER/SUBTASK/TIMESTAMP, or -1 for an unknown name) of each output position. */
  private readonly layout: number[];
  private readonly standard: boolean;

  constructor(private readonly ctx: SourceContext<Options>) {
    const o = ctx.options;
    this.split = `impulse-${ctx.subtaskIndex}`;
    const restored = ctx.restored[this.split] as ImpulseState | undefined;
    this.counter = restored?.counter ?? 0;
    this.start =
      restored?.start ?? (o.start_time !== undefined ? parseTimestampOption(o.start_time, "start_time") : Date.now() * 1000);
    this.limit = o.message_count ?? Infinity;
    this.interval = o.event_time_interval;
    this.limiter = new RateLimiter(o.event_rate);
    const names = COLUMNS.map((c) => c.name);
    this.layout = ctx.fields.map((f) => names.indexOf(f.name));
    this.standard = this.layout.length === 3 && this.layout[0] === 0 && this.layout[1] === 1 && this.layout[2] === 2;
  }

  splits(): string[] {
    return [this.split];
  }

  async poll(maxRows: number): Promise<SourcePoll> {
    const remaining = this.limit - this.counter;
    if (remaining <= 0) return { end: true };
    const max = remaining < maxRows ? remaining : maxRows;
    let n = this.limiter.take(max);
    if (n === 0) {
      await sleep(this.limiter.waitMs(50), this.ctx.signal);
      n = this.limiter.take(max);
      if (n === 0) return { batches: [] };
    }
    return { batches: [this.generate(n)] };
  }

  private generate(n: number) {
    const rows: Row[] = new Array(n);
    const times: number[] = new Array(n);
    const first = this.counter;
    const sub = this.ctx.subtaskIndex;
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
    this.counter = first + n;
    return { split: this.split, rows, times };
  }

  snapshot(): Record<string, unknown> {
    return { [this.split]: { counter: this.counter, start: this.start } satisfies ImpulseState };
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
