/**
 * The vLLM log script: the lines `vllm serve` prints at start-up, when the engine is ready, every 10 s under load,
 * on failures and at shutdown, with vLLM's file:line tags (vllm/entrypoints/openai/api_server.py,
 * vllm/v1/engine/core.py, vllm/v1/metrics/loggers.py, uvicorn). Nothing here decides behaviour: it only prints.
 */
import { SimLogger } from './log.js';
import { PyRaw, pyRepr } from './kv/nixl.js';
import type { KvTransferConfig, SimOptions } from './options.js';
import type { EngineConfig, EngineConfigError } from './engine-config.js';
import { SIM_VLLM_VERSION, compareVersions } from './versions.js';
import {
  addressInUse, cudaOomMessage, engineCoreFailure, ENGINE_INIT_FAILED, modelNotFoundMessage,
} from './startup-errors.js';

/** 1234567 → "1,234,567", as Python's f"{n:,}" (by hand: the first Intl call costs ~20 ms of every start-up). */
function thousands(n: number): string {
  return String(Math.trunc(n)).replace(/\B(?=(\d{3})+(?!\d))/g, ',');
}

/** A start-up failure: message already printed, exit with `code`. */
export class StartupFailure extends Error {
  constructor(readonly code: number, message: string) {
    super(message);
  }
}

export interface Route {
  path: string;
  methods: string;
}

/** The routes vLLM's launcher lists at start-up (vllm/entrypoints/launcher.py). */
export const ROUTES: Route[] = [
  { path: '/openapi.json', methods: 'HEAD, GET' },
  { path: '/docs', methods: 'HEAD, GET' },
  { path: '/docs/oauth2-redirect', methods: 'HEAD, GET' },
  { path: '/redoc', methods: 'HEAD, GET' },
  { path: '/health', methods: 'GET' },
  { path: '/load', methods: 'GET' },
  { path: '/ping', methods: 'POST' },
  { path: '/ping', methods: 'GET' },
  { path: '/tokenize', methods: 'POST' },
  { path: '/detokenize', methods: 'POST' },
  { path: '/v1/models', methods: 'GET' },
  { path: '/version', methods: 'GET' },
  { path: '/v1/chat/completions', methods: 'POST' },
  { path: '/v1/completions', methods: 'POST' },
  { path: '/metrics', methods: 'GET' },
];

/** What the startup lines need to know about the connector. */
export interface ConnectorInfo {
  name: string;
  engineId: string;
  /** Python file the connector logs from (example_connector.py / shared_storage_connector.py). */
  file: string | null;
  storagePath: string | null;
  nixl: boolean;
}

export interface StatsLine {
  promptTps: number;
  genTps: number;
  running: number;
  waiting: number;
  kvUsage: number;
  prefixHitRate: number;
  /** External (connector) hit rate, shown only with a connector. */
  externalHitRate: number | null;
}

export class VllmLogScript {
  constructor(readonly log: SimLogger) {}

  /** The API server's first lines: version and the flags given (vllm/entrypoints/openai/api_server.py, utils.py). */
  apiServerStart(o: SimOptions, connector: ConnectorInfo | null): void {
    const L = this.log;
    L.info('api_server.py:1839', `vLLM API server version ${o.knobs.vllmVersion}`);
    const args = { ...o.nonDefaultArgs };
    if (o.kvTransferConfig && connector) args.kv_transfer_config = new PyRaw(kvTransferConfigRepr({ ...o.kvTransferConfig, engine_id: connector.engineId }, o.knobs.vllmVersion));
    L.info('utils.py:233', `non-default args: ${pyRepr(args)}`);
  }

