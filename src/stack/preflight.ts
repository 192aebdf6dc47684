/**
 * Pre-flight checks run by `pd up` and printed by `pd doctor`: vLLM command and version, model path, GPUs
 * (nvidia-smi), ports, shared storage, and no other stack in the same state dir.
 */
import { execa } from 'execa';
import { createServer } from 'node:net';
import { accessSync, existsSync, statSync } from 'node:fs';
import { access, rm, statfs, writeFile, constants } from 'node:fs/promises';
import { dirname, join, isAbsolute } from 'node:path';
import type { StackPlan } from './plan/build.js';
import { connectorUnsupported } from './plan/connector.js';
import { readStackState, stateIsLive, supervisorAlive } from './state.js';
import { formatBytes } from '../util/format.js';
import { totalmem } from 'node:os';
import { measureStorage } from './storage-speed.js';
import { kvBytesPerToken, kvGeometry } from './kv-size.js';

export type CheckStatus = 'ok' | 'warn' | 'fail' | 'skip';

export interface Check {
  name: string;
  status: CheckStatus;
  detail: string;
  hint?: string;
}

export interface PreflightOptions {
  /** Skip the port checks (pd doctor while the stack is running would see its own ports). */
  skipPorts?: boolean;
  /** Measure the shared storage's bandwidth (pd doctor; a second or so of disk I/O). */
  measureStorage?: boolean;
}

export interface GpuInfo {
  index: number;
  name: string;
  memoryUsedMiB: number;
  memoryTotalMiB: number;
}

/** Parse `nvidia-smi --query-gpu=index,name,memory.used,memory.total --format=csv,noheader`. */
export function parseNvidiaSmi(text: string): GpuInfo[] {
  return text
    .split('\n')
    .map((l) => l.trim())
    .filter(Boolean)
    .map((line) => {
      const [index, name, used, total] = line.split(',').map((s) => s.trim());
      return {
        index: Number(index),
        name: name ?? '',
        memoryUsedMiB: Number.parseFloat(used ?? 'NaN'),
        memoryTotalMiB: Number.parseFloat(total ?? 'NaN'),
      };
    })
    .filter((g) => Number.isInteger(g.index));
}

export function portFree(port: number, host: string): Promise<boolean> {
  return new Promise((resolve) => {
    const srv = createServer();
    srv.once('error', () => resolve(false));
    srv.listen({ port, host, exclusive: true }, () => srv.close(() => resolve(true)));
  });
}

function looksLocal(model: string): boolean {
  return isAbsolute(model) || model.startsWith('./') || model.startsWith('../') || model.startsWith('~');
}

/** Is argv[0] an executable file, as given (with a slash) or on PATH? */
export function findExecutable(cmd: string, pathEnv = process.env.PATH ?? ''): string | null {
  const candidates = cmd.includes('/') ? [cmd] : pathEnv.split(':').filter(Boolean).map((d) => join(d, cmd));
  for (const c of candidates) {
    try {
      accessSync(c, constants.X_OK);
      if (statSync(c).isFile()) return c;
    } catch {
      // not this one
    }
  }
  return null;
}

/** The vLLM command exists, and the version it printed (probed once, when the plan was built) knows the connector. */
function checkVllm(plan: StackPlan): Check {
  const command = plan.command;
  const label = plan.simulate ? 'simulator' : 'vLLM';
  const name = `${label} command`;
  if (findExecutable(command[0]!) === null) {
    return {
      name,
      status: 'fail',
      detail: `${command[0]} not found${command[0]!.includes('/') ? '' : ' on PATH'}`,
      hint: 'Install vLLM here (pip install vllm), point engine.command at it, or try `pd up --simulate`.',
    };
  }
  const version = plan.vllmVersion;
  if (version === null) {
    return {
      name,
      status: 'warn',
      detail: `\`${command.join(' ')} --version\` printed no version; the connector name cannot be checked against it`,
      hint: 'Is engine.command really vLLM? Set kv.connector explicitly if "auto" guesses wrong.',
    };
  }
  const why = plan.connector ? connectorUnsupported(plan.connector.name, version) : null;
  if (why !== null) {
    return {
      name,
      status: 'fail',
      detail: why.replace(/^vLLM/, label),
      hint: 'Set kv.connector to "auto" (pd then picks the name this vLLM knows), or to a connector it registers.',
    };
  }
  return { name, status: 'ok', detail: `${command.join(' ')} → version ${version}` };
}

function checkModel(plan: StackPlan): Check {
  const model = plan.model;
  if (plan.simulate) return { name: 'model', status: 'skip', detail: `${model} (not read under --simulate)` };
  if (!looksLocal(model)) return { name: 'model', status: 'skip', detail: `${model} is a hub id; vLLM resolves it` };
  if (!existsSync(model)) {
    return {
      name: 'model',
      status: 'fail',
      detail: `${model} does not exist`,
      hint: 'Fix `model` in the config (a local folder with config.json and weights) or pass --model.',
    };
  }
  if (!existsSync(join(model, 'config.json'))) {
    return { name: 'model', status: 'warn', detail: `${model} exists but has no config.json`, hint: 'Is this the model folder?' };
  }
  return { name: 'model', status: 'ok', detail: model };
}

