/**
 * The simulated `vllm serve`: start-up sequence and logs, the HTTP server (raw node:http for speed), the OpenAI
 * endpoints, KV connectors, fault injection, metrics and graceful shutdown.
 */
import { createServer, STATUS_CODES, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createNetServer, type Socket } from 'node:net';
import { randomUUID } from 'node:crypto';
import { Engine, type GenParams, type Seq, type FinishReason, type TokenFinish } from './engine.js';
import { SimLogger } from './log.js';
import { SimMetrics } from './metrics.js';
import { compareVersions, isZeroLatency, type SimOptions } from './options.js';
import {
  chatChunk, chatResponse, completionChunk, completionResponse, errorBody, usage, usageChunk, type ChoiceResult, type Usage,
} from './protocol.js';
import { SharedStorage } from './kv/shared-storage.js';
import { Nixl, PyRaw, pyRepr, type NixlParams } from './kv/nixl.js';
import { HttpError, badRequest, validationError, prepareRequest, type Prepared } from './request.js';
import { FAULT_HEADER, FaultHeaderError, parseFaultHeader, type RequestFault } from './faults.js';
import { tokenize, tokenizeChat, detokenize } from './tokenizer.js';
import { mulberry32 } from './rng.js';
import {
  addressInUse, cudaOomMessage, engineCoreFailure, ENGINE_INIT_FAILED, modelNotFoundMessage,
} from './startup-errors.js';

export const DEFAULT_MAX_MODEL_LEN = 40960;
const KV_CAPACITY_TOKENS = 123_456;
/** Connectors vLLM registers besides the ones simulated: accepted, simulated as no-ops. */
const OTHER_CONNECTORS = [
  'LMCacheConnectorV1', 'P2pNcclConnector', 'MultiConnector', 'OffloadingConnector', 'DecodeBenchConnector',
  'MooncakeConnector', 'LMCacheMPConnector',
];

/** A start-up failure: message already printed, exit with `code`. */
export class StartupFailure extends Error {
  constructor(readonly code: number, message: string) {
    super(message);
  }
}

type ConnectorKind = 'shared-storage' | 'nixl' | 'other' | 'none';

