/** `pd proxy` as a process (built dist): reference-compatible flags, foreground run, clean SIGTERM, bad flags. */
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { runPdInProcess } from '../cli/in-process.js';
import { PD_BIN, runPd, type CliResult } from '../helpers/cli.js';
import { tempDir } from '../helpers/tmp.js';
import { freePort } from '../helpers/ports.js';
import { startFakeEngine } from './fake-engine.js';
import { post, until } from './harness.js';

/** `pd ARGS` in this process (test/cli/in-process.ts); a flag wrongly accepted would start a proxy: fail instead. */
function pdInProcess(args: string[], cwd: string): Promise<CliResult> {
  return runPdInProcess(args, { cwd, timeoutMs: 10_000 });
}

function runProxy(args: string[], cwd: string) {
  const child = spawn(process.execPath, [PD_BIN, 'proxy', ...args], { cwd, env: { PATH: process.env.PATH ?? '', NO_COLOR: '1' }, stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  return { child, exited, stderr: () => stderr };
}

describe('pd proxy', () => {
  test('reference flags (full endpoint URLs, repeated) serve two-stage requests; SIGTERM exits 0', async () => {
    const tmp = await tempDir('pd-proxy-cli-');
    const [p0, p1, c0] = await Promise.all([startFakeEngine(), startFakeEngine(), startFakeEngine()]);
    const port = await freePort();
    const run = runProxy(
      ['--port', String(port), '--host', '127.0.0.1', '--prefill-url', `${p0.url}/v1/completions`, '--prefill-url', `${p1.url}/v1/completions`, '--decode-url', `${c0.url}/v1/completions`, '--rate-limit', '100', '--max-concurrent', '10', '--queue-size', '5', '--timeout', '30', '--access-log', 'json', '--balance', 'round-robin'],
      tmp.dir,
    );
    try {
      await until(() => run.stderr().includes('listening on'), 15_000, 'pd proxy to listen');
      const url = `http://127.0.0.1:${port}`;
      for (let i = 0; i < 2; i++) {
        const res = await post(url + '/v1/chat/completions', { model: 'm', messages: [{ role: 'user', content: 'x' }], stream: true });
        assert.equal(res.status, 200);
      }
      assert.equal(p0.calls().length, 1);
      assert.equal(p1.calls().length, 1);
      assert.equal(c0.calls().length, 2);
      await until(() => run.stderr().split('\n').some((l) => l.startsWith('{') && l.includes('"/v1/chat/completions"')), 5000, 'a JSON access-log line');
      const line = run.stderr().split('\n').find((l) => l.startsWith('{'))!;
      const j = JSON.parse(line);
      assert.equal(j.status, 200);
      assert.equal(typeof j.prefill_ms, 'number');
      run.child.kill('SIGTERM');
      assert.equal(await run.exited, 0);
    } finally {
      run.child.kill('SIGKILL');
      await Promise.all([p0.close(), p1.close(), c0.close()]);
      await tmp.cleanup();
    }
  });

  test('--engine-url (repeated) runs a single-stage proxy balancing whole requests', async () => {
    const tmp = await tempDir('pd-proxy-cli-');
    const [e0, e1] = await Promise.all([startFakeEngine(), startFakeEngine()]);
    const port = await freePort();
    const run = runProxy(['--port', String(port), '--host', '127.0.0.1', '--engine-url', e0.url, '--engine-url', `${e1.url}/v1/completions`, '--balance', 'round-robin', '--access-log', 'off'], tmp.dir);
    try {
      await until(() => run.stderr().includes('listening on'), 15_000, 'pd proxy to listen');
      assert.match(run.stderr(), /single-stage; engines /);
      for (let i = 0; i < 2; i++) assert.equal((await post(`http://127.0.0.1:${port}/v1/completions`, { prompt: 'x', max_tokens: 3 })).status, 200);
      assert.deepEqual([e0.calls().length, e1.calls().length], [1, 1]);
      assert.equal(e0.calls()[0]!.json!.max_tokens, 3, 'no prefill rewrite');
      run.child.kill('SIGTERM');
      assert.equal(await run.exited, 0);
    } finally {
      run.child.kill('SIGKILL');
      await Promise.all([e0.close(), e1.close()]);
      await tmp.cleanup();
    }
  });

  test('-c config: engines and proxy settings come from the file', async () => {
    const tmp = await tempDir('pd-proxy-cli-');
    const [p0, c0] = await Promise.all([startFakeEngine(), startFakeEngine()]);
    const port = await freePort();
    const cfg = join(tmp.dir, 'my.json');
    await writeFile(cfg, JSON.stringify({ producers: [{ gpus: [0], port: p0.port }], consumers: [{ gpus: [1], port: c0.port }], proxy: { port, host: '127.0.0.1', apiKey: 'k1', accessLog: 'off' } }));
    const run = runProxy(['-c', cfg], tmp.dir);
    try {
      await until(() => run.stderr().includes('listening on'), 15_000, 'pd proxy to listen');
      const url = `http://127.0.0.1:${port}`;
      assert.equal((await post(url + '/v1/completions', { prompt: 'a' })).status, 401);
      assert.equal((await post(url + '/v1/completions', { prompt: 'a' }, { authorization: 'Bearer k1' })).status, 200);
      run.child.kill('SIGINT');
      assert.equal(await run.exited, 0);
    } finally {
      run.child.kill('SIGKILL');
      await Promise.all([p0.close(), c0.close()]);
      await tmp.cleanup();
    }
  });

  test('bad flags exit 2 with a message naming the flag, never a stack trace', async () => {
    const tmp = await tempDir('pd-proxy-cli-');
    try {
      const cases: [string[], RegExp][] = [
        [['--rate-limit', 'fast'], /--rate-limit/],
        [['--on-rate-limit', 'drop'], /--on-rate-limit|drop/],
        [['--prefill-url', 'localhost:8100'], /--prefill-url/],
        [['--max-concurrent', '0'], /--max-concurrent/],
        [['--access-log', 'xml'], /--access-log|xml/],
        [['--engine-url', 'http://127.0.0.1:8100', '--decode-url', 'http://127.0.0.1:8200'], /--engine-url cannot be combined with --decode-url/],
        [['--engine-url', 'http://127.0.0.1:8100', '--connector', 'NixlConnector'], /--engine-url cannot be combined with --connector/],
        [['--engine-url', 'ftp://x'], /--engine-url/],
      ];
      // Every case through the real commander program and the real error reporter, in this process (a node
      // start-up per case is what made this test slow) ...
      for (const [args, re] of cases) {
        const r = await pdInProcess(['proxy', ...args], tmp.dir);
        assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
        assert.match(r.stderr, re);
        assert.doesNotMatch(r.stderr, /\n\s+at /);
      }
      // ... and the binary itself for the two ways a bad flag fails: commander refusing a value, and a UsageError
      // thrown by the command (both must exit 2 without a stack trace).
      const spawned = await Promise.all([
        runPd(['proxy', '--rate-limit', 'fast'], { cwd: tmp.dir, timeoutMs: 20_000 }),
        runPd(['proxy', '--engine-url', 'http://127.0.0.1:8100', '--decode-url', 'http://127.0.0.1:8200'], { cwd: tmp.dir, timeoutMs: 20_000 }),
      ]);
      for (const [k, re] of [/--rate-limit/, /--engine-url cannot be combined with --decode-url/].entries()) {
        assert.equal(spawned[k]!.code, 2, spawned[k]!.stderr);
        assert.match(spawned[k]!.stderr, re);
        assert.doesNotMatch(spawned[k]!.stderr, /\n\s+at /);
      }
      // An aggregated config (TP, PP, DP) makes a single-stage proxy: the two-stage flags are refused with a hint.
      const agg = join(tmp.dir, 'agg.json');
      await writeFile(agg, JSON.stringify({ topology: 'aggregated', engines: [{ gpus: [0, 1], port: 8100, args: ['--tensor-parallel-size', '2'] }] }));
      const refused = await pdInProcess(['-c', agg, 'proxy', '--prefill-url', 'http://127.0.0.1:8100'], tmp.dir);
      assert.equal(refused.code, 2, refused.stderr);
      assert.match(refused.stderr, /--prefill-url, --decode-url and --connector need a PD config, and this one is aggregated/);
    } finally {
      await tmp.cleanup();
    }
  });
});