  /** Engine configuration and engine-core start-up lines, up to loading the model. */
  engineStart(o: SimOptions, plan: EngineConfig, connector: ConnectorInfo | null, cudaVisibleDevices: string | undefined): void {
    const L = this.log;
    L.info('model.py:547', `Resolved architecture: ${plan.geometry.architecture}`);
    L.info('model.py:1510', `Using max model len ${plan.maxModelLen}`);
    if (plan.chunkedPrefill) L.info('scheduler.py:205', `Chunked prefill is enabled with max_num_batched_tokens=${plan.maxNumBatchedTokens}.`);
    for (let dp = 0; dp < plan.dp; dp++) {
      const core = `EngineCore_DP${dp}`;
      L.info('core.py:644', 'Waiting for init message from front-end.', core);
      L.info(
        'core.py:77',
        `Initializing a V1 LLM engine (v${o.knobs.vllmVersion}) with config: model='${o.model}', speculative_config=None, ` +
          `tokenizer='${o.model}', skip_tokenizer_init=False, tokenizer_mode=auto, trust_remote_code=False, ` +
          `dtype=torch.bfloat16, max_seq_len=${plan.maxModelLen}, download_dir=None, load_format=auto, ` +
          `tensor_parallel_size=${plan.tp}, pipeline_parallel_size=${plan.pp}, data_parallel_size=${plan.dp}, ` +
          `disable_custom_all_reduce=False, quantization=None, enforce_eager=${o.nonDefaultArgs.enforce_eager === true ? 'True' : 'False'}, ` +
          `device_config=cuda, seed=${o.seed}, served_model_name=${o.servedModelNames[0]}, ` +
          `enable_prefix_caching=${plan.prefixCaching ? 'True' : 'False'}, enable_chunked_prefill=${plan.chunkedPrefill ? 'True' : 'False'}, ` +
          `block_size=${plan.blockSize}, max_num_seqs=${plan.maxNumSeqs}, max_num_batched_tokens=${plan.maxNumBatchedTokens}`,
        core,
      );
      if (plan.worldSize > 1) L.info('multiproc_executor.py:720', `Reducing Torch parallelism from 2 threads to 1 to avoid unnecessary CPU contention. Set OMP_NUM_THREADS in the external environment to tune this value as needed.`, core);
      const world = plan.worldSize * plan.dp;
      for (let pp = 0; pp < plan.pp; pp++)
        for (let tp = 0; tp < plan.tp; tp++) {
          const rank = dp * plan.worldSize + pp * plan.tp + tp;
          const proc = plan.worldSize === 1 ? core : plan.pp > 1 ? `Worker_PP${pp}_TP${tp}` : `Worker_TP${tp}`;
          L.info('parallel_state.py:1208', `rank ${rank} in world size ${world} is assigned as DP rank ${dp}, PP rank ${pp}, TP rank ${tp}, EP rank ${tp}`, proc);
        }
    }
    L.info('sim.py:1', `Simulated GPU: ${plan.gpuName} (${(plan.gpuMemoryBytes / 1024 ** 3).toFixed(0)} GiB), CUDA_VISIBLE_DEVICES=${cudaVisibleDevices === undefined ? '(unset)' : cudaVisibleDevices}, model geometry ${plan.geometry.name} (pd vLLM simulator; no GPU is used)`, 'EngineCore_DP0');
    if (connector) {
      L.info('factory.py:51', `Creating v1 connector with name: ${connector.name} and engine_id: ${connector.engineId}`, 'EngineCore_DP0');
      L.warning('base.py:85', 'Initializing KVConnectorBase_V1. This API is experimental and subject to change in the future as we iterate the design.', 'EngineCore_DP0');
      if (connector.file && connector.storagePath !== null) {
        L.info(`${connector.file}:102`, kvTransferConfigRepr({ ...o.kvTransferConfig!, engine_id: connector.engineId }, o.knobs.vllmVersion), 'EngineCore_DP0');
        L.info(`${connector.file}:103`, `Shared storage path is ${connector.storagePath}`, 'EngineCore_DP0');
      }
      if (connector.nixl) {
        L.info('nixl_connector.py:610', `Initializing NIXL wrapper`, 'EngineCore_DP0');
        L.info('nixl_connector.py:611', `Initializing NIXL worker ${connector.engineId}`, 'EngineCore_DP0');
      }
    }
    L.info('gpu_model_runner.py:2602', `Starting to load model ${o.model}...`, 'EngineCore_DP0');
  }

  engineReady(o: SimOptions, plan: EngineConfig): void {
    const L = this.log;
    const tokens = plan.numGpuBlocks * plan.blockSize;
    for (let dp = 0; dp < plan.dp; dp++) {
      const core = `EngineCore_DP${dp}`;
      L.info('gpu_model_runner.py:2653', `Model loading took ${(plan.weightsBytesPerGpu / 1024 ** 3).toFixed(4)} GiB and 2.31 seconds`, core);
      L.info('gpu_worker.py:298', `Available KV cache memory: ${(plan.availableKvBytesPerGpu / 1024 ** 3).toFixed(2)} GiB`, core);
      L.info('kv_cache_utils.py:1087', `GPU KV cache size: ${thousands(tokens)} tokens`, core);
      L.info('kv_cache_utils.py:1091', `Maximum concurrency for ${thousands(plan.maxModelLen)} tokens per request: ${(tokens / plan.maxModelLen).toFixed(2)}x`, core);
      L.info('core.py:210', `init engine (profile, create kv cache, warmup model) took ${o.knobs.startupDelay.toFixed(2)} seconds`, core);
    }
    L.info('loggers.py:147', `Engine 000: vllm cache_config_info with initialization after num_gpu_blocks is: ${plan.numGpuBlocks}`);
    L.info('api_server.py:1634', "Supported_tasks: ['generate']");
  }

