/**
 * An end-to-end short sprint through the real PD proxy against two simulator engines (producer + consumer
 * sharing a KV folder): real processes, sockets and files. pd bench runs in-process through pd's commander program
 * (test/cli/in-process.ts); the built binary's sprint is run by test/bench/cli.test.ts.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { rm as rmKv } from 'node:fs/promises';
import { join } from 'node:path';
import { startSim, type SimHandle } from '../helpers/sim.ts';
import { runPdInProcess } from '../cli/in-process.ts';
import { tempDir } from '../helpers/tmp.ts';
import { startProxy, type ProxyHandle } from '../../src/proxy/server.ts';
import { defaultConfig } from '../../src/config/schema.ts';
import { runResultSchema } from '../../src/bench/result.ts';

let dir: string;
let cleanup: () => Promise<void>;
let producer: SimHandle;
let consumer: SimHandle;
let proxy: ProxyHandle;

before(async () => {
  ({ dir, cleanup } = await tempDir('pd-bench-sim-'));
  const kv = join(`${dir}-kv`, 'kv');
  await mkdir(kv, { recursive: true });
  const kvConfig = (role: string) => ({ kv_connector: 'ExampleConnector', kv_role: role, kv_connector_extra_config: { shared_storage_path: kv } });
  [producer, consumer] = await Promise.all([startSim({ kvConfig: kvConfig('kv_producer') }), startSim({ kvConfig: kvConfig('kv_consumer') })]);
  proxy = await startProxy({
    ...defaultConfig().proxy,
    host: '127.0.0.1',
    port: 0,
    rateLimit: 0,
    accessLog: 'off',
    producers: [{ name: 'producer-0', url: producer.url }],
    consumers: [{ name: 'consumer-0', url: consumer.url }],
    connector: 'ExampleConnector',
    log: () => {},
  });
  await writeFile(
    join(dir, 'pd.config.json'),
    JSON.stringify({
      kv: { sharedStoragePath: kv },
      stateDir: join(dir, '.pd'),
      bench: {
        resultsDir: join(dir, 'results'),
        sheet: join(dir, 'results', 'sheet.csv'),
        sprint: { rates: [2, 4], durationSeconds: 1, floodPrompts: 4, inputLen: 16, outputLen: 8 },
      },
    }),
  );
});

after(async () => {
  await proxy?.close();
  await Promise.all([producer?.stop(), consumer?.stop()]);
  await cleanup();
  // The KV folder sits beside the config's folder (pd refuses a cache path inside it).
  await rmKv(`${dir}-kv`, { recursive: true, force: true });
});

test('pd bench sprint through the proxy against the simulator', async () => {
  const r = await runPdInProcess(['bench', '--target', proxy.url, '--set', 'pd-disaggregation', '--no-progress', '--json'], { cwd: dir });
  assert.equal(r.code, 0, r.stderr);
  const results = (JSON.parse(r.stdout) as unknown[]).map((x) => runResultSchema.parse(x));
  assert.deepEqual(results.map((x) => x.pd_run_name), ['steady-rate2', 'steady-rate4', 'flood-n4']);
  for (const res of results) {
    assert.equal(res.failed, 0, JSON.stringify(res.pd_error_kinds));
    assert.equal(res.completed, res.num_prompts);
    assert.ok(res.output_lens!.every((n) => n === 8), `output lens ${JSON.stringify(res.output_lens)}`);
    assert.equal(res.pd_usage_source, 'server');
    assert.equal(res.model_id.length > 0, true);
    assert.ok(res.mean_ttft_ms > 0 && res.mean_tpot_ms >= 0);
    assert.ok(res.pd_stage_split !== null, 'the proxy Server-Timing gives the prefill/decode split');
    assert.ok(res.pd_stage_split.prefill_ms.mean > 0);
  }
  const sheet = await readFile(join(dir, 'results', 'sheet.csv'), 'utf8');
  assert.match(sheet, /TTFT,Mean,/);
});

test('completions with token ids: exact input lengths reach the engines', async () => {
  const r = await runPdInProcess(['bench', 'run', '--rate', '20', '-n', '3', '--endpoint', 'completions', '--input-len', '16', '--output-len', '4', '--target', proxy.url, '--keep-cache', '--json', '--no-progress'], {
    cwd: dir,
  });
  assert.equal(r.code, 0, r.stderr);
  const res = runResultSchema.parse(JSON.parse(r.stdout));
  assert.equal(res.completed, 3);
  assert.deepEqual(res.input_lens, [16, 16, 16]);
  assert.deepEqual(res.output_lens, [4, 4, 4]);
});
