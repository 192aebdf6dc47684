/**
 * The `vllm serve` command line the simulator accepts, flag by flag: the frontend arguments
 * (vllm/entrypoints/openai/cli_args.py) and the engine arguments (vllm/engine/arg_utils.py EngineArgs.add_cli_args,
 * one flag per config dataclass field), as of vLLM 0.31. Boolean fields are argparse.BooleanOptionalAction
 * (`--x` / `--no-x`, no value); list fields take one or more values (nargs='+'); config-class fields take JSON
 * (and `--flag.key value`). Any other flag is refused like argparse does ("unrecognized arguments").
 */

/** Flags taking exactly one value. */
export const VALUE_FLAGS: readonly string[] = [
  // frontend
  'host', 'port', 'uds', 'uvicorn-log-level', 'chat-template', 'chat-template-content-format', 'response-role',
  'ssl-keyfile', 'ssl-certfile', 'ssl-ca-certs', 'ssl-cert-reqs', 'ssl-ciphers', 'root-path', 'middleware',
  'tool-call-parser', 'tool-parser-plugin', 'tool-server', 'log-config-file', 'max-log-len',
  'h11-max-incomplete-event-size', 'h11-max-header-count', 'api-server-count', 'config', 'shutdown-timeout',
  'gdn-prefill-backend', 'kda-prefill-backend', 'disable-access-log-for-endpoints', 'lora-modules-config',
  'default-chat-template-kwargs', 'grpc-port', 'uvicorn-timeout-keep-alive',
  // model
  'model', 'runner', 'convert', 'task', 'tokenizer', 'tokenizer-mode', 'dtype', 'seed', 'hf-config-path',
  'allowed-local-media-path', 'revision', 'code-revision', 'tokenizer-revision', 'max-model-len', 'quantization',
  'max-logprobs', 'logprobs-mode', 'config-format', 'hf-token', 'logits-processor-pattern', 'generation-config',
  'model-impl', 'override-attention-dtype', 'io-processor-plugin', 'max-seq-len-to-capture', 'reasoning-parser',
  'reasoning-parser-plugin', 'rope-theta', 'tokenizer-pool-size', 'guided-decoding-backend', 'pooler-config',
  'override-pooler-config',
  // load
  'load-format', 'download-dir', 'safetensors-load-strategy', 'pt-load-map-location', 'safetensors-prefetch-block-size',
  // parallel
  'distributed-executor-backend', 'pipeline-parallel-size', 'tensor-parallel-size', 'decode-context-parallel-size',
  'prefill-context-parallel-size', 'dcp-kv-cache-interleave-size', 'cp-kv-cache-interleave-size', 'data-parallel-size',
  'data-parallel-rank', 'data-parallel-start-rank', 'data-parallel-size-local', 'data-parallel-address',
  'data-parallel-rpc-port', 'data-parallel-backend', 'all2all-backend', 'dbo-decode-token-threshold',
  'dbo-prefill-token-threshold', 'expert-placement-strategy', 'num-redundant-experts', 'eplb-window-size',
  'eplb-step-interval', 'max-parallel-loading-workers', 'worker-cls', 'worker-extension-cls', 'master-addr',
  'master-port', 'nnodes', 'node-rank', 'distributed-timeout-seconds', 'mm-encoder-tp-mode', 'mm-encoder-attn-backend',
  // cache
  'block-size', 'gpu-memory-utilization', 'kv-cache-memory-bytes', 'swap-space', 'kv-cache-dtype',
  'num-gpu-blocks-override', 'prefix-caching-hash-algo', 'cpu-offload-gb', 'mamba-cache-dtype', 'mamba-ssm-cache-dtype',
  'mamba-block-size', 'kv-offloading-size', 'kv-offloading-backend',
  // multimodal
  'mm-processor-cache-gb', 'mm-processor-cache-type', 'mm-shm-cache-max-object-size-mb', 'video-pruning-rate',
  // lora
  'max-loras', 'max-lora-rank', 'lora-extra-vocab-size', 'lora-dtype', 'max-cpu-loras',
  // observability
  'show-hidden-metrics-for-version', 'otlp-traces-endpoint', 'collect-detailed-traces', 'kv-cache-metrics-sample',
  // scheduler
  'max-num-batched-tokens', 'max-num-scheduled-tokens', 'max-num-seqs', 'max-num-partial-prefills',
  'max-long-partial-prefills', 'long-prefill-token-threshold', 'num-lookahead-slots', 'scheduling-policy',
  'scheduler-cls', 'stream-interval', 'preemption-mode',
  // vllm
  'optimization-level', 'performance-mode', 'device',
];

