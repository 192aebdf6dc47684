/** `pd bench compare`, `pd bench report`, `pd bench sheet`: read archived runs (and sheets), write views. */
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import type { Command } from 'commander';
import { action } from '../../run-command.js';
import { info, printJson } from '../../output.js';
import { RuntimeError, UsageError } from '../../../util/errors.js';
import { loadConfig } from '../../../config/load.js';
import { compareSets, compareSheets, formatComparison } from '../../../bench/compare.js';
import { writeSheet, writeLongCsv } from '../../../bench/sheet.js';
import { loadRunResults } from '../../../bench/result.js';
import { writeReport } from '../../../bench/report/html.js';

interface ResultsFlags {
  config?: string;
  resultsDir?: string;
  fromSheet?: string;
  json?: boolean;
  sets?: string;
  out?: string;
  set?: string;
}

async function resultsContext(cmd: Command): Promise<{ o: ResultsFlags; config: Awaited<ReturnType<typeof loadConfig>>['config']; resultsDir: string }> {
  const o = cmd.optsWithGlobals<ResultsFlags>();
  const { config } = await loadConfig({ configPath: o.config });
  const resultsDir = o.resultsDir ? resolve(o.resultsDir) : config.bench.resultsDir;
  if (o.fromSheet !== undefined && !existsSync(resolve(o.fromSheet))) {
    throw new UsageError(`sheet ${resolve(o.fromSheet)} does not exist`, { hint: 'Pass the path of a sprint sheet CSV (pd bench writes bench.sheet).' });
  }
  return { o, config, resultsDir };
}

export function registerResults(bench: Command): void {
  bench
    .command('compare')
    .description('put sets side by side: per-rate values, differences against the first set, and which differences are significant')
    .argument('<sets...>', 'two or more set names under the results dir (or in --from-sheet)')
    .option('--results-dir <dir>', 'where runs are archived (default: bench.resultsDir)')
    .option('--from-sheet <csv>', 'compare the sets of a sprint sheet CSV instead (e.g. the reference real-GPU sheet)')
    .option('--json', 'print the comparison as JSON')
    .action(
      action(async (sets: string[], _o: unknown, cmd: Command) => {
        if (sets.length < 2) throw new UsageError('compare needs at least two sets', { hint: 'e.g. pd bench compare pd-disaggregation tensor-parallelism' });
        const { o, resultsDir } = await resultsContext(cmd);
        const c = o.fromSheet !== undefined ? await compareSheets(resolve(o.fromSheet), sets) : await compareSets({ resultsDir, sets });
        if (o.json) printJson(c);
        else process.stdout.write(formatComparison(c, { color: process.stdout.isTTY && !process.env.NO_COLOR }));
      }),
    );

  bench
    .command('report')
    .description('write a self-contained HTML report (charts per set and rate, baseline view, runs)')
    .option('--sets <list>', 'comma-separated sets (default: all); the first is the baseline')
    .option('--out <file>', 'output file (default: <resultsDir>/report.html)')
    .option('--results-dir <dir>', 'where runs are archived (default: bench.resultsDir)')
    .option('--from-sheet <csv>', 'also chart the sets of this sprint sheet CSV (default: bench.sheet when it exists)')
    .action(
      action(async (_o: unknown, cmd: Command) => {
        const { o, config, resultsDir } = await resultsContext(cmd);
        const out = o.out ? resolve(o.out) : resolve(resultsDir, 'report.html');
        const sheetPath = o.fromSheet !== undefined ? resolve(o.fromSheet) : config.bench.sheet;
        const sets = o.sets ? o.sets.split(',').map((s) => s.trim()).filter(Boolean) : undefined;
        const path = await writeReport({ resultsDir, sets, out, sheetPath });
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
        const { o, config, resultsDir } = await resultsContext(cmd);
        const all = await loadRunResults(resultsDir);
        if (all.length === 0) throw new RuntimeError(`no runs under ${resultsDir}`, { hint: 'run `pd bench` first' });
        const sets = [...new Set(all.map((r) => r.pd_set))].filter((s) => o.set === undefined || s === o.set);
        for (const set of sets) await writeSheet({ sheetPath: config.bench.sheet, set, results: all.filter((r) => r.pd_set === set) });
        await writeLongCsv({ path: resolve(resultsDir, 'results-long.csv'), results: all });
        info(`sheet: ${config.bench.sheet}\nlong CSV: ${resolve(resultsDir, 'results-long.csv')}`);
      }),
    );
}
