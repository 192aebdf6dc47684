/**
 * The one source of truth for pd's configuration: types (z.infer) and defaults live here only.
 * The JSON Schema (`pd config schema`), the README's config reference and every module's option
 * types derive from it.
 */
import * as z from 'zod';

const port = z.number().int().min(1).max(65535);
const envMap = z.record(z.string(), z.string());
const argList = z.array(z.string());

export const KNOWN_CONNECTORS = ['SharedStorageConnector', 'ExampleConnector', 'NixlConnector', 'P2pNcclConnector'] as const;
export const SHARED_STORAGE_CONNECTORS = ['SharedStorageConnector', 'ExampleConnector'] as const;
export const KV_ROLES = ['kv_producer', 'kv_consumer', 'kv_both'] as const;
export const TOPOLOGIES = ['pd', 'aggregated'] as const;

export const roleOverridesSchema = z
  .object({
    args: argList.default([]).describe('Extra `vllm serve` arguments for every engine of this role.'),
    env: envMap.default({}).describe('Extra environment variables for every engine of this role.'),
  })
  .strict();

export const engineInstanceSchema = z
  .object({
    gpus: z
      .array(z.number().int().min(0))
      .min(1)
      .describe(
        'GPU ids for this engine (CUDA_VISIBLE_DEVICES); their number must equal tensor x pipeline x data parallel ' +
          'size (pd adds --tensor-parallel-size when none of the three is given).',
      ),
    host: z
      .string()
      .min(1)
      .default('127.0.0.1')
      .describe('Address the engine binds (`--host`). Loopback by default: clients reach engines only through the proxy.'),
    port: port.describe('Port the engine listens on (`--port`).'),
    args: argList.default([]).describe('Extra `vllm serve` arguments for this engine only.'),
    env: envMap.default({}).describe('Extra environment variables for this engine only.'),
    kvRole: z
      .enum(KV_ROLES)
      .optional()
      .describe('Override the kv_role (defaults to kv_producer for producers, kv_consumer for consumers).'),
    kvPort: port
      .optional()
      .describe('P2pNcclConnector: this engine\'s kv_port (default: kv.p2pKvBasePort + its index among all engines).'),
  })
  .strict();

export const engineSchema = z
  .object({
    command: z.string().min(1).default('vllm').describe('The vLLM executable (or a path to it).'),
    args: argList
      .default([])
      .describe('Extra `vllm serve` arguments shared by every engine, e.g. ["--max-model-len","8192"].'),
    env: envMap.default({}).describe('Environment variables shared by every engine, e.g. {"VLLM_USE_V1":"1"}.'),
    producer: roleOverridesSchema.prefault({}),
    consumer: roleOverridesSchema.prefault({}),
    apiKey: z
      .string()
      .min(1)
      .optional()
      .describe('API key the engines require; the proxy sends it upstream instead of the client\'s.'),
  })
  .strict();

export const kvCacheBudgetSchema = z
  .object({
    maxBytes: z.number().int().positive().optional().describe('Evict least-recently-used entries above this size.'),
    maxAgeSeconds: z.number().positive().optional().describe('Evict entries older than this.'),
    graceSeconds: z
      .number()
      .min(0)
      .default(30)
      .describe('Never evict an entry younger than this (it may still be being written or read).'),
    intervalSeconds: z.number().positive().default(10).describe('How often the janitor checks the budget.'),
  })
  .strict();

