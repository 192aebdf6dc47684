/**
 * Conformance: the `vllm serve` command line.
 * - vllm/utils/argparse_utils.py (FlexibleArgumentParser, human_readable_int) and argparse: a flag vLLM does not have
 *   is refused at the end of parsing by the top-level `vllm` parser ("unrecognized arguments", exit 2), before any
 *   log line; a bad value is refused by the `vllm serve` subparser.
 * - vllm/engine/arg_utils.py parse_dataclass: --kv-transfer-config goes through
 *   TypeAdapter(KVTransferConfig).validate_json, whose ValidationError becomes the argparse error (exit 2).
 * - vllm/config/kv_transfer.py: field types (pydantic lax mode), KVRole literal, kv_load_failure_policy literal,
 *   "Please specify kv_role when kv_connector is set" in __post_init__.
 * - vllm/config/model.py: max_model_len defaults to the model's max_position_embeddings and may not exceed it.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { runSim } from '../../src/sim/run.js';
import { ArgError, parseMaxModelLen, parseSimArgs } from '../../src/sim/options.js';
import { geometryFor, kvBytesPerToken } from '../../src/sim/geometry.js';

/**
 * The simulator's command line run in this process (src/sim/run.ts, what the executable runs): exit code and output.
 * Only parse-time paths are run here (they return before any server starts); the executable's wiring is checked by
 * the processes of lifecycle.test.ts.
 */
async function run(args: string[], env: Record<string, string> = {}): Promise<{ code: number; out: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  const [out, err] = [process.stdout.write.bind(process.stdout), process.stderr.write.bind(process.stderr)];
  const toOut = (c: string | Uint8Array): boolean => ((stdout += String(c)), true);
  const toErr = (c: string | Uint8Array): boolean => ((stderr += String(c)), true);
  process.stdout.write = toOut;
  process.stderr.write = toErr;
  try {
    const code = await runSim(args, { env: { PD_SIM_ZERO_LATENCY: '1', ...env }, handleSignals: false });
    return { code, out: stdout + stderr, stderr };
  } finally {
    process.stdout.write = out;
    process.stderr.write = err;
  }
}

test('argparse: unknown flags exit 2 with the top-level usage before any log line; bad values with the serve usage', async () => {
  const r = await run(['serve', 'm', '--port', '1', '--no-such-flag', 'x', '--other']);
  assert.equal(r.code, 2);
  assert.equal(r.stderr, 'usage: vllm [-h] [-v] {chat,complete,serve,launch,bench,collect-env,run-batch,preload} ...\nvllm: error: unrecognized arguments: --no-such-flag x --other\n');
  assert.doesNotMatch(r.out, /API server version/);
  const bad = await run(['serve', 'm', '--port', 'eighty']);
  assert.equal(bad.code, 2);
  assert.equal(bad.stderr, "usage: vllm serve [model_tag] [options]\nvllm serve: error: argument --port: invalid int value: 'eighty'\n");
  assert.throws(() => parseSimArgs(['serve', 'm', '--enforce-eager=1'], {}), /argument --enforce-eager\/--no-enforce-eager: ignored explicit argument '1'/);
  assert.throws(() => parseSimArgs(['serve', 'm', '--sim-no-such-knob', '1'], {}), (e: Error) => e instanceof ArgError && e.level === 'top');
});

test('FlexibleArgumentParser spellings: --x=v, underscores, -tp/-pp/-dp, --no-x, -O3, --json.key', () => {
  const o = parseSimArgs(['serve', 'm', '--max_num_seqs=8', '-tp', '2', '-pp=2', '-dp', '2', '--no-enable-prefix-caching', '-O3',
    '--kv-transfer-config.kv_connector', 'NixlConnector', '--kv-transfer-config.kv_role', 'kv_both'], {});
  assert.equal(o.maxNumSeqs, 8);
  assert.deepEqual([o.tensorParallelSize, o.pipelineParallelSize, o.dataParallelSize], [2, 2, 2]);
  assert.equal(o.enablePrefixCaching, false);
  assert.equal(o.nonDefaultArgs.optimization_level, '3');
  assert.deepEqual([o.kvTransferConfig?.kv_connector, o.kvTransferConfig?.kv_role], ['NixlConnector', 'kv_both']);
});

