/**
 * `pd up -d`: the supervisor runs in the background, started with the plan this process built (written owner-only
 * to the state dir, so the child probes nothing again). This process shows the same start-up progress as the
 * foreground, read from the state file and the engines' logs, and returns once the stack is ready — or prints
 * this run's part of the supervisor log when it is not.
 */
import { spawn } from 'node:child_process';
import { open, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { StackPlan } from '../stack/plan/build.js';
import { ensurePrivateDir, readStackState, PRIVATE_FILE_MODE } from '../stack/state.js';
import { stackIdOf, STACK_ID_ENV } from '../stack/identity.js';
import { tailFile } from '../stack/logs.js';
import { RuntimeError } from '../util/errors.js';
import { sleep } from '../util/timers.js';
import { err } from './output.js';
import { showStartup, type StartupSource } from './startup-view.js';
import { readySummary } from './up-ui.js';

export const PLAN_FILE_ENV = 'PD_SUPERVISOR_PLAN';

export async function readPlanFile(path: string): Promise<StackPlan> {
  let plan: StackPlan;
  try {
    plan = JSON.parse(await readFile(path, 'utf8')) as StackPlan;
  } catch (e) {
    throw new RuntimeError(`cannot read the stack plan ${path}: ${(e as Error).message}`, { hint: 'Start the stack again with `pd up -d`.' });
  }
  await rm(path, { force: true });
  if (plan.version !== 1) throw new RuntimeError(`${path} is a plan of another pd version`, { hint: 'Start the stack again with `pd up -d`.' });
  return plan;
}

/** Progress of the background supervisor, from the files it writes. */
function fileSource(plan: StackPlan, childPid: number, exited: () => boolean, supervisorLog: string, logFrom: number): StartupSource {
  const listeners: Parameters<StartupSource['onProgress']>[0][] = [];
  const t0 = Date.now();
  const ready = new Set<string>();
  const done = (async (): Promise<string> => {
    for (;;) {
      const state = await readStackState(plan.stateDir).catch(() => null);
      const ours = state !== null && state.supervisorPid === childPid;
      for (const e of plan.engines) {
        const es = ours ? state.engines.find((x) => x.name === e.name) : undefined;
        const last = (await tailFile(e.logFile, 1).catch(() => ({ lines: [] as string[] }))).lines[0];
        for (const l of listeners) {
          if (last) l.line(e.name, last);
          if (es?.status === 'healthy' && !ready.has(e.name)) {
            ready.add(e.name);
            l.ready(e.name, Date.now() - t0);
          } else l.probe(e.name, es?.status ?? 'starting', Date.now() - t0);
        }
      }
      if (ours && (state.phase === 'ready' || state.phase === 'degraded') && state.proxy) return state.proxy.url;
      if (exited() || (ours && state.phase === 'failed')) {
        // Give the supervisor a moment to finish its log, then show what this run wrote to it.
        await sleep(200);
        const text = await readFile(supervisorLog, 'utf8').catch(() => '');
        const lines = text.slice(logFrom).split('\n').filter((l) => l.trim() !== '');
        throw new RuntimeError('the stack did not start', {
          details: [`from ${supervisorLog}:`, ...lines.slice(-30).map((l) => `  ${l}`)],
          hint: "The supervisor's log above says why; `pd logs` shows the engines' logs.",
        });
      }
      await sleep(150);
    }
  })();
  return {
    engines: plan.engines.map((e) => ({ name: e.name, gpus: e.gpus, port: e.port })),
    done,
    onProgress: (l) => void listeners.push(l),
  };
}

export async function detach(plan: StackPlan): Promise<number> {
  await ensurePrivateDir(plan.logDir);
  const planFile = join(plan.stateDir, `supervisor-plan.${process.pid}.json`);
  await writeFile(planFile, JSON.stringify(plan), { mode: PRIVATE_FILE_MODE });
  const supervisorLog = join(plan.logDir, 'supervisor.log');
  const fh = await open(supervisorLog, 'a', PRIVATE_FILE_MODE);
  const logFrom = (await fh.stat()).size;
  const main = fileURLToPath(new URL('./main.js', import.meta.url));
  const child = spawn(process.execPath, [main, 'up'], {
    detached: true,
    stdio: ['ignore', fh.fd, fh.fd],
    env: { ...process.env, [PLAN_FILE_ENV]: planFile, [STACK_ID_ENV]: stackIdOf(plan.stateDir), NO_COLOR: '1' },
  });
  await fh.close();
  let exited = false;
  child.on('exit', () => (exited = true));
  child.unref();
  process.stderr.write(`${err.dim('pd |')} supervisor started in the background (pid ${child.pid}); waiting for the stack…\n`);
  try {
    const url = await showStartup(fileSource(plan, child.pid!, () => exited, supervisorLog, logFrom), {
      interactive: process.stderr.isTTY === true,
    });
    process.stderr.write(readySummary(plan, url, err));
    process.stderr.write(`  stop it with ${err.bold('pd down')}; ${err.bold('pd status')} shows it\n`);
    return 0;
  } catch (e) {
    await rm(planFile, { force: true });
    if (!exited) {
      try {
        process.kill(child.pid!, 'SIGTERM');
      } catch {
        // gone
      }
    }
    throw e;
  }
}
