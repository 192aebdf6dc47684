/**
 * `pd bench` (a sprint from config), `pd bench run` (one run), `pd bench compare`, `pd bench report`.
 * Thin: parsing and printing only; the work is in src/bench/.
 */
import { setMaxListeners } from 'node:events';
import { existsSync, constants } from 'node:fs';
import { access, mkdir } from 'node:fs/promises';
import { request } from 'undici';
import { resolve } from 'node:path';
import type { Command } from 'commander';
import { action } from '../run-command.js';
import { err, info, printJson, warn } from '../output.js';
import { RuntimeError, UsageError } from '../../util/errors.js';
import { loadConfig } from '../../config/load.js';
import type { PdConfig } from '../../config/schema.js';
import { activeStoragePath, isStackRunning } from '../../stack/state.js';
import { clearCache } from '../../cache/clear.js';
import { firstServedModel, resolveTarget } from '../../bench/target.js';
import { runBenchmark, runName, type RunOptions, type RunOutput } from '../../bench/run.js';
import { runWithVllm } from '../../bench/vllm-engine.js';
import { runSprint, type PlannedRun } from '../../bench/sprint.js';
import { formatSummary } from '../../bench/summary.js';
import { createProgress } from '../../bench/progress.js';
import { parseDataset, parseGoodput, parsePercentiles, parsePositive } from '../../bench/cli-options.js';
import { compareSets, compareSheets, formatComparison } from '../../bench/compare.js';
import { writeSheet, writeLongCsv } from '../../bench/sheet.js';
import { loadRunResults } from '../../bench/result.js';
import { writeReport } from '../../bench/report/html.js';

interface CommonOpts {
  config?: string;
  set?: string;
  target?: string;
  keepCache?: boolean;
  engine?: string;
  json?: boolean;
  model?: string;
  goodput?: string[];
  resultsDir?: string;
  sheet?: string | false;
  percentiles?: string;
  progress?: boolean;
}

interface RunCliOpts extends CommonOpts {
  rate?: string;
  duration?: string;
  flood?: boolean;
  numPrompts?: string;
  endpoint?: string;
  inputLen?: string;
  outputLen?: string;
  maxConcurrency?: string;
  burstiness?: string;
  seed?: string;
  dataset?: string;
  datasetPath?: string;
  ignoreEos?: boolean;
}

/** Ctrl+C once: stop sending, finish in-flight, write partial results. Twice: abort in-flight too. */
function interruptHandling(): { stop: AbortController; abort: AbortController; dispose: () => void } {
  const stop = new AbortController();
  const abort = new AbortController();
  // one listener per request in flight (thousands in a flood run)
  setMaxListeners(0, stop.signal, abort.signal);
  const onSigint = (): void => {
    if (!stop.signal.aborted) {
      process.stderr.write(`\n${err.yellow('interrupted:')} no new requests; waiting for the ones in flight (Ctrl+C again to abort them)…\n`);
      stop.abort();
    } else if (!abort.signal.aborted) {
      process.stderr.write(`${err.yellow('aborting')} in-flight requests; partial results will still be written\n`);
      abort.abort();
    }
  };
  process.on('SIGINT', onSigint);
  process.on('SIGTERM', onSigint);
  return { stop, abort, dispose: () => (process.off('SIGINT', onSigint), process.off('SIGTERM', onSigint)) };
}

function engineOf(v: string | undefined): 'builtin' | 'vllm' {
  if (v === undefined || v === 'builtin') return 'builtin';
  if (v === 'vllm') return 'vllm';
  throw new UsageError(`--engine ${v} is not known`, { hint: 'use --engine builtin (default) or --engine vllm' });
}

async function context(o: CommonOpts): Promise<{ config: PdConfig; target: string; set: string; resultsDir: string; stateDir: string }> {
  const { config } = await loadConfig({ configPath: o.config });
  const target = await resolveTarget(o.target, config.stateDir);
  return {
    config,
    target,
    set: o.set ?? config.bench.set,
    resultsDir: o.resultsDir ? resolve(o.resultsDir) : config.bench.resultsDir,
    stateDir: config.stateDir,
  };
}

