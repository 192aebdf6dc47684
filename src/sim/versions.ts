/**
 * What the simulated vLLM version changes. The simulator reports SIM_VLLM_VERSION by default (the newest release
 * whose behaviour it implements); `--sim-vllm-version` selects an older one.
 *
 * The KV connector registry follows vllm/distributed/kv_transfer/kv_connector/factory.py:
 * - 0.13.0 renamed SharedStorageConnector to ExampleConnector (PR 30201); the old name is no longer registered.
 * - 0.23.0 removed P2pNcclConnector (PR 44854, merged after 0.22.1).
 * - main (0.31) registers ExampleConnector, ExampleHiddenStatesConnector, LMCacheConnectorV1, LMCacheMPConnector,
 *   NixlConnector, NixlPullConnector, NixlPushConnector, MultiConnector, MoRIIOConnector, OffloadingConnector,
 *   DecodeBenchConnector, MooncakeConnector, MooncakeStoreConnector, FlexKVConnectorV1, SimpleCPUOffloadConnector,
 *   HF3FSKVConnector.
 * The release in which each of the other connectors first appeared is not modelled: every version accepts them.
 */
export const SIM_VLLM_VERSION = '0.31.0';
export const EXAMPLE_CONNECTOR_RENAME = '0.13.0';
export const P2P_NCCL_REMOVED = '0.23.0';

/** Compare dotted versions: negative when a < b. */
export function compareVersions(a: string, b: string): number {
  const pa = a.split(/[.+-]/).map((x) => parseInt(x, 10) || 0);
  const pb = b.split(/[.+-]/).map((x) => parseInt(x, 10) || 0);
  for (let i = 0; i < Math.max(pa.length, pb.length, 3); i++) {
    const d = (pa[i] ?? 0) - (pb[i] ?? 0);
    if (d !== 0) return d;
  }
  return 0;
}

const COMMON = [
  'LMCacheConnectorV1', 'LMCacheMPConnector', 'NixlConnector', 'NixlPullConnector', 'NixlPushConnector', 'MultiConnector',
  'MoRIIOConnector', 'OffloadingConnector', 'DecodeBenchConnector', 'MooncakeConnector', 'MooncakeStoreConnector',
  'FlexKVConnectorV1', 'SimpleCPUOffloadConnector', 'HF3FSKVConnector', 'ExampleHiddenStatesConnector',
];

/** The connector names vLLM `version` registers. */
export function registeredConnectors(version: string): string[] {
  const names = [compareVersions(version, EXAMPLE_CONNECTOR_RENAME) >= 0 ? 'ExampleConnector' : 'SharedStorageConnector'];
  if (compareVersions(version, P2P_NCCL_REMOVED) < 0) names.push('P2pNcclConnector');
  return [...names, ...COMMON];
}
