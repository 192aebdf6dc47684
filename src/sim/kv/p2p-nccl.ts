/**
 * vLLM's P2pNcclConnector (vllm/distributed/kv_transfer/kv_connector/v1/p2p/p2p_nccl_connector.py and
 * p2p_nccl_engine.py; registered up to vLLM 0.22, removed in 0.23):
 * - each engine binds its KV endpoint on kv_port + rank (a ZMQ ROUTER in vLLM; here a TCP listener on the same
 *   address, so that two engines on one port clash as they do for real) and advertises
 *   `<ip>:<kv_port>` as its zmq_address, `<ip>:<http_port>` as its http_address;
 * - the proxy (examples/online_serving/disaggregated_serving_p2p_nccl_xpyd/disagg_proxy_p2p_nccl_xpyd.py) names
 *   both ends in the request id it sends as X-Request-Id to both stages:
 *   `___prefill_addr_<ip:kv_port>___decode_addr_<ip:kv_port>_<uuid>`;
 * - the producer sends each layer's KV to the decode address parsed from the id (parse_request_id), the consumer
 *   expects len(prompt) - 1 - local hit tokens from the prefill address parsed from the id.
 * Here the "send" is one message to the consumer's KV endpoint carrying the request id and token count; the
 * consumer serves a hit only for a request id whose KV arrived from the producer that id names.
 */
import { createServer, type Server, type Socket } from 'node:net';
import { awaitReply } from './reply.js';

/** vLLM's P2pNcclEngine.parse_request_id: the peer's address from the request id, or null. */
export function parseRequestId(requestId: string, isPrefill: boolean): { host: string; port: number } | null {
  const m = isPrefill ? /___decode_addr_(.*):(\d+)/.exec(requestId) : /___prefill_addr_(.*):(\d+)___/.exec(requestId);
  return m ? { host: m[1]!, port: Number(m[2]) } : null;
}

/** The part of a request id both stages share (the proxy's X-Request-Id). */
export function transferKey(requestId: string): string {
  const at = requestId.indexOf('___prefill_addr_');
  let key = at >= 0 ? requestId.slice(at) : requestId;
  // vLLM's completions ids end with the choice index; the proxy's uuid has none.
  key = key.replace(/-\d+$/, '');
  return key;
}

interface Arrival {
  from: string;
  tokens: number;
  at: number;
}

export class P2pNccl {
  private server: Server | null = null;
  private readonly sockets = new Set<Socket>();
  private readonly arrived = new Map<string, Arrival>();
  private readonly waiters = new Map<string, Array<(a: Arrival | null) => void>>();
  readonly zmqAddress: string;

  constructor(
    readonly host: string,
    readonly kvPort: number,
    readonly role: string,
  ) {
    this.zmqAddress = `${host}:${kvPort}`;
  }

  get isProducer(): boolean {
    return this.role === 'kv_producer' || this.role === 'kv_both';
  }

  /** Bind the KV endpoint; a port in use fails like zmq's bind. */
  async listen(): Promise<void> {
    const server = createServer((s) => {
      this.sockets.add(s);
      s.on('close', () => this.sockets.delete(s));
      s.on('error', () => undefined);
      let buf = '';
      s.setEncoding('utf8').on('data', (d: string) => {
        buf += d;
        let nl;
        while ((nl = buf.indexOf('\n')) >= 0) {
          const line = buf.slice(0, nl);
          buf = buf.slice(nl + 1);
          try {
            const m = JSON.parse(line) as { key: string; from: string; tokens: number };
            this.receive(m.key, { from: m.from, tokens: m.tokens, at: Date.now() });
          } catch {
            /* not ours */
          }
          s.end('ok\n');
        }
      });
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', (e: NodeJS.ErrnoException) => {
        const what = e.code === 'EADDRINUSE' ? 'Address already in use' : e.code === 'EADDRNOTAVAIL' ? 'Cannot assign requested address' : e.message;
        reject(new Error(`zmq.error.ZMQError: ${what} (addr='tcp://${this.zmqAddress}')`));
      });
      server.listen({ host: this.host, port: this.kvPort, exclusive: true }, () => resolve());
    });
    server.unref();
    this.server = server;
  }

  close(): void {
    for (const s of this.sockets) s.destroy();
    this.server?.close();
    this.server = null;
    for (const [, ws] of this.waiters) for (const w of ws) w(null);
    this.waiters.clear();
  }

  private receive(key: string, a: Arrival): void {
    this.arrived.set(key, a);
    // Keep the store bounded like kv_buffer_size bounds the real one.
    if (this.arrived.size > 10_000) this.arrived.delete(this.arrived.keys().next().value!);
    const ws = this.waiters.get(key);
    if (ws) {
      this.waiters.delete(key);
      for (const w of ws) w(a);
    }
  }

  /** Producer: send the request's KV to the decode address its id names. Resolves false when nobody listens there. */
  send(requestId: string, tokens: number): Promise<boolean> {
    const to = parseRequestId(requestId, true);
    if (!to) return Promise.resolve(false);
    return awaitReply(to.host, to.port, 2000, JSON.stringify({ key: transferKey(requestId), from: this.zmqAddress, tokens }) + '\n');
  }

  /** Consumer: wait (up to timeoutMs) for the KV of `requestId` from the producer it names. */
  async receiveFor(requestId: string, timeoutMs: number): Promise<{ ok: boolean; why: string; tokens: number }> {
    const from = parseRequestId(requestId, false);
    if (!from) return { ok: false, why: `Request id ${requestId} does not contain hostname and port`, tokens: 0 };
    const key = transferKey(requestId);
    const expected = `${from.host}:${from.port}`;
    let a = this.arrived.get(key) ?? null;
    if (!a && timeoutMs > 0) {
      a = await new Promise<Arrival | null>((resolve) => {
        const list = this.waiters.get(key) ?? [];
        const timer = setTimeout(() => {
          const l = this.waiters.get(key);
          if (l) this.waiters.set(key, l.filter((w) => w !== done));
          resolve(null);
        }, timeoutMs);
        const done = (x: Arrival | null): void => {
          clearTimeout(timer);
          resolve(x);
        };
        list.push(done);
        this.waiters.set(key, list);
      });
    }
    if (!a) return { ok: false, why: `no KV received from ${expected} for request ${key}`, tokens: 0 };
    this.arrived.delete(key);
    if (a.from !== expected) return { ok: false, why: `KV for request ${key} came from ${a.from}, the request id names ${expected}`, tokens: 0 };
    return { ok: true, why: '', tokens: a.tokens };
  }
}
