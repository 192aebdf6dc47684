/**
 * Every template of the comparison sheet, with real processes on the simulator: plan, up, a request through the
 * proxy, status, stop. The template is read in-process (`pd init -t` itself is checked in test/cli/cli.test.ts).
 * The reference template goes through `pd up -d` and `pd down`; the others run `pd up` in the foreground and stop
 * it with SIGTERM: the same supervisor and stop code without two more pd processes per template (detach and stop
 * are topology-agnostic, and checked again in test/stack/up-down.test.ts).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { spawn, type ChildProcess } from 'node:child_process';
import { PD_BIN, runPd } from '../helpers/cli.js';
import { readTemplate } from '../../src/config/templates.js';
import { freePorts } from '../helpers/ports.js';
import { tempDir } from '../helpers/tmp.js';
import { SIM_ENV, chat, alive, waitFor } from '../helpers/stack.js';

interface Case {
  template: string;
  set: string;
  /** What `pd plan` must print for it. */
  plan: RegExp[];
  engines: string[];
}

const CASES: Case[] = [
  {
    template: 'tensor-parallel',
    set: 'tensor-parallelism',
    plan: [/CUDA_VISIBLE_DEVICES=0,1 .* serve \S+ --host 127\.0\.0\.1 --port \d+ .*--tensor-parallel-size 2$/m, /whole request → engine-0/],
    engines: ['engine-0'],
  },
  {
    template: 'pipeline-parallel',
    set: 'pipeline-parallelism',
    plan: [/CUDA_VISIBLE_DEVICES=0,1 .*--pipeline-parallel-size 2$/m, /TP 1 x PP 2 x DP 1/],
    engines: ['engine-0'],
  },
  {
    template: 'data-parallel',
    set: 'data-parallelism',
    plan: [/CUDA_VISIBLE_DEVICES=0 .* serve /, /CUDA_VISIBLE_DEVICES=1 .* serve /, /whole request → engine-0\|engine-1/],
    engines: ['engine-0', 'engine-1'],
  },
  {
    template: 'shared-storage-1p1d',
    set: 'pd-disaggregation',
    plan: [/"kv_connector":"ExampleConnector","kv_role":"kv_producer"/, /"kv_role":"kv_consumer"/],
    engines: ['producer-0', 'consumer-0'],
  },
  {
    template: 'nixl-1p1d',
    set: 'pd-disaggregation-nixl',
    plan: [/VLLM_NIXL_SIDE_CHANNEL_PORT=\d+ .*"kv_connector":"NixlConnector","kv_role":"kv_both"/],
    engines: ['producer-0', 'consumer-0'],
  },
  {
    template: 'p2p-nccl-1p1d',
    set: 'pd-disaggregation-p2p',
    plan: [/VLLM_HOST_IP=127\.0\.0\.1 .*"kv_connector":"P2pNcclConnector","kv_role":"kv_producer".*"kv_port":"\d+"/, /request id naming the producer and consumer/],
    engines: ['producer-0', 'consumer-0'],
  },
];

/** A template's config on ephemeral ports, with its own state dir and KV folder. */
async function fromTemplate(dir: string, template: string): Promise<string> {
  const file = join(dir, 'project', `${template}.json`);
  await mkdir(join(dir, 'project'));
  const cfg = JSON.parse(await readTemplate(template));
  const ports = await freePorts(6);
  const fix = (list: Array<{ port: number }> | undefined) => list?.forEach((e) => (e.port = ports.pop()!));
  fix(cfg.engines);
  fix(cfg.producers);
  fix(cfg.consumers);
  cfg.proxy = { ...cfg.proxy, host: '127.0.0.1', port: ports.pop(), rateLimit: 0 };
  cfg.kv = { ...cfg.kv, nixlSideChannelBasePort: 20000 + (ports[0]! % 20000), p2pKvBasePort: 40000 + (ports[0]! % 20000), p2pProxyPort: ports.pop(), sharedStoragePath: join(dir, 'kv') };
  cfg.stateDir = join(dir, 'state');
  cfg.health = { timeoutSeconds: 30, intervalMs: 50 };
  cfg.supervisor = { stopGraceSeconds: 5 };
  await writeFile(file, JSON.stringify(cfg, null, 2));
  return file;
}

