import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { configSchema, defaultConfig } from '../../src/config/schema.js';
import { parseConfig, loadConfig } from '../../src/config/load.js';
import { configJsonSchemaText } from '../../src/config/json-schema.js';
import { ConfigError } from '../../src/util/errors.js';
import { tempDir } from '../helpers/tmp.js';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';

test('defaults reproduce the reference 1P1D setup', () => {
  const c = defaultConfig();
  assert.equal(c.engine.command, 'vllm');
  // Engines are private by default: clients reach them only through the proxy (its key, rate limit and queue).
  assert.deepEqual(c.producers, [{ gpus: [0], host: '127.0.0.1', port: 8100, args: [], env: {} }]);
  assert.deepEqual(c.consumers, [{ gpus: [1], host: '127.0.0.1', port: 8200, args: [], env: {} }]);
  assert.equal(c.kv.sharedStoragePath, '/mnt/pd_kv');
  assert.equal(c.kv.engineId, 'my-disagg-engine-1');
  assert.equal(c.kv.bufferSize, 1e9);
  assert.equal(c.kv.parallelSize, 1);
  assert.equal(c.proxy.port, 8000);
  assert.equal(c.proxy.rateLimit, 40);
  assert.equal(c.proxy.maxConcurrent, 100);
  assert.equal(c.proxy.queueSize, 500);
  assert.equal(c.health.timeoutSeconds, 1200);
  assert.deepEqual(c.bench.sprint.rates, [2, 4, 8, 16, 32]);
  assert.equal(c.bench.sprint.durationSeconds, 90);
  assert.equal(c.bench.sprint.floodPrompts, 1024);
  assert.equal(c.bench.sprint.inputLen, 32);
  assert.equal(c.bench.sprint.outputLen, 512);
});

test('nested defaults fill in when a section is partly given', () => {
  const c = parseConfig({ proxy: { port: 9000 }, kv: { connector: 'NixlConnector' } });
  assert.equal(c.proxy.port, 9000);
  assert.equal(c.proxy.rateLimit, 40);
  assert.equal(c.proxy.timeouts.queueMs, 60_000);
  assert.equal(c.kv.sharedStoragePath, '/mnt/pd_kv');
});

function configErrorOf(fn: () => unknown): ConfigError {
  try {
    fn();
  } catch (e) {
    assert.ok(e instanceof ConfigError, `expected ConfigError, got ${String(e)}`);
    return e;
  }
  assert.fail('expected a ConfigError');
}

test('unknown keys are rejected with a did-you-mean hint', () => {
  const e = configErrorOf(() => parseConfig({ proxy: { rateLimt: 5 } }));
  assert.match(e.message, /proxy\.rateLimt: unknown field \(did you mean "rateLimit"\?\)/);
  const top = configErrorOf(() => parseConfig({ producer: [] }));
  assert.match(top.message, /producer: unknown field \(did you mean "producers"\?\)/);
});

test('ports out of range name the field', () => {
  const e = configErrorOf(() => parseConfig({ consumers: [{ gpus: [1], port: 70000 }] }));
  assert.match(e.message, /consumers\[0\]\.port: port must be a whole number between 1 and 65535/);
  configErrorOf(() => parseConfig({ proxy: { port: 0 } }));
});

test('wrong types say what was expected and what came', () => {
  const e = configErrorOf(() => parseConfig({ model: 3 }));
  assert.match(e.message, /model: expected string, got number/);
});

test('kvRole must be one of vLLM kv roles', () => {
  configErrorOf(() => parseConfig({ producers: [{ gpus: [0], port: 8100, kvRole: 'producer' }] }));
});

