/** Addresses: where to reach a server that binds a given host. */

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