interface Route {
  path: string;
  methods: string;
}
const ROUTES: Route[] = [
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

export class SimServer {
  readonly log: SimLogger;
  readonly opts: SimOptions;
  readonly maxModelLen: number;
  readonly engine: Engine;
  readonly metrics: SimMetrics;
  readonly connector: ConnectorKind;
  readonly connectorName: string | null;
  readonly engineId: string;
  readonly storage: SharedStorage | null = null;
  readonly nixl: Nixl | null = null;
  private server: Server | null = null;
  private readonly sockets = new Set<Socket>();
  private readonly inflight = new Map<ServerResponse, IncomingMessage>();
  private dead = false;
  private shuttingDown = false;
  private generationRequests = 0;
  private readonly rng;
  private readonly zero: boolean;
  private readonly modelName: string;
  private readonly timers: NodeJS.Timeout[] = [];
  /** --disable-uvicorn-access-log */
  private readonly noAccessLog: boolean;
  private statsPrompt = 0;
  private statsGen = 0;
  private lastStatsAt = performance.now();
  private hitQueries = 0;
  private hitTokens = 0;
  /** Resolves with the exit code once the server has stopped (shutdown or crash). */
  readonly exited: Promise<number>;
  private resolveExit!: (code: number) => void;
  /** Called when the process should exit (main.ts wires process.exit). */
  onExit: (code: number) => void = () => undefined;

  constructor(opts: SimOptions, private readonly env: NodeJS.ProcessEnv = process.env, log = new SimLogger()) {
    this.opts = opts;
    this.log = log;
    this.maxModelLen = opts.maxModelLen > 0 ? opts.maxModelLen : DEFAULT_MAX_MODEL_LEN;
    this.modelName = opts.servedModelNames[0]!;
    this.engine = new Engine(opts.knobs, opts.maxNumSeqs);
    this.rng = mulberry32((opts.knobs.seed ^ 0x5eed) >>> 0);
    this.zero = isZeroLatency(opts.knobs);
    this.noAccessLog = opts.nonDefaultArgs.disable_uvicorn_access_log === true;
    this.exited = new Promise((r) => (this.resolveExit = r));
    this.metrics = new SimMetrics(this.modelName, this.maxModelLen, () => ({
      ...this.engine.stats,
      kvUsage: this.kvUsage(),
    }));
    this.engine.onStep = (p, g) => {
      this.statsPrompt += p;
      this.statsGen += g;
      this.metrics.addTokens(p, g);
    };
    const kv = opts.kvTransferConfig;
    // KVTransferConfig assigns a random uuid when engine_id is not given.
    this.engineId = kv?.engine_id ?? randomUUID();
    this.connectorName = kv?.kv_connector ?? null;
    if (!this.connectorName) this.connector = 'none';
    else if (this.connectorName === 'SharedStorageConnector' || this.connectorName === 'ExampleConnector') {
      this.connector = 'shared-storage';
      const extra = (kv?.kv_connector_extra_config ?? {});
      const path = typeof extra.shared_storage_path === 'string' ? extra.shared_storage_path : '/tmp';
      this.storage = new SharedStorage(path, opts.blockSize, opts.knobs.kvLayers, opts.knobs.kvLayerBytes);
    } else if (this.connectorName === 'NixlConnector') {
      this.connector = 'nixl';
      this.nixl = new Nixl(this.engineId, env, opts.blockSize);
    } else this.connector = 'other';
  }

  private kvUsage(): number {
    return Math.min(1, (this.engine.stats.running * 512) / KV_CAPACITY_TOKENS);
  }

  private get connectorFile(): string {
    return this.connectorName === 'ExampleConnector' ? 'example_connector.py' : 'shared_storage_connector.py';
  }

  /** Validate the kv-transfer-config like vLLM's KVTransferConfig and connector factory; throws StartupFailure. */
  private validateConnector(): void {
    const kv = this.opts.kvTransferConfig;
    if (!kv) return;
    const roles = ['kv_producer', 'kv_consumer', 'kv_both'];
    const fail = (msg: string, where: 'api' | 'engine'): never => {
      if (where === 'engine') {
        this.log.raw(engineCoreFailure(msg).split('\n').map((l) => `${this.log.prefix('EngineCore_DP0')}${l}`).join('\n'));
        this.log.raw(`${this.log.prefix()}${ENGINE_INIT_FAILED}`);
      } else {
        this.log.raw(`${this.log.prefix()}Traceback (most recent call last):\n${this.log.prefix()}  File "/usr/local/lib/python3.12/dist-packages/vllm/config/kv_transfer.py", line 93, in __post_init__\n${this.log.prefix()}${msg}`);
      }
      throw new StartupFailure(1, msg);
    };
    if (kv.kv_role != null && !roles.includes(String(kv.kv_role)))
      fail(`ValueError: Unsupported kv_role: ${kv.kv_role}. Supported roles are ('kv_producer', 'kv_consumer', 'kv_both')`, 'api');
    if (kv.kv_connector != null && kv.kv_role == null)
      fail(
        "ValueError: Please specify kv_role when kv_connector is set, supported roles are ('kv_producer', 'kv_consumer', 'kv_both')",
        'api',
      );
    const name = this.connectorName;
    if (name == null) return;
    const newNames = compareVersions(this.opts.knobs.vllmVersion, '0.13.0') >= 0;
    const known = new Set([...OTHER_CONNECTORS, 'NixlConnector', newNames ? 'ExampleConnector' : 'SharedStorageConnector']);
    if (!known.has(name) && !kv.kv_connector_module_path) fail(`ValueError: Unsupported connector type: ${name}`, 'engine');
    if (this.connector === 'shared-storage') {
      const extra = kv.kv_connector_extra_config;
      if (extra !== undefined && (typeof extra !== 'object' || extra === null || Array.isArray(extra)))
        fail('ValueError: kv_connector_extra_config must be a dict', 'api');
    }
  }

  private logStartup(): void {
    const L = this.log;
    const o = this.opts;
    L.info('api_server.py:1839', `vLLM API server version ${o.knobs.vllmVersion}`);
    const args = { ...o.nonDefaultArgs };
    if (o.kvTransferConfig) args.kv_transfer_config = new PyRaw(kvTransferConfigRepr({ ...o.kvTransferConfig, engine_id: this.engineId }));
    L.info('utils.py:233', `non-default args: ${pyRepr(args)}`);
    L.info('model.py:547', `Resolved architecture: Qwen3ForCausalLM`);
    L.info('model.py:1510', `Using max model len ${this.maxModelLen}`);
    L.info('scheduler.py:205', 'Chunked prefill is enabled with max_num_batched_tokens=8192.');
    L.info('core.py:644', 'Waiting for init message from front-end.', 'EngineCore_DP0');
    L.info(
      'core.py:77',
      `Initializing a V1 LLM engine (v${o.knobs.vllmVersion}) with config: model='${o.model}', speculative_config=None, ` +
        `tokenizer='${o.model}', skip_tokenizer_init=False, tokenizer_mode=auto, trust_remote_code=False, ` +
        `dtype=torch.bfloat16, max_seq_len=${this.maxModelLen}, device_config=cuda, seed=${o.seed}, ` +
        `served_model_name=${o.servedModelNames[0]}, enable_prefix_caching=True, block_size=${o.blockSize}, ` +
        `max_num_seqs=${o.maxNumSeqs}`,
      'EngineCore_DP0',
    );
    const cvd = this.env.CUDA_VISIBLE_DEVICES;
    L.info(
      'parallel_state.py:1208',
      'rank 0 in world size 1 is assigned as DP rank 0, PP rank 0, TP rank 0, EP rank 0',
      'EngineCore_DP0',
    );
    L.info('sim.py:1', `Simulated GPU: CUDA_VISIBLE_DEVICES=${cvd === undefined ? '(unset)' : cvd} (pd vLLM simulator; no GPU is used)`, 'EngineCore_DP0');
    if (this.connectorName) {
      const kv = o.kvTransferConfig!;
      L.info('factory.py:51', `Creating v1 connector with name: ${this.connectorName} and engine_id: ${this.engineId}`, 'EngineCore_DP0');
      L.warning('base.py:85', 'Initializing KVConnectorBase_V1. This API is experimental and subject to change in the future as we iterate the design.', 'EngineCore_DP0');
      if (this.storage) {
        L.info(`${this.connectorFile}:102`, kvTransferConfigRepr({ ...kv, engine_id: this.engineId }), 'EngineCore_DP0');
        L.info(`${this.connectorFile}:103`, `Shared storage path is ${this.storage.storagePath}`, 'EngineCore_DP0');
      }
      if (this.nixl) {
        L.info('nixl_connector.py:610', `Initializing NIXL wrapper`, 'EngineCore_DP0');
        L.info('nixl_connector.py:611', `Initializing NIXL worker ${this.nixl.engineId}`, 'EngineCore_DP0');
      }
    }
    L.info('gpu_model_runner.py:2602', `Starting to load model ${o.model}...`, 'EngineCore_DP0');
  }

  private logEngineReady(): void {
    const L = this.log;
    L.info('gpu_model_runner.py:2653', 'Model loading took 7.6 GiB and 2.31 seconds', 'EngineCore_DP0');
    L.info('kv_cache_utils.py:1087', `GPU KV cache size: ${KV_CAPACITY_TOKENS.toLocaleString('en-US')} tokens`, 'EngineCore_DP0');
    L.info(
      'kv_cache_utils.py:1091',
      `Maximum concurrency for ${this.maxModelLen.toLocaleString('en-US')} tokens per request: ${(KV_CAPACITY_TOKENS / this.maxModelLen).toFixed(2)}x`,
      'EngineCore_DP0',
    );
    L.info('core.py:210', `init engine (profile, create kv cache, warmup model) took ${this.opts.knobs.startupDelay.toFixed(2)} seconds`, 'EngineCore_DP0');
    L.info('loggers.py:147', `Engine 000: vllm cache_config_info with initialization after num_gpu_blocks is: ${Math.floor(KV_CAPACITY_TOKENS / this.opts.blockSize)}`);
    L.info('api_server.py:1634', "Supported_tasks: ['generate']");
  }

  /** Fail early when the port is taken (vLLM binds its socket before building the engine). */
  private async probePort(): Promise<void> {
    await new Promise<void>((resolve, reject) => {
      const s = createNetServer();
      s.once('error', reject);
      s.listen({ port: this.opts.port, host: this.opts.host ?? undefined, exclusive: true }, () => s.close(() => resolve()));
    }).catch((e: NodeJS.ErrnoException) => this.listenFailed(e));
  }

  private listenFailed(e: NodeJS.ErrnoException): never {
    if (e.code === 'EADDRINUSE') {
      this.log.raw(addressInUse().split('\n').map((l) => this.log.prefix() + l).join('\n'));
      throw new StartupFailure(1, 'OSError: [Errno 98] Address already in use');
    }
    if (e.code === 'EADDRNOTAVAIL' || e.code === 'ENOTFOUND' || e.code === 'EAI_AGAIN') {
      this.log.raw(`${this.log.prefix()}OSError: [Errno 99] Cannot assign requested address`);
      throw new StartupFailure(1, 'OSError: [Errno 99] Cannot assign requested address');
    }
    if (e.code === 'EACCES') {
      this.log.raw(`${this.log.prefix()}PermissionError: [Errno 13] Permission denied`);
      throw new StartupFailure(1, 'PermissionError: [Errno 13] Permission denied');
    }
    throw e;
  }

  /** Run the start-up sequence; resolves once the server accepts requests. Throws StartupFailure. */
  async start(): Promise<void> {
    this.logStartup();
    this.validateConnector();
    await this.probePort();
    const k = this.opts.knobs;
    if (k.startupDelay > 0) await sleep(k.startupDelay * 1000);
    if (this.shuttingDown) return;
    if (k.failStartup) this.failStartup(k.failStartup);
    this.logEngineReady();
    const server = createServer({ keepAliveTimeout: 5000, requestTimeout: 0, headersTimeout: 60_000 }, (req, res) =>
      this.handle(req, res),
    );
    server.on('connection', (s: Socket) => {
      this.sockets.add(s);
      s.setNoDelay(true);
      s.on('close', () => this.sockets.delete(s));
    });
    server.maxHeadersCount = 200;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen({ port: this.opts.port, host: this.opts.host ?? undefined, backlog: 4096 }, () => {
        server.off('error', reject);
        resolve();
      });
    }).catch((e: NodeJS.ErrnoException) => this.listenFailed(e));
    this.server = server;
    const L = this.log;
    const host = this.opts.host ?? '0.0.0.0';
    const hostPart = host.includes(':') ? `[${host}]` : host;
    const addr = server.address();
    const port = addr && typeof addr === 'object' ? addr.port : this.opts.port;
    L.info('api_server.py:1912', `Starting vLLM API server 0 on http://${hostPart}:${port}`);
    L.info('launcher.py:34', 'Available routes are:');
    for (const r of ROUTES) L.info('launcher.py:42', `Route: ${r.path}, Methods: ${r.methods}`);
    L.uvicorn(`Started server process [${process.pid}]`);
    L.uvicorn('Waiting for application startup.');
    L.uvicorn('Application startup complete.');
    if (k.crashAfterSeconds > 0) this.timers.push(setTimeout(() => this.die('crash-after-seconds'), k.crashAfterSeconds * 1000));
    if (!this.opts.nonDefaultArgs.disable_log_stats) {
      const stats = setInterval(() => this.logStats(), 10_000);
      stats.unref();
      this.timers.push(stats);
    }
  }

  private failStartup(kind: string): never {
    const L = this.log;
    let last: string;
    if (kind === 'cuda-oom' || kind === 'oom') last = cudaOomMessage();
    else if (kind === 'model-not-found') {
      const msg = modelNotFoundMessage(this.opts.model);
      L.raw(msg.split('\n').map((l) => L.prefix() + l).join('\n'));
      throw new StartupFailure(1, msg.split('\n')[0]!);
    } else last = kind.includes(':') ? kind : `RuntimeError: ${kind}`;
    L.error('core.py:708', 'EngineCore failed to start.', 'EngineCore_DP0');
    L.raw(engineCoreFailure(last).split('\n').map((l) => L.prefix('EngineCore_DP0') + l).join('\n'));
    L.raw(`${L.prefix()}${ENGINE_INIT_FAILED}`);
    throw new StartupFailure(1, last);
  }

  private logStats(): void {
    const now = performance.now();
    const dt = (now - this.lastStatsAt) / 1000;
    const { running, waiting } = this.engine.stats;
    if (this.statsPrompt === 0 && this.statsGen === 0 && running === 0 && waiting === 0) {
      this.lastStatsAt = now;
      return;
    }
    let line =
      `Engine 000: Avg prompt throughput: ${(this.statsPrompt / dt).toFixed(1)} tokens/s, ` +
      `Avg generation throughput: ${(this.statsGen / dt).toFixed(1)} tokens/s, Running: ${running} reqs, ` +
      `Waiting: ${waiting} reqs, GPU KV cache usage: ${(this.kvUsage() * 100).toFixed(1)}%, Prefix cache hit rate: 0.0%`;
    if (this.connector === 'shared-storage' || this.connector === 'nixl')
      line += `, External prefix cache hit rate: ${this.hitQueries ? ((100 * this.hitTokens) / this.hitQueries).toFixed(1) : '0.0'}%`;
    this.log.info('loggers.py:123', line);
    this.statsPrompt = 0;
    this.statsGen = 0;
    this.lastStatsAt = now;
  }

  // ---------------------------------------------------------------- HTTP

  private access(req: IncomingMessage, status: number): void {
    if (this.noAccessLog) return;
    let addr = req.socket.remoteAddress ?? '-';
    if (addr.startsWith('::ffff:')) addr = addr.slice(7);
    this.log.access(`${addr}:${req.socket.remotePort ?? 0}`, req.method ?? 'GET', req.url ?? '/', req.httpVersion, status, STATUS_CODES[status] ?? '');
  }

  /** --enable-request-id-headers: echo X-Request-Id (or a fresh one) on every response, as vLLM's middleware does. */
  private requestIdHeader(req: IncomingMessage): Record<string, string> {
    if (this.opts.nonDefaultArgs.enable_request_id_headers !== true) return {};
    const id = req.headers['x-request-id'];
    return { 'x-request-id': typeof id === 'string' && id ? id : randomUUID().replace(/-/g, '') };
  }

  private send(req: IncomingMessage, res: ServerResponse, status: number, body: unknown, contentType = 'application/json'): void {
    const data = body === null ? '' : typeof body === 'string' ? body : JSON.stringify(body);
    res.writeHead(status, {
      'content-type': contentType,
      'content-length': Buffer.byteLength(data),
      server: 'uvicorn',
      ...this.requestIdHeader(req),
    });
    res.end(data);
    this.access(req, status);
  }

  private handle(req: IncomingMessage, res: ServerResponse): void {
    const url = req.url ?? '/';
    const q = url.indexOf('?');
    const path = q >= 0 ? url.slice(0, q) : url;
    const method = req.method ?? 'GET';
    if (this.opts.apiKeys.length > 0 && path.startsWith('/v1') && method !== 'OPTIONS') {
      const auth = req.headers.authorization ?? '';
      if (!this.opts.apiKeys.some((k) => auth === `Bearer ${k}`)) {
        req.resume();
        return this.send(req, res, 401, { error: 'Unauthorized' });
      }
    }
    if (path === '/v1/completions' || path === '/v1/chat/completions') {
      if (method !== 'POST') return this.methodNotAllowed(req, res);
      return void this.generate(req, res, path === '/v1/chat/completions' ? 'chat' : 'completion');
    }
    switch (path) {
      case '/health':
        if (method !== 'GET' && method !== 'HEAD') return this.methodNotAllowed(req, res);
        return this.send(req, res, this.dead ? 503 : 200, null);
      case '/ping':
        return this.send(req, res, this.dead ? 503 : 200, null);
      case '/load':
        return this.send(req, res, 200, { server_load: this.inflight.size });
      case '/version':
        return this.send(req, res, 200, { version: this.opts.knobs.vllmVersion });
      case '/v1/models':
        if (method !== 'GET' && method !== 'HEAD') return this.methodNotAllowed(req, res);
        return this.send(req, res, 200, this.models());
      case '/metrics':
        void this.metrics.text().then(
          (t) => this.send(req, res, 200, t, 'text/plain; version=0.0.4; charset=utf-8'),
          (e: Error) => this.send(req, res, 500, errorBody(e.message, 500)),
        );
        return;
      case '/tokenize':
      case '/detokenize':
        if (method !== 'POST') return this.methodNotAllowed(req, res);
        return void this.tokenizeRoute(req, res, path === '/tokenize');
      default:
        req.resume();
        return this.send(req, res, 404, { detail: 'Not Found' });
    }
  }

  private methodNotAllowed(req: IncomingMessage, res: ServerResponse): void {
    req.resume();
    this.send(req, res, 405, { detail: 'Method Not Allowed' });
  }

  models(): unknown {
    const created = Math.floor(Date.now() / 1000);
    return {
      object: 'list',
      data: this.opts.servedModelNames.map((name) => ({
        id: name,
        object: 'model',
        created,
        owned_by: 'vllm',
        root: this.opts.model,
        parent: null,
        max_model_len: this.maxModelLen,
        permission: [
          {
            id: `modelperm-${randomUUID().replace(/-/g, '')}`,
            object: 'model_permission',
            created,
            allow_create_engine: false,
            allow_sampling: true,
            allow_logprobs: true,
            allow_search_indices: false,
            allow_view: true,
            allow_fine_tuning: false,
            organization: '*',
            group: null,
            is_blocking: false,
          },
        ],
      })),
    };
  }

  private readBody(req: IncomingMessage): Promise<string> {
    return new Promise((resolve, reject) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => resolve(chunks.length === 1 ? chunks[0]!.toString('utf8') : Buffer.concat(chunks).toString('utf8')));
      req.on('error', reject);
    });
  }

  private parseJson(text: string): unknown {
    try {
      return JSON.parse(text);
    } catch (e) {
      const pos = /position (\d+)/.exec((e as Error).message)?.[1] ?? '0';
      throw validationError(
        `[{'type': 'json_invalid', 'loc': ('body', ${pos}), 'msg': 'JSON decode error', 'input': {}, 'ctx': {'error': 'Expecting value'}}]`,
      );
    }
  }

  private async tokenizeRoute(req: IncomingMessage, res: ServerResponse, tok: boolean): Promise<void> {
    try {
      const body = this.parseJson(await this.readBody(req)) as Record<string, unknown>;
      if (tok) {
        let ids: number[];
        if (Array.isArray(body.messages)) ids = tokenizeChat(body.messages as never, body.add_generation_prompt !== false);
        else if (typeof body.prompt === 'string') ids = tokenize(body.prompt);
        else throw validationError("[{'type': 'missing', 'loc': ('body', 'prompt'), 'msg': 'Field required'}]");
        return this.send(req, res, 200, { count: ids.length, max_model_len: this.maxModelLen, tokens: ids, token_strs: null });
      }
      if (!Array.isArray(body.tokens)) throw validationError("[{'type': 'missing', 'loc': ('body', 'tokens'), 'msg': 'Field required'}]");
      return this.send(req, res, 200, { prompt: detokenize(body.tokens as number[]) });
    } catch (e) {
      this.sendError(req, res, e);
    }
  }

  private sendError(req: IncomingMessage, res: ServerResponse, e: unknown): void {
    if (e instanceof HttpError) return this.send(req, res, e.status, e.body);
    const msg = e instanceof Error ? e.message : String(e);
    this.log.error('serving_engine.py:1', `Error in request: ${msg}`);
    this.send(req, res, 500, errorBody(msg, 500));
  }

  // ---------------------------------------------------------------- generation

  /** Decide injected failures for this request (knobs + header). */
  private injectedStatus(fault: RequestFault): number | null {
    if (fault.status) return fault.status;
    // A request carrying its own X-PD-Sim-Fault is exempt from the engine-wide error rate/period.
    if (Object.keys(fault).length > 0) return null;
    const k = this.opts.knobs;
    if (k.errorEvery > 0 && this.generationRequests % k.errorEvery === 0) return k.errorStatus;
    if (k.errorRate > 0 && this.rng() < k.errorRate) return k.errorStatus;
    return null;
  }

  /** The body vLLM itself sends for that status where it has one (401 auth, 404 model), else the envelope. */
  private injectedError(status: number, model: string): HttpError {
    if (status === 401) return new HttpError(401, { error: 'Unauthorized' });
    if (status === 404) return new HttpError(404, errorBody(`The model \`${model}-unavailable\` does not exist.`, 404, 'NotFoundError', 'model'));
    return new HttpError(status, errorBody(`Simulated failure (pd vLLM simulator fault injection): ${status} ${STATUS_CODES[status] ?? ''}`.trim(), status));
  }

  /** Connector work before the engine runs the request: returns external tokens and, for NIXL producers, params. */
  private async connectorBefore(promptIds: number[], kvParams: unknown): Promise<{ external: number; remoteDecode: boolean; kvTokens: number; kvScale: number }> {
    const m = this.metrics;
    if (this.storage) {
      const look = this.storage.lookup(promptIds);
      const queried = promptIds.length;
      m.externalQueries.inc(m.l, queried);
      this.hitQueries += queried;
      m.lookups.inc({ ...m.l, connector: this.connectorName!, result: look.hit ? 'hit' : 'miss' });
      if (look.hit) {
        m.externalHits.inc(m.l, look.matchedTokens);
        this.hitTokens += look.matchedTokens;
        this.log.info(`${this.connectorFile}:257`, 'External Cache Hit!', 'EngineCore_DP0');
        this.log.info(`${this.connectorFile}:166`, `Inject KV cache of ${this.storage.injectTokens(promptIds)} tokens to the paged memory`, 'EngineCore_DP0');
        return { external: look.matchedTokens, remoteDecode: false, kvTokens: this.storage.injectTokens(promptIds), kvScale: 1 };
      }
      await this.storage.save(promptIds);
      // Saving the KV (safetensors per layer) costs like loading it.
      return { external: 0, remoteDecode: false, kvTokens: this.storage.injectTokens(promptIds), kvScale: 1 };
    }
    if (this.nixl) {
      const d = this.nixl.classify(kvParams);
      if (d.kind === 'remote-prefill') {
        const external = promptIds.length - 1;
        m.externalQueries.inc(m.l, promptIds.length);
        m.externalHits.inc(m.l, external);
        this.hitQueries += promptIds.length;
        this.hitTokens += external;
        m.lookups.inc({ ...m.l, connector: 'NixlConnector', result: 'hit' });
        return { external, remoteDecode: false, kvTokens: external, kvScale: 0.1 };
      }
      if (d.kind === 'invalid') {
        m.lookups.inc({ ...m.l, connector: 'NixlConnector', result: 'miss' });
        this.log.warning('nixl_connector.py:421', `Got invalid KVTransferParams: ${pyRepr(d.params)}. This request will not utilize KVTransfer`, 'EngineCore_DP0');
      }
      return { external: 0, remoteDecode: d.kind === 'remote-decode', kvTokens: 0, kvScale: 0.1 };
    }
    return { external: 0, remoteDecode: false, kvTokens: 0, kvScale: 1 };
  }

  private async generate(req: IncomingMessage, res: ServerResponse, kind: 'chat' | 'completion'): Promise<void> {
    let prepared: Prepared;
    let fault: RequestFault;
    try {
      const text = await this.readBody(req);
      if (this.dead) throw new HttpError(500, errorBody('EngineCore encountered an issue. See stack trace (above) for the root cause.', 500, 'InternalServerError'));
      try {
        fault = parseFaultHeader(req.headers[FAULT_HEADER]);
      } catch (e) {
        if (e instanceof FaultHeaderError) throw badRequest(e.message);
        throw e;
      }
      prepared = prepareRequest(kind, req, this.parseJson(text), {
        servedModelNames: this.opts.servedModelNames,
        maxModelLen: this.maxModelLen,
        stallMs: this.opts.knobs.stallMs,
        cutAfter: this.opts.knobs.cutAfter,
      });
      this.generationRequests++;
      if (fault.crash) {
        this.die('x-pd-sim-fault crash');
        throw new HttpError(500, errorBody('EngineCore encountered an issue. See stack trace (above) for the root cause.', 500, 'InternalServerError'));
      }
      const injected = this.injectedStatus(fault);
      if (injected !== null) throw this.injectedError(injected, prepared.model);
      const crashN = this.opts.knobs.crashAfterRequests;
      if (crashN > 0 && this.generationRequests >= crashN) setImmediate(() => this.die(`crash-after-requests ${crashN}`));
    } catch (e) {
      return this.sendError(req, res, e);
    }
    if (fault.stallMs !== undefined) prepared.base.stallMs = fault.stallMs;
    if (fault.slowdown !== undefined) prepared.base.slowdown = fault.slowdown;
    if (fault.cutAfter !== undefined) prepared.cutAfter = fault.cutAfter;
    if (this.opts.knobs.logRequests)
      this.log.info('logger.py:71', `Received request ${prepared.id}: params: max_tokens=${prepared.base.maxTokens}, prompt_token_ids: ${prepared.prompts[0]!.ids.length} tokens`);
    this.inflight.set(res, req);
    res.on('close', () => this.inflight.delete(res));
    try {
      await this.run(req, res, prepared);
    } catch (e) {
      if (!res.headersSent) this.sendError(req, res, e);
      else res.destroy();
    }
  }

  private async run(req: IncomingMessage, res: ServerResponse, p: Prepared): Promise<void> {
    const prep: Array<{ ids: number[]; text: string; external: number; remoteDecode: boolean; kvTokens: number; kvScale: number }> = [];
    for (const pr of p.prompts) prep.push({ ...pr, ...(await this.connectorBefore(pr.ids, p.kvParams)) });
    const m = this.metrics;
    const total = prep.length * p.n;
    const promptTokens = prep.reduce((a, x) => a + x.ids.length, 0) * p.n;
    const genCounts = new Array<number>(total).fill(0);
    const roleSent = new Array<boolean>(total).fill(false);
    const results: ChoiceResult[] = [];
    const seqs: Seq[] = [];
    let kvOut: NixlParams | null = null;
    let done = 0;
    let closed = false;
    let streamed = 0;
    const u = (): Usage => usage(promptTokens, genCounts.reduce((a, b) => a + b, 0));
    const write = (data: string): void => {
      if (!closed) res.write(`data: ${data}\n\n`);
    };
    if (p.stream) {
      res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', server: 'uvicorn', ...this.requestIdHeader(req) });
      res.flushHeaders();
      this.access(req, 200);
    }
    const finishAll = (): void => {
      if (p.stream) {
        if (p.includeUsage) write(usageChunk(p.id, p.kind === 'chat' ? 'chat.completion.chunk' : 'text_completion', p.created, p.model, u()));
        write('[DONE]');
        res.end();
        return;
      }
      results.sort((a, b) => a.index - b.index);
      const body = p.kind === 'chat'
        ? chatResponse(p.id, p.created, p.model, results, u(), kvOut)
        : completionResponse(p.id, p.created, p.model, results, u(), kvOut);
      this.send(req, res, 200, body);
    };

    await new Promise<void>((resolve) => {
      res.on('close', () => {
        if (done < total) {
          closed = true;
          for (const s of seqs) {
            if (s && !s.finished) {
              this.engine.abort(s);
              m.abort();
            }
          }
          this.log.info('async_llm.py:452', `Aborted request ${p.id}.`);
        }
        resolve();
      });
      let idx = 0;
      for (const pr of prep) {
        for (let j = 0; j < p.n; j++) {
          const i = idx++;
          let text = p.echo ? pr.text : '';
          const params: GenParams = { ...p.base, promptIds: pr.ids, externalTokens: pr.external, kvTransferTokens: pr.kvTokens, kvCostScale: pr.kvScale };
          const sink = {
            onToken: (_id: number, delta: string, tokIndex: number, fin: TokenFinish | null): void => {
              genCounts[i]!++;
              if (!p.stream) {
                text += delta;
                return;
              }
              if (closed) return;
              if (p.cutAfter > 0 && streamed >= p.cutAfter) {
                closed = true;
                this.log.warning('sim.py:1', `Cutting the stream of ${p.id} after ${streamed} tokens (fault injection)`);
                res.destroy();
                return;
              }
              streamed++;
              const cu = p.continuousUsage ? usage(pr.ids.length, genCounts[i]!) : null;
              const reason = fin ? fin.reason : null;
              if (p.kind === 'chat') {
                if (!roleSent[i]) {
                  roleSent[i] = true;
                  write(chatChunk(p.id, p.created, p.model, i, { role: 'assistant', content: '' }, null, undefined,
                    p.continuousUsage ? usage(pr.ids.length, 0) : null));
                }
                write(chatChunk(p.id, p.created, p.model, i, { content: delta }, reason, fin ? fin.stopReason : undefined, cu));
              } else {
                const echo = p.echo && tokIndex === 0 ? pr.text : '';
                write(completionChunk(p.id, p.created, p.model, i, echo + delta, reason, fin ? fin.stopReason : null, cu));
              }
            },
            onFinish: (reason: FinishReason, stopReason: string | number | null, seq: Seq): void => {
              if (reason === 'abort') return;
              m.observeRequest(seq.times, pr.ids.length, genCounts[i]!, reason);
              if (pr.remoteDecode && reason === 'length' && this.nixl)
                kvOut = this.nixl.producerParams(pr.ids.length, p.kind === 'chat' ? p.id : `${p.id}-${i}`);
              if (!p.stream) results.push({ index: i, text, finishReason: reason, stopReason });
              if (++done === total) {
                if (!closed) finishAll();
                resolve();
              }
            },
          };
          seqs[i] = this.zero && !p.stream && params.stallMs === 0 ? this.engine.runNow(params, sink) : this.engine.submit(params, sink);
        }
      }
    });
  }

  // ---------------------------------------------------------------- lifecycle

  /** Engine death (fault): /health turns 503 at once, in-flight requests fail, then the process exits 1. */
  die(reason: string): void {
    if (this.dead) return;
    this.dead = true;
    const L = this.log;
    L.error('core.py:710', `EngineCore encountered a fatal error. (simulated: ${reason})`, 'EngineCore_DP0');
    L.error('async_llm.py:480', 'AsyncLLM output_handler failed.');
    L.raw(`${L.prefix()}vllm.v1.engine.exceptions.EngineDeadError: EngineCore encountered an issue. See stack trace (above) for the root cause.`);
    this.engine.abortAll();
    const dead = errorBody('EngineCore encountered an issue. See stack trace (above) for the root cause.', 500, 'InternalServerError');
    for (const [res, req] of this.inflight) {
      if (res.writableEnded) continue;
      if (res.headersSent) {
        res.write(`data: ${JSON.stringify(dead)}\n\n`);
        res.end('data: [DONE]\n\n');
      } else this.send(req, res, 500, dead);
    }
    this.timers.push(setTimeout(() => void this.shutdown(1), 500));
  }

  /** Graceful shutdown (SIGTERM/SIGINT): uvicorn's lines, in-flight requests get a moment to finish. */
  async shutdown(code = 0): Promise<void> {
    if (this.shuttingDown) return;
    this.shuttingDown = true;
    for (const t of this.timers) clearTimeout(t);
    const L = this.log;
    if (this.server) {
      L.info('launcher.py:99', 'Shutting down FastAPI HTTP server.');
      L.uvicorn('Shutting down');
      const server = this.server;
      const closed = new Promise<void>((r) => server.close(() => r()));
      server.closeIdleConnections();
      const deadline = sleep(2000).then(() => {
        for (const s of this.sockets) s.destroy();
      });
      await Promise.race([closed, deadline]);
      L.uvicorn('Waiting for application shutdown.');
      L.uvicorn('Application shutdown complete.');
    }
    this.engine.abortAll();
    L.flushSync();
    this.resolveExit(code);
    this.onExit(code);
  }
}

function kvTransferConfigRepr(kv: Record<string, unknown>): string {
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
  // kv_buffer_size is a float in vLLM (1e9 prints as 1000000000.0).
  const fmt = (v: unknown, k: string): string =>
    k === 'kv_buffer_size' && typeof v === 'number' && Number.isInteger(v) ? `${v}.0` : pyRepr(v);
  return `KVTransferConfig(${fields.map(([k, v]) => `${k}=${fmt(v, k)}`).join(', ')})`;
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
