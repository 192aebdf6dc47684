/**
 * Resolve kv.connector "auto" to the name the installed vLLM accepts. vLLM PR 30201 (Dec 2025, first released in
 * 0.13.0) renamed SharedStorageConnector to ExampleConnector, and newer releases reject the old name with
 * "Unsupported connector type: SharedStorageConnector".
 */
import { execa } from 'execa';

export const RENAME_VERSION: readonly [number, number, number] = [0, 13, 0];
export const P2P_NCCL_REMOVED: readonly [number, number, number] = [0, 23, 0];

export interface ConnectorChoice {
  name: string;
  reason: string;
  /** The vLLM version that was detected, if any. */
  vllmVersion?: string;
}

export function parseVersion(text: string): [number, number, number] | null {
  const m = /(\d+)\.(\d+)(?:\.(\d+))?/.exec(text);
  if (!m) return null;
  return [Number(m[1]), Number(m[2]), Number(m[3] ?? 0)];
}

export function versionAtLeast(v: [number, number, number], min: readonly [number, number, number]): boolean {
  for (let i = 0; i < 3; i++) {
    if (v[i]! !== min[i]!) return v[i]! > min[i]!;
  }
  return true;
}

/** True when this vLLM version only knows the new name (ExampleConnector). */
export function usesExampleConnectorName(version: string): boolean {
  const v = parseVersion(version);
  return v !== null && versionAtLeast(v, RENAME_VERSION);
}

/** Ask `<command> --version` (with the engines' environment); null when it cannot be run. */
export async function probeVllmVersion(command: string[], env: Record<string, string> = {}, timeoutMs = 60_000): Promise<string | null> {
  try {
    const r = await execa(command[0]!, [...command.slice(1), '--version'], {
      timeout: timeoutMs,
      reject: false,
      stdin: 'ignore',
      env,
      extendEnv: true,
    });
    if (r.exitCode !== 0) return null;
    const lines = String(r.stdout).trim().split('\n');
    const last = lines[lines.length - 1]?.trim() ?? '';
    return parseVersion(last) ? last : null;
  } catch {
    return null;
  }
}

/**
 * Which vLLM releases register which connector names (vllm/distributed/kv_transfer/kv_connector/factory.py):
 * the V1 connectors arrived with the V1 engine's KV connector API; P2pNcclConnector with the P2P NCCL XpYd
 * example; SharedStorageConnector was renamed ExampleConnector in 0.13.0 (PR 30201).
 */
const REGISTRY: Record<string, { since?: readonly [number, number, number]; until?: readonly [number, number, number]; renamed?: string }> = {
  SharedStorageConnector: { until: RENAME_VERSION, renamed: 'ExampleConnector' },
  ExampleConnector: { since: RENAME_VERSION, renamed: 'SharedStorageConnector' },
  NixlConnector: { since: [0, 9, 0] },
  // Removed by vLLM PR 44854, after 0.22.1.
  P2pNcclConnector: { until: P2P_NCCL_REMOVED },
};

/** The last release that registers a connector pd knows was removed (for --simulate to pin its version). */
export function lastVersionWith(name: string): string | null {
  return name === 'P2pNcclConnector' ? '0.22.1' : null;
}

/** Why `version` of vLLM will not accept connector `name` (null when it will, or when pd cannot tell). */
export function connectorUnsupported(name: string, version: string): string | null {
  const v = parseVersion(version);
  const entry = REGISTRY[name];
  if (v === null || entry === undefined) return null;
  if (entry.until && versionAtLeast(v, entry.until)) {
    return entry.renamed
      ? `vLLM ${version} does not accept ${name} (renamed ${entry.renamed} in ${entry.until.join('.')})`
      : `vLLM ${version} does not accept ${name} (removed in ${entry.until.join('.')}; use vLLM ${lastVersionWith(name) ?? 'older'} or another connector)`;
  }
  if (entry.since && !versionAtLeast(v, entry.since)) {
    return entry.renamed
      ? `vLLM ${version} predates ${name}; it calls it ${entry.renamed}`
      : `vLLM ${version} predates ${name} (first registered in ${entry.since.join('.')})`;
  }
  return null;
}

export function chooseConnector(configured: string, vllmVersion: string | null): ConnectorChoice {
  const version = vllmVersion ?? undefined;
  if (configured !== 'auto') {
    return { name: configured, reason: 'set explicitly in kv.connector', vllmVersion: version };
  }
  if (vllmVersion === null) {
    return {
      name: 'SharedStorageConnector',
      reason:
        'kv.connector is "auto" and `vllm --version` could not be run; assuming a release before 0.13.0 ' +
        '(set kv.connector to "ExampleConnector" for vLLM >= 0.13.0)',
    };
  }
  return usesExampleConnectorName(vllmVersion)
    ? {
        name: 'ExampleConnector',
        reason: `kv.connector is "auto" and vLLM ${vllmVersion} >= 0.13.0 knows SharedStorageConnector as ExampleConnector`,
        vllmVersion: version,
      }
    : {
        name: 'SharedStorageConnector',
        reason: `kv.connector is "auto" and vLLM ${vllmVersion} < 0.13.0 predates the ExampleConnector rename`,
        vllmVersion: version,
      };
}
