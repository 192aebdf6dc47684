/**
 * Our proxy with every feature on (rate limiter and admission active but not limiting, metrics, access log to
 * a file, health probes, request ids, Server-Timing), as a child process of proxy.bench.ts.
 */
import { createWriteStream } from 'node:fs';
import { startProxy } from '../../../src/proxy/server.js';
import { defaultConfig } from '../../../src/config/schema.js';

const args = JSON.parse(process.argv[2]!) as { producer: string; consumer: string; logFile: string };
const file = createWriteStream(args.logFile);
let buf: string[] = [];
const log = (line: string): void => {
  if (buf.length === 0) setImmediate(() => {
    file.write(buf.join('\n') + '\n');
    buf = [];
  });
  buf.push(line);
};
const h = await startProxy({
  ...defaultConfig().proxy,
  host: '127.0.0.1',
  port: 0,
  rateLimit: 1_000_000,
  burst: 1_000_000,
  maxConcurrent: 100_000,
  queueSize: 100_000,
  accessLog: 'json',
  producers: [{ name: 'producer-0', url: args.producer }],
  consumers: [{ name: 'consumer-0', url: args.consumer }],
  connector: 'SharedStorageConnector',
  log,
});
process.stdout.write(JSON.stringify({ port: h.port }) + '\n');
process.on('SIGTERM', () => void h.close().then(() => process.exit(0)));
