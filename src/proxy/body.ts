/** Reading request bodies within the per-request size limit (413). */
import type { IncomingMessage } from 'node:http';
import { ProxyFailure, clientGone } from './failures.js';

export class BodyReader {
  constructor(readonly maxBodyBytes: number) {}

  tooLargeMessage(): string {
    return `Request body is larger than the proxy's limit of ${this.maxBodyBytes} bytes (proxy.maxBodyBytes).`;
  }

  /** Read the whole body. Rejects with ProxyFailure (too_large, client_abort). */
  read(req: IncomingMessage): Promise<Buffer> {
    const limit = this.maxBodyBytes;
    const declared = Number(req.headers['content-length']);
    if (declared > limit) return Promise.reject(new ProxyFailure('too_large', this.tooLargeMessage()));
    return new Promise((resolve, reject) => {
      const chunks: Buffer[] = [];
      let size = 0;
      const onData = (c: Buffer): void => {
        size += c.length;
        if (size > limit) {
          req.off('data', onData);
          req.pause();
          reject(new ProxyFailure('too_large', this.tooLargeMessage()));
          return;
        }
        chunks.push(c);
      };
      req.on('data', onData);
      req.once('end', () => resolve(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, size)));
      const onGone = (): void => reject(clientGone());
      req.once('error', onGone);
      req.once('aborted', onGone);
    });
  }
}
