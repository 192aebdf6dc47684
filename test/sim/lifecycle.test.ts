import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createServer } from 'node:net';
import { simEntryPath } from '../../src/sim/entry.js';
import { startSim, type SimHandle } from '../helpers/sim.js';
import { freePort } from '../helpers/ports.js';
import { ArgError, parseSimArgs } from '../../src/sim/options.js';
import { registeredConnectors, SIM_VLLM_VERSION } from '../../src/sim/versions.js';
import { runSim } from '../../src/sim/run.js';

/** Run the simulator to completion (for start-up failures) and collect its output. */
function runToExit(args: string[], env: Record<string, string> = {}): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [simEntryPath(), ...args], { env: { ...process.env, PD_SIM_ZERO_LATENCY: '1', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (out += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
    child.on('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, out });
    });
  });
}

/** Stop `sim` with `sig`: exit 0 after "Shutting down FastAPI HTTP server." and uvicorn's lines, in order. */
async function assertCleanShutdown(sim: SimHandle, sig: 'SIGTERM' | 'SIGINT'): Promise<void> {
  const code = await sim.stop(sig);
  assert.equal(code, 0, sig);
  const out = sim.output();
  const order = ['Shutting down FastAPI HTTP server.', 'INFO:     Shutting down', 'INFO:     Waiting for application shutdown.', 'INFO:     Application shutdown complete.'].map((s) => out.indexOf(s));
  assert.ok(order.every((i) => i >= 0), `${sig}: all shutdown lines present`);
  assert.ok(order[2]! < order[3]!, 'uvicorn order');
}

