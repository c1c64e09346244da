/**
 * The pipeline the cluster tests run: an updating aggregate and a tumbling
 * window over a bounded impulse source, each into a single_file sink, and
 * their results in an order-free form to compare runs with.
 */
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { foldChanges, normalizeRows } from "../../kit/rows.ts";

const lines = (file: string) => (existsSync(file) ? readFileSync(file, "utf8").split("\n").filter(Boolean).map((l) => JSON.parse(l)) : []);

/** `events` per subtask at `rate` per second and subtask (0: unthrottled); event times come from the counter, not the clock. */
export const AGGREGATES = (dir: string, events: number, rate: number) => `
CREATE TABLE impulse WITH (connector = 'impulse', event_rate = '${rate}', message_count = '${events}', event_time_interval = '10ms', start_time = '2024-01-01T00:00:00Z');
CREATE TABLE totals WITH (connector = 'single_file', path = '${join(dir, "totals.jsonl")}', format = 'debezium_json', type = 'sink', overwrite = 'true');
CREATE TABLE windows WITH (connector = 'single_file', path = '${join(dir, "windows.jsonl")}', format = 'json', type = 'sink', overwrite = 'true');
INSERT INTO totals SELECT counter % 13 AS k, count(*) AS n, sum(counter) AS total FROM impulse GROUP BY k;
INSERT INTO windows SELECT window.start AS ws, k, n FROM (
  SELECT tumble(INTERVAL '1' SECOND) AS window, counter % 5 AS k, count(*) AS n FROM impulse GROUP BY window, k);
`;

export const results = (dir: string) => ({ totals: normalizeRows(foldChanges(lines(join(dir, "totals.jsonl")))), windows: normalizeRows(lines(join(dir, "windows.jsonl"))) });
