import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer as createHttpServer } from 'node:http';
import { diagnose } from '../../src/stack/diagnose.js';
import { writeFile, mkdir, readFile, rm } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { makeStackDir, alive, groupAlive } from '../helpers/stack.js';
import { simEntryPath } from '../../src/sim/entry.js';
import { ENGINE_INIT_FAILED, engineCoreFailure, modelNotFoundMessage } from '../../src/sim/startup-errors.js';

/** Every engine pid the failed start recorded in its logs is gone. */
function assertNoEngines(stderr: string): void {
  for (const m of stderr.matchAll(/APIServer pid=(\d+)/g)) assert.equal(alive(Number(m[1])), false, `engine ${m[1]} left running`);
}

test('port in use: pre-flight names the port; without pre-flight the supervisor still refuses', async () => {
  const s = await makeStackDir();
  // Another server that answers like a healthy engine: pd must not mistake it for its own producer.
  const impostor = createHttpServer((req, res) => {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(req.url === '/v1/models' ? JSON.stringify({ data: [{ id: '/mnt/models/Qwen3-4B-Instruct-2507' }] }) : '');
  });
  await new Promise<void>((r) => impostor.listen(s.ports.producer, '127.0.0.1', r));
  try {
    const pre = await s.pd(['up', '--simulate']);
    assert.equal(pre.code, 1);
    assert.match(pre.stderr, new RegExp(`ports: in use: ${s.ports.producer} \\(producer-0\\)`));
    const r = await s.pd(['up', '-d', '--simulate', '--skip-preflight']);
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, new RegExp(`producer-0 cannot start: port ${s.ports.producer} is already in use`));
    assert.match(r.stderr, /Stop whatever listens on/);
    assertNoEngines(r.stderr);
    assert.equal(existsSync(join(s.dir, 'state', 'state.json')), false);
  } finally {
    impostor.close();
    await s.cleanup();
  }
});

test('the engine log tail is diagnosed: Errno 98 means the port is taken', () => {
  const d = diagnose('OSError: [Errno 98] Address already in use', { name: 'producer-0', port: 8100, gpus: [0], model: 'm' });
  assert.equal(d?.cause, 'port 8100 is already in use');
  assert.match(d.hint, /another port/);
  assert.equal(diagnose('all good', { name: 'p', port: 1, gpus: [0], model: 'm' }), null);
});

test('start-up failure diagnosed: CUDA out of memory, with the last lines of its log; the other engine is stopped', async () => {
  const env = { PD_SIM_FAIL_STARTUP: 'cuda-oom' };
  const s = await makeStackDir();
  const cfg = { ...s.config, consumers: [{ gpus: [1], host: '127.0.0.1', port: s.ports.consumer, env }] };
  await writeFile(join(s.dir, 'pd.config.json'), JSON.stringify(cfg));
  try {
    const r = await s.pd(['up', '--simulate']);
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, /consumer-0 exited during start-up \(exit code 1\): CUDA out of memory on GPU 1/);
    assert.match(r.stderr, /lower --gpu-memory-utilization/);
    assert.match(r.stderr, /last lines of .*consumer-0\.log/);
    assertNoEngines(r.stderr);
    assert.equal(existsSync(join(s.dir, 'state', 'state.json')), false);
  } finally {
    await s.cleanup();
  }
});

// The other faults take the same path as the CUDA OOM above (exit during start-up → the log tail is diagnosed):
// their diagnosis is checked on the simulator's own start-up error text, as its log shows it.
test('start-up failures diagnosed from the engine log tail: model not found, GPU id not present', () => {
  const ctx = { name: 'consumer-0', port: 8200, gpus: [1], model: '/mnt/models/nope' };
  const logged = (text: string, who = 'APIServer'): string => text.split('\n').map((l) => `(${who} pid=7) ${l}`).join('\n');
  const missing = diagnose(logged(modelNotFoundMessage(ctx.model)), ctx);
  assert.equal(missing?.cause, 'the model /mnt/models/nope was not found');
  assert.match(missing.hint, /Check `model` in the config/);
  const ordinal = diagnose(`${logged(engineCoreFailure('RuntimeError: CUDA error: invalid device ordinal'), 'EngineCore_DP0')}\n${logged(ENGINE_INIT_FAILED)}`, ctx);
  assert.equal(ordinal?.cause, 'GPU 1 is not present on this machine');
  assert.match(ordinal.hint, /nvidia-smi -L/);
});

test('connector: an unsupported name is refused by pre-flight and by the engine; auto picks ExampleConnector for the vLLM version and starts, asking `vllm --version` once per pd up -d', async () => {
  const s = await makeStackDir({ model: 'Qwen/Qwen3-0.6B' }, { PD_SIM_VLLM_VERSION: '0.13.0' });
  const counter = join(s.dir, 'version-calls');
  const wrapper = join(s.dir, 'vllm');
  await writeFile(
    wrapper,
    `#!/bin/sh\nif [ "$1" = "--version" ]; then echo call >> '${counter}'; fi\nexec '${process.execPath}' '${simEntryPath()}' "$@"\n`,
    { mode: 0o755 },
  );
  const cfg = { ...s.config, engine: { command: wrapper }, kv: { ...(s.config.kv as object), connector: 'SharedStorageConnector' } };
  await writeFile(join(s.dir, 'pd.config.json'), JSON.stringify(cfg));
  try {
    const pre = await s.pd(['up', '--simulate']);
    assert.equal(pre.code, 1);
    assert.match(pre.stderr, /does not accept SharedStorageConnector/);
    const r = await s.pd(['up', '--simulate', '--skip-preflight']);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /Unsupported connector type: SharedStorageConnector/);
    assert.match(r.stderr, /renamed it to ExampleConnector/);
    assert.match(r.stderr, /hint: Set "kv": \{ "connector": "ExampleConnector" \}/);
    // connector auto picks the new name for this version and starts: the real vLLM command (the wrapper) is asked
    // its version once, however many engines and checks need it.
    await rm(counter, { force: true });
    const auto = await s.pd(['up', '-d', '--connector', 'auto']);
    assert.equal(auto.code, 0, auto.stderr);
    assert.match(auto.stderr, /connector ExampleConnector/);
    const calls = (await readFile(counter, 'utf8')).trim().split('\n').length;
    assert.equal(calls, 1, 'vllm --version calls');
  } finally {
    await s.cleanup();
  }
});