  /**
   * An engine configuration vLLM refuses: a pydantic ValidationError of the config class raised in the API server
   * (create_engine_config), or an exception while the engine core initialises.
   */
  configFailure(e: EngineConfigError, o: SimOptions): never {
    const L = this.log;
    if (e.where === 'engine') {
      L.error('core.py:708', 'EngineCore failed to start.', 'EngineCore_DP0');
      const last = /^[A-Za-z.]+Error: /.test(e.message) ? e.message : `ValueError: ${e.message}`;
      L.raw(engineCoreFailure(last).split('\n').map((l) => L.prefix('EngineCore_DP0') + l).join('\n'));
      L.raw(`${L.prefix()}${ENGINE_INIT_FAILED}`);
      throw new StartupFailure(1, last);
    }
    const input = `ArgsKwargs((), {'model': '${o.model}', ...})`;
    const text = `pydantic_core._pydantic_core.ValidationError: 1 validation error for ${e.pydantic ?? 'VllmConfig'}\n  Value error, ${e.message} [type=value_error, input_value=${input}, input_type=ArgsKwargs]\n    For further information visit https://errors.pydantic.dev/2.12/v/value_error`;
    L.raw([
      'Traceback (most recent call last):',
      '  File "/usr/local/bin/vllm", line 10, in <module>',
      '    sys.exit(main())',
      '  File "/usr/local/lib/python3.12/dist-packages/vllm/engine/arg_utils.py", line 1384, in create_engine_config',
      ...text.split('\n'),
    ].map((l) => L.prefix() + l).join('\n'));
    throw new StartupFailure(1, text.split('\n')[0]!);
  }

  /** A preemption, with the warning vLLM prints (docs/configuration/optimization.md, "Preemption"). */
  preempted(_promptTokens: number, total: number, dpRank: number): void {
    this.log.warning(
      'scheduler.py:1057',
      `Sequence group ${total - 1} is preempted by PreemptionMode.RECOMPUTE mode because there is not enough KV cache space. This can affect the end-to-end performance. Increase gpu_memory_utilization or tensor_parallel_size to provide more KV cache memory. total_cumulative_preemption_cnt=${total}`,
      `EngineCore_DP${dpRank}`,
    );
  }

  serverStarted(host: string | null, port: number): void {
    const L = this.log;
    const h = host ?? '0.0.0.0';
    const hostPart = h.includes(':') ? `[${h}]` : h;
    L.info('api_server.py:1912', `Starting vLLM API server 0 on http://${hostPart}:${port}`);
    L.info('launcher.py:34', 'Available routes are:');
    for (const r of ROUTES) L.info('launcher.py:42', `Route: ${r.path}, Methods: ${r.methods}`);
    L.uvicorn(`Started server process [${process.pid}]`);
    L.uvicorn('Waiting for application startup.');
    L.uvicorn('Application startup complete.');
  }

  /** vLLM's periodic LoggingStatLogger line (vllm/v1/metrics/loggers.py). */
  stats(s: StatsLine): void {
    let line =
      `Engine 000: Avg prompt throughput: ${s.promptTps.toFixed(1)} tokens/s, ` +
      `Avg generation throughput: ${s.genTps.toFixed(1)} tokens/s, Running: ${s.running} reqs, ` +
      `Waiting: ${s.waiting} reqs, GPU KV cache usage: ${(s.kvUsage * 100).toFixed(1)}%, Prefix cache hit rate: ${(s.prefixHitRate * 100).toFixed(1)}%`;
    if (s.externalHitRate !== null) line += `, External prefix cache hit rate: ${(s.externalHitRate * 100).toFixed(1)}%`;
    this.log.info('loggers.py:123', line);
  }

  /** A kv-transfer-config rejected while the engine starts (connector factory) or in the API server (config). */
  connectorFailure(msg: string, where: 'api' | 'engine'): never {
    const L = this.log;
    if (where === 'engine') {
      L.raw(engineCoreFailure(msg).split('\n').map((l) => `${L.prefix('EngineCore_DP0')}${l}`).join('\n'));
      L.raw(`${L.prefix()}${ENGINE_INIT_FAILED}`);
    } else {
      L.raw(`${L.prefix()}Traceback (most recent call last):\n${L.prefix()}  File "/usr/local/lib/python3.12/dist-packages/vllm/config/kv_transfer.py", line 93, in __post_init__\n${L.prefix()}${msg}`);
    }
    throw new StartupFailure(1, msg);
  }