export const kvSchema = z
  .object({
    connector: z
      .string()
      .regex(/^[A-Za-z_][A-Za-z0-9_.]*$/, 'must be a connector class name such as SharedStorageConnector')
      .default('auto')
      .describe(
        'KV connector: SharedStorageConnector, ExampleConnector (its name since vLLM 0.13), NixlConnector, ' +
          'any other connector class name, or "auto" (ExampleConnector or SharedStorageConnector by `vllm --version`).',
      ),
    engineId: z.string().min(1).default('my-disagg-engine-1').describe('kv-transfer-config engine_id.'),
    bufferSize: z.number().positive().default(1e9).describe('kv_buffer_size in bytes.'),
    parallelSize: z.number().int().positive().default(1).describe('kv_parallel_size.'),
    sharedStoragePath: z
      .string()
      .min(1)
      .default('/mnt/pd_kv')
      .describe('Where SharedStorage/ExampleConnector writes KV folders (absolute path).'),
    extraConfig: z
      .record(z.string(), z.unknown())
      .default({})
      .describe('Merged into kv_connector_extra_config (escape hatch for other connectors).'),
    extra: z
      .record(z.string(), z.unknown())
      .default({})
      .describe('Extra top-level kv-transfer-config keys (e.g. kv_ip, kv_port, kv_connector_module_path).'),
    nixlSideChannelBasePort: port
      .default(5600)
      .describe('First VLLM_NIXL_SIDE_CHANNEL_PORT; each NixlConnector engine gets its own port from here.'),
    p2pKvBasePort: port
      .default(21001)
      .describe('P2pNcclConnector: first kv_port (each engine gets its own, one per GPU rank, unless it sets kvPort).'),
    p2pProxyPort: port
      .default(30001)
      .describe('P2pNcclConnector: proxy_port in kv_connector_extra_config (where engines register with the proxy).'),
    cache: kvCacheBudgetSchema.prefault({}),
  })
  .strict();

export const proxyTimeoutsSchema = z
  .object({
    connectMs: z.number().int().positive().default(10_000).describe('Connecting to an engine.'),
    prefillMs: z.number().int().positive().default(600_000).describe('Whole stage 1 (prefill) request.'),
    decodeHeadersMs: z
      .number()
      .int()
      .positive()
      .default(600_000)
      .describe('Stage 2 until the consumer sends response headers.'),
    decodeIdleMs: z
      .number()
      .int()
      .positive()
      .default(300_000)
      .describe('Longest silence allowed inside a stage 2 stream.'),
    queueMs: z.number().int().positive().default(60_000).describe('Longest wait in the admission queue.'),
    headersMs: z
      .number()
      .int()
      .positive()
      .default(30_000)
      .describe('A client must send its request headers within this; slower ones get 408 and are disconnected.'),
    requestMs: z
      .number()
      .int()
      .positive()
      .default(60_000)
      .describe(
        'Once the proxy starts reading a request body, the whole body must arrive within this; slower clients get 408 ' +
          'and are disconnected.',
      ),
  })
  .strict();

export const proxySchema = z
  .object({
    host: z.string().min(1).default('0.0.0.0').describe('Address the proxy binds.'),
    port: port.default(8000).describe('Client-facing port.'),
    rateLimit: z
      .number()
      .min(0)
      .default(40)
      .describe('Client requests per second admitted (token bucket rate; 0 disables rate limiting).'),
    burst: z.number().int().positive().optional().describe('Token bucket capacity (default: the rate, at least 1).'),
    onRateLimit: z
      .enum(['wait', 'reject'])
      .default('wait')
      .describe('When the bucket is empty: wait for a token (as the reference proxy) or answer 429.'),
    maxConcurrent: z
      .number()
      .int()
      .positive()
      .default(100)
      .describe('Generation requests served by the engines at once (admission slots).'),
    queueSize: z.number().int().min(0).default(500).describe('Requests waiting for a slot; beyond it, 503.'),
    balance: z
      .enum(['round-robin', 'least-in-flight'])
      .default('least-in-flight')
      .describe('How an engine is chosen per stage when there are several.'),
    timeouts: proxyTimeoutsSchema.prefault({}),
    maxBodyBytes: z.number().int().positive().default(32 * 1024 * 1024).describe('Largest request body accepted.'),
    bodyBudgetBytes: z
      .number()
      .int()
      .positive()
      .default(128 * 1024 * 1024)
      .describe(
        'Request body bytes held in memory at once over all requests (at least maxBodyBytes); a body that does not ' +
          'fit waits unread until there is room (at most timeouts.queueMs, then 503).',
      ),
    maxConnections: z
      .number()
      .int()
      .positive()
      .default(4096)
      .describe('Open client connections at once; further connections are closed at once.'),
    apiKey: z.string().min(1).optional().describe('Require `Authorization: Bearer <key>` from clients.'),
    accessLog: z.enum(['text', 'json', 'off']).default('text').describe('One line per request.'),
    healthIntervalMs: z.number().int().positive().default(2_000).describe('Background /health probe period.'),
  })
  .strict();

