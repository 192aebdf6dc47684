/**
 * `pd bench matrix -c A.json -c B.json …`: the whole comparison in one command. For each config in order: start
 * its stack with the real CLI as a child process (`pd up -d -c A.json [--simulate]`, state in
 * <resultsDir>/.matrix/<set>/ through PD_STATE_DIR), clear its KV cache (cache-policy.ts, the same safe path as
 * `pd clear-cache`), run the sprint under the config's bench.set (optionally a capacity search), then
 * `pd down`; then the next config. A topology that fails to start or dies mid-run is recorded with its error,
 * its runs archived as failed (empty cells, never zeros), and the matrix goes on. The gap between two
 * topologies (down, then up to ready) is measured. Stopping (Ctrl+C) ends the current run, stops the current
 * stack with `pd down` and starts nothing new.
 */
import { spawn } from 'node:child_process';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import { loadConfig } from '../config/load.js';
import { listEngines } from '../config/engines.js';
import type { PdConfig } from '../config/schema.js';
import { UsageError } from '../util/errors.js';
import { readStackState } from '../stack/state.js';
import { cacheToClear, clearBeforeRun } from './cache-policy.js';
import type { LoadEvent } from './generator.js';
import { loadRunResults, type GoodputSlos, type RunResult } from './result.js';
import { archiveFailedRun, type RunOutput } from './run.js';
import { planSprint, sprintWorkload, type PlannedRun } from './run-plan.js';
import { runSprint } from './sprint.js';
import { writeLongCsv, writeSheet } from './sheet.js';
import { searchTarget } from './search-run.js';
import type { SearchResult, SearchSettings } from './search.js';
import { vllmDate } from './write.js';

export interface Topology {
  /** Config file path (absolute). */
  config: string;
  set: string;
  connector: string;
  engines: number;
  /** The config with the matrix's overrides (rates, duration, flood) and its own state dir. */
  pd: PdConfig;
  runs: PlannedRun[];
  stateDir: string;
  /** Estimated seconds (up + runs + search + down). */
  estimateS: number;
}

export interface MatrixPlan {
  topologies: Topology[];
  resultsDir: string;
  sheetPath: string;
  simulate: boolean;
  estimateS: number;
}

export interface MatrixOptions {
  configs: string[];
  simulate: boolean;
  rates?: number[];
  durationSeconds?: number;
  floodPrompts?: number;
  resultsDir?: string;
  sheetPath?: string;
  /** Run a capacity search on each topology after its sprint. */
  search?: SearchSettings | null;
}

export function upEstimate(simulate: boolean): number {
  return simulate ? 3 : 120;
}

/** Rough seconds of one sprint run: its send window plus a drain; a flood run by its size. */
export function runEstimateS(run: PlannedRun, durationSeconds: number): number {
  return run.kind === 'flood' ? Math.max(5, run.count / 50) : durationSeconds + 2;
}

/** Load every config and plan the matrix (no process is started). */
export async function planMatrix(o: MatrixOptions): Promise<MatrixPlan> {
  if (o.configs.length === 0) throw new UsageError('pd bench matrix needs the configs to compare: -c A.json -c B.json …', { hint: 'one config per topology, e.g. made with `pd init -t NAME`' });
  const topologies: Topology[] = [];
  let resultsDir = o.resultsDir ? resolve(o.resultsDir) : null;
  let sheetPath = o.sheetPath ? resolve(o.sheetPath) : null;
  for (const path of o.configs) {
    const { config } = await loadConfig({ configPath: path });
    resultsDir ??= config.bench.resultsDir;
    sheetPath ??= config.bench.sheet;
    const set = config.bench.set;
    const dup = topologies.find((t) => t.set === set);
    if (dup) throw new UsageError(`${path} and ${dup.config} both benchmark set "${set}"`, { hint: 'give each config its own bench.set (the sheet block it fills)' });
    const sprint = {
      ...config.bench.sprint,
      ...(o.rates ? { rates: o.rates } : {}),
      ...(o.durationSeconds !== undefined ? { durationSeconds: o.durationSeconds } : {}),
      ...(o.floodPrompts !== undefined ? { floodPrompts: o.floodPrompts } : {}),
    };
    const stateDir = join(resultsDir, '.matrix', set);
    const pd: PdConfig = { ...config, stateDir, bench: { ...config.bench, sprint } };
    const runs = planSprint(sprint);
    const runS = runs.reduce((s, r) => s + runEstimateS(r, sprint.durationSeconds), 0);
    const estimateS = upEstimate(o.simulate) + runS + (o.search ? o.search.budgetSeconds : 0) + 2;
    topologies.push({ config: resolve(path), set, connector: config.topology === 'aggregated' ? 'aggregated (no connector)' : config.kv.connector, engines: listEngines(config).length, pd, runs, stateDir, estimateS });
  }
  return { topologies, resultsDir: resultsDir!, sheetPath: sheetPath!, simulate: o.simulate, estimateS: topologies.reduce((s, t) => s + t.estimateS, 0) };
}

