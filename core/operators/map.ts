/** Filter and projection, compiled to one loop per batch by the expression compiler. */
import type { Batch } from "../plugin-api/index.ts";
import type { Collector, Operator } from "./operator.ts";

export class MapOperator implements Operator {
  constructor(
    readonly name: string,
    private readonly map: (batch: Batch) => Batch,
  ) {}

  process(batch: Batch, out: Collector): void | Promise<void> {
    const result = this.map(batch);
    if (result.rows.length > 0) return out.emit(result);
  }
}
