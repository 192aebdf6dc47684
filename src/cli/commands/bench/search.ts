/** `pd bench search --goodput ttft:MS tpot:MS [--attainment 0.9]`: SLO capacity search. Parse, call, print. */
import type { Command } from 'commander';
import { action } from '../../run-command.js';
import { err, info, printJson } from '../../output.js';
import { parseFlags, searchFlagsSchema } from '../../../bench/flags.js';
import { requestOptions, resolveWorkload } from '../../../bench/run-plan.js';
import { ensureResultsDir, checkTarget } from '../../../bench/preflight.js';
import { cacheToClear, clearBeforeRun } from '../../../bench/cache-policy.js';
import { searchSettings, searchTarget } from '../../../bench/search-run.js';
import { describeStop, type Probe, type SearchResult } from '../../../bench/search.js';
import { createProgress } from '../../../bench/progress.js';
import { addFlags, benchContext, COMMON_FLAGS, flagValues, interruptHandling, REQUEST_FLAGS, WORKLOAD_FLAGS } from './shared.js';

export function registerSearch(bench: Command): void {
  const cmd = bench
    .command('search')
    .description('find the highest request rate whose good-request fraction meets the attainment (bracket, then bisect)');
  addFlags(cmd, ['attainment', 'precision', 'budget', 'duration', 'minRate', 'maxRate', ...WORKLOAD_FLAGS, ...REQUEST_FLAGS, ...COMMON_FLAGS.filter((k) => k !== 'engine')]);
  cmd.action(action(async (_o: unknown, c: Command) => searchCommand(c)));
}

const ms = (v: number | null): string => (v === null ? '--' : `${v.toFixed(1)} ms`);

export function formatProbe(p: Probe, i: number, attainment: number): string {
  const verdict = p.error !== null ? err.red(`error: ${p.error}`) : p.passed ? err.green('pass') : err.red('fail');
  return (
    `probe ${String(i + 1).padStart(2)}  ${`${p.rate} req/s`.padEnd(13)} good ${(p.good_fraction * 100).toFixed(1).padStart(5)}% ` +
    `(needs ${(attainment * 100).toFixed(0)}%) ${verdict}  achieved ${p.request_throughput.toFixed(2)} req/s  TTFT p50 ${ms(p.median_ttft_ms)}  ` +
    `TPOT p50 ${ms(p.median_tpot_ms)}  ${p.seconds.toFixed(1)} s`
  );
}

export function formatAnswer(r: SearchResult): string {
  const slos = Object.entries(r.slos).map(([k, v]) => `${k} <= ${v} ms`).join(', ');
  return `max_rate ${r.max_rate} req/s  (${(r.attainment * 100).toFixed(0)}% of requests within ${slos}; ${describeStop(r)}; ${r.probes.length} probes in ${r.elapsed_seconds.toFixed(0)} s)`;
}

async function searchCommand(cmd: Command): Promise<number> {
  const f = parseFlags(searchFlagsSchema, flagValues(cmd));
  const ctx = await benchContext(cmd, f);
  const settings = searchSettings(f, ctx.config);
  const workload = resolveWorkload(f, ctx.config.bench.sprint);
  await ensureResultsDir(ctx.resultsDir);
  await checkTarget(ctx.target, ctx.apiKey, f.model);
  const cachePath = await cacheToClear(ctx.config, ctx.configPath, f.keepCache, ctx.target);
  const sig = interruptHandling();
  let progress: ReturnType<typeof createProgress> | null = null;
  if (!f.json) {
    info(
      `searching ${ctx.target} for the highest rate with ${(settings.attainment * 100).toFixed(0)}% good requests: ` +
        `probes of ${settings.probeSeconds} s from ${settings.minRate} req/s, precision ${(settings.precision * 100).toFixed(0)}%, budget ${settings.budgetSeconds} s`,
    );
  }
  try {
    const { result, file } = await searchTarget({
      settings,
      workload,
      target: ctx.target,
      set: ctx.set,
      resultsDir: ctx.resultsDir,
      model: f.model,
      modelPath: ctx.config.model,
      apiKey: ctx.apiKey,
      stateDir: ctx.stateDir,
      percentiles: f.percentiles ?? ctx.config.bench.percentiles,
      request: requestOptions(f),
      numWarmups: f.numWarmups ?? ctx.config.bench.sprint.numWarmups,
      beforeProbe: async () => void (await clearBeforeRun(cachePath)),
      onProbeStart: (rate, i, count) => {
        progress = createProgress({ label: `probe ${i + 1} @ ${rate} req/s`, total: count, enabled: f.progress !== false && !f.json });
        return progress.onEvent;
      },
      onProbe: (p, i) => {
        progress?.done();
        if (!f.json) process.stdout.write(formatProbe(p, i, settings.attainment) + '\n');
      },
      stopSignal: sig.stop.signal,
      abortSignal: sig.abort.signal,
    });
    if (f.json) printJson(result);
    else {
      process.stdout.write(formatAnswer(result) + '\n');
      info(err.dim(`saved ${file}`));
    }
    if (result.stopped === 'interrupted') return 130;
    return result.stopped === 'error' ? 1 : 0;
  } finally {
    sig.dispose();
  }
}
