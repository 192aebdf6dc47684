/**
 * `pd bench matrix` end to end with the real CLI and the simulator: PD (shared storage), TP, PP and DP fill their
 * blocks of the sheet while one topology cannot start, then --resume with a new topology (NIXL) interrupted by
 * Ctrl+C.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createServer, type Server } from 'node:net';
import { existsSync } from 'node:fs';
import { readFile, readdir, writeFile } from 'node:fs/promises';
import { rm as rmKv } from 'node:fs/promises';
import { join } from 'node:path';
import { freePorts } from '../helpers/ports.ts';
import { tempDir } from '../helpers/tmp.ts';
import { PD_BIN, runPd } from '../helpers/cli.ts';
import { SIM_ENV, alive, waitFor } from '../helpers/stack.ts';
import { parseSheet } from '../../src/bench/sheet.ts';
import { findStackProcesses, stackIdOf } from '../../src/stack/identity.ts';

let dir: string;
let cleanup: () => Promise<void>;
let blocker: Server;
const configs: Record<string, string> = {};

type Shape = 'pd' | 'nixl' | 'tp' | 'pp' | 'dp';

async function writeConfig(name: string, set: string, shape: Shape, proxyPort?: number): Promise<void> {
  const [proxy, producer, consumer, side] = await freePorts(4);
  // TP and PP: one engine on both GPUs; DP: one engine per GPU (as the templates of the sheet).
  const aggregated: Record<string, unknown[]> = {
    tp: [{ gpus: [0, 1], host: '127.0.0.1', port: producer, args: ['--tensor-parallel-size', '2'] }],
    pp: [{ gpus: [0, 1], host: '127.0.0.1', port: producer, args: ['--pipeline-parallel-size', '2'] }],
    dp: [{ gpus: [0], host: '127.0.0.1', port: producer }, { gpus: [1], host: '127.0.0.1', port: consumer }],
  };
  const engines = aggregated[shape]
    ? { topology: 'aggregated', engines: aggregated[shape] }
    : {
        producers: [{ gpus: [0], host: '127.0.0.1', port: producer }],
        consumers: [{ gpus: [1], host: '127.0.0.1', port: consumer }],
        kv: shape === 'nixl' ? { connector: 'NixlConnector', nixlSideChannelBasePort: side } : { connector: 'auto', sharedStoragePath: join(`${dir}-kv`, `kv-${name}`) },
      };
  const cfg = {
    ...engines,
    proxy: { host: '127.0.0.1', port: proxyPort ?? proxy, rateLimit: 0, accessLog: 'off', healthIntervalMs: 200 },
    health: { timeoutSeconds: 30, intervalMs: 50 },
    supervisor: { backoffMs: 100, stopGraceSeconds: 5 },
    bench: {
      set,
      resultsDir: join(dir, 'results'),
      sheet: join(dir, 'results', 'sheet.csv'),
      sprint: { inputLen: 16, outputLen: 4, numWarmups: 2 },
      search: { probeSeconds: 0.3, minRate: 8 },
    },
  };
  configs[name] = join(dir, `${name}.json`);
  await writeFile(configs[name], JSON.stringify(cfg));
}

const RAN = ['pd-disaggregation', 'tensor-parallelism', 'pipeline-parallelism', 'data-parallelism'];

before(async () => {
  ({ dir, cleanup } = await tempDir('pd-matrix-'));
  // A port in use makes one topology fail to start (pd up's pre-flight refuses it).
  blocker = createServer();
  await new Promise<void>((r) => blocker.listen(0, '127.0.0.1', r));
  const taken = (blocker.address() as { port: number }).port;
  await writeConfig('shared', 'pd-disaggregation', 'pd');
  await writeConfig('broken', 'pd-disaggregation-p2p', 'pd', taken);
  await writeConfig('tp', 'tensor-parallelism', 'tp');
  await writeConfig('pp', 'pipeline-parallelism', 'pp');
  await writeConfig('dp', 'data-parallelism', 'dp');
  await writeConfig('later', 'pd-disaggregation-nixl', 'nixl');
});
after(async () => {
  blocker?.close();
  // `pd down` only for a stack something of which is left (a state file, or a process carrying its id).
  for (const set of [...RAN, 'pd-disaggregation-p2p', 'pd-disaggregation-nixl']) {
    const stateDir = join(dir, 'results', '.matrix', set);
    if (existsSync(join(stateDir, 'state.json')) || findStackProcesses(stackIdOf(stateDir)).length > 0)
      await runPd(['down', '--grace', '1'], { cwd: dir, env: { PD_STATE_DIR: stateDir } });
  }
  await cleanup();
  // The KV folder sits beside the config's folder (pd refuses a cache path inside it).
  await rmKv(`${dir}-kv`, { recursive: true, force: true });
});

test('PD, TP, PP and DP fill the sheet while one topology cannot start: the comparison, the report, the gap', async () => {
  const r = await runPd(
    ['bench', 'matrix', '-c', configs.shared!, '-c', configs.broken!, '-c', configs.tp!, '-c', configs.pp!, '-c', configs.dp!, '--simulate', '--rates', '2', '--duration', '0.5', '--flood-prompts', '2', '--no-progress', '--search', '--goodput', 'ttft:5000', '--budget', '0.5'],
    { cwd: dir, env: SIM_ENV, timeoutMs: 180_000 },
  );
  assert.equal(r.code, 1, `a topology failed, so the exit code is not 0\n${r.stderr}`);
  // The plan first, then progress with an ETA.
  assert.match(r.stderr, /matrix: 5 topologies on the simulator/);
  assert.match(r.stderr, /1\. pd-disaggregation .*auto.*rates 2 x 0\.5 s, flood 2/);
  assert.match(r.stderr, /3\. tensor-parallelism +aggregated \(no connector\) 1 engine /);
  assert.match(r.stderr, /5\. data-parallelism +aggregated \(no connector\) 2 engines /);
  assert.match(r.stderr, /estimated total \d+s/);
  assert.match(r.stderr, /ETA (\d+m)?\d+s: pd-disaggregation steady-rate2 \(1\/2\)/);
  assert.match(r.stderr, /pd-disaggregation-p2p: pd up failed:/);
  assert.match(r.stderr, /gap pd-disaggregation -> pd-disaggregation-p2p: \d+\.\d s/);
  assert.match(r.stderr, /gap pipeline-parallelism -> data-parallelism: \d+\.\d s/);
  assert.match(r.stdout, new RegExp(RAN.join(' vs ')), 'the compare table of the sets that ran');
  // --search: each topology that ran gets its SLO capacity.
  for (const set of RAN) assert.match(r.stdout, new RegExp(`\n {2}${set} +max_rate \\d+`), `${set} SLO capacity`);
  assert.ok((await readdir(join(dir, 'results', 'data-parallelism'))).some((f) => f.startsWith('search-')));
  // Every block of the sheet: the four that ran are filled, the one that failed stays empty (never zeros).
  const sheet = parseSheet(await readFile(join(dir, 'results', 'sheet.csv'), 'utf8'));
  const block = (set: string) => sheet.sets.find((s) => s.set === set)!;
  for (const set of RAN) {
    const at2 = block(set).points.find((p) => p.rate === 2)!;
    assert.ok(at2.ttft.mean !== null && at2.ttft.mean > 0, `${set} at 2 req/s`);
    assert.ok(block(set).points.find((p) => p.kind === 'flood')!.ttft.mean !== null, `${set} flood`);
  }
  assert.ok(block('pd-disaggregation-p2p').points.every((p) => p.ttft.mean === null && p.tpot.mean === null));
  const failed = JSON.parse(await readFile(join(dir, 'results', 'pd-disaggregation-p2p', 'steady-rate2.json'), 'utf8'));
  assert.equal(failed.pd_failed, true);
  assert.match(failed.pd_error, /pd up failed/);
  const ok = JSON.parse(await readFile(join(dir, 'results', 'pipeline-parallelism', 'steady-rate2.json'), 'utf8'));
  assert.equal(ok.pd_engines, 'simulated');
  assert.equal(ok.completed, 1);
  const report = await readFile(join(dir, 'results', 'report.html'), 'utf8');
  assert.match(report, /FAILED<\/span>: pd up failed/);
  const summary = (await readdir(join(dir, 'results'))).find((f) => f.startsWith('matrix-'))!;
  const s = JSON.parse(await readFile(join(dir, 'results', summary), 'utf8'));
  assert.deepEqual(s.topologies.map((t: { status: string }) => t.status), ['done', 'failed', 'done', 'done', 'done']);
  assert.equal(s.gaps.length, 4);
  // No stack is left running.
  for (const set of RAN) assert.equal(existsSync(join(dir, 'results', '.matrix', set, 'state.json')), false);
});

test('--resume skips complete sets; Ctrl+C stops the current stack and leaves no process', async () => {
  const child = spawn(
    process.execPath,
    [PD_BIN, 'bench', 'matrix', '-c', configs.shared!, '-c', configs.tp!, '-c', configs.later!, '--simulate', '--rates', '2', '--duration', '20', '--flood-prompts', '0', '--resume', '--no-progress'],
    { cwd: dir, env: { PATH: process.env.PATH ?? '', HOME: dir, NO_COLOR: '1', ...SIM_ENV }, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let stderr = '';
  child.stderr.on('data', (d) => (stderr += d));
  child.stdout.resume();
  const exited = new Promise<number | null>((r) => child.on('exit', (c) => r(c)));
  await waitFor('the new topology to run', () => /pd-disaggregation-nixl steady-rate2/.test(stderr), 60_000);
  const state = JSON.parse(await readFile(join(dir, 'results', '.matrix', 'pd-disaggregation-nixl', 'state.json'), 'utf8'));
  const pids: number[] = [state.supervisorPid, ...state.engines.map((e: { pid: number }) => e.pid)];
  assert.ok(pids.every(alive));
  child.kill('SIGINT');
  assert.equal(await exited, 130, stderr);
  assert.match(stderr, /pd-disaggregation: complete in .*skipped \(--resume\)/);
  assert.match(stderr, /tensor-parallelism: complete in .*skipped \(--resume\)/);
  assert.match(stderr, /pd-disaggregation-nixl: pd down in/);
  await waitFor('every process of the stack to exit', () => pids.every((p) => !alive(p)), 10_000);
  const partial = JSON.parse(await readFile(join(dir, 'results', 'pd-disaggregation-nixl', 'steady-rate2.json'), 'utf8'));
  assert.equal(partial.pd_partial, true);
});