/** A set is complete when every planned run has a result that neither failed nor was cut short. */
export async function setComplete(resultsDir: string, t: Topology): Promise<boolean> {
  const runs = await loadRunResults(resultsDir, t.set);
  return t.runs.every((p) => runs.some((r) => r.pd_run_name === p.name && !r.pd_failed && !r.pd_partial));
}

export interface TopologyOutcome {
  set: string;
  config: string;
  status: 'done' | 'failed' | 'resumed' | 'interrupted';
  error: string | null;
  /** ms from `pd up -d` to ready. */
  upMs: number | null;
  /** ms of `pd down`. */
  downMs: number | null;
  runs: RunResult[];
  capacity: SearchResult | null;
}

export interface MatrixResult {
  plan: MatrixPlan;
  topologies: TopologyOutcome[];
  /** Between consecutive started topologies: down of the first + up of the next, ms. */
  gaps: Array<{ from: string; to: string; ms: number }>;
  interrupted: boolean;
  file: string;
  /** Why the sheet could not take a set's runs (they are archived regardless). */
  sheetError: string | null;
}

export interface MatrixHooks {
  onTopologyStart?: (t: Topology, index: number) => void;
  onUp?: (t: Topology, ms: number, ok: boolean, error: string | null) => void;
  onRunStart?: (t: Topology, run: PlannedRun, runIndex: number, total: number) => ((ev: LoadEvent) => void) | void;
  onRunEnd?: (t: Topology, run: PlannedRun, out: RunOutput) => void;
  onSkip?: (t: Topology, run: PlannedRun, reason: string) => void;
  onSearch?: (t: Topology, r: SearchResult) => void;
  onDown?: (t: Topology, ms: number) => void;
  onResumeSkip?: (t: Topology) => void;
}

export interface MatrixRunOptions {
  plan: MatrixPlan;
  /** dist/cli/main.js: the real CLI the stacks are started and stopped with. */
  pdEntry: string;
  env?: NodeJS.ProcessEnv;
  resume?: boolean;
  search?: SearchSettings | null;
  slos?: GoodputSlos | null;
  stopSignal?: AbortSignal;
  abortSignal?: AbortSignal;
  hooks?: MatrixHooks;
}

interface PdRun {
  code: number | null;
  stdout: string;
  stderr: string;
  ms: number;
}

