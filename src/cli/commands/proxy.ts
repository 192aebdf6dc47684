import { Option, type Command } from 'commander';
import { action } from '../run-command.js';
import { loadForCommand, numberArg } from '../context.js';
import { info } from '../output.js';
import { RuntimeError, UsageError } from '../../util/errors.js';
import { defaultConfig, engineSchema, proxySchema, type PdConfig, type ProxyConfig } from '../../config/schema.js';
import { startProxy, type ProxyOptions } from '../../proxy/server.js';
import { proxyOptionsFromConfig } from '../../proxy/options.js';
import { parseEngineUrl, type EngineRole, type Upstream } from '../../proxy/engine.js';
import { usesP2pRequestIds } from '../../proxy/stage-bodies.js';

/** The flags, typed from the config they override (one source of truth for each enum and number). */
type ProxyFlags = Partial<
  Pick<
    ProxyConfig,
    'port' | 'host' | 'rateLimit' | 'burst' | 'onRateLimit' | 'maxConcurrent' | 'queueSize' | 'maxConnections' | 'apiKey' | 'accessLog' | 'balance'
  >
> & {
  prefillUrl?: string[];
  decodeUrl?: string[];
  /** Single-stage (TP, PP, DP): whole requests on one of these engines. */
  engineUrl?: string[];
  /** Seconds; sets proxy.timeouts.prefillMs, decodeHeadersMs and decodeIdleMs at once. */
  timeout?: number;
  engineApiKey?: PdConfig['engine']['apiKey'];
  connector?: string;
};

type ProxyKey = keyof typeof proxySchema.shape;
const DEFAULTS = defaultConfig();

const shown = (v: unknown): string => (typeof v === 'string' ? v : JSON.stringify(v));

/** A flag's help: the config field's own description, its path and its default, all read from the schema. */
function help(key: ProxyKey): string {
  const desc = (proxySchema.shape[key].description ?? key).replace(/\.$/, '');
  const def = DEFAULTS.proxy[key];
  return `${desc} (proxy.${key}${def === undefined ? '' : `, default ${shown(def)}`})`;
}

/** The values an enum field of the proxy config accepts. */
function choices(key: 'onRateLimit' | 'accessLog' | 'balance'): string[] {
  return [...proxySchema.shape[key].unwrap().options];
}

const timeoutHelp = (): string => {
  const t = DEFAULTS.proxy.timeouts;
  const s = (ms: number): string => `${ms / 1000} s`;
  return (
    'engine timeout: whole prefill, decode headers and decode silence ' +
    `(proxy.timeouts.prefillMs/decodeHeadersMs/decodeIdleMs, default ${s(t.prefillMs)}/${s(t.decodeHeadersMs)}/${s(t.decodeIdleMs)})`
  );
};

const collect = (v: string, prev: string[] | undefined): string[] => [...(prev ?? []), v];

const EXAMPLE_PORT = { producer: 8100, consumer: 8200, engine: 8100 } as const;

function urlsToUpstreams(flag: string, role: EngineRole, urls: string[]): Upstream[] {
  return urls.map((raw, i) => {
    try {
      return { name: `${role}-${i}`, url: parseEngineUrl(raw).url };
    } catch (e) {
      throw new UsageError(`${flag} ${JSON.stringify(raw)}: ${(e as Error).message}`, {
        hint: `Pass a base URL or a full endpoint URL, e.g. ${flag} http://localhost:${EXAMPLE_PORT[role]}/v1/completions`,
      });
    }
  });
}

function dropGroups<T extends { producers: Upstream[]; consumers: Upstream[] }>(o: T): Omit<T, 'producers' | 'consumers'> {
  const { producers: _p, consumers: _c, ...rest } = o;
  return rest;
}