export const healthSchema = z
  .object({
    timeoutSeconds: z
      .number()
      .positive()
      .default(1200)
      .describe('Deadline for every engine to answer /health after start (real engines take 20-60 s+).'),
    intervalMs: z.number().int().positive().default(100).describe('Health polling period during start-up.'),
  })
  .strict();

export const supervisorSchema = z
  .object({
    restart: z.enum(['on-failure', 'never']).default('on-failure').describe('Restart an engine that dies while serving.'),
    maxRestarts: z
      .number()
      .int()
      .min(0)
      .default(5)
      .describe('Restarts per engine within restartWindowSeconds before it is left down for good.'),
    restartWindowSeconds: z
      .number()
      .positive()
      .default(600)
      .describe('Sliding window for maxRestarts: crashes older than this no longer count.'),
    backoffMs: z.number().int().min(0).default(1_000).describe('First restart delay; doubles each time (max 30 s).'),
    stopGraceSeconds: z.number().min(0).default(15).describe('SIGTERM → SIGKILL grace period on shutdown.'),
  })
  .strict();

export const sprintSchema = z
  .object({
    rates: z.array(z.number().positive()).min(1).default([2, 4, 8, 16, 32]).describe('Steady request rates (req/s).'),
    durationSeconds: z.number().positive().default(90).describe('Each steady run sends ceil(duration x rate) prompts.'),
    floodPrompts: z.number().int().min(0).default(1024).describe('Prompts sent at once in the flood run (0 skips it).'),
    inputLen: z.number().int().positive().default(32).describe('Random dataset input length (tokens).'),
    outputLen: z.number().int().positive().default(512).describe('Output length (tokens, with ignore_eos).'),
    endpoint: z.enum(['chat', 'completions']).default('chat').describe('Which OpenAI endpoint to benchmark.'),
    ignoreEos: z.boolean().default(true),
    burstiness: z.number().positive().default(1).describe('Gamma shape of arrival gaps (1 = Poisson).'),
    maxConcurrency: z.number().int().positive().optional().describe('Cap on requests in flight from the client.'),
    seed: z.number().int().default(0).describe('Seed of the first run; each later run of the sprint uses its own (fresh prompts).'),
    numWarmups: z
      .number()
      .int()
      .min(0)
      .default(8)
      .describe('Warm-up requests sent once before the first run (excluded from the results).'),
    rangeRatio: z.number().min(0).lt(1).default(0).describe('Random lengths uniform in [len x (1-r), len x (1+r)].'),
    prefixLen: z.number().int().min(0).default(0).describe('Shared prefix tokens in front of every random prompt.'),
    stopWhenSaturated: z
      .boolean()
      .default(true)
      .describe('Skip the higher steady rates once a rate is clearly saturated (the flood run still runs).'),
  })
  .strict();

