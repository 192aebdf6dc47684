import { Option, type Command } from 'commander';
import { action } from '../run-command.js';
import { loadForCommand, numberArg } from '../context.js';
import { info } from '../output.js';
import { RuntimeError, UsageError } from '../../util/errors.js';
import { defaultConfig, engineSchema, proxySchema, type PdConfig, type ProxyConfig } from '../../config/schema.js';
import { startProxy, type ProxyOptions } from '../../proxy/server.js';
import { proxyOptionsFromConfig } from '../../proxy/options.js';
import { parseEngineUrl } from '../../proxy/engine.js';

/** The flags, typed from the config they override (one source of truth for each enum and number). */
type ProxyFlags = Partial<
  Pick<ProxyConfig, 'port' | 'host' | 'rateLimit' | 'burst' | 'onRateLimit' | 'maxConcurrent' | 'queueSize' | 'apiKey' | 'accessLog' | 'balance'>
> & {
  prefillUrl?: string[];
  decodeUrl?: string[];
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

function urlsToUpstreams(flag: string, role: 'producer' | 'consumer', urls: string[]) {
  return urls.map((raw, i) => {
    try {
      return { name: `${role}-${i}`, url: parseEngineUrl(raw).url };
    } catch (e) {
      throw new UsageError(`${flag} ${JSON.stringify(raw)}: ${(e as Error).message}`, {
        hint: `Pass a base URL or a full endpoint URL, e.g. ${flag} http://localhost:${role === 'producer' ? 8100 : 8200}/v1/completions`,
      });
    }
  });
}

/** Resolve the flags (over the config) into ProxyOptions. Exported for tests. */
export async function proxyOptionsFromFlags(cmd: Command, flags: ProxyFlags): Promise<ProxyOptions> {
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
  if (flags.prefillUrl) opts.producers = urlsToUpstreams('--prefill-url', 'producer', flags.prefillUrl);
  if (flags.decodeUrl) opts.consumers = urlsToUpstreams('--decode-url', 'consumer', flags.decodeUrl);
  return opts;
}

export function register(program: Command): void {
  program
    .command('proxy')
    .description('run the PD proxy alone (prefill on a producer, then decode on a consumer), until Ctrl-C')
    .option('--port <port>', help('port'), numberArg('--port', { integer: true, min: 0, max: 65535 }))
    .option('--host <addr>', help('host'))
    .option('--prefill-url <url>', 'producer URL, base or full /v1/completions URL; repeat for several', collect)
    .option('--decode-url <url>', 'consumer URL, base or full /v1/completions URL; repeat for several', collect)
    .option('--rate-limit <rps>', help('rateLimit'), numberArg('--rate-limit', { min: 0 }))
    .option('--burst <n>', help('burst'), numberArg('--burst', { integer: true, min: 1 }))
    .addOption(new Option('--on-rate-limit <mode>', help('onRateLimit')).choices(choices('onRateLimit')))
    .option('--max-concurrent <n>', help('maxConcurrent'), numberArg('--max-concurrent', { integer: true, min: 1 }))
    .option('--queue-size <n>', help('queueSize'), numberArg('--queue-size', { integer: true, min: 0 }))
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
        info(
          `pd proxy listening on ${handle.url} (connector ${opts.connector}; producers ${opts.producers
            .map((u) => u.url)
            .join(', ')}; consumers ${opts.consumers.map((u) => u.url).join(', ')})`,
        );
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