describe('start-up', () => {
  test('--version prints the bare simulated version', async () => {
    assert.deepEqual(await runToExit(['--version']), { code: 0, out: '0.31.0\n' });
    // The version knob itself (the process above proves the executable prints what runSim writes).
    let printed = '';
    const out = process.stdout.write.bind(process.stdout);
    process.stdout.write = (c: string | Uint8Array): boolean => ((printed += String(c)), true);
    try {
      assert.equal(await runSim(['--version'], { env: { PD_SIM_VLLM_VERSION: '0.13.0' }, handleSignals: false }), 0);
    } finally {
      process.stdout.write = out;
    }
    assert.equal(printed, '0.13.0\n');
  });

  test('--max-model-len above the model\'s max_position_embeddings exits 1 with ModelConfig\'s validation error', async () => {
    const over = await runToExit(['serve', 'Qwen/Qwen3-0.6B', '--port', '1', '--max-model-len', '64k']);
    assert.equal(over.code, 1);
    assert.match(over.out, /1 validation error for ModelConfig\n.*Value error, User-specified max_model_len \(64000\) is greater than the derived max_model_len \(max_position_embeddings=40960/);
  });

  test('a port already in use exits 1 with OSError: [Errno 98] Address already in use', async () => {
    const port = await freePort();
    const blocker = createServer();
    await new Promise<void>((r) => blocker.listen(port, '127.0.0.1', () => r()));
    try {
      const r = await runToExit(['serve', 'm', '--host', '127.0.0.1', '--port', String(port)]);
      assert.equal(r.code, 1);
      assert.match(r.out, /OSError: \[Errno 98\] Address already in use/);
    } finally {
      await new Promise((r) => blocker.close(r));
    }
  });

  test('bad --kv-transfer-config exits 2 at parse time with pydantic\'s text, before any log line; an unknown connector exits 1', async () => {
    const port = String(await freePort());
    // One process for the exit path of a parse error (an ArgError of the serve parser → 2); the other bad configs
    // take the same path, so their texts are checked on the parser in this process.
    const json = await runToExit(['serve', 'm', '--port', port, '--kv-transfer-config', '{not json']);
    assert.equal(json.code, 2);
    assert.match(json.out, /^usage: vllm serve \[model_tag\] \[options\]\nvllm serve: error: argument --kv-transfer-config: 1 validation error for KVTransferConfig\n {2}Invalid JSON: key must be a string at line 1 column 2 \[type=json_invalid/);
    assert.doesNotMatch(json.out, /API server version/);
    const parseError = (json: string): ArgError => {
      try {
        parseSimArgs(['serve', 'm', '--port', port, '--kv-transfer-config', json], {});
      } catch (e) {
        return e as ArgError;
      }
      assert.fail(`${json} was accepted`);
    };
    const role = parseError('{"kv_connector":"NixlConnector","kv_role":"boss"}');
    assert.ok(role instanceof ArgError && role.level === 'serve');
    assert.match(role.message, /kv_role\n {2}Input should be 'kv_producer', 'kv_both' or 'kv_consumer' \[type=literal_error, input_value='boss', input_type=str\]/);
    const norole = parseError('{"kv_connector":"NixlConnector"}');
    assert.ok(norole instanceof ArgError && norole.level === 'serve');
    assert.match(norole.message, /Value error, Please specify kv_role when kv_connector is set/);
    // A connector the version does not register fails at engine start-up with exit 1 (the process of the registry
    // test below shows it): FooConnector is in no registry.
    assert.ok(!registeredConnectors(SIM_VLLM_VERSION).includes('FooConnector'));
  });

  test('connector registry follows the version: SharedStorageConnector before 0.13, ExampleConnector from 0.13; SIGINT stops it cleanly', async () => {
    const port = String(await freePort());
    const kv = (name: string) => JSON.stringify({ kv_connector: name, kv_role: 'kv_both', kv_connector_extra_config: { shared_storage_path: '/tmp/pd-sim-never-written' } });
    // The process proves that PD_SIM_VLLM_VERSION reaches the connector factory; the registry of each version is
    // checked in this process.
    const old = await runToExit(['serve', 'm', '--port', port, '--kv-transfer-config', kv('ExampleConnector')], { PD_SIM_VLLM_VERSION: '0.11.0' });
    assert.equal(old.code, 1);
    assert.match(old.out, /ValueError: Unsupported connector type: ExampleConnector/);
    assert.ok(registeredConnectors('0.11.0').includes('SharedStorageConnector'));
    assert.ok(!registeredConnectors('0.11.0').includes('ExampleConnector'));
    assert.ok(!registeredConnectors(SIM_VLLM_VERSION).includes('SharedStorageConnector'));
    assert.ok(registeredConnectors(SIM_VLLM_VERSION).includes('ExampleConnector'));
    const ok = await startSim({ env: { PD_SIM_VLLM_VERSION: '0.13.0' }, kvConfig: JSON.parse(kv('ExampleConnector')) as object });
    try {
      assert.match(ok.output(), /\[example_connector\.py:\d+\] Shared storage path is \/tmp\/pd-sim-never-written/);
      assert.match(ok.output(), /vLLM API server version 0\.13\.0/);
      const v = await fetch(`${ok.url}/version`);
      assert.deepEqual(await v.json(), { version: '0.13.0' });
      // This engine is also the one stopped with SIGINT (the shutdown test below stops one with SIGTERM).
      await assertCleanShutdown(ok, 'SIGINT');
    } finally {
      await ok.stop('SIGKILL');
    }
  });

  test('fail start-up with a CUDA OOM: the port refuses connections during the delay, then exit 1', async () => {
    const port = await freePort();
    const child = spawn(process.execPath, [simEntryPath(), 'serve', 'm', '--host', '127.0.0.1', '--port', String(port), '--sim-startup-delay', '0.8', '--sim-fail-startup', 'cuda-oom'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (out += d));
    const exited = new Promise<number | null>((r) => child.on('exit', (c) => r(c)));
    while (!out.includes('Starting to load model')) await new Promise((r) => setTimeout(r, 20));
    await assert.rejects(fetch(`http://127.0.0.1:${port}/health`));
    const code = await exited;
    assert.equal(code, 1);
    assert.match(out, /torch\.OutOfMemoryError: CUDA out of memory/);
    assert.match(out, /RuntimeError: Engine core initialization failed/);
  });

  test('fail start-up with model-not-found', async () => {
    const r = await runToExit(['serve', '/mnt/models/nope', '--port', String(await freePort()), '--sim-fail-startup', 'model-not-found']);
    assert.equal(r.code, 1);
    assert.match(r.out, /Invalid repository ID or local directory specified: '\/mnt\/models\/nope'/);
  });
});

describe('shutdown', () => {
  test('SIGTERM during the start-up delay exits 0 at once, without waiting for the delay', async () => {
    const port = await freePort();
    const child = spawn(process.execPath, [simEntryPath(), 'serve', 'm', '--host', '127.0.0.1', '--port', String(port), '--sim-startup-delay', '60'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    const exited = new Promise<number | null>((r) => child.on('exit', (c) => r(c)));
    while (!out.includes('vLLM API server version')) await new Promise((r) => setTimeout(r, 20));
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
    assert.equal(await exited, 0);
    clearTimeout(timer);
  });

  test('the built simulator answers /health and a completion; SIGTERM: "Shutting down FastAPI HTTP server." and uvicorn lines, exit 0', async () => {
    const sim = await startSim();
    try {
      const h = await fetch(`${sim.url}/health`);
      assert.equal(h.status, 200);
      assert.equal(await h.text(), '');
      const r = await fetch(`${sim.url}/v1/completions`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ model: 'sim-model', prompt: 'hello world', max_tokens: 4 }),
      });
      const body = (await r.json()) as { object: string; usage: { completion_tokens: number } };
      assert.equal(r.status, 200);
      assert.equal(body.object, 'text_completion');
      assert.equal(body.usage.completion_tokens, 4);
      await assertCleanShutdown(sim, 'SIGTERM');
    } finally {
      await sim.stop('SIGKILL');
    }
  });
});
