import type { Command } from 'commander';
import { action } from '../run-command.js';
import { addStackOptions, loadPlan, type StackFlags } from '../stack-options.js';
import { assertValid, formatProblem, warningsOf } from '../../config/problems.js';
import { runPreflight, failedChecks } from '../../stack/preflight.js';
import type { StackPlan } from '../../stack/plan/build.js';
import type { ProbeResult } from '../../stack/health.js';
import { Supervisor } from '../../stack/supervisor/supervisor.js';
import { janitorUnits } from '../../cache/janitor-unit.js';
import { RuntimeError } from '../../util/errors.js';
import { out, err, warn } from '../output.js';
import { showStartup } from '../startup-view.js';
import { attachServingView } from '../serving-view.js';
import { readySummary } from '../up-ui.js';
import { formatChecks } from './doctor.js';
import { detach, readPlanFile, PLAN_FILE_ENV } from '../detach.js';

interface UpFlags extends StackFlags {
  detach?: boolean;
  skipPreflight?: boolean;
}

export function register(program: Command): void {
  const cmd = program
    .command('up')
    .description('start every engine, wait for health, then start the proxy (foreground; Ctrl+C stops it all)')
    .option('-d, --detach', 'run the supervisor in the background; return once the stack is ready (or failed)')
    .option('--skip-preflight', 'do not run the pre-flight checks (see `pd doctor`)');
  addStackOptions(cmd).action(action((flags: UpFlags) => up(cmd, flags)));
}

async function up(cmd: Command, flags: UpFlags): Promise<number> {
  // The background supervisor of `pd up -d` runs the plan its parent built (and probed vLLM for): nothing twice.
  const planFile = process.env[PLAN_FILE_ENV];
  if (planFile) return foreground(await readPlanFile(planFile), { detachedChild: true });

  const plan = await loadPlan(cmd, flags);
  assertValid(plan.problems, plan.configPath ?? 'the configuration');
  for (const p of warningsOf(plan.problems)) warn(formatProblem(p));
  if (!flags.skipPreflight) {
    const checks = await runPreflight(plan);
    const failed = failedChecks(checks);
    if (failed.length > 0) {
      process.stderr.write(formatChecks(checks, err));
      throw new RuntimeError(`pre-flight failed: ${failed.map((c) => `${c.name}: ${c.detail}`).join('; ')}`, {
        hint: failed[0]!.hint ?? 'Fix the failed checks above (`pd doctor` shows them again).',
      });
    }
  }
  if (flags.detach) return detach(plan);
  return foreground(plan, { detachedChild: false });
}

async function foreground(plan: StackPlan, opts: { detachedChild: boolean }): Promise<number> {
  const supervisor = new Supervisor({ plan, units: janitorUnits(plan) });
  const interactive = !opts.detachedChild && process.stderr.isTTY === true;
  // In supervisor.log (the background supervisor) notices carry the time, so `pd logs` merges them in order.
  const stamp = (): string => (opts.detachedChild ? `${new Date().toISOString()} ` : '');
  const note = (message: string): void => void process.stderr.write(`${stamp()}${err.yellow('pd |')} ${message}\n`);
  supervisor.events.on('notice', note);

  let signals = 0;
  let requestStop!: () => void;
  const stopRequested = new Promise<void>((resolve) => (requestStop = resolve));
  const onSignal = (signal: NodeJS.Signals): void => {
    signals++;
    if (signals > 1) {
      process.stderr.write(`${err.red('pd |')} second ${signal}: killing everything now\n`);
      for (const e of supervisor.engines) if (e.proc?.pgid) try { process.kill(-e.proc.pgid, 'SIGKILL'); } catch { /* gone */ }
      process.exit(130);
    }
    process.stderr.write(`${err.yellow('pd |')} ${signal} received: stopping the stack (again to force)\n`);
    void supervisor.stop(signal);
    requestStop();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  process.on('SIGHUP', onSignal);

  const started = supervisor.start().then(() => supervisor.proxyHandle!.url);
  try {
    if (opts.detachedChild) await started;
    else {
      await showStartup(
        {
          engines: supervisor.engines.map((e) => ({ name: e.name, gpus: e.plan.gpus, port: e.plan.port })),
          done: started,
          onProgress: (l) => {
            const line = (name: string, text: string): void => l.line(name, text);
            const probe = (name: string, p: ProbeResult, ms: number): void => l.probe(name, p.detail, ms);
            const ready = (name: string, ms: number): void => l.ready(name, ms);
            supervisor.events.on('line', line).on('probe', probe).on('ready', ready);
            return () => void supervisor.events.off('line', line).off('probe', probe).off('ready', ready);
          },
        },
        { interactive },
      );
    }
  } catch (e) {
    if (signals > 0) {
      // Interrupted during start-up: everything started is stopped (supervisor.start cleans up on failure).
      await supervisor.stop();
      process.stderr.write(`${err.yellow('pd |')} start-up interrupted; nothing left running\n`);
      return 130;
    }
    throw e;
  }

  const detachView = opts.detachedChild
    ? () => undefined
    : attachServingView(supervisor, {
        write: (text) => void process.stdout.write(text),
        note: (text) => void process.stderr.write(`${err.dim('pd |')} ${text}\n`),
        colours: out,
        summaryEveryMs: 5_000,
      });
  if (!opts.detachedChild) process.stderr.write(readySummary(plan, supervisor.proxyHandle!.url, err));
  await stopRequested;
  const report = await supervisor.stop();
  detachView();
  for (const e of report.engines) process.stderr.write(`${err.dim('pd |')} stopped ${e.name} (pid ${e.pid ?? '-'}, ${e.how})\n`);
  process.stderr.write(`${err.green('pd |')} stack stopped; nothing left running\n`);
  return 0;
}
