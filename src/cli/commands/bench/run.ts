/** `pd bench run`: one run (or a sweep over --max-concurrency / --lengths lists). Parse, call, print. */
import type { Command } from 'commander';
import { action } from '../../run-command.js';
import { info, printJson, warn } from '../../output.js';
import { RuntimeError } from '../../../util/errors.js';
import { parseFlags, runFlagsSchema } from '../../../bench/flags.js';
import { planRun, requestOptions, runSeed } from '../../../bench/run-plan.js';
import { ensureResultsDir, checkTarget } from '../../../bench/preflight.js';
import { cacheToClear, clearBeforeRun } from '../../../bench/cache-policy.js';
import { archiveFailedRun, runBenchmark, type RunOptions, type RunOutput } from '../../../bench/run.js';
import { runWithVllm } from '../../../bench/vllm-engine.js';
import { createProgress } from '../../../bench/progress.js';
import { addFlags, benchContext, COMMON_FLAGS, flagValues, interruptHandling, printCleared, printRun, REQUEST_FLAGS, WORKLOAD_FLAGS } from './shared.js';

export function registerRun(bench: Command): void {
  const cmd = bench
    .command('run')
    .description('one benchmark run: --rate R --duration S (steady, open-loop), --flood [-n N] (all at once); lists in --max-concurrency / --lengths sweep');
  addFlags(cmd, ['rate', 'duration', 'flood', 'numPrompts', ...WORKLOAD_FLAGS, 'lengths', ...REQUEST_FLAGS, ...COMMON_FLAGS]);
  cmd.action(action(async (_o: unknown, c: Command) => runCommand(c)));
}

async function runCommand(cmd: Command): Promise<number> {
  const f = parseFlags(runFlagsSchema, flagValues(cmd));
  const ctx = await benchContext(cmd, f);
  const { workload, runs } = planRun(f, ctx.config);
  const request = requestOptions(f);
  const percentiles = f.percentiles ?? ctx.config.bench.percentiles;
  const engine = f.engine ?? 'builtin';
  // Everything is checked (flags, dataset, results folder, target) before the cache is cleared.
  await ensureResultsDir(ctx.resultsDir);
  await checkTarget(ctx.target, ctx.apiKey, f.model);
  const cachePath = await cacheToClear(ctx.config, ctx.configPath, f.keepCache, ctx.target);
  const sig = interruptHandling();
  const outputs: RunOutput[] = [];
  try {
    for (const [i, run] of runs.entries()) {
      if (sig.stop.signal.aborted) break;
      printCleared(await clearBeforeRun(cachePath), Boolean(f.json));
      const label = runs.length > 1 ? `[${i + 1}/${runs.length}] ` : '';
      const progress = createProgress({ label: label + run.name.replace(/-DATE$/, ''), total: run.count, enabled: f.progress !== false && engine === 'builtin' });
      const opts: RunOptions = {
        target: ctx.target,
        set: ctx.set,
        resultsDir: ctx.resultsDir,
        kind: run.kind,
        endpoint: workload.endpoint,
        model: f.model,
        modelPath: ctx.config.model,
        dataset: run.dataset ?? workload.dataset,
        count: run.count,
        rate: run.rate,
        burstiness: workload.burstiness,
        maxConcurrency: run.maxConcurrency,
        seed: runSeed(workload.seed, run),
        ignoreEos: workload.ignoreEos,
        percentiles,
        slos: f.goodput ?? null,
        apiKey: ctx.apiKey,
        request,
        numWarmups: i === 0 ? (f.numWarmups ?? 0) : 0,
        stateDir: ctx.stateDir,
        sweep: run.sweep,
        stopSignal: sig.stop.signal,
        abortSignal: sig.abort.signal,
        onEvent: progress.onEvent,
      };
      let out: RunOutput;
      try {
        out = engine === 'vllm' ? await runWithVllm({ ...opts, command: ctx.config.engine.command }) : await runBenchmark(opts);
      } catch (e) {
        if (runs.length === 1 || !(e instanceof RuntimeError)) throw e;
        out = await archiveFailedRun(opts, e.message);
        warn(`${run.name}: ${e.message}`);
      }
      progress.done();
      outputs.push(out);
      if (!f.json) printRun(out, false);
    }
  } finally {
    sig.dispose();
  }
  if (f.json) printJson(outputs.length === 1 ? outputs[0]!.result : outputs.map((o) => o.result));
  else if (outputs.length > 1) info(`sweep: ${outputs.length} runs archived under ${ctx.resultsDir}/${ctx.set}; \`pd bench report\` draws the throughput/latency (Pareto) chart`);
  if (outputs.some((o) => o.result.pd_partial)) return 130;
  const failed = outputs.find((o) => o.result.pd_failed);
  if (failed && outputs.length === 1) {
    const first = (failed.result.errors ?? []).find((e: string) => e !== '');
    throw new RuntimeError(`every request failed${first ? `: ${first}` : ''}`, {
      hint: 'Check --model (GET /v1/models lists the served names) and the target with `pd status`.',
    });
  }
  return failed ? 1 : 0;
}