/** Run the real `pd` CLI as a child process. */
function runPd(entry: string, args: string[], env: NodeJS.ProcessEnv): Promise<PdRun> {
  const t0 = performance.now();
  return new Promise((done) => {
    const child = spawn(process.execPath, [entry, ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    child.on('error', (e) => done({ code: null, stdout, stderr: stderr + e.message, ms: performance.now() - t0 }));
    child.on('close', (code) => done({ code, stdout, stderr, ms: performance.now() - t0 }));
  });
}

/** The error lines of a failed `pd` command (its "error:" line and the details under it). */
function pdError(r: PdRun): string {
  const lines = r.stderr.split('\n').map((l) => l.trim()).filter(Boolean);
  const i = lines.findIndex((l) => l.startsWith('error:'));
  return (i >= 0 ? lines.slice(i, i + 4) : lines.slice(-3)).join(' | ') || `exit code ${r.code}`;
}

export async function runMatrix(o: MatrixRunOptions): Promise<MatrixResult> {
  const { plan } = o;
  const outcomes: TopologyOutcome[] = [];
  const gaps: MatrixResult['gaps'] = [];
  let lastDown: { set: string; ms: number } | null = null;
  const stopped = (): boolean => Boolean(o.stopSignal?.aborted);
  for (const [i, t] of plan.topologies.entries()) {
    if (stopped()) break;
    if (o.resume && (await setComplete(plan.resultsDir, t))) {
      o.hooks?.onResumeSkip?.(t);
      outcomes.push({ set: t.set, config: t.config, status: 'resumed', error: null, upMs: null, downMs: null, runs: [], capacity: null });
      continue;
    }
    o.hooks?.onTopologyStart?.(t, i);
    const env = { ...(o.env ?? process.env), PD_STATE_DIR: t.stateDir };
    await rm(t.stateDir, { recursive: true, force: true });
    await mkdir(t.stateDir, { recursive: true });
    const outcome: TopologyOutcome = { set: t.set, config: t.config, status: 'done', error: null, upMs: null, downMs: null, runs: [], capacity: null };
    outcomes.push(outcome);
    try {
      const up = await runPd(o.pdEntry, ['-c', t.config, 'up', '-d', ...(plan.simulate ? ['--simulate'] : [])], env);
      outcome.upMs = up.ms;
      if (lastDown) gaps.push({ from: lastDown.set, to: t.set, ms: lastDown.ms + up.ms });
      const state = up.code === 0 ? await readStackState(t.stateDir).catch(() => null) : null;
      const proxy = state?.proxy?.url.replace('0.0.0.0', '127.0.0.1');
      if (up.code !== 0 || !proxy) {
        outcome.status = 'failed';
        outcome.error = `pd up failed: ${pdError(up)}`;
        o.hooks?.onUp?.(t, up.ms, false, outcome.error);
        outcome.runs = await archiveNotRun(plan, t, outcome.error);
        continue;
      }
      o.hooks?.onUp?.(t, up.ms, true, null);
      const cachePath = await cacheToClear(t.pd, t.config, false);
      await clearBeforeRun(cachePath);
      const res = await runSprint({
        bench: t.pd.bench,
        target: proxy,
        set: t.set,
        resultsDir: plan.resultsDir,
        sheetPath: plan.sheetPath,
        modelPath: t.pd.model,
        apiKey: t.pd.proxy.apiKey ?? undefined,
        stateDir: t.stateDir,
        slos: o.slos ?? null,
        stopSignal: o.stopSignal,
        abortSignal: o.abortSignal,
        beforeRun: async () => void (await clearBeforeRun(cachePath)),
        onRunStart: (run, k, total) => o.hooks?.onRunStart?.(t, run, k, total),
        onRunEnd: (run, out) => o.hooks?.onRunEnd?.(t, run, out),
        onSkip: (run, reason) => o.hooks?.onSkip?.(t, run, reason),
      });
      outcome.runs = res.runs.map((r) => r.result);
      const failedRun = outcome.runs.find((r) => r.pd_failed);
      if (failedRun) {
        outcome.status = 'failed';
        outcome.error = `${failedRun.pd_run_name}: ${failedRun.pd_error ?? 'failed'}`;
        const notRun = res.skipped.filter((s) => s.reason.includes('failed')).map((s) => s.run);
        outcome.runs.push(...(await archiveNotRun(plan, t, `not run: ${outcome.error}`, notRun)));
      }
      if (res.interrupted) outcome.status = 'interrupted';
      else if (o.search && outcome.status === 'done') {
        const { result } = await searchTarget({
          settings: o.search,
          workload: sprintWorkload(t.pd.bench.sprint),
          target: proxy,
          set: t.set,
          resultsDir: plan.resultsDir,
          modelPath: t.pd.model,
          apiKey: t.pd.proxy.apiKey ?? undefined,
          stateDir: t.stateDir,
          percentiles: t.pd.bench.percentiles,
          beforeProbe: async () => void (await clearBeforeRun(cachePath)),
          stopSignal: o.stopSignal,
          abortSignal: o.abortSignal,
        });
        outcome.capacity = result;
        o.hooks?.onSearch?.(t, result);
      }
    } finally {
      const down = await runPd(o.pdEntry, ['-c', t.config, 'down', '--grace', '5'], env);
      outcome.downMs = down.ms;
      lastDown = { set: t.set, ms: down.ms };
      o.hooks?.onDown?.(t, down.ms);
    }
  }
  // Every set's block from all of its archived runs (failed ones leave their cells empty), then the long CSV.
  let sheetError: string | null = null;
  for (const t of plan.topologies) {
    try {
      await writeSheet({ sheetPath: plan.sheetPath, set: t.set, results: await loadRunResults(plan.resultsDir, t.set) });
    } catch (e) {
      sheetError ??= (e as Error).message;
    }
  }
  await writeLongCsv({ path: join(plan.resultsDir, 'results-long.csv'), results: await loadRunResults(plan.resultsDir) });
  const file = join(plan.resultsDir, `matrix-${vllmDate()}.json`);
  const summary = { plan: { ...plan, topologies: plan.topologies.map(({ pd: _pd, ...rest }) => rest) }, topologies: outcomes.map(({ runs, ...rest }) => ({ ...rest, runs: runs.map((r) => r.pd_run_name) })), gaps };
  await mkdir(plan.resultsDir, { recursive: true });
  await writeFile(file, JSON.stringify(summary, null, 2) + '\n');
  return { plan, topologies: outcomes, gaps, interrupted: stopped(), file, sheetError };
}

/** Archive a topology's runs that never ran as failed (its sheet cells stay empty, the report says why). */
async function archiveNotRun(plan: MatrixPlan, t: Topology, error: string, runs = t.runs): Promise<RunResult[]> {
  const w = sprintWorkload(t.pd.bench.sprint);
  const out: RunResult[] = [];
  for (const run of runs) {
    const r = await archiveFailedRun(
      {
        target: `http://127.0.0.1:${t.pd.proxy.port}`,
        set: t.set,
        resultsDir: plan.resultsDir,
        kind: run.kind,
        runName: run.name,
        endpoint: w.endpoint,
        modelPath: t.pd.model,
        model: t.pd.model,
        dataset: w.dataset,
        count: run.count,
        rate: run.rate,
        burstiness: w.burstiness,
        seed: w.seed,
        ignoreEos: w.ignoreEos,
        percentiles: t.pd.bench.percentiles,
      },
      error,
    );
    out.push(r.result);
  }
  return out;
}