/** Resolve the flags (over the config) into ProxyOptions. Exported for tests. */
export async function proxyOptionsFromFlags(cmd: Command, flags: ProxyFlags): Promise<ProxyOptions> {
  const single = flags.engineUrl !== undefined;
  if (single && (flags.prefillUrl !== undefined || flags.decodeUrl !== undefined || flags.connector !== undefined)) {
    const other = flags.prefillUrl ? '--prefill-url' : flags.decodeUrl ? '--decode-url' : '--connector';
    throw new UsageError(`--engine-url cannot be combined with ${other}`, {
      hint:
        '--engine-url runs a single-stage proxy (TP, PP, DP: each request served whole by one engine); ' +
        '--prefill-url, --decode-url and --connector belong to a two-stage (PD) proxy. Pick one.',
    });
  }
  const t = flags.timeout === undefined ? undefined : Math.round(flags.timeout * 1000);
  const { config } = await loadForCommand(cmd, {
    // port 0 (ephemeral) is fine for the proxy alone but not a valid config value: applied below.
    'proxy.port': flags.port === 0 ? undefined : flags.port,
    'proxy.host': flags.host,
    'proxy.rateLimit': flags.rateLimit,
    'proxy.burst': flags.burst,
    'proxy.onRateLimit': flags.onRateLimit,
    'proxy.maxConcurrent': flags.maxConcurrent,
    'proxy.queueSize': flags.queueSize,
    'proxy.maxConnections': flags.maxConnections,
    'proxy.apiKey': flags.apiKey,
    'proxy.accessLog': flags.accessLog,
    'proxy.balance': flags.balance,
    'proxy.timeouts.prefillMs': t,
    'proxy.timeouts.decodeHeadersMs': t,
    'proxy.timeouts.decodeIdleMs': t,
    'engine.apiKey': flags.engineApiKey,
  });
  const configured = flags.connector ?? config.kv.connector;
  // "auto" only ever resolves to a shared-storage connector, which needs no parameter hand-off in the proxy.
  const connector = configured === 'auto' ? 'SharedStorageConnector' : configured;
  const opts = proxyOptionsFromConfig(config, connector);
  if (flags.port === 0) opts.port = 0;
  if (single) {
    const { connector: _c, ...common } = opts.mode === 'single-stage' ? opts : dropGroups(opts);
    return { ...common, mode: 'single-stage', engines: urlsToUpstreams('--engine-url', 'engine', flags.engineUrl!), connector: null };
  }
  if (opts.mode === 'single-stage') {
    if (flags.prefillUrl !== undefined || flags.decodeUrl !== undefined || flags.connector !== undefined)
      throw new UsageError('--prefill-url, --decode-url and --connector need a PD config, and this one is aggregated', {
        hint: 'The config\'s topology is "aggregated" (TP, PP, DP): drop those flags, or pass --engine-url to pick the engines.',
      });
    return opts;
  }
  if (flags.prefillUrl) opts.producers = urlsToUpstreams('--prefill-url', 'producer', flags.prefillUrl);
  if (flags.decodeUrl) opts.consumers = urlsToUpstreams('--decode-url', 'consumer', flags.decodeUrl);
  if (usesP2pRequestIds(connector) && [...opts.producers, ...opts.consumers].some((u) => u.kvAddress === undefined))
    throw new UsageError(`pd proxy needs every engine's kv address to run a ${connector} stack`, {
      hint: "P2P NCCL request ids name each engine's <ip>:<kv_port>, which pd up takes from the stack plan: start the stack with pd up.",
    });
  return opts;
}

/** One line naming what the proxy serves. */
function describeUpstreams(opts: ProxyOptions): string {
  const urls = (us: Upstream[]): string => us.map((u) => u.url).join(', ');
  return opts.mode === 'single-stage'
    ? `single-stage; engines ${urls(opts.engines)}`
    : `connector ${opts.connector}; producers ${urls(opts.producers)}; consumers ${urls(opts.consumers)}`;
}

export function register(program: Command): void {
  program
    .command('proxy')
    .description(
      'run the proxy alone until Ctrl-C: two-stage for PD (prefill on a producer, then decode on a consumer), or ' +
        'single-stage with --engine-url (TP, PP, DP)',
    )
    .option('--port <port>', help('port'), numberArg('--port', { integer: true, min: 0, max: 65535 }))
    .option('--host <addr>', help('host'))
    .option('--prefill-url <url>', 'producer URL, base or full /v1/completions URL; repeat for several', collect)
    .option('--decode-url <url>', 'consumer URL, base or full /v1/completions URL; repeat for several', collect)
    .option('--engine-url <url>', 'single-stage: engine URL serving whole requests (TP, PP, DP); repeat for several', collect)
    .option('--rate-limit <rps>', help('rateLimit'), numberArg('--rate-limit', { min: 0 }))
    .option('--burst <n>', help('burst'), numberArg('--burst', { integer: true, min: 1 }))
    .addOption(new Option('--on-rate-limit <mode>', help('onRateLimit')).choices(choices('onRateLimit')))
    .option('--max-concurrent <n>', help('maxConcurrent'), numberArg('--max-concurrent', { integer: true, min: 1 }))
    .option('--queue-size <n>', help('queueSize'), numberArg('--queue-size', { integer: true, min: 0 }))
    .option('--max-connections <n>', help('maxConnections'), numberArg('--max-connections', { integer: true, min: 1 }))
    .option('--timeout <seconds>', timeoutHelp(), numberArg('--timeout', { min: 0.001 }))
    .option('--api-key <key>', help('apiKey'))
    .option('--engine-api-key <key>', `${(engineSchema.shape.apiKey.description ?? '').replace(/\.$/, '')} (engine.apiKey)`)
    .option('--connector <name>', 'KV connector of the engines; NixlConnector turns on the kv_transfer_params hand-off')
    .addOption(new Option('--access-log <format>', help('accessLog')).choices(choices('accessLog')))
    .addOption(new Option('--balance <strategy>', help('balance')).choices(choices('balance')))
    .action(
      action(async (flags: ProxyFlags, cmd: Command) => {
        const opts = await proxyOptionsFromFlags(cmd, flags);
        let handle;
        try {
          handle = await startProxy(opts);
        } catch (e) {
          const code = (e as NodeJS.ErrnoException).code;
          if (code === 'EADDRINUSE' || code === 'EACCES' || code === 'EADDRNOTAVAIL') {
            throw new RuntimeError(`cannot listen on ${opts.host}:${opts.port} (${code})`, {
              hint: code === 'EADDRINUSE' ? 'Another process uses this port: pick another with --port.' : 'Pick another --host/--port.',
            });
          }
          throw e;
        }
        info(`pd proxy listening on ${handle.url} (${describeUpstreams(opts)})`);
        await new Promise<void>((resolve) => {
          const stop = (): void => {
            process.off('SIGINT', stop);
            process.off('SIGTERM', stop);
            resolve();
          };
          process.on('SIGINT', stop);
          process.on('SIGTERM', stop);
        });
        info('pd proxy: shutting down');
        await handle.close();
        return 0;
      }),
    );
}
