/** The side channels' one exchange: connect, send `line` if any, and wait for any reply. */
import { connect } from 'node:net';

/** True when the peer answers within timeoutMs; false when it refuses, fails or stays silent. */
export function awaitReply(host: string, port: number, timeoutMs: number, line?: string): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect({ host, port });
    const timer = setTimeout(() => {
      s.destroy();
      resolve(false);
    }, timeoutMs);
    if (line !== undefined) s.once('connect', () => s.write(line));
    s.once('data', () => {
      clearTimeout(timer);
      s.destroy();
      resolve(true);
    });
    s.once('error', () => {
      clearTimeout(timer);
      resolve(false);
    });
  });
}
