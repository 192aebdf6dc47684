/** `pd bench matrix -c A.json -c B.json … [--simulate]`: every topology's sprint, one after the other. */
import { fileURLToPath } from 'node:url';
import { resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import type { Command } from 'commander';
import { action } from '../../run-command.js';
import { err, info, printJson, warn } from '../../output.js';
import { loadConfig } from '../../../config/load.js';
import { matrixFlagsSchema, parseFlags } from '../../../bench/flags.js';
import { planMatrix, runEstimateS, runMatrix, upEstimate, type MatrixPlan } from '../../../bench/matrix.js';
import { searchSettings } from '../../../bench/search-run.js';
import { compareSets, formatComparison } from '../../../bench/compare.js';
import { writeReport } from '../../../bench/report/html.js';
import { createProgress } from '../../../bench/progress.js';
import { formatSummary } from '../../../bench/summary.js';
import { formatAnswer } from './search.js';
import { flagValues, interruptHandling } from './shared.js';

export function registerMatrix(bench: Command): void {
  const cmd = bench
    .command('matrix')
    .description('start each config\'s stack in turn (pd up -d), clear its KV cache, run its sprint, pd down: the whole sheet in one command')
    .argument('[configs...]', 'config files (the same as -c A.json -c B.json …)')
    .option('--simulate', 'start every stack on the vLLM simulator (passed to pd up)')
    .option('--rates <list>', 'steady rates for every topology, e.g. 2,4,8,16,32 (default: each config\'s bench.sprint.rates)')
    .option('--duration <s>', 'seconds per steady run (default: each config\'s bench.sprint.durationSeconds)')
    .option('--flood-prompts <n>', 'prompts of the flood run, 0 skips it (default: each config\'s bench.sprint.floodPrompts)')
    .option('--sheet <file>', 'sprint sheet to fill (default: the first config\'s bench.sheet)')
    .option('--results-dir <dir>', 'where runs are archived (default: the first config\'s bench.resultsDir)')
    .option('--resume', 'skip sets already complete in the results directory')
    .option('--search', 'after each sprint, find the topology\'s SLO capacity (pd bench search; SLOs from --goodput or bench.search.goodput)')
    .option('--goodput <slo...>', 'SLOs in ms for goodput and --search, vLLM syntax: ttft:MS tpot:MS')
    .option('--attainment <f>', 'with --search: fraction of requests within the SLOs (default bench.search.attainment)')
    .option('--precision <f>', 'with --search: precision of the answer (default bench.search.precision)')
    .option('--budget <s>', 'with --search: seconds per topology (default bench.search.budgetSeconds)')
    .option('--no-progress', 'no per-run progress line')
    .option('--json', 'print the matrix summary as JSON')

    .addHelpText('after', '\nGive -c/--config once per topology (in the order to run them).');
  cmd.action(action(async (configs: string[], _o: unknown, c: Command) => matrixCommand(c, configs)));
}

/**
 * The -c/--config values given after `matrix`. The root command owns -c (one config for every verb) and keeps
 * only the last one, so the matrix reads its list from the command line itself.
 */
export function configsFromArgv(argv: readonly string[]): string[] {
  const at = argv.indexOf('matrix');
  const out: string[] = [];
  for (let i = at + 1; at >= 0 && i < argv.length; i++) {
    const a = argv[i]!;
    if ((a === '-c' || a === '--config') && i + 1 < argv.length) out.push(argv[++i]!);
    else if (a.startsWith('--config=')) out.push(a.slice('--config='.length));
    else if (a.startsWith('-c') && a.length > 2 && !a.startsWith('--')) out.push(a.slice(2));
  }
  return out;
}

const fmtS = (s: number): string => (s >= 90 ? `${Math.floor(s / 60)}m${String(Math.round(s % 60)).padStart(2, '0')}s` : `${s.toFixed(0)}s`);

function printPlan(plan: MatrixPlan): void {
  info(`matrix: ${plan.topologies.length} topologies${plan.simulate ? ' on the simulator' : ''}, results in ${plan.resultsDir}, sheet ${plan.sheetPath}`);
  for (const [i, t] of plan.topologies.entries()) {
    const steady = t.runs.filter((r) => r.kind === 'steady');
    const flood = t.runs.find((r) => r.kind === 'flood');
    info(
      `  ${i + 1}. ${t.set.padEnd(26)} ${t.connector.padEnd(24)} ${t.engines} engine${t.engines === 1 ? '' : 's'}  ` +
        `rates ${steady.map((r) => r.rate).join(',') || '-'} x ${t.pd.bench.sprint.durationSeconds} s${flood ? `, flood ${flood.count}` : ''}  ~${fmtS(t.estimateS)}  (${t.config})`,
    );
  }
  info(`estimated total ${fmtS(plan.estimateS)}`);
}

async function matrixCommand(cmd: Command, positional: string[]): Promise<number> {
  const f = parseFlags(matrixFlagsSchema, flagValues(cmd));
  const configs = [...configsFromArgv(process.argv), ...positional];
  const first = configs[0] ? (await loadConfig({ configPath: configs[0] })).config : null;
  const search = f.search && first ? searchSettings({ goodput: f.goodput, attainment: f.attainment, precision: f.precision, budget: f.budget }, first) : null;
  const plan = await planMatrix({
    configs,
    simulate: f.simulate === true,
    rates: f.rates,
    durationSeconds: f.duration,
    floodPrompts: f.floodPrompts,
    resultsDir: f.resultsDir,
    sheetPath: f.sheet,
    search,
  });
  printPlan(plan);
  const started = performance.now();
  // The ETA: the estimates of what is left, scaled by how the estimates of what is done compared with reality.
  let doneEstimate = 0;
  let leftEstimate = plan.estimateS;
  const account = (seconds: number): void => {
    doneEstimate += seconds;
    leftEstimate = Math.max(0, leftEstimate - seconds);
  };
  const overall = (what: string): void => {
    const elapsed = (performance.now() - started) / 1000;
    const pace = doneEstimate > 0 ? Math.min(3, Math.max(0.5, elapsed / doneEstimate)) : 1;
    info(err.cyan(`matrix ${fmtS(elapsed)} elapsed, ETA ${fmtS(leftEstimate * pace)}: ${what}`));
  };
  const sig = interruptHandling();
  let progress: ReturnType<typeof createProgress> | null = null;
  let done = 0;
  try {
    const res = await runMatrix({
      plan,
      pdEntry: fileURLToPath(new URL('../../main.js', import.meta.url)),
      resume: f.resume,
      search,
      slos: f.goodput ?? null,
      stopSignal: sig.stop.signal,
      abortSignal: sig.abort.signal,
      hooks: {
        onTopologyStart: (t, i) => overall(`[${i + 1}/${plan.topologies.length}] ${t.set}: pd up -d${plan.simulate ? ' --simulate' : ''}`),
        onUp: (t, ms, ok, error) => {
          account(upEstimate(plan.simulate));
          // A topology that did not start does none of its runs.
          if (!ok) account(t.runs.reduce((s, r) => s + runEstimateS(r, t.pd.bench.sprint.durationSeconds), 0) + (search ? search.budgetSeconds : 0));
          if (ok) info(err.dim(`${t.set}: ready in ${(ms / 1000).toFixed(1)} s`));
          else warn(`${t.set}: ${error}`);
        },
        onRunStart: (t, run, k, total) => {
          overall(`${t.set} ${run.name} (${k + 1}/${total})`);
          progress = createProgress({ label: `${t.set} ${run.name}`, total: run.count, enabled: f.progress !== false && !f.json });
          return progress.onEvent;
        },
        onRunEnd: (t, run, out) => {
          progress?.done();
          done++;
          if (!f.json) process.stdout.write(formatSummary(out.result));
          account(runEstimateS(run, t.pd.bench.sprint.durationSeconds));
          if (out.result.pd_failed) warn(`${t.set} ${out.result.pd_run_name} failed: ${out.result.pd_error}`);
        },
        onSkip: (t, run, reason) => {
          account(runEstimateS(run, t.pd.bench.sprint.durationSeconds));
          warn(`${t.set}: skipping ${run.name}: ${reason}`);
        },
        onSearch: (t, r) => {
          account(search?.budgetSeconds ?? 0);
          if (!f.json) process.stdout.write(`${t.set}: ${formatAnswer(r)}\n`);
        },
        onDown: (t, ms) => {
          account(2);
          info(err.dim(`${t.set}: pd down in ${(ms / 1000).toFixed(1)} s`));
        },
        onResumeSkip: (t) => {
          account(t.estimateS);
          info(`${t.set}: complete in ${plan.resultsDir}, skipped (--resume)`);
        },
      },
    });
    const sets = res.topologies.filter((t) => t.status !== 'failed' || t.runs.some((r) => !r.pd_failed)).map((t) => t.set);
    let comparison = null;
    if (sets.length >= 2) {
      comparison = await compareSets({ resultsDir: plan.resultsDir, sets }).catch(() => null);
      if (comparison && !f.json) process.stdout.write('\n' + formatComparison(comparison, { color: process.stdout.isTTY && !process.env.NO_COLOR }));
    }
    let report: string | null = null;
    try {
      report = await writeReport({ resultsDir: plan.resultsDir, out: resolve(plan.resultsDir, 'report.html'), sheetPath: plan.sheetPath, sets: plan.topologies.map((t) => t.set) });
    } catch (e) {
      warn(`report not written: ${(e as Error).message}`);
    }
    if (f.json) printJson({ ...res, plan: { ...plan, topologies: plan.topologies.map(({ pd: _pd, ...t }) => t) }, report, comparison });
    else {
      for (const g of res.gaps) info(`gap ${g.from} -> ${g.to}: ${(g.ms / 1000).toFixed(1)} s (pd down, then pd up to ready)`);
      const caps = res.topologies.filter((t) => t.capacity !== null);
      if (caps.length > 0) {
        process.stdout.write('\nSLO capacity (pd bench search):\n');
        for (const t of caps) process.stdout.write(`  ${t.set.padEnd(28)} ${formatAnswer(t.capacity!)}\n`);
      }
      const failed = res.topologies.filter((t) => t.status === 'failed');
      for (const t of failed) warn(`${t.set} failed: ${t.error}`);
      if (res.sheetError) warn(`sheet not fully updated: ${res.sheetError}`);
      info(`${done} runs in ${fmtS((performance.now() - started) / 1000)}; sheet ${plan.sheetPath}; summary ${res.file}`);
      if (report) info(`report: file://${report}`);
    }
    if (res.interrupted) return 130;
    return res.topologies.some((t) => t.status === 'failed') ? 1 : 0;
  } finally {
    sig.dispose();
  }
}