async function checkGpus(plan: StackPlan): Promise<Check> {
  if (plan.simulate) return { name: 'GPUs', status: 'skip', detail: 'not needed under --simulate' };
  let text: string;
  try {
    const r = await execa('nvidia-smi', ['--query-gpu=index,name,memory.used,memory.total', '--format=csv,noheader,nounits'], {
      timeout: 20_000,
    });
    text = String(r.stdout);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    return code === 'ENOENT'
      ? { name: 'GPUs', status: 'skip', detail: 'nvidia-smi not found; GPU ids not checked' }
      : { name: 'GPUs', status: 'warn', detail: `nvidia-smi failed: ${(e as Error).message.split('\n')[0]}` };
  }
  const gpus = parseNvidiaSmi(text);
  const wanted = [...new Set(plan.engines.flatMap((e) => e.gpus))].sort((a, b) => a - b);
  const missing = wanted.filter((id) => !gpus.some((g) => g.index === id));
  const summary = gpus
    .filter((g) => wanted.includes(g.index))
    .map((g) => `GPU ${g.index} ${g.name}: ${g.memoryUsedMiB}/${g.memoryTotalMiB} MiB used`)
    .join('; ');
  if (missing.length > 0) {
    return {
      name: 'GPUs',
      status: 'fail',
      detail: `GPU ${missing.join(', ')} not present (this machine has ${gpus.map((g) => g.index).join(', ') || 'none'})`,
      hint: 'Fix the gpus lists in the config to ids that `nvidia-smi -L` shows.',
    };
  }
  const busy = gpus.filter((g) => wanted.includes(g.index) && g.memoryUsedMiB > 0.1 * g.memoryTotalMiB);
  if (busy.length > 0) {
    return {
      name: 'GPUs',
      status: 'warn',
      detail: summary,
      hint: `GPU ${busy.map((g) => g.index).join(', ')} already has memory in use: leftover engines? (\`nvidia-smi\` lists the processes)`,
    };
  }
  return { name: 'GPUs', status: 'ok', detail: summary };
}

async function checkPorts(plan: StackPlan, opts: PreflightOptions): Promise<Check> {
  if (opts.skipPorts) return { name: 'ports', status: 'skip', detail: 'a stack is running from this state dir' };
  const wanted = [
    ...plan.engines.map((p) => ({ who: p.name, host: p.host, port: p.port })),
    ...plan.engines.flatMap((p) =>
      p.sideChannelPort !== undefined ? [{ who: `${p.name} NIXL side channel`, host: p.host, port: p.sideChannelPort }] : [],
    ),
    ...plan.engines.flatMap((p) => (p.kvPort !== undefined ? [{ who: `${p.name} kv_port`, host: p.host, port: p.kvPort }] : [])),
    { who: 'proxy', host: plan.proxy.host, port: plan.proxy.port },
  ];
  const busy: string[] = [];
  for (const w of wanted) if (!(await portFree(w.port, w.host))) busy.push(`${w.port} (${w.who})`);
  if (busy.length > 0) {
    return {
      name: 'ports',
      status: 'fail',
      detail: `in use: ${busy.join(', ')}`,
      hint: 'Stop what listens there (`ss -ltnp`), or change the ports in the config / --port.',
    };
  }
  return { name: 'ports', status: 'ok', detail: `free: ${wanted.map((w) => w.port).join(', ')}` };
}

async function checkStorage(plan: StackPlan): Promise<Check> {
  const dir = plan.sharedStoragePath;
  if (dir === null) {
    return { name: 'shared storage', status: 'skip', detail: plan.connector ? `${plan.connector.name} does not use it` : 'no KV connector' };
  }
  const existed = existsSync(dir);
  // Check without creating anything: the folder itself, or the nearest existing parent it would be created in.
  let target = dir;
  while (!existsSync(target) && dirname(target) !== target) target = dirname(target);
  try {
    await access(target, constants.W_OK);
    if (existed) {
      const probe = join(dir, `.pd-write-test-${process.pid}`);
      await writeFile(probe, '');
      await rm(probe, { force: true });
    }
  } catch (e) {
    return {
      name: 'shared storage',
      status: 'fail',
      detail: `${existed ? dir : `${dir} cannot be created: ${target}`} is not writable (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`,
      hint:
        (e as NodeJS.ErrnoException).code === 'EROFS'
          ? `${target} is on a read-only filesystem: point kv.sharedStoragePath at a writable one (e.g. /dev/shm/pd_kv).`
          : `Create it for your user: sudo mkdir -p ${dir} && sudo chown $USER ${dir}`,
    };
  }
  const fs = await statfs(target);
  const free = fs.bavail * fs.bsize;
  const detail = `${dir} ${existed ? 'is writable' : 'can be created'}; ${formatBytes(free)} free`;
  if (free < 5 * 1024 ** 3) {
    return { name: 'shared storage', status: 'warn', detail, hint: 'Less than 5 GiB free: run `pd clear-cache` or set kv.cache.maxBytes.' };
  }
  return { name: 'shared storage', status: 'ok', detail };
}

