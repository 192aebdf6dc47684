/**
 * The floor: a minimal two-stage undici proxy with no features (no limits, no metrics, no logs, no header
 * care): parse, prefill with max_tokens=1, then pipe the decode answer. Child process of proxy.bench.ts.
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Pool } from 'undici';

const args = JSON.parse(process.argv[2]!) as { producer: string; consumer: string };
const prod = new Pool(args.producer, { headersTimeout: 0, bodyTimeout: 0 });
const cons = new Pool(args.consumer, { headersTimeout: 0, bodyTimeout: 0 });
const server = createServer((req, res) => {
  const parts: Buffer[] = [];
  req.on('data', (c: Buffer) => parts.push(c));
  req.on('end', async () => {
    try {
      const raw = Buffer.concat(parts);
      const j = JSON.parse(raw.toString()) as Record<string, unknown>;
      const r1 = await prod.request({
        method: 'POST',
        path: req.url!,
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ ...j, max_tokens: 1, stream: false }),
      });
      await r1.body.dump();
      const r2 = await cons.request({ method: 'POST', path: req.url!, headers: { 'content-type': 'application/json' }, body: raw });
      res.writeHead(r2.statusCode, { 'content-type': String(r2.headers['content-type']) });
      r2.body.pipe(res);
    } catch {
      res.writeHead(502).end();
    }
  });
});
server.listen(0, '127.0.0.1', () => process.stdout.write(JSON.stringify({ port: (server.address() as AddressInfo).port }) + '\n'));