for (const c of CASES) {
  const detached = c.template === 'shared-storage-1p1d';
  test(`template ${c.template}: plan, up${detached ? ' -d' : ''}, a request, status, ${detached ? 'pd down' : 'SIGTERM'}`, async () => {
    const { dir, cleanup } = await tempDir(`pd-topo-${c.template}-`);
    const env = { ...SIM_ENV };
    let file = '';
    let fg: ChildProcess | undefined;
    try {
      file = await fromTemplate(dir, c.template);
      const cfg = JSON.parse(await readFile(file, 'utf8'));
      assert.equal(cfg.bench.set, c.set, 'the template names its sheet block');
      const plan = await runPd(['-c', file, 'plan', '--simulate'], { env });
      assert.equal(plan.code, 0, plan.stderr);
      for (const re of c.plan) assert.match(plan.stdout, re);
      if (cfg.topology === 'aggregated') assert.doesNotMatch(plan.stdout, /--kv-transfer-config/);

      let stderr = '';
      if (detached) {
        const up = await runPd(['-c', file, 'up', '-d', '--simulate'], { env, timeoutMs: 60_000 });
        assert.equal(up.code, 0, up.stderr);
      } else {
        fg = spawn(process.execPath, [PD_BIN, '-c', file, 'up', '--simulate'], {
          cwd: dir,
          env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/tmp', NO_COLOR: '1', ...env },
          stdio: ['ignore', 'ignore', 'pipe'],
        });
        fg.stderr!.on('data', (d) => (stderr += d));
        const exitedEarly = new Promise<never>((_, reject) => fg!.once('exit', (code) => reject(new Error(`pd up exited ${code}: ${stderr}`))));
        await Promise.race([waitFor('ready', () => /stack ready/.test(stderr), 60_000), exitedEarly]);
      }
      const r = await chat(cfg.proxy.port, 'a prompt long enough to cover more than one block of sixteen tokens, for the KV cache', 4);
      assert.equal(r.status, 200, JSON.stringify(r.body));
      assert.equal(r.body.object, 'chat.completion');
      const status = await runPd(['-c', file, 'status', '--json'], { env });
      assert.equal(status.code, 0, status.stdout + status.stderr);
      const st = JSON.parse(status.stdout);
      assert.deepEqual(st.engines.map((e: any) => e.name), c.engines);
      assert.ok(st.engines.every((e: any) => e.healthy), status.stdout);
      if (cfg.topology !== 'aggregated') {
        // The KV hand-off happened: the consumer counts the tokens it took from the connector in vLLM's
        // vllm:external_prefix_cache_hits_total (every connector; only ExampleConnector also logs the load).
        const consumer = st.engines.find((e: any) => e.name === 'consumer-0');
        const metrics = await (await fetch(`http://127.0.0.1:${consumer.port}/metrics`)).text();
        const hits = /^vllm:external_prefix_cache_hits_total\{[^}]*\} (\S+)$/m.exec(metrics);
        assert.ok(hits && Number(hits[1]) > 0, `${c.template}: the consumer loaded no KV from the producer:\n${metrics.slice(0, 2000)}`);
      }
      const pids = st.engines.map((e: any) => e.pid);
      if (fg) {
        const exited = new Promise<number | null>((res) => fg!.on('exit', (code) => res(code)));
        fg.kill('SIGTERM');
        assert.equal(await exited, 0, stderr);
        assert.match(stderr, /stack stopped; nothing left running/);
      } else {
        const down = await runPd(['-c', file, 'down'], { env });
        assert.equal(down.code, 0, down.stderr);
      }
      for (const pid of pids) assert.equal(alive(pid), false, `${c.template}: pid ${pid} still alive`);
      assert.equal(existsSync(join(dir, 'state', 'state.json')), false, `${c.template}: state file left behind`);
    } finally {
      if (fg && fg.exitCode === null && fg.signalCode === null) {
        const gone = new Promise((res) => fg!.once('exit', res));
        fg.kill('SIGTERM');
        await gone;
      }
      // A stack the test did not get to stop (an assertion failed on the way).
      if (file && existsSync(join(dir, 'state', 'state.json'))) await runPd(['-c', file, 'down', '--grace', '2'], { env }).catch(() => undefined);
      await cleanup();
    }
  });
}
