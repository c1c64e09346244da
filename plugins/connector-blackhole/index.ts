/** `blackhole`: a sink that discards everything (for benchmarks and dry runs). */
import { defineConnector, definePlugin, type SinkWriter } from "../../core/plugin-api/index.ts";

const discard: SinkWriter = { write() {} };

export const blackhole = defineConnector({
  name: "blackhole",
  description: "Discards every record",
  options: {},
  sink: {
    create: () => discard,
    updating: true,
  },
});

export default definePlugin({ name: "connector-blackhole", version: "0.1.0", connectors: [blackhole] });
