/**
 * vLLM's NixlConnector request protocol (vllm/distributed/kv_transfer/kv_connector/v1/nixl_connector.py), without
 * the transfer: a prefill request carrying `kv_transfer_params.do_remote_decode: true` that finishes because of its
 * length returns the params a decode engine needs; a decode request carrying `do_remote_prefill: true` with
 * `remote_engine_id`, `remote_host` and `remote_port` pulls the prompt's KV instead of computing it.
 */
import { randomUUID } from 'node:crypto';
import { createServer, type Server, type Socket } from 'node:net';
import { awaitReply } from './reply.js';

export interface NixlParams {
  do_remote_prefill?: boolean;
  do_remote_decode?: boolean;
  remote_block_ids?: number[] | null;
  remote_engine_id?: string | null;
  remote_request_id?: string | null;
  remote_host?: string | null;
  remote_port?: number | null;
  tp_size?: number;
  [k: string]: unknown;
}

export type NixlDecision =
  | { kind: 'none' }
  | { kind: 'remote-decode' }
  | { kind: 'remote-prefill'; params: NixlParams }
  | { kind: 'invalid'; params: unknown };

export class Nixl {
  readonly engineId: string;
  readonly host: string;
  readonly port: number;
  private nextBlock = 1;

  private servers: Server[] = [];
  private readonly sockets = new Set<Socket>();
  /** Remote side channels already reached (host:port → ok). */
  private readonly handshakes = new Map<string, Promise<boolean>>();

  /**
   * VLLM_NIXL_SIDE_CHANNEL_HOST (default localhost) and VLLM_NIXL_SIDE_CHANNEL_PORT (default 5600) from vllm/envs.py;
   * each data-parallel rank listens on port + its rank (NixlConnectorScheduler in nixl_connector.py).
   */
  constructor(engineId: string | null | undefined, env: NodeJS.ProcessEnv, readonly blockSize: number, readonly numBlocks = 65536, readonly tpSize = 1) {
    this.engineId = engineId ?? randomUUID();
    this.host = env.VLLM_NIXL_SIDE_CHANNEL_HOST ?? 'localhost';
    this.port = Number(env.VLLM_NIXL_SIDE_CHANNEL_PORT ?? 5600) || 5600;
  }

  /**
   * Bind the side channel of each DP rank (the handshake listener: the decode engine fetches this engine's agent
   * metadata there). A port in use fails as zmq does: "Address already in use (addr='tcp://HOST:PORT')".
   */
  async listen(dpSize = 1): Promise<void> {
    for (let rank = 0; rank < dpSize; rank++) {
      const port = this.port + rank;
      const server = createServer((s) => {
        this.sockets.add(s);
        s.on('close', () => this.sockets.delete(s));
        s.on('error', () => undefined);
        s.end(JSON.stringify({ engine_id: this.engineId, block_size: this.blockSize, tp_size: this.tpSize }) + '\n');
      });
      await new Promise<void>((resolve, reject) => {
        server.once('error', (e: NodeJS.ErrnoException) => {
          const what = e.code === 'EADDRINUSE' ? 'Address already in use' : e.code === 'EADDRNOTAVAIL' ? 'Cannot assign requested address' : e.message;
          reject(new Error(`zmq.error.ZMQError: ${what} (addr='tcp://${this.host}:${port}')`));
        });
        server.listen({ host: this.host, port, exclusive: true }, () => resolve());
      });
      server.unref();
      this.servers.push(server);
    }
  }

  close(): void {
    for (const s of this.sockets) s.destroy();
    for (const s of this.servers) s.close();
    this.servers = [];
  }

  /** Reach a remote engine's side channel (once per address): false when nothing answers there. */
  handshake(host: string, port: number, timeoutMs = 2000): Promise<boolean> {
    const key = `${host}:${port}`;
    let p = this.handshakes.get(key);
    if (!p) {
      p = awaitReply(host, port, timeoutMs);
      this.handshakes.set(key, p);
      // A failed handshake is tried again by the next request.
      void p.then((ok) => {
        if (!ok) this.handshakes.delete(key);
      });
    }
    return p;
  }

  /** What a request's kv_transfer_params ask for. */
  classify(params: unknown): NixlDecision {
    if (params === undefined || params === null) return { kind: 'none' };
    if (typeof params !== 'object' || Array.isArray(params)) return { kind: 'invalid', params };
    const p = params as NixlParams;
    if (p.do_remote_prefill) {
      const ok =
        typeof p.remote_engine_id === 'string' &&
        typeof p.remote_host === 'string' &&
        (typeof p.remote_port === 'number' || typeof p.remote_port === 'string') &&
        Array.isArray(p.remote_block_ids);
      return ok ? { kind: 'remote-prefill', params: p } : { kind: 'invalid', params };
    }
    if (p.do_remote_decode) return { kind: 'remote-decode' };
    return { kind: 'none' };
  }

  /** Block ids a finished prefill of `numPromptTokens` tokens holds for the decode engine. */
  allocateBlocks(numPromptTokens: number): number[] {
    const n = Math.max(1, Math.ceil(numPromptTokens / this.blockSize));
    const ids: number[] = [];
    for (let i = 0; i < n; i++) {
      ids.push(this.nextBlock);
      this.nextBlock = (this.nextBlock % (this.numBlocks - 1)) + 1;
    }
    return ids;
  }

  /** The kv_transfer_params a remote-decode prefill returns (request_finished in vLLM). */
  producerParams(numPromptTokens: number, requestId: string, tpSize = this.tpSize): NixlParams {
    return {
      do_remote_prefill: true,
      do_remote_decode: false,
      remote_block_ids: this.allocateBlocks(numPromptTokens),
      remote_engine_id: this.engineId,
      remote_request_id: requestId,
      remote_host: this.host,
      remote_port: this.port,
      tp_size: tpSize,
    };
  }
}

/** Text printed as-is by pyRepr (an object's own repr, e.g. `KVTransferConfig(...)`). */
export class PyRaw {
  constructor(readonly text: string) {}
}

/** Python repr of a dict, as vLLM's `%s` formatting of kv_transfer_params prints it. */
export function pyRepr(v: unknown): string {
  if (v instanceof PyRaw) return v.text;
  if (v === null || v === undefined) return 'None';
  if (v === true) return 'True';
  if (v === false) return 'False';
  if (typeof v === 'number') return String(v);
  if (typeof v === 'string') return `'${v.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;
  if (Array.isArray(v)) return `[${v.map(pyRepr).join(', ')}]`;
  if (typeof v === 'object')
    return `{${Object.entries(v as Record<string, unknown>)
      .map(([k, x]) => `${pyRepr(k)}: ${pyRepr(x)}`)
      .join(', ')}}`;
  return typeof v === "bigint" || typeof v === "symbol" ? v.toString() : "";
}