test('loadConfig: discovery, env overrides, flag overrides, relative paths', async () => {
  const { dir, cleanup } = await tempDir();
  try {
    const none = await loadConfig({ cwd: dir, env: {} });
    assert.equal(none.path, null);
    assert.equal(none.config.stateDir, join(dir, '.pd'));

    await writeFile(join(dir, 'pd.config.json'), JSON.stringify({ model: '/m', proxy: { port: 8001 } }));
    const found = await loadConfig({ cwd: dir, env: { PD_PROXY_PORT: '8500', PD_STATE_DIR: 'st' } });
    assert.equal(found.path, join(dir, 'pd.config.json'));
    assert.equal(found.config.model, '/m');
    assert.equal(found.config.proxy.port, 8500);
    assert.equal(found.config.stateDir, join(dir, 'st'));

    const flagged = await loadConfig({ cwd: dir, env: { PD_MODEL: '/env' }, overrides: { model: '/flag', 'proxy.port': undefined } });
    assert.equal(flagged.config.model, '/flag');
    assert.equal(flagged.config.proxy.port, 8001);

    await assert.rejects(loadConfig({ cwd: dir, env: { PD_PROXY_PORT: 'eighty' } }), /PD_PROXY_PORT="eighty" is not a number/);
    // A bad value from an env var or an option is blamed on it, not on the (valid) file.
    await assert.rejects(loadConfig({ cwd: dir, env: { PD_PROXY_PORT: '70000' } }), (e: Error & { hint?: string }) => {
      assert.match(e.message, /^environment variable PD_PROXY_PORT="70000" is invalid: proxy\.port/);
      assert.doesNotMatch(e.message, /pd\.config\.json is invalid/);
      assert.match(e.hint ?? '', /unset PD_PROXY_PORT.*overrides proxy\.port from .*pd\.config\.json/);
      return true;
    });
    await assert.rejects(loadConfig({ cwd: dir, env: {}, overrides: { 'proxy.rateLimit': -3 } }), /command-line value -3 for proxy\.rateLimit is invalid/);
    await writeFile(join(dir, 'pd.config.json'), JSON.stringify({ model: '/m', proxy: { port: 0 } }));
    await assert.rejects(loadConfig({ cwd: dir, env: { PD_MODEL: '/env' } }), /pd\.config\.json is invalid: proxy\.port/);
    await assert.rejects(loadConfig({ cwd: dir, configPath: 'missing.json', env: {} }), /does not exist/);
    await writeFile(join(dir, 'bad.json'), '{\n  "model": "x",\n}');
    await assert.rejects(loadConfig({ cwd: dir, configPath: 'bad.json', env: {} }), /not valid JSON at line 3/);
  } finally {
    await cleanup();
  }
});

test('the committed JSON Schema is generated from the zod schema', () => {
  const committed = readFileSync(new URL('../../templates/pd.config.schema.json', import.meta.url), 'utf8');
  assert.equal(committed, configJsonSchemaText(), 'run `node dist/cli/main.js config schema > templates/pd.config.schema.json`');
  const schema = JSON.parse(committed);
  assert.equal(schema.additionalProperties, false);
  assert.ok(schema.properties.proxy.properties.rateLimit);
});

test('example config and every template parse', () => {
  for (const f of ['pd.config.example.json', 'templates/shared-storage-1p1d.json', 'templates/nixl-1p1d.json', 'templates/shared-storage-xpyd.json']) {
    const raw = JSON.parse(readFileSync(new URL(`../../${f}`, import.meta.url), 'utf8'));
    assert.ok(configSchema.safeParse(raw).success, f);
  }
});

test('the config reference in docs/configuration.md is the generated one', async () => {
  const { configReferenceMarkdown } = await import('../../src/config/docs.js');
  const doc = readFileSync(new URL('../../docs/configuration.md', import.meta.url), 'utf8');
  const m = /<!-- config-reference:start -->\n([\s\S]*?)<!-- config-reference:end -->/.exec(doc);
  assert.ok(m, 'docs/configuration.md has the config reference markers');
  assert.equal(m[1], configReferenceMarkdown(), 'regenerate with `pd config schema --markdown`');
});
