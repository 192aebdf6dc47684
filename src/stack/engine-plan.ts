/**
 * Pure construction of every engine's command line and environment. `pd plan` prints these and the supervisor
 * spawns exactly these, so what is planned is what is run.
 */
import { join } from 'node:path';
import type { EngineInstance, PdConfig, Role } from '../config/schema.js';
import { httpUrl } from '../util/net.js';
import {
  buildKvTransferConfig,
  defaultKvRole,
  isNixlConnector,
  stringifyKvTransferConfig,
  type KvRole,
} from './kv-transfer-config.js';

export interface EnginePlan {
  /** producer-0, consumer-1, … */
  name: string;
  role: Role;
  index: number;
  gpus: number[];
  host: string;
  port: number;
  /** The address pd uses to reach it (0.0.0.0 / :: become loopback). */
  url: string;
  kvRole: KvRole;
  kvTransferConfig: Record<string, unknown>;
  /** argv[0] is the executable. */
  argv: string[];
  /** Only the variables pd sets (the child also inherits the parent's environment). */
  env: Record<string, string>;
  logFile: string;
  /** NIXL side-channel port when the connector is NixlConnector. */
  nixlSideChannelPort?: number;
}

export interface PlanOptions {
  /** Resolved connector class name (never "auto"). */
  connector: string;
  /** Replace the configured vLLM command (e.g. [node, sim/main.js] for --simulate). */
  command?: string[];
  /** Folder for per-engine logs (default <stateDir>/logs). */
  logDir?: string;
}

export function engineName(role: Role, index: number): string {
  return `${role}-${index}`;
}


/** Split a configured command such as "vllm" or "python -m vllm.entrypoints.cli.main" into argv. */
export function splitCommand(command: string): string[] {
  return command.trim().split(/\s+/);
}

/** Value of `--flag value` or `--flag=value` in an argument list (last one wins, like argparse). */
export function argValue(args: readonly string[], flag: string): string | undefined {
  let found: string | undefined;
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (a === flag && i + 1 < args.length) found = args[i + 1];
    else if (a.startsWith(`${flag}=`)) found = a.slice(flag.length + 1);
  }
  return found;
}

export function hasArg(args: readonly string[], flag: string): boolean {
  return args.some((a) => a === flag || a.startsWith(`${flag}=`));
}

interface EngineRef {
  role: Role;
  index: number;
  instance: EngineInstance;
}

export function listEngines(config: PdConfig): EngineRef[] {
  return [
    ...config.producers.map((instance, index) => ({ role: 'producer' as const, index, instance })),
    ...config.consumers.map((instance, index) => ({ role: 'consumer' as const, index, instance })),
  ];
}

/** Extra args of one engine: shared, then role, then instance (later ones win in vLLM's argparse). */
export function engineExtraArgs(config: PdConfig, role: Role, instance: EngineInstance): string[] {
  return [...config.engine.args, ...config.engine[role].args, ...instance.args];
}

export function buildEnginePlans(config: PdConfig, opts: PlanOptions): EnginePlan[] {
  const command = opts.command ?? splitCommand(config.engine.command);
  const logDir = opts.logDir ?? join(config.stateDir, 'logs');
  const nixl = isNixlConnector(opts.connector);
  let nextSideChannel = config.kv.nixlSideChannelBasePort;

  return listEngines(config).map(({ role, index, instance }) => {
    const name = engineName(role, index);
    const kvRole = instance.kvRole ?? defaultKvRole(role, opts.connector);
    const kvTransferConfig = buildKvTransferConfig({ kv: config.kv, connector: opts.connector, kvRole, engineName: name });
    const extra = engineExtraArgs(config, role, instance);

    const argv = [...command, 'serve', config.model, '--host', instance.host, '--port', String(instance.port)];
    if (config.servedModelName && !hasArg(extra, '--served-model-name')) {
      argv.push('--served-model-name', config.servedModelName);
    }
    if (config.engine.apiKey && !hasArg(extra, '--api-key')) argv.push('--api-key', config.engine.apiKey);
    if (instance.gpus.length > 1 && !hasArg(extra, '--tensor-parallel-size') && !hasArg(extra, '-tp')) {
      argv.push('--tensor-parallel-size', String(instance.gpus.length));
    }
    argv.push(...extra, '--kv-transfer-config', stringifyKvTransferConfig(kvTransferConfig));

    const env: Record<string, string> = {
      CUDA_VISIBLE_DEVICES: instance.gpus.join(','),
      ...config.engine.env,
      ...config.engine[role].env,
      ...instance.env,
    };
    let nixlSideChannelPort: number | undefined;
    if (nixl) {
      if (env.VLLM_NIXL_SIDE_CHANNEL_PORT === undefined) {
        env.VLLM_NIXL_SIDE_CHANNEL_PORT = String(nextSideChannel);
      }
      nixlSideChannelPort = Number(env.VLLM_NIXL_SIDE_CHANNEL_PORT);
      // vLLM offsets the side-channel port by rank, so leave room for every GPU of this engine.
      nextSideChannel = Math.max(nextSideChannel, nixlSideChannelPort) + instance.gpus.length;
    }

    return {
      name,
      role,
      index,
      gpus: [...instance.gpus],
      host: instance.host,
      port: instance.port,
      url: httpUrl(instance.host, instance.port),
      kvRole,
      kvTransferConfig,
      argv,
      env,
      logFile: join(logDir, `${name}.log`),
      nixlSideChannelPort,
    };
  });
}
