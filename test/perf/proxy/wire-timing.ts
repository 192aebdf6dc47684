/**
 * How much the proxy itself stretches inter-token gaps, timed by the kernel rather than by a client.
 *
 * On a small machine the load generator's own event-loop lag stretches gaps by milliseconds (even for streams
 * that never pass through the proxy), which buries a 0.2 ms effect. So tcpdump records the loopback traffic,
 * and each SSE event (marked by the bench backend with a unique `"pd_k":"<stream>-<index>"`) is timed twice
 * by the kernel: when the engine's packet carrying it went out (engine → proxy) and when the proxy's packet
 * carrying it went out (proxy → client). Per stream, the stretch of a gap is
 *   (out[i+1] − out[i]) − (in[i+1] − in[i]) = delay[i+1] − delay[i],
 * which no client lag can touch. Needs tcpdump and the right to capture (root or CAP_NET_RAW).
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';

export function canCapture(): boolean {
  const r = spawnSync('tcpdump', ['--version'], { stdio: 'ignore' });
  return r.status === 0 && typeof process.getuid === 'function' && process.getuid() === 0;
}

export interface Capture {
  /** Stop tcpdump; resolves with what it said about drops. */
  stop(): Promise<{ dropped: number | null }>;
}

/** Record TCP segments sent from any of `ports` on the loopback interface into `file`. */
export function startCapture(file: string, ports: number[], cpu?: number): Promise<Capture> {
  const filter = ports.map((p) => `tcp src port ${p}`).join(' or ');
  const args = ['-i', 'lo', '-n', '-s', '0', '-B', '65536', '-w', file, filter];
  const child: ChildProcess =
    cpu === undefined ? spawn('tcpdump', args, { stdio: ['ignore', 'ignore', 'pipe'] }) : spawn('taskset', ['-c', String(cpu), 'tcpdump', ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  return new Promise((resolve, reject) => {
    child.stderr!.on('data', (d: Buffer) => {
      err += d.toString();
      if (/listening on/.test(err)) resolve(capture);
    });
    child.once('exit', (code) => reject(new Error(`tcpdump exited (${code}) before it was listening: ${err.trim()}`)));
    const capture: Capture = {
      // tcpdump drains the kernel's capture buffer lazily: give it the last packets before stopping it.
      stop: () =>
        new Promise((res) => setTimeout(res, 300)).then(() => new Promise((res) => {
          child.removeAllListeners('exit');
          child.once('exit', () => {
            const m = /(\d+) packets? dropped by kernel/.exec(err);
            res({ dropped: m ? Number(m[1]) : null });
          });
          child.kill('SIGINT');
        })),
    };
  });
}

interface Segment {
  tUs: number;
  srcPort: number;
  dstPort: number;
  payload: Buffer;
}

/** The TCP segments with a payload in a pcap file (Ethernet, Linux cooked v1/v2 or raw IPv4 link types). */
export function* readSegments(file: string): Generator<Segment> {
  const buf = readFileSync(file);
  if (buf.length < 24) return;
  const magic = buf.readUInt32LE(0);
  const le = magic === 0xa1b2c3d4 || magic === 0xa1b23c4d;
  const nanos = magic === 0xa1b23c4d || magic === 0x4d3cb2a1;
  const u32 = (o: number): number => (le ? buf.readUInt32LE(o) : buf.readUInt32BE(o));
  const link = u32(20);
  const linkLen = link === 1 ? 14 : link === 113 ? 16 : link === 276 ? 20 : link === 101 ? 0 : -1;
  if (linkLen < 0) throw new Error(`unsupported pcap link type ${link}`);
  let o = 24;
  while (o + 16 <= buf.length) {
    const tUs = u32(o) * 1e6 + (nanos ? u32(o + 4) / 1000 : u32(o + 4));
    const incl = u32(o + 8);
    const p = o + 16;
    o = p + incl;
    if (o > buf.length) break;
    const ip = p + linkLen;
    if ((buf[ip]! >> 4) !== 4 || buf[ip + 9] !== 6) continue; // IPv4 + TCP only
    const ihl = (buf[ip]! & 0x0f) * 4;
    const ipLen = buf.readUInt16BE(ip + 2);
    const tcp = ip + ihl;
    const dataOff = (buf[tcp + 12]! >> 4) * 4;
    const start = tcp + dataOff;
    const end = Math.min(ip + ipLen, o);
    if (end <= start) continue;
    yield { tUs, srcPort: buf.readUInt16BE(tcp), dstPort: buf.readUInt16BE(tcp + 2), payload: buf.subarray(start, end) };
  }
}

const MARK = Buffer.from('"pd_k":"');

/**
 * For each of `ports`: event key -> time (µs) of the first segment from that port that completed its marker,
 * in one pass over the capture. An event may straddle two segments, so each connection's previous segment
 * tail is scanned together with the next segment.
 */
function eventTimes(file: string, ports: number[]): Map<number, Map<string, number>> {
  const byPort = new Map(ports.map((p) => [p, new Map<string, number>()]));
  const tails = new Map<string, Buffer>();
  for (const s of readSegments(file)) {
    const out = byPort.get(s.srcPort);
    if (out === undefined) continue;
    const conn = `${s.srcPort}>${s.dstPort}`;
    const tail = tails.get(conn);
    const data = tail ? Buffer.concat([tail, s.payload]) : s.payload;
    const skip = tail ? tail.length : 0;
    let i = data.indexOf(MARK);
    while (i >= 0) {
      const from = i + MARK.length;
      const to = data.indexOf(0x22, from); // closing quote
      if (to < 0) break;
      if (to >= skip) {
        // completed in this segment (one that ended in the tail was counted with the previous one)
        const key = data.toString('latin1', from, to);
        if (!out.has(key)) out.set(key, s.tUs);
      }
      i = data.indexOf(MARK, to);
    }
    tails.set(conn, Buffer.from(data.subarray(Math.max(0, data.length - 64))));
  }
  return byPort;
}

export interface WireStretch {
  /** the steady window: from when every proxied stream had its first event out of the proxy to when the first
   * stream's last event went out (ms from the first event); null when the streams never overlapped */
  steadyFromMs: number | null;
  steadyToMs: number | null;
  /** gap stretch over pairs whose two events both entered the proxy inside the steady window */
  steadyPairs: number;
  steadyStretchP50ms: number | null;
  steadyStretchP99ms: number | null;
  steadyDelayP99ms: number | null;
  /** events seen on both legs */
  events: number;
  /** events the engine sent on streams that went through the proxy but that were not seen leaving it */
  missing: number;
  delayP50ms: number | null;
  delayP99ms: number | null;
  stretchP50ms: number | null;
  stretchP99ms: number | null;
  pairs: number;
}

function pct(sorted: Float64Array, p: number): number | null {
  if (sorted.length === 0) return null;
  const r = (p / 100) * (sorted.length - 1);
  const lo = Math.floor(r);
  const hi = Math.min(sorted.length - 1, lo + 1);
  return sorted[lo]! + (sorted[hi]! - sorted[lo]!) * (r - lo);
}

/** Forwarding delay and gap stretch of every event that went engine (`upstreamPort`) → proxy (`proxyPort`). */
export function wireStretch(file: string, upstreamPort: number, proxyPort: number): WireStretch {
  const times = eventTimes(file, [upstreamPort, proxyPort]);
  const tin = times.get(upstreamPort)!;
  const tout = times.get(proxyPort)!;
  const proxiedStreams = new Set<string>();
  for (const k of tout.keys()) proxiedStreams.add(k.slice(0, k.indexOf('-')));
  // Steady window: after the ramp-up (every stream has started) and before the first stream ends.
  const firstOut = new Map<string, number>();
  const lastOut = new Map<string, number>();
  let t0 = Infinity;
  for (const [k, t] of tout) {
    const stream = k.slice(0, k.indexOf('-'));
    t0 = Math.min(t0, t);
    if (t < (firstOut.get(stream) ?? Infinity)) firstOut.set(stream, t);
    if (t > (lastOut.get(stream) ?? -Infinity)) lastOut.set(stream, t);
  }
  const steadyFrom = Math.max(...firstOut.values());
  const steadyTo = Math.min(...lastOut.values());
  const steady = (t: number): boolean => t >= steadyFrom && t <= steadyTo;
  const delays: number[] = [];
  const stretches: number[] = [];
  const steadyDelays: number[] = [];
  const steadyStretches: number[] = [];
  let missing = 0;
  for (const [k, tIn] of tin) {
    const dash = k.indexOf('-');
    const stream = k.slice(0, dash);
    if (!proxiedStreams.has(stream)) continue; // a direct stream
    const tOut = tout.get(k);
    if (tOut === undefined) {
      missing++;
      continue;
    }
    delays.push(tOut - tIn);
    if (steady(tIn)) steadyDelays.push(tOut - tIn);
    const next = `${stream}-${Number(k.slice(dash + 1)) + 1}`;
    const nIn = tin.get(next);
    const nOut = tout.get(next);
    if (nIn !== undefined && nOut !== undefined) {
      stretches.push(nOut - tOut - (nIn - tIn));
      if (steady(tIn) && steady(nIn)) steadyStretches.push(nOut - tOut - (nIn - tIn));
    }
  }
  const d = Float64Array.from(delays).sort();
  const s = Float64Array.from(stretches).sort();
  const sd = Float64Array.from(steadyDelays).sort();
  const ss = Float64Array.from(steadyStretches).sort();
  const ms = (v: number | null): number | null => (v === null ? null : v / 1000);
  const overlap = steadyFrom < steadyTo;
  return {
    steadyFromMs: overlap ? (steadyFrom - t0) / 1000 : null,
    steadyToMs: overlap ? (steadyTo - t0) / 1000 : null,
    steadyPairs: ss.length,
    steadyStretchP50ms: ms(pct(ss, 50)),
    steadyStretchP99ms: ms(pct(ss, 99)),
    steadyDelayP99ms: ms(pct(sd, 99)),
    events: delays.length,
    missing,
    delayP50ms: ms(pct(d, 50)),
    delayP99ms: ms(pct(d, 99)),
    stretchP50ms: ms(pct(s, 50)),
    stretchP99ms: ms(pct(s, 99)),
    pairs: stretches.length,
  };
}