/** The results dir must be a folder pd can write, checked before anything destructive (cache clearing) happens. */
async function ensureResultsDir(dir: string): Promise<void> {
  if (/^\/(proc|sys|dev)(\/|$)/.test(dir)) {
    throw new UsageError(`--results-dir ${dir} is inside a virtual filesystem`, { hint: 'Point --results-dir (or bench.resultsDir) at a normal folder.' });
  }
  try {
    await mkdir(dir, { recursive: true });
    await access(dir, constants.W_OK);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code ?? 'error';
    throw new UsageError(`cannot use ${dir} as the results folder (${code})`, {
      hint: code === 'ENOTDIR' || code === 'EEXIST' ? 'A file is in the way: pick another --results-dir.' : 'Pick a folder you can write, with --results-dir or bench.resultsDir.',
    });
  }
}

/** The target must answer before the cache is cleared and a run starts. */
async function checkTarget(target: string, apiKey: string | undefined, model: string | undefined): Promise<void> {
  if (model !== undefined) {
    try {
      const res = await request(`${target}/health`, { headersTimeout: 10_000, bodyTimeout: 10_000 });
      await res.body.dump();
    } catch (e) {
      throw new RuntimeError(`cannot reach ${target}: ${(e as Error).message}`, {
        hint: 'is the stack up (`pd status`)? pass --target to benchmark another server',
      });
    }
    return;
  }
  await firstServedModel(target, apiKey);
}

/** The KV cache folder to clear before each run, or null (Nixl / no shared storage / --keep-cache). */
async function cacheToClear(config: PdConfig, keepCache: boolean | undefined): Promise<string | null> {
  if (keepCache || !config.bench.clearCache) return null;
  if (config.kv.connector === 'NixlConnector' && !(await isStackRunning(config.stateDir))) return null;
  return activeStoragePath(config.stateDir, config.kv.sharedStoragePath);
}

async function clearBeforeRun(path: string | null, config: PdConfig, quiet: boolean): Promise<void> {
  if (path === null) return;
  try {
    // path is the running stack's folder or the configured one: either way the folder the engines use.
    const report = await clearCache({ path, configuredPath: path });
    if (!quiet && report.exists) info(err.dim(`cleared KV cache ${path}: ${report.entriesRemoved} entries`));
    if (report.entriesFailed > 0) warn(`could not clear ${report.entriesFailed} KV cache entries under ${path}`);
  } catch (e) {
    if (e instanceof RuntimeError || (e as Error).name === 'ConfigError') {
      throw new RuntimeError(`clearing the KV cache before the run failed: ${(e as Error).message}`, {
        hint: 'fix the permissions of kv.sharedStoragePath, or pass --keep-cache to benchmark without clearing',
      });
    }
    throw e;
  }
}

function printRun(out: RunOutput, json: boolean): void {
  if (!json) process.stdout.write(formatSummary(out.result));
  if (!json && out.files) info(err.dim(`saved ${out.files.json}`));
}

function commonOptions(cmd: Command): Command {
  return cmd
    .option('--set <name>', 'experiment set the results are archived under (default: bench.set)')
    .option('--target <url>', 'OpenAI-compatible base URL to benchmark (default: the running stack\'s proxy)')
    .option('--keep-cache', 'do not clear the KV cache before each run')
    .option('--engine <engine>', 'builtin (default) or vllm (`vllm bench serve`, its saved JSON is parsed)')
    .option('--model <name>', 'model name to send (default: the first of GET /v1/models)')
    .option('--goodput <slo...>', 'SLOs for goodput, vLLM syntax: ttft:MS tpot:MS e2el:MS')
    .option('--percentiles <list>', 'percentiles to compute, e.g. 50,90,95,99,99.9 (default: bench.percentiles; P99 always)')
    .option('--results-dir <dir>', 'where runs are archived (default: bench.resultsDir)')
    .option('--no-progress', 'no progress bar on stderr')
    .option('--json', 'print the result JSON on stdout instead of the summary');
}

