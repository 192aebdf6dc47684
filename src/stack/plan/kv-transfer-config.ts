/**
 * The `--kv-transfer-config` JSON each engine gets, exactly as vLLM's KVTransferConfig expects it.
 * Key order and number formatting follow the reference guide, e.g. for the producer:
 * {"engine_id":"my-disagg-engine-1","kv_connector":"SharedStorageConnector","kv_role":"kv_producer",
 *  "kv_parallel_size":1,"kv_buffer_size":1e9,"kv_connector_extra_config":{"shared_storage_path":"/mnt/pd_kv"}}
 */
import type { KvConfig, Role } from '../../config/schema.js';
import { SHARED_STORAGE_CONNECTORS } from '../../config/schema.js';

export type KvRole = 'kv_producer' | 'kv_consumer' | 'kv_both';

export function isSharedStorageConnector(name: string): boolean {
  return (SHARED_STORAGE_CONNECTORS as readonly string[]).includes(name);
}

export function isNixlConnector(name: string): boolean {
  return name === 'NixlConnector';
}

export function isP2pNcclConnector(name: string): boolean {
  return name === 'P2pNcclConnector';
}

/** P2P NCCL connection details of one engine (vLLM's disagg_example_p2p_nccl_xpyd.sh). */
export interface P2pEndpoint {
  /** This engine's kv_port (its NCCL/ZMQ listener for KV). */
  kvPort: number;
  /** The engine's HTTP port (http_port in kv_connector_extra_config). */
  httpPort: number;
  /** Where the proxy listens for the engines' registration (proxy_ip, proxy_port). */
  proxyIp: string;
  proxyPort: number;
}

/** The kv_role an engine of this role gets unless the config overrides it. NIXL's own examples use kv_both. */
export function defaultKvRole(role: Role, connector: string): KvRole {
  if (isNixlConnector(connector)) return 'kv_both';
  return role === 'producer' ? 'kv_producer' : 'kv_consumer';
}

export interface KvTransferInput {
  kv: KvConfig;
  /** Resolved connector class name (never "auto"). */
  connector: string;
  kvRole: KvRole;
  /** Engine name (producer-0 …): NIXL needs a distinct engine_id per engine. */
  engineName: string;
  /** P2pNcclConnector only. */
  p2p?: P2pEndpoint;
}

export function buildKvTransferConfig(input: KvTransferInput): Record<string, unknown> {
  const { kv, connector, kvRole, engineName, p2p } = input;
  if (isP2pNcclConnector(connector) && p2p) return buildP2pConfig(kv, kvRole, p2p);
  const extra: Record<string, unknown> = {};
  if (isSharedStorageConnector(connector)) extra.shared_storage_path = kv.sharedStoragePath;
  Object.assign(extra, kv.extraConfig);
  const out: Record<string, unknown> = {
    engine_id: isNixlConnector(connector) ? `${kv.engineId}-${engineName}` : kv.engineId,
    kv_connector: connector,
    kv_role: kvRole,
    kv_parallel_size: kv.parallelSize,
    kv_buffer_size: kv.bufferSize,
  };
  if (Object.keys(extra).length > 0) out.kv_connector_extra_config = extra;
  Object.assign(out, kv.extra);
  return out;
}

/**
 * P2pNcclConnector's config as vLLM's example writes it (examples/online_serving/disaggregated_serving_p2p_nccl_xpyd/
 * disagg_example_p2p_nccl_xpyd.sh): a kv_port per engine, a small send-only buffer on producers and the receive
 * buffer (kv.bufferSize) on consumers, and the proxy's registration address plus the engine's own HTTP port.
 */
function buildP2pConfig(kv: KvConfig, kvRole: KvRole, p2p: P2pEndpoint): Record<string, unknown> {
  const out: Record<string, unknown> = {
    kv_connector: 'P2pNcclConnector',
    kv_role: kvRole,
    kv_buffer_size: kvRole === 'kv_producer' ? 1e1 : kv.bufferSize,
    kv_port: String(p2p.kvPort),
    kv_connector_extra_config: {
      proxy_ip: p2p.proxyIp,
      proxy_port: String(p2p.proxyPort),
      http_port: String(p2p.httpPort),
      send_type: 'PUT_ASYNC',
      ...kv.extraConfig,
    },
  };
  Object.assign(out, kv.extra);
  return out;
}

/** Shortest faithful spelling of a number: 1e9 rather than 1000000000 (both parse to the same value). */
export function formatJsonNumber(n: number): string {
  const plain = JSON.stringify(n);
  if (!Number.isInteger(n) || Math.abs(n) < 1e6) return plain;
  const exp = n.toExponential().replace('e+', 'e');
  return exp.length < plain.length ? exp : plain;
}

/** JSON.stringify without spaces, with numbers spelled by formatJsonNumber. */
export function stringifyKvTransferConfig(value: unknown): string {
  if (typeof value === 'number') return formatJsonNumber(value);
  if (Array.isArray(value)) return `[${value.map(stringifyKvTransferConfig).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    const parts = Object.entries(value as Record<string, unknown>)
      .filter(([, v]) => v !== undefined)
      .map(([k, v]) => `${JSON.stringify(k)}:${stringifyKvTransferConfig(v)}`);
    return `{${parts.join(',')}}`;
  }
  return JSON.stringify(value);
}
