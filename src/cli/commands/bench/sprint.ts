/** `pd bench`: the sprint from config (steady rates, then flood), archived, sheet and report written. */
import { resolve } from 'node:path';
import type { Command } from 'commander';
import { action } from '../../run-command.js';
import { err, info, printJson, warn } from '../../output.js';
import { parseFlags, sprintFlagsSchema } from '../../../bench/flags.js';
import { requestOptions } from '../../../bench/run-plan.js';
import { ensureResultsDir, checkTarget } from '../../../bench/preflight.js';
import { cacheToClear, clearBeforeRun } from '../../../bench/cache-policy.js';
import { runSprint, type PlannedRun } from '../../../bench/sprint.js';
import { createProgress } from '../../../bench/progress.js';
import { writeReport } from '../../../bench/report/html.js';
import { addFlags, benchContext, COMMON_FLAGS, flagValues, interruptHandling, printCleared, printRun, REQUEST_FLAGS } from './shared.js';

export function registerSprint(program: Command): Command {
  const bench = program
    .command('bench')
    .description('run the benchmark sprint from config (steady rates, then flood), archive it, fill the sheet');
  addFlags(bench, [...COMMON_FLAGS, ...REQUEST_FLAGS, 'sheet']);
  bench.action(action(async (_o: unknown, cmd: Command) => sprintCommand(cmd)));
  return bench;
}

async function sprintCommand(cmd: Command): Promise<number> {
  const f = parseFlags(sprintFlagsSchema, flagValues(cmd));
  const ctx = await benchContext(cmd, f);
  const engine = f.engine ?? 'builtin';
  const bench = { ...ctx.config.bench, percentiles: f.percentiles ?? ctx.config.bench.percentiles };
  await ensureResultsDir(ctx.resultsDir);
  await checkTarget(ctx.target, ctx.apiKey, f.model);
  const cachePath = await cacheToClear(ctx.config, ctx.configPath, f.keepCache, ctx.target);
  const sig = interruptHandling();
  let progress: ReturnType<typeof createProgress> | null = null;
  try {
    const res = await runSprint({
      bench,
      target: ctx.target,
      set: ctx.set,
      resultsDir: ctx.resultsDir,
      sheetPath: f.sheet === false ? null : ctx.config.bench.sheet,
      engine,
      vllmCommand: ctx.config.engine.command,
      model: f.model,
      modelPath: ctx.config.model,
      apiKey: ctx.apiKey,
      stateDir: ctx.stateDir,
      slos: f.goodput ?? null,
      request: requestOptions(f),
      numWarmups: f.numWarmups,
      stopSignal: sig.stop.signal,
      abortSignal: sig.abort.signal,
      beforeRun: async (_run: PlannedRun) => printCleared(await clearBeforeRun(cachePath), Boolean(f.json)),
      onRunStart: (run, i, total) => {
        progress = createProgress({ label: `[${i + 1}/${total}] ${run.name}`, total: run.count, enabled: f.progress !== false && engine === 'builtin' });
        return progress.onEvent;
      },
      onRunEnd: (_run, out) => {
        progress?.done();
        printRun(out, Boolean(f.json));
        if (out.result.pd_saturation?.saturated) warn(`${out.result.pd_run_name} is saturated: ${out.result.pd_saturation.reason}`);
      },
      onSkip: (run, reason) => warn(`skipping ${run.name}: ${reason}`),
    });
    if (f.json) printJson(res.runs.map((r) => r.result));
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
      if (res.skipped.length > 0) info(err.dim(`${res.skipped.length} run(s) skipped: ${res.skipped.map((s) => s.run.name).join(', ')}`));
    }
    if (res.interrupted) return 130;
    return res.runs.some((r) => r.result.pd_failed) ? 1 : 0;
  } finally {
    sig.dispose();
  }
}
