import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer as createHttpServer } from 'node:http';
import { diagnose } from '../../src/stack/diagnose.js';
import { writeFile, mkdir } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { makeStackDir, alive, groupAlive } from '../helpers/stack.js';
import { simEntryPath } from '../../src/sim/entry.js';

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

const FAULTS: Array<[string, Record<string, string>, RegExp, RegExp]> = [
  ['CUDA out of memory', { PD_SIM_FAIL_STARTUP: 'cuda-oom' }, /consumer-0 exited during start-up \(exit code 1\): CUDA out of memory on GPU 1/, /lower --gpu-memory-utilization/],
  ['model not found', { PD_SIM_FAIL_STARTUP: 'model-not-found' }, /consumer-0 exited during start-up \(exit code 1\): the model \S+ was not found/, /Check `model` in the config/],
  ['GPU id not present', { PD_SIM_FAIL_STARTUP: 'RuntimeError: CUDA error: invalid device ordinal' }, /consumer-0 exited during start-up \(exit code 1\): GPU 1 is not present/, /nvidia-smi -L/],
];

for (const [label, env, cause, hint] of FAULTS) {
  test(`start-up failure diagnosed: ${label}; the other engine is stopped`, async () => {
    const s = await makeStackDir({
      consumers: [{ gpus: [1], host: '127.0.0.1', port: 0, env }],
    });
    // port 0 is invalid for engines; rewrite with the real port.
    const cfg = { ...s.config, consumers: [{ gpus: [1], host: '127.0.0.1', port: s.ports.consumer, env }] };
    await writeFile(join(s.dir, 'pd.config.json'), JSON.stringify(cfg));
    try {
      const r = await s.pd(['up', '--simulate']);
      assert.equal(r.code, 1, r.stderr);
      assert.match(r.stderr, cause);
      assert.match(r.stderr, hint);
      assert.match(r.stderr, /last lines of .*consumer-0\.log/);
      assertNoEngines(r.stderr);
      assert.equal(existsSync(join(s.dir, 'state', 'state.json')), false);
    } finally {
      await s.cleanup();
    }
  });
}

test('unsupported connector name: pre-flight and engine both point at ExampleConnector', async () => {
  const s = await makeStackDir({ kv: { connector: 'SharedStorageConnector' } }, { PD_SIM_VLLM_VERSION: '0.13.0' });
  try {
    const pre = await s.pd(['up', '--simulate']);
    assert.equal(pre.code, 1);
    assert.match(pre.stderr, /does not accept SharedStorageConnector/);
    const r = await s.pd(['up', '--simulate', '--skip-preflight']);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /Unsupported connector type: SharedStorageConnector/);
    assert.match(r.stderr, /renamed it to ExampleConnector/);
    assert.match(r.stderr, /hint: Set "kv": \{ "connector": "ExampleConnector" \}/);
    // connector auto picks the new name for this version and starts.
    const auto = await s.pd(['up', '-d', '--simulate', '--connector', 'auto']);
    assert.equal(auto.code, 0, auto.stderr);
    assert.match(auto.stderr, /connector ExampleConnector/);
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
    const warn = await s.pd(['doctor'], env);
    assert.equal(warn.code, 0, warn.stdout + warn.stderr);
    assert.match(warn.stdout, /✔ vLLM command\s+.* → version 0\.31\.0/);
    assert.match(warn.stdout, /! GPUs\s+GPU 0 NVIDIA A100-SXM4-80GB: 512\/81920 MiB used; GPU 1 NVIDIA A100-SXM4-80GB: 40000\/81920 MiB used/);
    assert.match(warn.stdout, /GPU 1 already has memory in use/);
    assert.match(warn.stdout, /✔ ports/);
    assert.match(warn.stdout, /✔ shared storage\s+.*(writable|can be created); .* free/);
    assert.match(warn.stdout, /! model\s+.* has no config\.json/);

    await smi('0, NVIDIA A100-SXM4-80GB, 512, 81920');
    const missing = await s.pd(['doctor', '--json'], env);
    assert.equal(missing.code, 1);
    const report = JSON.parse(missing.stdout);
    const gpus = report.checks.find((c: any) => c.name === 'GPUs');
    assert.equal(gpus.status, 'fail');
    assert.match(gpus.detail, /GPU 1 not present \(this machine has 0\)/);
    const up = await s.pd(['up'], env);
    assert.equal(up.code, 1);
    assert.match(up.stderr, /pre-flight failed: GPUs: GPU 1 not present/);

    const sim = await s.pd(['doctor', '--simulate'], { PATH: '/usr/bin:/bin' });
    assert.equal(sim.code, 0, sim.stdout);
    assert.match(sim.stdout, /- GPUs\s+not needed under --simulate/);
  } finally {
    await s.cleanup();
    await bin.cleanup();
  }
});

test('a GPU shared by both roles is refused by pd up unless allowed', async () => {
  const s = await makeStackDir();
  const cfg = { ...s.config, consumers: [{ gpus: [0], host: '127.0.0.1', port: s.ports.consumer }], engine: { command: `${process.execPath} ${simEntryPath()}` } };
  await writeFile(join(s.dir, 'pd.config.json'), JSON.stringify(cfg));
  try {
    const r = await s.pd(['up', '--skip-preflight']);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /GPU 0 is used by both producer-0 and consumer-0/);
    assert.match(r.stderr, /--allow-shared-gpus/);
    const ok = await s.pd(['up', '-d', '--skip-preflight', '--allow-shared-gpus']);
    assert.equal(ok.code, 0, ok.stderr);
    const st = JSON.parse((await s.pd(['status', '--json'])).stdout);
    assert.ok(st.engines.every((e: any) => groupAlive(e.pid)));
  } finally {
    await s.cleanup();
  }
});

test('an engine command without --version is only a warning, and pd up still starts it', async () => {
  // A stand-in "vllm" that is not the simulator's own binary name and prints nothing for --version.
  const s = await makeStackDir();
  const wrapper = join(s.dir, 'my-vllm');
  await writeFile(wrapper, `#!/bin/sh\n[ "$1" = "--version" ] && exit 3\nexec "${process.execPath}" "${simEntryPath()}" "$@"\n`, { mode: 0o755 });
  const cfg = { ...s.config, model: s.dir, engine: { command: wrapper } };
  await writeFile(join(s.dir, 'pd.config.json'), JSON.stringify(cfg));
  try {
    const doctor = await s.pd(['doctor']);
    assert.match(doctor.stdout, /! vLLM command\s+.*printed no version/);
    const up = await s.pd(['up', '-d']);
    assert.equal(up.code, 0, up.stderr);
    assert.match(up.stderr, /PD stack ready/);
  } finally {
    await s.cleanup();
  }
});
