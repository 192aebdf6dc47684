import type { Command } from 'commander';
import { spawn } from 'node:child_process';
import { mkdir, open } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { action } from '../run-command.js';
import { addStackOptions, loadStack, type StackFlags, type StackContext } from '../stack-options.js';
import { makePlan } from '../../stack/plan.js';
import { assertValid } from '../../config/validate.js';
import { runPreflight, failedChecks } from '../../stack/preflight.js';
import { Supervisor } from '../../stack/supervisor.js';
import { readStackState } from '../../stack/state.js';
import { tailFile } from '../../stack/logs.js';
import { sleep } from '../../stack/process-group.js';
import { ConfigError, RuntimeError } from '../../util/errors.js';
import { out, err, warn } from '../output.js';
import { startWithTaskList, prefixer, readySummary } from '../up-ui.js';
import { formatChecks } from './doctor.js';

interface UpFlags extends StackFlags {
  detach?: boolean;
  skipPreflight?: boolean;
}

const DETACHED_ENV = 'PD_SUPERVISOR_DETACHED';

export function register(program: Command): void {
  const cmd = program
    .command('up')
    .description('start every engine, wait for health, then start the proxy (foreground; Ctrl+C stops it all)')
    .option('-d, --detach', 'run the supervisor in the background; return once the stack is ready (or failed)')
    .option('--skip-preflight', 'do not run the pre-flight checks (see `pd doctor`)');
  addStackOptions(cmd).action(action((flags: UpFlags) => up(cmd, flags)));
}

async function up(cmd: Command, flags: UpFlags): Promise<number> {
  const ctx = await loadStack(cmd, flags);
  const plan = makePlan(ctx.config, { connector: ctx.connector, command: ctx.command });
  assertValid(plan.problems, ctx.configPath ?? 'the configuration');
  const detachedChild = process.env[DETACHED_ENV] === '1';
  const gpuShare = plan.problems.find((p) => /GPU \d+ is used by both/.test(p.message));
  if (gpuShare && !ctx.config.allowSharedGpus && !ctx.simulate) {
    throw new ConfigError(`${gpuShare.field}: ${gpuShare.message}`, { hint: gpuShare.hint });
  }
  if (!detachedChild) for (const p of plan.problems) warn(`${p.field}: ${p.message}. ${p.hint}`);

  if (!flags.skipPreflight && !detachedChild) {
    const checks = await runPreflight({ config: ctx.config, connector: ctx.connector, command: ctx.command, simulate: ctx.simulate });
    const failed = failedChecks(checks);
    if (failed.length > 0) {
      process.stderr.write(formatChecks(checks, err));
      throw new RuntimeError(`pre-flight failed: ${failed.map((c) => `${c.name}: ${c.detail}`).join('; ')}`, {
        hint: failed[0]!.hint ?? 'Fix the failed checks above (`pd doctor` shows them again).',
      });
    }
  }

  if (flags.detach && !detachedChild) return detach(ctx);
  return foreground(ctx, detachedChild);
}

async function foreground(ctx: StackContext, detachedChild: boolean): Promise<number> {
  const prefix = prefixer(ctx.config, detachedChild ? null : out);
  let ready = false;
  const supervisor = new Supervisor({
    config: ctx.config,
    configPath: ctx.configPath,
    connector: ctx.connector,
    command: ctx.command,
    simulate: ctx.simulate,
    events: {
      engineLine: (name, line) => {
        if (ready && !detachedChild) process.stdout.write(prefix(name, line));
      },
      proxyLine: (line) => {
        if (ready && !detachedChild) process.stdout.write(prefix('proxy', line));
      },
      notice: (message) => process.stderr.write(`${err.yellow('pd |')} ${message}\n`),
    },
  });

  // Resolved by the first signal; supervisor.stop() is idempotent, so every path below may call it.
  let stopping = false;
  let requestStop!: () => void;
  const stopRequested = new Promise<void>((resolve) => (requestStop = resolve));
  let signals = 0;
  const onSignal = (signal: NodeJS.Signals): void => {
    signals++;
    if (signals > 1) {
      process.stderr.write(`${err.red('pd |')} second ${signal}: killing everything now\n`);
      for (const e of supervisor.engines) if (e.state.pgid) try { process.kill(-e.state.pgid, 'SIGKILL'); } catch { /* gone */ }
      process.exit(130);
    }
    process.stderr.write(`${err.yellow('pd |')} ${signal} received: stopping the stack (again to force)\n`);
    stopping = true;
    void supervisor.stop(signal);
    requestStop();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  process.on('SIGHUP', onSignal);

  try {
    await startWithTaskList(supervisor, { interactive: !detachedChild && process.stderr.isTTY === true });
  } catch (e) {
    if (stopping) {
      await supervisor.stop();
      return 0;
    }
    throw e;
  }
  ready = true;
  const proxy = supervisor.proxyHandle!;
  process.stderr.write(readySummary(ctx, proxy.url, supervisor.logDir, err));
  await stopRequested;
  const report = await supervisor.stop();
  for (const e of report.engines) process.stderr.write(`${err.dim('pd |')} stopped ${e.name} (pid ${e.pid ?? '-'}, ${e.how})\n`);
  process.stderr.write(`${err.green('pd |')} stack stopped; nothing left running\n`);
  return 0;
}

async function detach(ctx: StackContext): Promise<number> {
  const logDir = join(ctx.config.stateDir, 'logs');
  await mkdir(logDir, { recursive: true });
  const logFile = join(logDir, 'supervisor.log');
  const fh = await open(logFile, 'a');
  const main = fileURLToPath(new URL('../main.js', import.meta.url));
  const args = process.argv.slice(2).filter((a) => a !== '-d' && a !== '--detach');
  const child = spawn(process.execPath, [main, ...args, '--skip-preflight'], {
    detached: true,
    stdio: ['ignore', fh.fd, fh.fd],
    env: { ...process.env, [DETACHED_ENV]: '1', NO_COLOR: '1' },
  });
  await fh.close();
  let exited: number | null | undefined;
  child.on('exit', (code) => (exited = code));
  child.unref();
  process.stderr.write(`${err.dim('pd |')} supervisor started in the background (pid ${child.pid}); waiting for the stack…\n`);
  const deadline = Date.now() + ctx.config.health.timeoutSeconds * 1000 + 60_000;
  while (Date.now() < deadline) {
    const state = await readStackState(ctx.config.stateDir).catch(() => null);
    if (state && state.supervisorPid === child.pid && state.phase === 'ready' && state.proxy) {
      process.stderr.write(readySummary(ctx, state.proxy.url, state.logDir, err));
      process.stderr.write(`  stop it with ${err.bold('pd down')}; ${err.bold('pd status')} shows it\n`);
      return 0;
    }
    if (exited !== undefined) break;
    await sleep(100);
  }
  const { lines } = await tailFile(logFile, 30).catch(() => ({ lines: [] as string[] }));
  if (exited === undefined) {
    try { process.kill(child.pid!, 'SIGTERM'); } catch { /* gone */ }
  }
  throw new RuntimeError('the stack did not start', {
    details: [`last lines of ${logFile}:`, ...lines.map((l) => `  ${l}`)],
    hint: 'The supervisor log above says why; `pd logs` shows the engines\' logs.',
  });
}
