/**
 * The client-facing node:http server with bounded resources: a cap on open connections, a deadline for the
 * request headers (a client that never finishes them is cut with 408), and node's own answers to broken
 * requests (408, 431, 400) kept although the proxy listens for `clientError`.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';

export interface ServerLimits {
  maxConnections: number;
  headersMs: number;
}

/** How often a deadline of `ms` is checked: a fortieth of it, between 25 and 500 ms. */
export function checkEveryMs(ms: number): number {
  return Math.max(25, Math.min(500, Math.floor(ms / 40)));
}

/**
 * What is left of a deadline of `ms` checked every `checkEveryMs(ms)`: checks come up to one interval late, and
 * cutting thousands of clients at once takes a moment too, so the deadline is moved two intervals earlier; a slow
 * client is then cut within its configured time (and at most 5 % before it).
 */
export function effectiveDeadlineMs(ms: number): number {
  return Math.max(1, ms - 2 * checkEveryMs(ms));
}

/**
 * Node checks the header deadline of open connections only every `connectionsCheckingInterval` ms. Node's
 * whole-request deadline is off: it would also run while the proxy deliberately leaves a body unread (waiting for
 * the body budget); body.ts bounds the body read instead.
 */
export function nodeDeadlines(limits: Pick<ServerLimits, 'headersMs'>): {
  headersTimeout: number;
  requestTimeout: number;
  connectionsCheckingInterval: number;
} {
  return {
    headersTimeout: effectiveDeadlineMs(limits.headersMs),
    requestTimeout: 0,
    connectionsCheckingInterval: checkEveryMs(limits.headersMs),
  };
}

const RESPONSES: Record<string, string> = {
  ERR_HTTP_REQUEST_TIMEOUT: 'HTTP/1.1 408 Request Timeout\r\nConnection: close\r\n\r\n',
  HPE_HEADER_OVERFLOW: 'HTTP/1.1 431 Request Header Fields Too Large\r\nConnection: close\r\n\r\n',
  HPE_CHUNK_EXTENSIONS_OVERFLOW: 'HTTP/1.1 413 Payload Too Large\r\nConnection: close\r\n\r\n',
};
const BAD_REQUEST = 'HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n';

export function createLimitedServer(
  limits: ServerLimits,
  listener: (req: IncomingMessage, res: ServerResponse) => void,
  onTimeout: () => void,
): Server {
  const server = createServer({ keepAliveTimeout: 65_000, noDelay: true, ...nodeDeadlines(limits) }, listener);
  server.maxConnections = limits.maxConnections;
  // Answer like node's default clientError handler (lib/_http_server.js socketOnError), which a listener replaces:
  // a request cut for being slow gets 408, not the 400 a plain handler would write.
  server.on('clientError', (err: NodeJS.ErrnoException, socket: Socket) => {
    const code = err.code ?? '';
    if (code === 'ERR_HTTP_REQUEST_TIMEOUT') onTimeout();
    const inFlight = (socket as Socket & { _httpMessage?: ServerResponse | null })._httpMessage;
    if (socket.writable && !inFlight?.headersSent) socket.write(RESPONSES[code] ?? BAD_REQUEST);
    socket.destroy();
  });
  return server;
}

export function listen(server: Server, port: number, host: string): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
}
