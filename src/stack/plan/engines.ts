/**
 * Pure construction of every engine's command line and environment. `pd plan` prints these, the supervisor spawns
 * exactly these and `pd render k8s` renders them, so what is planned is what is run.
 */
import { join } from 'node:path';
import type { EngineRole, PdConfig } from '../../config/schema.js';
import { engineExtraArgs, engineExtraEnv, listEngines, type EngineRef } from '../../config/engines.js';
import { httpUrl, connectHost } from '../../util/net.js';
import { argValueOf, hasArg, splitCommand } from '../../util/args.js';
import {
  buildKvTransferConfig,
  defaultKvRole,
  isNixlConnector,
  isP2pNcclConnector,
  stringifyKvTransferConfig,
  type KvRole,
} from './kv-transfer-config.js';

export interface ParallelSizes {
  tensor: number;
  pipeline: number;
  data: number;
}

export interface EnginePlan {
  /** producer-0, consumer-1, engine-0 … */
  name: string;
  role: EngineRole;
  index: number;
  /** Its config field: producers[0], engines[1] … */
  field: string;
  gpus: number[];
  /** GPUs per the parallel sizes: tensor x pipeline x data (what a cluster must give the pod). */
  parallel: ParallelSizes;
  host: string;
  port: number;
  /** The address pd uses to reach it (0.0.0.0 / :: become loopback). */
  url: string;
  /** null for aggregated engines (no KV connector). */
  kvRole: KvRole | null;
  kvTransferConfig: Record<string, unknown> | null;
  /** argv[0] is the executable. */
  argv: string[];
  /** Only the variables pd sets (the child also inherits the parent's environment). */
  env: Record<string, string>;
  logFile: string;
  /** NixlConnector: VLLM_NIXL_SIDE_CHANNEL_PORT (rank r uses this + r). */
  sideChannelPort?: number;
  /** P2pNcclConnector: kv_port, and the ip:kv_port the proxy names in request ids. */
  kvPort?: number;
  kvAddress?: string;
}

export interface EnginePlanOptions {
  /** Resolved connector class name (never "auto"); null for the aggregated topology. */
  connector: string | null;
  /** Replace the configured vLLM command (e.g. [node, sim/main.js] for --simulate). */
  command?: string[];
  /** Folder for per-engine logs (default <stateDir>/logs). */
  logDir?: string;
}

const TP = ['--tensor-parallel-size', '-tp'];
const PP = ['--pipeline-parallel-size', '-pp'];
const DP = ['--data-parallel-size', '-dp'];

/** The parallel sizes an engine's args ask for; `given` says whether any of the three flags is present. */
export function parallelSizes(args: readonly string[], gpuCount: number): ParallelSizes & { given: boolean; raw: Partial<Record<'tensor' | 'pipeline' | 'data', string>> } {
  const raw = { tensor: argValueOf(args, TP), pipeline: argValueOf(args, PP), data: argValueOf(args, DP) };
  const given = raw.tensor !== undefined || raw.pipeline !== undefined || raw.data !== undefined;
  const num = (v: string | undefined): number => (v === undefined ? 1 : Number(v));
  if (!given) return { tensor: gpuCount, pipeline: 1, data: 1, given, raw };
  return { tensor: num(raw.tensor), pipeline: num(raw.pipeline), data: num(raw.data), given, raw };
}

export function engineLogFile(logDir: string, name: string): string {
  return join(logDir, `${name}.log`);
}

export function buildEnginePlans(config: PdConfig, opts: EnginePlanOptions): EnginePlan[] {
  const command = opts.command ?? splitCommand(config.engine.command);
  const logDir = opts.logDir ?? join(config.stateDir, 'logs');
  const connector = config.topology === 'aggregated' ? null : opts.connector;
  const nixl = connector !== null && isNixlConnector(connector);
  const p2p = connector !== null && isP2pNcclConnector(connector);
  let nextSideChannel = config.kv.nixlSideChannelBasePort;
  let nextKvPort = config.kv.p2pKvBasePort;

  return listEngines(config).map((ref: EngineRef) => {
    const { role, index, name, field, instance } = ref;
    const extra = engineExtraArgs(config, ref);
    const env: Record<string, string> = { CUDA_VISIBLE_DEVICES: instance.gpus.join(','), ...engineExtraEnv(config, ref) };
    // The key goes through the environment (vLLM reads VLLM_API_KEY when --api-key is absent), never argv: `ps`
    // shows every process's command line to every user.
    if (config.engine.apiKey && !hasArg(extra, '--api-key')) env.VLLM_API_KEY = config.engine.apiKey;

    let sideChannelPort: number | undefined;
    if (nixl) {
      if (env.VLLM_NIXL_SIDE_CHANNEL_PORT === undefined) env.VLLM_NIXL_SIDE_CHANNEL_PORT = String(nextSideChannel);
      sideChannelPort = Number(env.VLLM_NIXL_SIDE_CHANNEL_PORT);
      // vLLM offsets the side-channel port by rank, so leave room for every GPU of this engine.
      nextSideChannel = Math.max(nextSideChannel, sideChannelPort) + instance.gpus.length;
    }
    let kvPort: number | undefined;
    if (p2p) {
      kvPort = instance.kvPort ?? nextKvPort;
      nextKvPort = Math.max(nextKvPort, kvPort) + instance.gpus.length;
      // The engine names itself by vllm.utils.get_ip() (VLLM_HOST_IP when set) and kv_port + rank
      // (p2p_nccl_engine.py); pinning VLLM_HOST_IP makes the address the proxy puts in request ids the same one.
      env.VLLM_HOST_IP ??= connectHost(instance.host);
    }

    let kvRole: KvRole | null = null;
    let kvTransferConfig: Record<string, unknown> | null = null;
    if (connector !== null && role !== 'engine') {
      kvRole = instance.kvRole ?? defaultKvRole(role, connector);
      kvTransferConfig = buildKvTransferConfig({
        kv: config.kv,
        connector,
        kvRole,
        engineName: name,
        p2p:
          kvPort === undefined
            ? undefined
            : { kvPort, httpPort: instance.port, proxyIp: connectHost(config.proxy.host), proxyPort: config.kv.p2pProxyPort },
      });
    }

    const argv = [...command, 'serve', config.model, '--host', instance.host, '--port', String(instance.port)];
    if (config.servedModelName && !hasArg(extra, '--served-model-name')) argv.push('--served-model-name', config.servedModelName);
    const sizes = parallelSizes(extra, instance.gpus.length);
    if (!sizes.given && instance.gpus.length > 1) argv.push('--tensor-parallel-size', String(instance.gpus.length));
    argv.push(...extra);
    if (kvTransferConfig !== null) argv.push('--kv-transfer-config', stringifyKvTransferConfig(kvTransferConfig));

    return {
      name,
      role,
      index,
      field,
      gpus: [...instance.gpus],
      parallel: { tensor: sizes.tensor, pipeline: sizes.pipeline, data: sizes.data },
      host: instance.host,
      port: instance.port,
      url: httpUrl(instance.host, instance.port),
      kvRole,
      kvTransferConfig,
      argv,
      env,
      logFile: engineLogFile(logDir, name),
      ...(sideChannelPort !== undefined ? { sideChannelPort } : {}),
      ...(kvPort !== undefined ? { kvPort, kvAddress: `${env.VLLM_HOST_IP}:${kvPort}` } : {}),
    };
  });
}