const perSec = (b: number): string => `${formatBytes(b)}/s`;

/** What the shared-storage connector costs here: bandwidth, and save/load time of a 1k-token prompt's KV. */
async function checkStorageSpeed(plan: StackPlan): Promise<Check> {
  const name = 'KV storage speed';
  const dir = plan.sharedStoragePath;
  if (dir === null) return { name, status: 'skip', detail: 'no shared-storage connector' };
  let target = dir;
  while (!existsSync(target) && dirname(target) !== target) target = dirname(target);
  let speed;
  try {
    speed = await measureStorage(target);
  } catch (e) {
    return { name, status: 'warn', detail: `could not measure ${target}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}` };
  }
  const geo = await kvGeometry(plan.model);
  const perPrompt = kvBytesPerToken(geo) * 1000;
  const save = perPrompt / speed.writeBytesPerSec;
  const load = perPrompt / speed.readBytesPerSec;
  const detail =
    `${target}: write ${perSec(speed.writeBytesPerSec)}, read ${perSec(speed.readBytesPerSec)}` +
    `${speed.memoryBacked ? ' (memory-backed)' : ''}; a 1k-token prompt's KV (${formatBytes(perPrompt)}, ` +
    `${formatBytes(kvBytesPerToken(geo))}/token from ${geo.source}) takes ~${save.toFixed(2)} s to save, ~${load.toFixed(2)} s to load`;
  if (speed.memoryBacked) return { name, status: 'ok', detail };
  const shm = await statfs('/dev/shm').catch(() => null);
  const budget = shm ? Math.floor((shm.blocks * shm.bsize) / 2) : Math.floor(totalmem() / 4);
  return {
    name,
    status: 'warn',
    detail,
    hint:
      `Both engines run on this machine: a memory-backed folder avoids the disk. Set "kv": { "sharedStoragePath": "/dev/shm/pd_kv", ` +
      `"cache": { "maxBytes": ${budget} } } (half of /dev/shm, ${formatBytes(budget)}, so the cache fits in RAM).`,
  };
}

async function checkState(plan: StackPlan): Promise<Check> {
  const dir = plan.stateDir;
  const state = await readStackState(dir).catch(() => null);
  if (state && stateIsLive(state)) {
    return {
      name: 'state dir',
      status: 'fail',
      detail: supervisorAlive(state)
        ? `a stack is already running from ${dir} (supervisor pid ${state.supervisorPid})`
        : `engines of a stack whose supervisor died are still running from ${dir}`,
      hint: 'Use `pd status` / `pd down`, or another stateDir (PD_STATE_DIR) for a second stack.',
    };
  }
  return { name: 'state dir', status: 'ok', detail: `${dir}${state ? ' (stale state from a dead stack will be replaced)' : ''}` };
}

/** The plan's problems as one check (errors fail it; warnings are shown). */
function checkConfigProblems(plan: StackPlan): Check {
  const errors = plan.problems.filter((p) => p.severity === 'error');
  const warnings = plan.problems.filter((p) => p.severity === 'warning');
  const first = errors[0] ?? warnings[0];
  if (first === undefined) return { name: 'config', status: 'ok', detail: plan.configPath ?? 'built-in defaults' };
  const more = errors.length + warnings.length > 1 ? ` (+${errors.length + warnings.length - 1} more: \`pd config validate\`)` : '';
  return { name: 'config', status: errors.length > 0 ? 'fail' : 'warn', detail: `${first.field}: ${first.message}${more}`, hint: first.hint };
}

export async function runPreflight(plan: StackPlan, opts: PreflightOptions = {}): Promise<Check[]> {
  const state = await checkState(plan);
  const running = state.status === 'fail';
  const [gpus, ports, storage] = await Promise.all([
    checkGpus(plan),
    checkPorts(plan, { ...opts, skipPorts: opts.skipPorts || running }),
    checkStorage(plan),
  ]);
  const checks = [checkConfigProblems(plan), checkVllm(plan), checkModel(plan), gpus, ports, storage];
  if (opts.measureStorage && storage.status !== 'fail') checks.push(await checkStorageSpeed(plan));
  return [...checks, state];
}

export function failedChecks(checks: Check[]): Check[] {
  return checks.filter((c) => c.status === 'fail');
}
