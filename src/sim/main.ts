#!/usr/bin/env node
/** pd-vllm-sim: the vLLM simulator executable (`pd-vllm-sim serve MODEL --port 8100 ...`). */
import { runSim } from './run.js';

runSim(process.argv.slice(2), { prog: 'pd-vllm-sim' }).then(
  (code) => {
    process.exitCode = code;
    // Timers (stats logger, keep-alive sockets) must not keep a finished simulator alive.
    setImmediate(() => process.exit(code));
  },
  (e: unknown) => {
    process.stderr.write(`${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
    process.exit(1);
  },
);
