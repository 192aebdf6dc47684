/**
 * The KV connector an engine runs, chosen and checked like vLLM's connector factory
 * (vllm/distributed/kv_transfer/kv_connector/factory.py, registry per version in versions.ts), and its work per
 * request, following the scheduler-side connector API (vllm/distributed/kv_transfer/kv_connector/v1/base.py):
 * get_num_new_matched_tokens(request, num_computed_tokens) is asked with the local prefix-cache hit and answers the
 * external tokens beyond it; the connector's lookups count in vllm:external_prefix_cache_queries/hits (scheduler.py
 * connector_prefix_cache_stats: every request's num_tokens, and its external tokens).
 */
import { randomUUID } from 'node:crypto';
import type { SimOptions } from './options.js';
import { SharedStorage, measureBandwidth } from './kv/shared-storage.js';
import { Nixl, pyRepr, type NixlParams } from './kv/nixl.js';
import { P2pNccl } from './kv/p2p-nccl.js';
import type { SimMetrics } from './metrics.js';
import type { SimLogger } from './log.js';
import type { Admission } from './seq.js';
import type { EngineConfig } from './engine-config.js';
import { registeredConnectors } from './versions.js';
import { mulberry32, type Rng } from './rng.js';
import type { ConnectorInfo, VllmLogScript } from './vllm-log.js';

export type ConnectorKind = 'shared-storage' | 'nixl' | 'p2p' | 'other' | 'none';

/** What the connector found out before the request reaches the scheduler (async work: handshakes, receives). */
export interface Prep {
  /** NIXL: a valid remote prefill whose KV can be pulled (false: handshake or transfer failed). */
  nixlPull?: { ok: boolean; why: string };
  /** NIXL: this prefill hands its KV to a decode engine. */
  remoteDecode?: boolean;
  /** P2P consumer: the KV arrived from the producer the id names. */
  p2p?: { ok: boolean; why: string; tokens: number };
  /** The id the connector knows the request by (P2P: the proxy's X-Request-Id). */
  requestId: string;
}

export class KvConnector {
  readonly kind: ConnectorKind;
  readonly name: string | null;
  readonly engineId: string;
  readonly storage: SharedStorage | null = null;
  readonly nixl: Nixl | null = null;
  readonly p2p: P2pNccl | null = null;
  readonly failurePolicy: 'recompute' | 'fail';
  /** Shared storage bytes per ms (Infinity = free). */
  private storageBytesPerMs = Infinity;
  private readonly linkBytesPerMs: number;
  private readonly rng: Rng;
  /** Tokens queried / hit through the connector (the stats line's external hit rate). */
  queries = 0;
  hits = 0;