export function register(program: Command): void {
  const bench = commonOptions(
    program
      .command('bench')
      .description('run the benchmark sprint from config (steady rates, then flood), archive it, fill the sheet')
      .option('--no-sheet', 'do not merge the results into the sprint sheet CSV'),
  );

  bench.action(
    action(async (_o: unknown, cmd: Command) => {
      const o = cmd.optsWithGlobals<CommonOpts>();
      const ctx = await context(o);
      const engine = engineOf(o.engine);
      const slos = parseGoodput(o.goodput);
      const percentiles = parsePercentiles(o.percentiles);
      const bench = { ...ctx.config.bench, percentiles: percentiles ?? ctx.config.bench.percentiles };
      await ensureResultsDir(ctx.resultsDir);
      await checkTarget(ctx.target, ctx.config.proxy.apiKey ?? process.env.OPENAI_API_KEY, o.model);
      const cachePath = await cacheToClear(ctx.config, o.keepCache);
      const sig = interruptHandling();
      let progress: ReturnType<typeof createProgress> | null = null;
      try {
        const res = await runSprint({
          bench,
          target: ctx.target,
          set: ctx.set,
          resultsDir: ctx.resultsDir,
          sheetPath: o.sheet === false ? null : ctx.config.bench.sheet,
          engine,
          vllmCommand: ctx.config.engine.command,
          model: o.model,
          modelPath: ctx.config.model,
          apiKey: ctx.config.proxy.apiKey ?? process.env.OPENAI_API_KEY,
          stateDir: ctx.stateDir,
          slos,
          stopSignal: sig.stop.signal,
          abortSignal: sig.abort.signal,
          beforeRun: (_run: PlannedRun) => clearBeforeRun(cachePath, ctx.config, Boolean(o.json)),
          onRunStart: (run, i, total) => {
            progress = createProgress({ label: `[${i + 1}/${total}] ${run.name}`, total: run.count, enabled: o.progress !== false && engine === 'builtin' });
            return progress.onEvent;
          },
          onRunEnd: (_run, out) => {
            (progress)?.done();
            printRun(out, Boolean(o.json));
          },
        });
        if (o.json) printJson(res.runs.map((r) => r.result));
        else {
          if (res.sheetPath) info(`sheet: ${res.sheetPath}`);
          if (res.sheetError) warn(`sheet not updated: ${res.sheetError} (results are archived; \`pd bench sheet\` retries)`);
          info(`long CSV: ${res.longCsvPath}`);
          try {
            const report = await writeReport({ resultsDir: ctx.resultsDir, out: resolve(ctx.resultsDir, 'report.html'), sheetPath: ctx.config.bench.sheet });
            info(`report: file://${report}`);
          } catch (e) {
            warn(`report not written: ${(e as Error).message} (run \`pd bench report\` to retry)`);
          }
        }
        return res.interrupted ? 130 : 0;
      } finally {
        sig.dispose();
      }
    }),
  );

  commonOptions(
    bench
      .command('run')
      .description('one benchmark run: --rate R --duration S (steady, open-loop), --flood [-n N] (all at once)')
      .option('--rate <r>', 'request rate in req/s (or inf)')
      .option('--duration <s>', 'seconds of steady load: sends ceil(duration x rate) prompts')
      .option('--flood', 'send every prompt at once (rate inf)')
      .option('-n, --num-prompts <n>', 'number of prompts (flood default: bench.sprint.floodPrompts)')
      .option('--endpoint <kind>', 'chat or completions (default: bench.sprint.endpoint)')
      .option('--input-len <n>', 'random dataset input tokens (default: bench.sprint.inputLen)')
      .option('--output-len <n>', 'output tokens (default: bench.sprint.outputLen)')
      .option('--max-concurrency <n>', 'cap on requests in flight from the client')
      .option('--burstiness <b>', 'gamma shape of arrival gaps (1 = Poisson)')
      .option('--seed <n>', 'random seed for arrivals and prompts')
      .option('--dataset <kind>', 'random (default), sharegpt or jsonl')
      .option('--dataset-path <file>', 'ShareGPT JSON or JSONL file of prompts')
      .option('--no-ignore-eos', 'let generation stop at EOS (default: ignore_eos, as the sprint)'),
  ).action(
    action(async (_o: unknown, cmd: Command) => {
      const o = cmd.optsWithGlobals<RunCliOpts>();
      const ctx = await context(o);
      const s = ctx.config.bench.sprint;
      const engine = engineOf(o.engine);
      const slos = parseGoodput(o.goodput);
      const percentiles = parsePercentiles(o.percentiles) ?? ctx.config.bench.percentiles;
      let rate = parsePositive('--rate', o.rate, { allowInf: true });
      const duration = parsePositive('--duration', o.duration);
      let count = parsePositive('-n/--num-prompts', o.numPrompts, { int: true });
      if (o.flood) {
        if (rate !== undefined && rate !== Infinity) throw new UsageError('--flood sends everything at once; drop --rate', { hint: 'or use --rate R --duration S for a steady run' });
        rate = Infinity;
        count ??= s.floodPrompts > 0 ? s.floodPrompts : 1024;
      } else if (rate === undefined) {
        throw new UsageError('say how to send: --rate R --duration S, --rate R -n N, or --flood [-n N]', { hint: 'e.g. pd bench run --rate 8 --duration 30' });
      } else if (rate === Infinity) {
        count ??= s.floodPrompts || 1024;
      } else if (count === undefined) {
        if (duration === undefined) throw new UsageError('--rate needs --duration S (or -n N prompts)', { hint: 'e.g. pd bench run --rate 8 --duration 30' });
        count = Math.ceil(duration * rate);
      }
      const endpoint = o.endpoint ?? s.endpoint;
      if (endpoint !== 'chat' && endpoint !== 'completions') throw new UsageError(`--endpoint ${endpoint} is not known`, { hint: 'use chat or completions' });
      const inputLen = parsePositive('--input-len', o.inputLen, { int: true }) ?? s.inputLen;
      const outputLen = parsePositive('--output-len', o.outputLen, { int: true }) ?? s.outputLen;
      const dataset = parseDataset({ dataset: o.dataset, datasetPath: o.datasetPath, inputLen, outputLen, outputLenGiven: o.outputLen !== undefined });
      if (dataset.kind !== 'random' && !existsSync(dataset.path)) throw new UsageError(`--dataset-path ${dataset.path} does not exist`);
      const kind = 'single' as const;
      const burstiness = parsePositive('--burstiness', o.burstiness) ?? s.burstiness;
      const maxConcurrency = parsePositive('--max-concurrency', o.maxConcurrency, { int: true }) ?? s.maxConcurrency ?? null;
      if (o.seed !== undefined && !/^-?\d+$/.test(o.seed.trim())) {
        throw new UsageError(`--seed must be a whole number, got "${o.seed}"`, { hint: 'e.g. --seed 42' });
      }
      const seed = o.seed !== undefined ? Number(o.seed) : s.seed;
      // Everything is checked (flags, dataset, results folder, target) before the cache is cleared.
      await ensureResultsDir(ctx.resultsDir);
      await checkTarget(ctx.target, ctx.config.proxy.apiKey ?? process.env.OPENAI_API_KEY, o.model);
      const cachePath = await cacheToClear(ctx.config, o.keepCache);
      await clearBeforeRun(cachePath, ctx.config, Boolean(o.json));
      const sig = interruptHandling();
      const progress = createProgress({ label: runName(kind, rate, count).replace(/-\d{8}-\d{6}$/, ''), total: count, enabled: o.progress !== false && engine === 'builtin' });
      try {
        const opts: RunOptions = {
          target: ctx.target,
          set: ctx.set,
          resultsDir: ctx.resultsDir,
          kind,
          endpoint,
          model: o.model,
          modelPath: ctx.config.model,
          dataset,
          count: count,
          rate,
          burstiness,
          maxConcurrency,
          seed,
          ignoreEos: o.ignoreEos !== false,
          percentiles,
          slos,
          apiKey: ctx.config.proxy.apiKey ?? process.env.OPENAI_API_KEY,
          stateDir: ctx.stateDir,
          stopSignal: sig.stop.signal,
          abortSignal: sig.abort.signal,
          onEvent: progress.onEvent,
        };
        const out = engine === 'vllm' ? await runWithVllm({ ...opts, command: ctx.config.engine.command }) : await runBenchmark(opts);
        progress.done();
        if (o.json) printJson(out.result);
        else printRun(out, false);
        if (out.result.pd_partial) return 130;
        if (out.result.completed === 0 && out.result.num_prompts > 0) {
          const first = (out.result.errors ?? []).find((e: string) => e !== '');
          throw new RuntimeError(`every request failed${first ? `: ${first}` : ''}`, {
            hint: 'Check --model (GET /v1/models lists the served names) and the target with `pd status`.',
          });
        }
        return 0;
      } finally {
        sig.dispose();
      }
    }),
  );

  bench
    .command('compare')
    .description('put sets side by side: per-rate deltas of each metric and which set wins')
    .argument('<sets...>', 'two or more set names under the results dir (or in --from-sheet)')
    .option('--results-dir <dir>', 'where runs are archived (default: bench.resultsDir)')
    .option('--from-sheet <csv>', 'compare the sets of a sprint sheet CSV instead (e.g. the reference real-GPU sheet)')
    .option('--json', 'print the comparison as JSON')
    .action(
      action(async (sets: string[], _o: unknown, cmd: Command) => {
        const o = cmd.optsWithGlobals<CommonOpts & { fromSheet?: string }>();
        if (sets.length < 2) throw new UsageError('compare needs at least two sets', { hint: 'e.g. pd bench compare pd-disaggregation tensor-parallelism' });
        const { config } = await loadConfig({ configPath: o.config });
        const resultsDir = o.resultsDir ? resolve(o.resultsDir) : config.bench.resultsDir;
        if (o.fromSheet !== undefined && !existsSync(resolve(o.fromSheet))) {
          throw new UsageError(`sheet ${resolve(o.fromSheet)} does not exist`, { hint: 'Pass the path of a sprint sheet CSV (pd bench writes bench.sheet).' });
        }
        const c = o.fromSheet !== undefined ? await compareSheets(resolve(o.fromSheet), sets) : await compareSets({ resultsDir, sets });
        if (o.json) printJson(c);
        else process.stdout.write(formatComparison(c, { color: process.stdout.isTTY && !process.env.NO_COLOR }));
      }),
    );

  bench
    .command('report')
    .description('write a self-contained HTML report (charts per set and rate)')
    .option('--sets <list>', 'comma-separated sets (default: all)')
    .option('--out <file>', 'output file (default: <resultsDir>/report.html)')
    .option('--results-dir <dir>', 'where runs are archived (default: bench.resultsDir)')
    .option('--from-sheet <csv>', 'also chart the sets of this sprint sheet CSV (default: bench.sheet when it exists)')
    .action(
      action(async (_o: unknown, cmd: Command) => {
        const o = cmd.optsWithGlobals<CommonOpts & { sets?: string; out?: string; fromSheet?: string }>();
        const { config } = await loadConfig({ configPath: o.config });
        const resultsDir = o.resultsDir ? resolve(o.resultsDir) : config.bench.resultsDir;
        const out = o.out ? resolve(o.out) : resolve(resultsDir, 'report.html');
        if (o.fromSheet !== undefined && !existsSync(resolve(o.fromSheet))) {
          throw new UsageError(`sheet ${resolve(o.fromSheet)} does not exist`, { hint: 'Pass the path of a sprint sheet CSV.' });
        }
        const sheetPath = o.fromSheet !== undefined ? resolve(o.fromSheet) : config.bench.sheet;
        const path = await writeReport({ resultsDir, sets: o.sets ? o.sets.split(',').map((s) => s.trim()).filter(Boolean) : undefined, out, sheetPath });
        info(`report: file://${path}`);
      }),
    );

  bench
    .command('sheet')
    .description('rebuild the sprint sheet CSV and the long CSV from archived runs')
    .option('--results-dir <dir>', 'where runs are archived (default: bench.resultsDir)')
    .option('--set <name>', 'only this set (default: every set)')
    .action(
      action(async (_o: unknown, cmd: Command) => {
        const o = cmd.optsWithGlobals<CommonOpts>();
        const { config } = await loadConfig({ configPath: o.config });
        const resultsDir = o.resultsDir ? resolve(o.resultsDir) : config.bench.resultsDir;
        const all = await loadRunResults(resultsDir);
        if (all.length === 0) throw new RuntimeError(`no runs under ${resultsDir}`, { hint: 'run `pd bench` first' });
        const sets = [...new Set(all.map((r) => r.pd_set))].filter((s) => o.set === undefined || s === o.set);
        for (const set of sets) await writeSheet({ sheetPath: config.bench.sheet, set, results: all.filter((r) => r.pd_set === set) });
        await writeLongCsv({ path: resolve(resultsDir, 'results-long.csv'), results: all });
        info(`sheet: ${config.bench.sheet}\nlong CSV: ${resolve(resultsDir, 'results-long.csv')}`);
      }),
    );
}
