import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { freePort } from '../helpers/ports.js';
import { runSim } from '../../src/sim/run.js';

const PD = fileURLToPath(new URL('../../dist/cli/main.js', import.meta.url));

test('pd sim passes the vllm serve command line through untouched (before pd\'s own option parsing) and stops on SIGTERM', async () => {
  const port = await freePort();
  const child = spawn(process.execPath, [PD, 'sim', 'serve', 'M', '--host', '127.0.0.1', '--port', String(port), '--max-model-len', '10', '--enforce-eager', '--gpu-memory-utilization=0.8'], {
    env: { ...process.env, PD_SIM_ZERO_LATENCY: '1' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout.on('data', (d) => (out += d));
  child.stderr.on('data', (d) => (out += d));
  const exited = new Promise<number | null>((r) => child.on('exit', (c) => r(c)));
  const killer = setTimeout(() => child.kill('SIGKILL'), 30_000);
  try {
    let models = null as { data: Array<{ id: string; max_model_len: number }> } | null;
    while (!models) {
      try {
        models = (await (await fetch(`http://127.0.0.1:${port}/v1/models`)).json()) as typeof models;
      } catch {
        if (child.exitCode !== null) throw new Error(out);
        await new Promise((r) => setTimeout(r, 25));
      }
    }
    assert.equal(models.data[0]!.id, 'M');
    assert.equal(models.data[0]!.max_model_len, 10);
    child.kill('SIGTERM');
    assert.equal(await exited, 0);
    assert.match(out, /'gpu_memory_utilization': 0\.8/);
    assert.match(out, /Application shutdown complete\./);
  } finally {
    clearTimeout(killer);
    child.kill('SIGKILL');
  }
});

/** runSim, which `pd sim` hands its arguments to untouched (the test above runs that through the pd binary), in this process. */
async function simStdout(args: string[], env: Record<string, string> = {}): Promise<{ code: number; out: string }> {
  let out = '';
  const write = process.stdout.write.bind(process.stdout);
  process.stdout.write = (c: string | Uint8Array): boolean => ((out += String(c)), true);
  try {
    return { code: await runSim(args, { env, prog: 'pd sim', handleSignals: false }), out };
  } finally {
    process.stdout.write = write;
  }
}

test('pd sim --help lists the simulator knobs', async () => {
  const { code, out } = await simStdout(['--help']);
  assert.equal(code, 0);
  assert.match(out, /^usage: pd sim serve MODEL/);
  for (const s of ['--sim-startup-delay', 'PD_SIM_ZERO_LATENCY', 'PD_SIM_VLLM_VERSION', 'X-PD-Sim-Fault', '--max-num-seqs']) assert.ok(out.includes(s), s);
});

test('pd sim --version is the simulated vLLM version, not pd\'s', async () => {
  const { code, out } = await simStdout(['--version'], { PD_SIM_VLLM_VERSION: '0.13.2' });
  assert.equal(code, 0);
  assert.equal(out.trim(), '0.13.2');
});