  constructor(
    private readonly opts: SimOptions,
    env: NodeJS.ProcessEnv,
    private readonly metrics: SimMetrics,
    private readonly log: SimLogger,
    private readonly plan: EngineConfig,
  ) {
    const kv = opts.kvTransferConfig;
    // KVTransferConfig.__post_init__ assigns a random uuid when engine_id is not given.
    this.engineId = kv?.engine_id ?? randomUUID();
    this.name = kv?.kv_connector ?? null;
    this.failurePolicy = kv?.kv_load_failure_policy ?? 'fail';
    const k = opts.knobs;
    this.linkBytesPerMs = k.kvLinkGbps > 0 ? k.kvLinkGbps * 1e6 : Infinity;
    this.rng = mulberry32((k.seed ^ 0xfa11) >>> 0);
    const geo = plan.geometry;
    if (!this.name) this.kind = 'none';
    else if (this.name === 'SharedStorageConnector' || this.name === 'ExampleConnector') {
      this.kind = 'shared-storage';
      const extra = kv?.kv_connector_extra_config ?? {};
      const path = typeof extra.shared_storage_path === 'string' ? extra.shared_storage_path : '/tmp';
      this.storage = new SharedStorage(path, opts.blockSize, {
        layers: k.kvLayers > 0 ? k.kvLayers : geo.layers,
        width: geo.kvHeads * geo.headDim,
        dtypeBytes: geo.dtypeBytes,
        fixedBytes: k.kvLayerBytes,
      });
      if (k.storageBandwidth !== 'auto') this.storageBytesPerMs = k.storageBandwidth === 'inf' ? Infinity : Number(k.storageBandwidth) * 1e3;
    } else if (this.name === 'NixlConnector') {
      this.kind = 'nixl';
      this.nixl = new Nixl(this.engineId, env, opts.blockSize, plan.numGpuBlocks, plan.tp);
    } else if (this.name === 'P2pNcclConnector') {
      this.kind = 'p2p';
      const host = env.VLLM_HOST_IP || '127.0.0.1';
      this.p2p = new P2pNccl(host, Number(kv?.kv_port ?? 14579), String(kv?.kv_role));
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

  /** Checks the connector factory makes when the engine starts (the config itself was validated at parse time). */
  validate(script: VllmLogScript): void {
    const kv = this.opts.kvTransferConfig;
    const name = this.name;
    if (!kv || name == null) return;
    if (!registeredConnectors(this.opts.knobs.vllmVersion).includes(name) && !kv.kv_connector_module_path)
      script.connectorFailure(`ValueError: Unsupported connector type: ${name}`, 'engine');
    if (this.kind === 'p2p') {
      const extra = kv.kv_connector_extra_config ?? {};
      if (extra.http_port === undefined)
        script.connectorFailure("KeyError: 'http_port'", 'engine');
    }
  }

  /** Bind what the connector listens on and measure the storage path; throws with the error vLLM prints. */
  async start(): Promise<void> {
    if (this.nixl) await this.nixl.listen(this.plan.dp);
    if (this.p2p) await this.p2p.listen();
    if (this.storage && this.opts.knobs.storageBandwidth === 'auto') {
      // vLLM itself only touches the path when it saves (os.makedirs then), so an unusable path is not a start-up
      // failure: the simulator then charges nothing and the saves fail as they would.
      try {
        const mbps = await measureBandwidth(this.storage.storagePath);
        this.storageBytesPerMs = mbps * 1e3;
        this.log.info('sim.py:1', `Shared storage bandwidth: ${mbps.toFixed(0)} MB/s (measured on ${this.storage.storagePath}; the simulator charges KV saves and loads at this rate)`, 'EngineCore_DP0');
      } catch (e) {
        this.log.warning('sim.py:1', `Could not measure the shared storage bandwidth on ${this.storage.storagePath}: ${(e as Error).message}`, 'EngineCore_DP0');
      }
    }
  }

  close(): void {
    this.nixl?.close();
    this.p2p?.close();
  }

  /** Async work before scheduling: NIXL handshake with the remote engine, P2P receive. */
  async prepare(requestId: string, kvParams: unknown): Promise<Prep> {
    const prep: Prep = { requestId };
    if (this.nixl) {
      const d = this.nixl.classify(kvParams);
      if (d.kind === 'remote-decode') prep.remoteDecode = true;
      if (d.kind === 'invalid')
        this.log.warning('nixl_connector.py:421', `Got invalid KVTransferParams: ${pyRepr(d.params)}. This request will not utilize KVTransfer`, 'EngineCore_DP0');
      if (d.kind === 'remote-prefill') {
        const ok = await this.nixl.handshake(String(d.params.remote_host), Number(d.params.remote_port));
        prep.nixlPull = ok
          ? { ok: true, why: '' }
          : { ok: false, why: `NIXL handshake with remote engine ${String(d.params.remote_engine_id)} at ${String(d.params.remote_host)}:${String(d.params.remote_port)} failed` };
      }
    }
    if (this.p2p && !this.p2p.isProducer) prep.p2p = await this.p2p.receiveFor(requestId, this.opts.knobs.p2pRecvTimeoutMs);
    return prep;
  }

  private record(queried: number, hit: number, result: 'hit' | 'miss'): void {
    const m = this.metrics;
    m.externalQueries.inc(m.l, queried);
    if (hit > 0) m.externalHits.inc(m.l, hit);
    m.lookups.inc({ ...m.l, connector: this.name!, result });
    this.queries += queried;
    this.hits += hit;
  }

  /** A load that failed: kv_load_failure_policy decides (vllm/v1/core/sched/scheduler.py _handle_invalid_blocks). */
  private loadFailed(requestId: string, tokens: number, why: string): Admission {
    this.log.warning('sim.py:1', `KV load failed for request ${requestId}: ${why}`, 'EngineCore_DP0');
    if (this.failurePolicy === 'fail') return { external: 0, ioMs: 0, fail: true };
    this.log.warning('scheduler.py:1836', `Recovered from KV load failure: 1 request(s) rescheduled (${tokens} tokens affected).`, 'EngineCore_DP0');
    return { external: 0, ioMs: 0 };
  }

  /** get_num_new_matched_tokens + update_state_after_alloc, at the request's first scheduling. */
  admission(prep: Prep, ids: readonly number[], localHit: number): Admission {
    const L = ids.length;
    if (this.kind === 'none') return { external: 0, ioMs: 0 };
    if (this.storage) {
      const s = this.storage;
      const look = s.lookup(ids);
      if (look.hit) {
        this.log.info(`${this.file}:257`, 'External Cache Hit!', 'EngineCore_DP0');
        const external = Math.max(0, look.matchedTokens - localHit);
        this.record(L, external, 'hit');
        if (external === 0) return { external: 0, ioMs: 0 };
        const tokens = s.injectTokens(ids);
        this.log.info(`${this.file}:166`, `Inject KV cache of ${tokens} tokens to the paged memory`, 'EngineCore_DP0');
        return { external, ioMs: s.saveBytes(ids) / this.storageBytesPerMs };
      }
      this.record(L, 0, 'miss');
      const bytes = s.saveBytes(ids);
      return { external: 0, ioMs: bytes / this.storageBytesPerMs, save: (ms) => s.save(ids, ms).then(() => undefined) };
    }
    if (this.nixl) {
      if (!prep.nixlPull) {
        this.record(L, 0, 'miss');
        return { external: 0, ioMs: 0 };
      }
      const count = Math.max(0, L - localHit);
      if (!prep.nixlPull.ok || (this.opts.knobs.kvLoadFailRate > 0 && this.rng() < this.opts.knobs.kvLoadFailRate)) {
        this.record(L, 0, 'miss');
        return this.loadFailed(prep.requestId, count, prep.nixlPull.ok ? 'transfer failed (fault injection)' : prep.nixlPull.why);
      }
      this.record(L, count, 'hit');
      return { external: count, ioMs: (count * this.plan.kvBytesPerTokenPerGpu * this.plan.worldSize) / this.linkBytesPerMs };
    }
    if (this.p2p) {
      if (this.p2p.isProducer) {
        this.record(L, 0, 'miss');
        return { external: 0, ioMs: 0 };
      }
      const expected = Math.max(0, L - 1 - localHit);
      const r = prep.p2p!;
      if (this.opts.knobs.kvLoadFailRate > 0 && this.rng() < this.opts.knobs.kvLoadFailRate) {
        this.record(L, 0, 'miss');
        return this.loadFailed(prep.requestId, expected, 'transfer failed (fault injection)');
      }
      if (!r.ok) {
        // vLLM's consumer logs "kv_cache is None" and goes on (p2p_nccl_connector.py start_load_kv); the simulator
        // computes the prompt itself so that the answer and its cost stay plausible.
        this.record(L, 0, 'miss');
        this.log.warning('p2p_nccl_connector.py:246', `🚧kv_cache is None, ${prep.requestId} (${r.why}); computing the prompt here`, 'EngineCore_DP0');
        return { external: 0, ioMs: 0 };
      }
      this.record(L, expected, 'hit');
      return { external: expected, ioMs: 0 };
    }
    this.record(L, 0, 'miss');
    return { external: 0, ioMs: 0 };
  }

  /** After a prefill finished: NIXL producer params, P2P send (time charged on the link). */
  async afterPrefill(prep: Prep, ids: readonly number[], requestId: string): Promise<NixlParams | null> {
    if (this.p2p && this.p2p.isProducer) {
      const bytes = ids.length * this.plan.kvBytesPerTokenPerGpu * this.plan.worldSize;
      const ms = bytes / this.linkBytesPerMs;
      if (ms >= 1) await new Promise((r) => setTimeout(r, ms));
      const ok = await this.p2p.send(prep.requestId, ids.length);
      if (!ok) this.log.warning('p2p_nccl_engine.py:1', `Failed to send KV of request ${prep.requestId} to the decode instance named in its id`, 'EngineCore_DP0');
    }
    if (this.nixl && prep.remoteDecode) return this.nixl.producerParams(ids.length, requestId);
    return null;
  }
}
