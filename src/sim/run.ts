/**
 * Run the simulator as a process: `pd-vllm-sim serve MODEL [vllm flags] [--sim-* flags]` (also `pd sim ...`).
 * Resolves with the process exit code: 0 after SIGTERM/SIGINT, 1 on start-up failure or simulated crash,
 * 2 on a command-line error (like argparse).
 */
import { ArgError, parseSimArgs } from './options.js';
import { knobHelpLines, ZERO_LATENCY_ENV, ZERO_LATENCY_FLAG } from './knobs.js';
import { SERVE_USAGE, VLLM_USAGE } from './vllm-flags.js';

export function simUsage(prog = 'pd-vllm-sim'): string {
  const lines = [
    `usage: ${prog} serve MODEL [--host HOST] [--port PORT] [--kv-transfer-config JSON] [vllm serve flags...] [--sim-* flags]`,
    '',
    'A GPU-free stand-in for `vllm serve`: same command line, logs, HTTP API, KV connector files and metrics.',
    '',
    'Honoured vLLM flags: --host, --port (8000), --served-model-name NAME..., --api-key KEY, --max-model-len N|auto|-1|8k,',
    '  --block-size N (16), --max-num-seqs N, --max-num-batched-tokens N, --gpu-memory-utilization F (0.9),',
    '  --[no-]enable-prefix-caching, --[no-]enable-chunked-prefill, -tp/-pp/-dp N, --seed N, --kv-transfer-config JSON,',
    '  --model M. Every other flag of vLLM 0.31 is accepted and logged; a flag vLLM does not have exits 2',
    '  ("unrecognized arguments"). `--version` prints the simulated vLLM version. See docs/simulator.md.',
    '',
    'Simulator knobs (flag / environment variable; flags win):',
    `  ${ZERO_LATENCY_FLAG} / ${ZERO_LATENCY_ENV}=1: every timing knob 0 unless set explicitly`,
    ...knobHelpLines(),
  ];
  lines.push(
    '',
    'Per-request faults: header `X-PD-Sim-Fault: status=503,stall=500,cut=3,slow=2,crash` (any subset).',
  );
  return lines.join('\n');
}

export interface RunSimOptions {
  env?: NodeJS.ProcessEnv;
  /** Install SIGTERM/SIGINT handlers (true for the executable). */
  handleSignals?: boolean;
  prog?: string;
}

export async function runSim(argv: readonly string[], o: RunSimOptions = {}): Promise<number> {
  const env = o.env ?? process.env;
  // Like `vllm` with no subcommand: print the usage instead of serving with defaults.
  if (argv.length === 0) {
    process.stdout.write(simUsage(o.prog) + '\n');
    return 0;
  }
  let opts;
  try {
    opts = parseSimArgs(argv, env);
  } catch (e) {
    if (e instanceof ArgError) {
      // argparse's report, as `vllm serve` prints it whatever name the simulator runs under: the serve subparser's
      // usage for a bad value, the top-level parser's for unrecognized arguments (vllm/entrypoints/cli/main.py).
      const [usage, prog] = e.level === 'top' ? [VLLM_USAGE, 'vllm'] : [SERVE_USAGE, 'vllm serve'];
      process.stderr.write(`${usage}\n${prog}: error: ${e.message}\n`);
      return 2;
    }
    throw e;
  }
  if (opts.printVersion) {
    process.stdout.write(`${opts.knobs.vllmVersion}\n`);
    return 0;
  }
  if (opts.printHelp) {
    process.stdout.write(simUsage(o.prog) + '\n');
    return 0;
  }
  // The server (and its metrics library) loads only to serve: `--version` stays quick (pd asks it before every up).
  const [{ SimServer, StartupFailure }, { SimLogger }] = await Promise.all([import('./server.js'), import('./log.js')]);
  const log = new SimLogger();
  const server = new SimServer(opts, env, log);
  if (o.handleSignals !== false) {
    let signals = 0;
    const onSignal = (): void => {
      signals++;
      if (signals > 1) {
        log.flushSync();
        process.exit(1);
      }
      void server.shutdown(0);
    };
    process.on('SIGTERM', onSignal);
    process.on('SIGINT', onSignal);
  }
  // A signal during the start-up delay ends the process at once (as vLLM does), without waiting for the delay.
  const started = server.start().then(
    () => null,
    (e: unknown) => {
      log.flushSync();
      if (e instanceof StartupFailure) return e.code;
      throw e;
    },
  );
  const early = await Promise.race([started, server.exited]);
  if (early !== null) return early;
  return server.exited;
}