export const benchSchema = z
  .object({
    resultsDir: z.string().min(1).default('sprint_results').describe('Where runs are archived (<dir>/<set>/).'),
    set: z.string().min(1).default('pd-disaggregation').describe('Default experiment set name.'),
    sheet: z
      .string()
      .min(1)
      .default('sprint_results/sprint-sheet.csv')
      .describe('Sheet CSV in the reference layout, merged after each sprint.'),
    clearCache: z.boolean().default(true).describe('Clear the KV cache before each run.'),
    percentiles: z.array(z.number().min(0).max(100)).default([50, 90, 95, 99]),
    sprint: sprintSchema.prefault({}),
    search: z
      .object({
        goodput: z
          .object({ ttft: z.number().min(0).optional(), tpot: z.number().min(0).optional(), e2el: z.number().min(0).optional() })
          .strict()
          .optional()
          .describe('SLOs in ms for `pd bench search` (and `pd bench matrix --search`) when --goodput is not given.'),
        attainment: z.number().gt(0).max(1).default(0.9).describe('Fraction of requests that must meet every SLO.'),
        precision: z.number().gt(0).lt(1).default(0.05).describe('Stop bisecting when the bracket is narrower than this fraction.'),
        budgetSeconds: z.number().positive().default(600).describe('Time budget of one search (probes that would not fit are not started).'),
        probeSeconds: z.number().positive().default(30).describe('Seconds of steady load per probe.'),
        minRate: z.number().positive().default(1).describe('First rate probed (req/s).'),
        maxRate: z.number().positive().default(1024).describe('Highest rate probed (req/s).'),
      })
      .strict()
      .prefault({})
      .describe('SLO capacity search: the highest rate whose good-request fraction meets the attainment.'),
  })
  .strict();

export const configSchema = z
  .object({
    $schema: z.string().optional().describe('JSON Schema reference for editors.'),
    topology: z
      .enum(TOPOLOGIES)
      .default('pd')
      .describe(
        '"pd": producers and consumers with a KV connector behind a two-stage proxy. "aggregated": every engine in ' +
          '`engines` serves whole requests (tensor, pipeline or data parallel), the proxy balances them in one stage.',
      ),
    model: z.string().min(1).default('/mnt/models/Qwen3-4B-Instruct-2507').describe('Model path or hub id.'),
    servedModelName: z.string().min(1).optional().describe('Passed as --served-model-name when set.'),
    engine: engineSchema.prefault({}),
    kv: kvSchema.prefault({}),
    producers: z
      .array(engineInstanceSchema)
      .min(1)
      .default([{ gpus: [0], host: '127.0.0.1', port: 8100, args: [], env: {} }])
      .describe('Prefill engines (kv_producer).'),
    consumers: z
      .array(engineInstanceSchema)
      .min(1)
      .default([{ gpus: [1], host: '127.0.0.1', port: 8200, args: [], env: {} }])
      .describe('Decode engines (kv_consumer).'),
    engines: z
      .array(engineInstanceSchema)
      .min(1)
      .optional()
      .describe('topology "aggregated": the engines that serve whole requests (no KV connector). Required there.'),
    allowSharedGpus: z
      .boolean()
      .default(false)
      .describe('Allow a GPU to serve both roles (otherwise `pd up` refuses; engines would fight for memory).'),
    proxy: proxySchema.prefault({}),
    health: healthSchema.prefault({}),
    supervisor: supervisorSchema.prefault({}),
    stateDir: z.string().min(1).default('.pd').describe('State file and logs of the running stack.'),
    bench: benchSchema.prefault({}),
  })
  .strict();

export type PdConfig = z.infer<typeof configSchema>;
export type PdConfigInput = z.input<typeof configSchema>;
export type EngineInstance = z.infer<typeof engineInstanceSchema>;
export type ProxyConfig = z.infer<typeof proxySchema>;
export type KvConfig = z.infer<typeof kvSchema>;
export type BenchConfig = z.infer<typeof benchSchema>;
export type SprintConfig = z.infer<typeof sprintSchema>;
export type KvCacheBudget = z.infer<typeof kvCacheBudgetSchema>;
export type Role = 'producer' | 'consumer';
/** An engine's part in the stack: prefill (producer), decode (consumer), or whole requests (aggregated engine). */
export type EngineRole = Role | 'engine';
export type Topology = (typeof TOPOLOGIES)[number];

/** True when the budget asks for anything (otherwise the janitor has nothing to do). */
export function budgetIsActive(budget: KvCacheBudget): boolean {
  return budget.maxBytes !== undefined || budget.maxAgeSeconds !== undefined;
}

/** The fully defaulted configuration (what `pd` uses when there is no config file). */
export function defaultConfig(): PdConfig {
  return configSchema.parse({});
}