  /** Fault injection: fail start-up with a CUDA OOM, a missing model or any message. */
  startupFault(kind: string, model: string): never {
    const L = this.log;
    let last: string;
    if (kind === 'cuda-oom' || kind === 'oom') last = cudaOomMessage();
    else if (kind === 'model-not-found') {
      const msg = modelNotFoundMessage(model);
      L.raw(msg.split('\n').map((l) => L.prefix() + l).join('\n'));
      throw new StartupFailure(1, msg.split('\n')[0]!);
    } else last = kind.includes(':') ? kind : `RuntimeError: ${kind}`;
    L.error('core.py:708', 'EngineCore failed to start.', 'EngineCore_DP0');
    L.raw(engineCoreFailure(last).split('\n').map((l) => L.prefix('EngineCore_DP0') + l).join('\n'));
    L.raw(`${L.prefix()}${ENGINE_INIT_FAILED}`);
    throw new StartupFailure(1, last);
  }

  /** The API server could not bind its socket. */
  listenFailed(e: NodeJS.ErrnoException): never {
    const L = this.log;
    if (e.code === 'EADDRINUSE') {
      L.raw(addressInUse().split('\n').map((l) => L.prefix() + l).join('\n'));
      throw new StartupFailure(1, 'OSError: [Errno 98] Address already in use');
    }
    if (e.code === 'EADDRNOTAVAIL' || e.code === 'ENOTFOUND' || e.code === 'EAI_AGAIN') {
      L.raw(`${L.prefix()}OSError: [Errno 99] Cannot assign requested address`);
      throw new StartupFailure(1, 'OSError: [Errno 99] Cannot assign requested address');
    }
    if (e.code === 'EACCES') {
      L.raw(`${L.prefix()}PermissionError: [Errno 13] Permission denied`);
      throw new StartupFailure(1, 'PermissionError: [Errno 13] Permission denied');
    }
    throw e;
  }

  engineDead(reason: string): void {
    const L = this.log;
    L.error('core.py:710', `EngineCore encountered a fatal error. (simulated: ${reason})`, 'EngineCore_DP0');
    L.error('async_llm.py:480', 'AsyncLLM output_handler failed.');
    L.raw(`${L.prefix()}vllm.v1.engine.exceptions.EngineDeadError: EngineCore encountered an issue. See stack trace (above) for the root cause.`);
  }

  shutdownStarted(): void {
    this.log.info('launcher.py:99', 'Shutting down FastAPI HTTP server.');
    this.log.uvicorn('Shutting down');
  }

  shutdownDone(): void {
    this.log.uvicorn('Waiting for application shutdown.');
    this.log.uvicorn('Application shutdown complete.');
  }
}

/** KVTransferConfig's repr as vLLM logs it (field order of vllm/config/kv_transfer.py). */
export function kvTransferConfigRepr(kv: KvTransferConfig, version = SIM_VLLM_VERSION): string {
  const fields: Array<[string, unknown]> = [
    ['kv_connector', kv.kv_connector ?? null],
    ['engine_id', kv.engine_id ?? null],
    ['kv_buffer_device', kv.kv_buffer_device ?? 'cuda'],
    ['kv_buffer_size', kv.kv_buffer_size ?? 1e9],
    ['kv_role', kv.kv_role ?? null],
    ['kv_rank', kv.kv_rank ?? null],
    ['kv_parallel_size', kv.kv_parallel_size ?? 1],
    ['kv_ip', kv.kv_ip ?? '127.0.0.1'],
    ['kv_port', kv.kv_port ?? 14579],
    ['kv_connector_extra_config', kv.kv_connector_extra_config ?? {}],
    ['kv_connector_module_path', kv.kv_connector_module_path ?? null],
  ];
  // enable_permute_local_kv and kv_load_failure_policy joined the dataclass in vLLM 0.12.
  if (compareVersions(version, '0.12.0') >= 0)
    fields.push(['enable_permute_local_kv', kv.enable_permute_local_kv ?? false], ['kv_load_failure_policy', kv.kv_load_failure_policy ?? 'fail']);
  // kv_buffer_size is a float in vLLM (1e9 prints as 1000000000.0).
  const fmt = (v: unknown, k: string): string =>
    k === 'kv_buffer_size' && typeof v === 'number' && Number.isInteger(v) ? `${v}.0` : pyRepr(v);
  return `KVTransferConfig(${fields.map(([k, v]) => `${k}=${fmt(v, k)}`).join(', ')})`;
}
