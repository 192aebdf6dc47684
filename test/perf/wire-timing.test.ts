/** The bench's wire timing (tcpdump capture -> per-event forwarding delay and gap stretch) on a synthetic pcap. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readSegments, wireStretch } from './proxy/wire-timing.js';

/** A little-endian microsecond pcap with Ethernet framing, one IPv4/TCP packet per [tUs, src, dst, payload]. */
function pcap(packets: [number, number, number, string][]): Buffer {
  const head = Buffer.alloc(24);
  head.writeUInt32LE(0xa1b2c3d4, 0);
  head.writeUInt16LE(2, 4);
  head.writeUInt16LE(4, 6);
  head.writeUInt32LE(262144, 16);
  head.writeUInt32LE(1, 20); // DLT_EN10MB
  const parts = [head];
  for (const [tUs, src, dst, text] of packets) {
    const payload = Buffer.from(text, 'latin1');
    const eth = Buffer.alloc(14);
    eth.writeUInt16BE(0x0800, 12);
    const ip = Buffer.alloc(20);
    ip[0] = 0x45;
    ip.writeUInt16BE(20 + 20 + payload.length, 2);
    ip[9] = 6;
    const tcp = Buffer.alloc(20);
    tcp.writeUInt16BE(src, 0);
    tcp.writeUInt16BE(dst, 2);
    tcp[12] = 5 << 4;
    const frame = Buffer.concat([eth, ip, tcp, payload]);
    const rec = Buffer.alloc(16);
    rec.writeUInt32LE(Math.floor(tUs / 1e6), 0);
    rec.writeUInt32LE(tUs % 1e6, 4);
    rec.writeUInt32LE(frame.length, 8);
    rec.writeUInt32LE(frame.length, 12);
    parts.push(rec, frame);
  }
  return Buffer.concat(parts);
}

const ev = (k: string): string => `data: {"id":"x","pd_k":"${k}","choices":[]}\n\n`;

test('forwarding delay and gap stretch per event, matched across the two legs by the event key', () => {
  const dir = mkdtempSync(join(tmpdir(), 'pd-wire-'));
  try {
    const file = join(dir, 'x.pcap');
    const ENGINE = 8200;
    const PROXY = 8000;
    writeFileSync(
      file,
      pcap([
        // stream 1 through the proxy: delays 100, 100, 400 µs -> stretches 0 and +300 µs
        [1_000_000, ENGINE, 40001, ev('1-0')],
        [1_000_100, PROXY, 50001, `cb\r\n${ev('1-0')}\r\n`],
        [1_050_000, ENGINE, 40001, ev('1-1')],
        [1_050_100, PROXY, 50001, `cb\r\n${ev('1-1')}\r\n`],
        [1_100_000, ENGINE, 40001, ev('1-2')],
        // the proxy's write of 1-2 straddles two segments: it counts when the marker completes
        [1_100_300, PROXY, 50001, `cb\r\ndata: {"id":"x","pd_`],
        [1_100_400, PROXY, 50001, `k":"1-2","choices":[]}\n\n\r\n`],
        // stream 2 went to the engine directly: never seen leaving the proxy, so not counted
        [1_000_050, ENGINE, 40002, ev('2-0') + ev('2-1')],
        // an ACK-like empty segment is skipped
        [1_000_060, PROXY, 50001, ''],
      ]),
    );
    const segs = [...readSegments(file)];
    assert.equal(segs.length, 8);
    assert.deepEqual([segs[0]!.srcPort, segs[0]!.dstPort, segs[0]!.tUs], [ENGINE, 40001, 1_000_000]);
    const w = wireStretch(file, ENGINE, PROXY);
    assert.equal(w.events, 3);
    assert.equal(w.missing, 0);
    assert.equal(w.pairs, 2);
    assert.equal(w.delayP50ms, 0.1);
    assert.ok(Math.abs(w.stretchP99ms! - 0.297) < 1e-9, String(w.stretchP99ms)); // 0 and 0.3 ms, p99 interpolated
    // Steady window: from the last stream's first event out (1-0 at 1.0001 s) to the first stream's last one.
    assert.equal(w.steadyFromMs, 0);
    assert.equal(w.steadyToMs, 100.3);
    assert.equal(w.steadyPairs, 1); // 1-1 -> 1-2 (1-0 entered before the window)
    assert.ok(Math.abs(w.steadyStretchP99ms! - 0.3) < 1e-9, String(w.steadyStretchP99ms));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
