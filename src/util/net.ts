/** Addresses: where to reach a server that binds a given host, and the CLI's small GET. */
import { get } from 'node:http';

/** Wildcard binds (0.0.0.0, ::) are reached on loopback; other hosts as they are. */
export function connectHost(host: string): string {
  if (host === '0.0.0.0' || host === '' || host === '*') return '127.0.0.1';
  if (host === '::' || host === '[::]') return '::1';
  return host;
}

/** http://HOST:PORT for a server that binds `host` (IPv6 literals in brackets). */
export function httpUrl(host: string, port: number): string {
  const h = connectHost(host);
  return `http://${h.includes(':') && !h.startsWith('[') ? `[${h}]` : h}:${port}`;
}

/**
 * One small GET with a deadline over headers and body: node:http, no connection kept. For the CLI's probes, where
 * loading a full HTTP client would cost more than the request.
 */
export function httpGet(url: string, opts: { timeoutMs: number; headers?: Record<string, string> }): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = get(url, { headers: opts.headers ?? {}, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        clearTimeout(deadline);
        resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') });
      });
      res.on('error', (e) => {
        clearTimeout(deadline);
        reject(e);
      });
    });
    const deadline = setTimeout(() => req.destroy(Object.assign(new Error(`no answer within ${opts.timeoutMs} ms`), { code: 'ETIMEDOUT' })), opts.timeoutMs);
    req.on('error', (e) => {
      clearTimeout(deadline);
      reject(e);
    });
  });
}