/** Boolean flags (BooleanOptionalAction: `--x` and `--no-x`, no value). */
export const BOOLEAN_FLAGS: readonly string[] = [
  'headless', 'grpc', 'aggregate-engine-logging', 'fail-on-environ-validation', 'disable-log-stats',
  'enable-log-requests', 'disable-log-requests', 'allow-credentials', 'disable-uvicorn-access-log', 'enable-ssl-refresh',
  'return-tokens-as-token-ids', 'disable-frontend-multiprocessing', 'enable-request-id-headers',
  'enable-auto-tool-choice', 'exclude-tools-when-tool-choice-none', 'enable-prompt-tokens-details',
  'enable-server-load-tracking', 'enable-force-include-usage', 'enable-tokenizer-info-endpoint', 'enable-log-outputs',
  'enable-log-deltas', 'log-error-stack', 'tokens-only', 'disable-fastapi-docs', 'trust-request-chat-template',
  'enable-offline-docs',
  'trust-remote-code', 'enforce-eager', 'disable-sliding-window', 'disable-cascade-attn', 'skip-tokenizer-init',
  'enable-prompt-embeds', 'enable-sleep-mode', 'use-tqdm-on-load', 'data-parallel-hybrid-lb', 'data-parallel-external-lb',
  'enable-expert-parallel', 'enable-dbo', 'disable-nccl-for-dp-synchronization', 'enable-eplb', 'eplb-log-balancedness',
  'ray-workers-use-nsight', 'disable-custom-all-reduce', 'enable-multimodal-encoder-data-parallel',
  'enable-prefix-caching', 'calculate-kv-scales', 'kv-sharing-fast-prefill', 'disable-mm-preprocessor-cache',
  'interleave-mm-strings', 'skip-mm-profiling', 'enable-lora', 'enable-lora-bias', 'fully-sharded-loras',
  'kv-cache-metrics', 'cudagraph-metrics', 'enable-layerwise-nvtx-tracing', 'enable-mfu-metrics',
  'enable-chunked-prefill', 'disable-chunked-mm-input', 'disable-hybrid-kv-cache-manager', 'async-scheduling',
  'multi-step-stream-outputs', 'enable-return-routed-experts',
];

/** Flags taking one or more values (nargs='+'). */
export const MULTI_FLAGS: readonly string[] = [
  'api-key', 'served-model-name', 'lora-modules', 'allowed-origins', 'allowed-methods', 'allowed-headers',
  'logits-processors', 'cuda-graph-sizes', 'ignore-patterns', 'allowed-media-domains',
];

/** Config-class flags whose value is JSON (vLLM parses them with pydantic; `--flag.key value` sets one key). */
export const JSON_FLAGS: readonly string[] = [
  'kv-transfer-config', 'kv-events-config', 'ec-transfer-config', 'compilation-config', 'speculative-config',
  'attention-config', 'additional-config', 'structured-outputs-config', 'profiler-config', 'eplb-config',
  'hf-overrides', 'rope-scaling', 'override-generation-config', 'model-loader-extra-config', 'limit-mm-per-prompt',
  'media-io-kwargs', 'mm-processor-kwargs', 'default-mm-loras', 'kernel-config', 'reasoning-config',
  'weight-transfer-config', 'offload-config',
];

/** Short and alternative spellings → the long flag. */
export const ALIASES: Readonly<Record<string, string>> = {
  tp: 'tensor-parallel-size', pp: 'pipeline-parallel-size', dp: 'data-parallel-size', dcp: 'decode-context-parallel-size',
  pcp: 'prefill-context-parallel-size', dpn: 'data-parallel-rank', dpr: 'data-parallel-start-rank',
  dpl: 'data-parallel-size-local', dpa: 'data-parallel-address', dpp: 'data-parallel-rpc-port',
  dpb: 'data-parallel-backend', dph: 'data-parallel-hybrid-lb', dpe: 'data-parallel-external-lb',
  ep: 'enable-expert-parallel', q: 'quantization', asc: 'api-server-count', n: 'nnodes', r: 'node-rank',
  O: 'optimization-level', 'enable-expert-parallelism': 'enable-expert-parallel',
};

/** The top-level `vllm` usage line (argparse prints it for "unrecognized arguments"), vllm/entrypoints/cli/main.py. */
export const VLLM_USAGE = 'usage: vllm [-h] [-v] {chat,complete,serve,launch,bench,collect-env,run-batch,preload} ...';
/** The `vllm serve` subparser's usage line (vllm/entrypoints/cli/serve.py). */
export const SERVE_USAGE = 'usage: vllm serve [model_tag] [options]';