test('--max-model-len: human_readable_int_or_auto (-1/auto, k/m/g/t decimal, K/M/G/T binary integers only)', () => {
  assert.equal(parseMaxModelLen('-1'), null);
  assert.equal(parseMaxModelLen('auto'), null);
  assert.equal(parseMaxModelLen('AUTO'), null);
  assert.equal(parseMaxModelLen('8k'), 8000);
  assert.equal(parseMaxModelLen('8K'), 8192);
  assert.equal(parseMaxModelLen('25.6k'), 25600);
  assert.equal(parseMaxModelLen('1m'), 1_000_000);
  assert.equal(parseMaxModelLen('1M'), 1_048_576);
  assert.equal(parseMaxModelLen('1g'), 1e9);
  assert.equal(parseMaxModelLen('2048'), 2048);
  assert.throws(() => parseMaxModelLen('1.5K'), /Decimals are not allowed with binary suffixes like K\. Did you mean to use 1\.5k instead\?/);
  assert.throws(() => parseMaxModelLen('lots'), /argument --max-model-len: invalid human_readable_int_or_auto value: 'lots'/);
});

test('--kv-transfer-config: pydantic validation of KVTransferConfig at parse time', () => {
  const err = (json: string): string => {
    try {
      parseSimArgs(['serve', 'm', '--kv-transfer-config', json], {});
    } catch (e) {
      return (e as Error).message;
    }
    return '';
  };
  // Lax mode: numeric strings are numbers (the P2P NCCL example passes "kv_port": "21001").
  const ok = parseSimArgs(['serve', 'm', '--kv-transfer-config', '{"kv_connector":"NixlConnector","kv_role":"kv_both","kv_port":"21001","kv_buffer_size":"1e1"}'], {});
  assert.equal(ok.kvTransferConfig?.kv_port, 21001);
  assert.equal(ok.kvTransferConfig?.kv_buffer_size, 10);
  assert.match(err('{"kv_connector":"X","kv_role":"kv_both","kv_port":"abc"}'), /^argument --kv-transfer-config: 1 validation error for KVTransferConfig\nkv_port\n {2}Input should be a valid integer, unable to parse string as an integer \[type=int_parsing, input_value='abc', input_type=str\]\n {4}For further information visit https:\/\/errors\.pydantic\.dev\/[\d.]+\/v\/int_parsing$/);
  assert.match(err('{"kv_role":"kv_both","kv_connector_extra_config":[]}'), /kv_connector_extra_config\n {2}Input should be a valid dictionary \[type=dict_type, input_value=\[\], input_type=list\]/);
  assert.match(err('{"kv_role":"kv_both","kv_load_failure_policy":"retry"}'), /kv_load_failure_policy\n {2}Input should be 'recompute' or 'fail' \[type=literal_error/);
  assert.match(err('{"kv_role":"kv_both","kv_rank":1.5,"kv_ip":7}'), /^argument --kv-transfer-config: 2 validation errors for KVTransferConfig\nkv_rank\n[\s\S]*int_from_float[\s\S]*\nkv_ip\n {2}Input should be a valid string \[type=string_type, input_value=7, input_type=int\]/);
  assert.match(err('[1]'), /Input should be a dictionary or an instance of KVTransferConfig \[type=dataclass_type, input_value=\[1\], input_type=list\]/);
  assert.match(err('{"kv_connector":"NixlConnector"}'), /Value error, Please specify kv_role when kv_connector is set, supported roles are \('kv_producer', 'kv_both', 'kv_consumer'\) \[type=value_error, input_value=ArgsKwargs\(\(\), \{'kv_connector': 'NixlConnector'\}\), input_type=ArgsKwargs\]/);
});

test('model geometry: defaults come from the model (max_position_embeddings, KV bytes per token)', () => {
  const q4 = geometryFor('/mnt/models/Qwen3-4B-Instruct-2507');
  assert.equal(q4.maxModelLen, 262144);
  assert.equal(kvBytesPerToken(q4), 147_456); // 36 layers x 2 x 8 kv heads x 128 x 2 bytes
  assert.equal(geometryFor('Qwen/Qwen3-8B').maxModelLen, 40960);
  assert.equal(geometryFor('meta-llama/Llama-3.1-70B-Instruct').layers, 80);
  assert.equal(geometryFor('mistralai/Mistral-7B-Instruct-v0.3').maxModelLen, 32768);
  assert.equal(geometryFor('whatever').name, 'default (Qwen3-4B geometry)');
  assert.equal(geometryFor('whatever', 'qwen3-32b').layers, 64);
  assert.equal(geometryFor('whatever', '{"layers":2,"kvHeads":1,"headDim":64,"hiddenSize":128,"paramsB":0.1,"maxModelLen":4096}').maxModelLen, 4096);
  assert.throws(() => geometryFor('x', '{"layers":0}'), /model geometry:/);
});