test('an engine that misses its health deadline fails with the last probe and is stopped', async () => {
  const s = await makeStackDir({ health: { timeoutSeconds: 1, intervalMs: 50 } }, { PD_SIM_STARTUP_DELAY: '60' });
  try {
    const r = await s.pd(['up', '--simulate']);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /was not healthy within 1 s \(last probe: not listening yet\)/);
    assertNoEngines(r.stderr);
  } finally {
    await s.cleanup();
  }
});

test('a missing vLLM command fails pre-flight with an install hint', async () => {
  const s = await makeStackDir({ engine: { command: '/nonexistent/vllm' } });
  try {
    const r = await s.pd(['up']);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /vLLM command: \/nonexistent\/vllm not found/);
    assert.match(r.stderr, /--simulate/);
  } finally {
    await s.cleanup();
  }
});

test('pd doctor with a fake nvidia-smi: GPU ids, memory in use, missing GPUs', async () => {
  const bin = await makeStackDir();
  const fakeDir = join(bin.dir, 'bin');
  await mkdir(fakeDir);
  const smi = (rows: string) => writeFile(join(fakeDir, 'nvidia-smi'), `#!/bin/sh\ncat <<'X'\n${rows}\nX\n`, { mode: 0o755 });
  // The simulator as the "vllm" command, so the real (non-simulated) checks run.
  const s = await makeStackDir({ engine: { command: `${process.execPath} ${simEntryPath()}` }, model: bin.dir });
  try {
    const env = { PATH: `${fakeDir}:${process.env.PATH}` };
    await smi('0, NVIDIA A100-SXM4-80GB, 512, 81920\n1, NVIDIA A100-SXM4-80GB, 40000, 81920');
    const warn = await s.pd(['doctor', '--no-storage-speed'], env);
    assert.equal(warn.code, 0, warn.stdout + warn.stderr);
    assert.match(warn.stdout, /✔ vLLM command\s+.* → version 0\.31\.0/);
    assert.match(warn.stdout, /! GPUs\s+GPU 0 NVIDIA A100-SXM4-80GB: 512\/81920 MiB used; GPU 1 NVIDIA A100-SXM4-80GB: 40000\/81920 MiB used/);
    assert.match(warn.stdout, /GPU 1 already has memory in use/);
    assert.match(warn.stdout, /✔ ports/);
    assert.match(warn.stdout, /✔ shared storage\s+.*(writable|can be created); .* free/);
    assert.match(warn.stdout, /! model\s+.* has no config\.json/);

    await smi('0, NVIDIA A100-SXM4-80GB, 512, 81920');
    const missing = await s.pd(['doctor', '--json', '--no-storage-speed'], env);
    assert.equal(missing.code, 1);
    const report = JSON.parse(missing.stdout);
    const gpus = report.checks.find((c: any) => c.name === 'GPUs');
    assert.equal(gpus.status, 'fail');
    assert.match(gpus.detail, /GPU 1 not present \(this machine has 0\)/);
    const up = await s.pd(['up'], env);
    assert.equal(up.code, 1);
    assert.match(up.stderr, /pre-flight failed: GPUs: GPU 1 not present/);

    const sim = await s.pd(['doctor', '--simulate', '--no-storage-speed'], { PATH: '/usr/bin:/bin' });
    assert.equal(sim.code, 0, sim.stdout);
    assert.match(sim.stdout, /- GPUs\s+not needed under --simulate/);
  } finally {
    await s.cleanup();
    await bin.cleanup();
  }
});

test('an engine command without --version is only a warning; a GPU shared by both roles is refused by pd up unless allowed, and then it starts', async () => {
  // A stand-in "vllm" that is not the simulator's own binary name and prints nothing for --version.
  const s = await makeStackDir();
  const wrapper = join(s.dir, 'my-vllm');
  await writeFile(wrapper, `#!/bin/sh\n[ "$1" = "--version" ] && exit 3\nexec "${process.execPath}" "${simEntryPath()}" "$@"\n`, { mode: 0o755 });
  const cfg = { ...s.config, model: s.dir, engine: { command: wrapper }, consumers: [{ gpus: [0], host: '127.0.0.1', port: s.ports.consumer }] };
  await writeFile(join(s.dir, 'pd.config.json'), JSON.stringify(cfg));
  try {
    const doctor = await s.pd(['doctor']);
    assert.match(doctor.stdout, /! vLLM command\s+.*printed no version/);
    const r = await s.pd(['up', '--skip-preflight']);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /GPU 0 is used by both producer-0 and consumer-0/);
    assert.match(r.stderr, /--allow-shared-gpus/);
    const ok = await s.pd(['up', '-d', '--allow-shared-gpus']);
    assert.equal(ok.code, 0, ok.stderr);
    assert.match(ok.stderr, /PD stack ready/);
    const state = await s.state();
    assert.equal(state.engines.length, 2);
    assert.ok(state.engines.every((e: any) => groupAlive(e.pid)));
  } finally {
    await s.cleanup();
  }
});
