/**
 * The KV connector an engine runs, chosen and checked like vLLM's connector factory
 * (vllm/distributed/kv_transfer/kv_connector/factory.py), and its work around each request: the shared-storage
 * lookup/save or the NIXL kv_transfer_params handshake.
 */
import { randomUUID } from 'node:crypto';
import { compareVersions, type SimOptions } from './options.js';
import { SharedStorage } from './kv/shared-storage.js';
import { Nixl, pyRepr } from './kv/nixl.js';
import type { SimMetrics } from './metrics.js';
import type { SimLogger } from './log.js';
import type { ConnectorInfo, VllmLogScript } from './vllm-log.js';

/** Connectors vLLM registers besides the ones simulated: accepted, simulated as no-ops. */
const OTHER_CONNECTORS = [
  'LMCacheConnectorV1', 'P2pNcclConnector', 'MultiConnector', 'OffloadingConnector', 'DecodeBenchConnector',
  'MooncakeConnector', 'LMCacheMPConnector',
];

export type ConnectorKind = 'shared-storage' | 'nixl' | 'other' | 'none';

/** What the connector did before the engine runs a request. */
export interface ConnectorOutcome {
  /** Prompt tokens whose KV comes from outside (no prefill compute). */
  external: number;
  /** A NIXL prefill that must hand its KV to a decode engine. */
  remoteDecode: boolean;
  /** Tokens whose KV is moved (load, save or pull). */
  kvTokens: number;
  /** Cost scale of that transfer (1 storage, 0.1 NIXL pull). */
  kvScale: number;
}

export class KvConnector {
  readonly kind: ConnectorKind;
  readonly name: string | null;
  readonly engineId: string;
  readonly storage: SharedStorage | null = null;
  readonly nixl: Nixl | null = null;
  /** Tokens queried / hit through the connector (the stats line's external hit rate). */
  queries = 0;
  hits = 0;

  constructor(private readonly opts: SimOptions, env: NodeJS.ProcessEnv, private readonly metrics: SimMetrics, private readonly log: SimLogger) {
    const kv = opts.kvTransferConfig;
    // KVTransferConfig assigns a random uuid when engine_id is not given.
    this.engineId = kv?.engine_id ?? randomUUID();
    this.name = kv?.kv_connector ?? null;
    if (!this.name) this.kind = 'none';
    else if (this.name === 'SharedStorageConnector' || this.name === 'ExampleConnector') {
      this.kind = 'shared-storage';
      const extra = kv?.kv_connector_extra_config ?? {};
      const path = typeof extra.shared_storage_path === 'string' ? extra.shared_storage_path : '/tmp';
      this.storage = new SharedStorage(path, opts.blockSize, opts.knobs.kvLayers, opts.knobs.kvLayerBytes);
    } else if (this.name === 'NixlConnector') {
      this.kind = 'nixl';
      this.nixl = new Nixl(this.engineId, env, opts.blockSize);
    } else this.kind = 'other';
  }

  /** The Python file the shared-storage connector logs from. */
  get file(): string {
    return this.name === 'ExampleConnector' ? 'example_connector.py' : 'shared_storage_connector.py';
  }

  info(): ConnectorInfo | null {
    if (!this.name) return null;
    return { name: this.name, engineId: this.engineId, file: this.storage ? this.file : null, storagePath: this.storage?.storagePath ?? null, nixl: this.nixl !== null };
  }

  /** Validate the kv-transfer-config like vLLM's KVTransferConfig and connector factory; throws StartupFailure. */
  validate(script: VllmLogScript): void {
    const kv = this.opts.kvTransferConfig;
    if (!kv) return;
    const roles = ['kv_producer', 'kv_consumer', 'kv_both'];
    if (kv.kv_role != null && !roles.includes(String(kv.kv_role)))
      script.connectorFailure(`ValueError: Unsupported kv_role: ${kv.kv_role}. Supported roles are ('kv_producer', 'kv_consumer', 'kv_both')`, 'api');
    if (kv.kv_connector != null && kv.kv_role == null)
      script.connectorFailure(
        "ValueError: Please specify kv_role when kv_connector is set, supported roles are ('kv_producer', 'kv_consumer', 'kv_both')",
        'api',
      );
    const name = this.name;
    if (name == null) return;
    const newNames = compareVersions(this.opts.knobs.vllmVersion, '0.13.0') >= 0;
    const known = new Set([...OTHER_CONNECTORS, 'NixlConnector', newNames ? 'ExampleConnector' : 'SharedStorageConnector']);
    if (!known.has(name) && !kv.kv_connector_module_path) script.connectorFailure(`ValueError: Unsupported connector type: ${name}`, 'engine');
    if (this.kind === 'shared-storage') {
      const extra = kv.kv_connector_extra_config;
      if (extra !== undefined && (typeof extra !== 'object' || extra === null || Array.isArray(extra)))
        script.connectorFailure('ValueError: kv_connector_extra_config must be a dict', 'api');
    }
  }

  /** Connector work before the engine runs the request. */
  async before(promptIds: number[], kvParams: unknown): Promise<ConnectorOutcome> {
    const m = this.metrics;
    if (this.storage) {
      const look = this.storage.lookup(promptIds);
      const queried = promptIds.length;
      m.externalQueries.inc(m.l, queried);
      this.queries += queried;
      m.lookups.inc({ ...m.l, connector: this.name!, result: look.hit ? 'hit' : 'miss' });
      if (look.hit) {
        m.externalHits.inc(m.l, look.matchedTokens);
        this.hits += look.matchedTokens;
        this.log.info(`${this.file}:257`, 'External Cache Hit!', 'EngineCore_DP0');
        this.log.info(`${this.file}:166`, `Inject KV cache of ${this.storage.injectTokens(promptIds)} tokens to the paged memory`, 'EngineCore_DP0');
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
        this.queries += promptIds.length;
        this.hits += external;
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
}
