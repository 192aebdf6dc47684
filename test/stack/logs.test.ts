import { test } from 'node:test';
import assert from 'node:assert/strict';
import { appendFile, mkdir, rename, utimes, writeFile } from 'node:fs/promises';
import { getEventListeners } from 'node:events';
import { join } from 'node:path';
import { tempDir } from '../helpers/tmp.js';
import { followLogs, lineTime, listLogs, mergeByTime, mergedHistory, parseSince, readHistory, tailFile, type TimedLine } from '../../src/stack/logs.js';
import { isProbeLine } from '../../src/cli/serving-view.js';

const local = (mo: number, d: number, h: number, mi: number, s: number, y = 2026): number => new Date(y, mo - 1, d, h, mi, s).getTime();
const vllm = (h: number, mi: number, s: number, msg: string, mo = 11, d = 30): string =>
  `(APIServer pid=7) INFO ${String(mo).padStart(2, '0')}-${String(d).padStart(2, '0')} ${[h, mi, s].map((n) => String(n).padStart(2, '0')).join(':')} [api_server.py:1] ${msg}`;
const access = (path: string): string => `(APIServer pid=7) INFO:     127.0.0.1:5000 - "POST ${path} HTTP/1.1" 200 OK`;
const iso = (t: number): string => new Date(t).toISOString();

test('lineTime reads vLLM\'s local MM-DD HH:MM:SS (coloured or prefixed too) and ISO 8601; uvicorn lines have none', () => {
  const ref = local(11, 30, 12, 0, 0);
  assert.deepEqual(lineTime(vllm(2, 13, 9, 'hello'), ref), { time: local(11, 30, 2, 13, 9), seconds: true });
  assert.deepEqual(lineTime('INFO 11-30 02:13:09 [core.py:77] no prefix', ref), { time: local(11, 30, 2, 13, 9), seconds: true });
  assert.deepEqual(lineTime('myprefix WARNING 11-29 23:59:59 [x.py:1] prefixed', ref), { time: local(11, 29, 23, 59, 59), seconds: true });
  // VLLM_LOGGING_COLOR: the level and the time wrapped in colour codes.
  assert.deepEqual(lineTime('\x1b[32mINFO\x1b[0m \x1b[90m11-30 02:13:09\x1b[0m [x.py:1] colour', ref)?.time, local(11, 30, 2, 13, 9));
  // A log written on 31 December and read on 2 January is last year's.
  assert.equal(lineTime(vllm(23, 0, 0, 'x', 12, 31), local(1, 2, 0, 0, 0, 2027))?.time, local(12, 31, 23, 0, 0, 2026));
  assert.deepEqual(lineTime('2026-11-30T02:13:09.805Z abc POST /v1/completions 200', ref), { time: Date.UTC(2026, 10, 30, 2, 13, 9, 805), seconds: false });
  assert.equal(lineTime('{"time":"2026-11-30T02:13:09.805Z","id":"x"}', ref)?.time, Date.UTC(2026, 10, 30, 2, 13, 9, 805));
  assert.equal(lineTime('----- pd: starting producer-0 at 2026-11-30T02:13:09.000Z -----', ref)?.time, Date.UTC(2026, 10, 30, 2, 13, 9));
  assert.equal(lineTime(access('/v1/completions'), ref), null);
  assert.equal(lineTime('Traceback (most recent call last):', ref), null);
  assert.equal(lineTime('INFO:     Started server process [123]', ref), null);
});

test('--since takes a duration, a time today, or a date and time; anything else is a usage error', () => {
  const now = local(11, 30, 12, 0, 0);
  assert.equal(parseSince('10m', now), now - 600_000);
  assert.equal(parseSince('1h30m', now), now - 5_400_000);
  assert.equal(parseSince('02:13', now), local(11, 30, 2, 13, 0));
  assert.equal(parseSince('13:00:05', now), local(11, 29, 13, 0, 5), 'a time still to come today is yesterday\'s');
  assert.equal(parseSince('2026-11-30T02:13', now), local(11, 30, 2, 13, 0));
  assert.equal(parseSince('2026-11-30 02:13:09', now), local(11, 30, 2, 13, 9));
  assert.equal(parseSince('2026-11-29', now), local(11, 29, 0, 0, 0));
  assert.equal(parseSince('2026-11-30T02:13:09Z', now), Date.UTC(2026, 10, 30, 2, 13, 9));
  for (const bad of ['yesterday', '10', '25:00', '2026-13-45', '']) {
    assert.throws(() => parseSince(bad, now), (e: Error & { kind?: string; hint?: string }) => e.kind === 'usage' && /--since/.test(e.message) && /10m/.test(e.hint ?? ''), bad);
  }
});

async function logDir(files: Record<string, string[]>, mtimes: Record<string, number> = {}): Promise<{ dir: string; cleanup: () => Promise<void> }> {
  const t = await tempDir('pd-logs-');
  for (const [name, lines] of Object.entries(files)) {
    const file = join(t.dir, `${name}.log`);
    await writeFile(file, lines.map((l) => l + '\n').join(''));
    if (mtimes[name] !== undefined) await utimes(file, mtimes[name] / 1000, mtimes[name] / 1000);
  }
  return t;
}

test('history merges files by the time each line carries; untimed lines take the time of the line before them', async () => {
  const T = (s: number): number => local(11, 30, 2, 0, s);
  const { dir, cleanup } = await logDir(
    {
      'producer-0': [vllm(2, 0, 1, 'p start'), access('/a'), vllm(2, 0, 5, 'p stats')],
      'consumer-0': ['untimed before any time', vllm(2, 0, 3, 'c start'), access('/b'), 'Traceback (most recent call last):'],
      proxy: [`${iso(T(2) + 500)} r1 POST /v1/chat/completions 200`, `${iso(T(4))} r2 POST /v1/chat/completions 200`],
      supervisor: ['pd | no time at all'],
    },
    { supervisor: T(30), 'producer-0': T(10), 'consumer-0': T(10), proxy: T(10) },
  );
  try {
    const { lines } = await mergedHistory(await listLogs(dir), { lines: 50 });
    assert.deepEqual(
      lines.map((l) => `${l.source}: ${l.line}`),
      [
        `producer-0: ${vllm(2, 0, 1, 'p start')}`,
        `producer-0: ${access('/a')}`,
        `proxy: ${iso(T(2) + 500)} r1 POST /v1/chat/completions 200`,
        'consumer-0: untimed before any time',
        `consumer-0: ${vllm(2, 0, 3, 'c start')}`,
        `consumer-0: ${access('/b')}`,
        'consumer-0: Traceback (most recent call last):',
        `proxy: ${iso(T(4))} r2 POST /v1/chat/completions 200`,
        `producer-0: ${vllm(2, 0, 5, 'p stats')}`,
        'supervisor: pd | no time at all',
      ],
    );
    const by = (prefix: string): TimedLine => lines.find((l) => l.line.includes(prefix))!;
    assert.deepEqual([by('"POST /a').time, by('"POST /a').from, by('"POST /a').seconds], [T(1), 'carried', true]);
    assert.deepEqual([by('untimed before').time, by('untimed before').from], [T(3), 'carried']);
    assert.deepEqual([by('no time at all').time, by('no time at all').from], [T(30), 'file']);
    assert.deepEqual([by('r1 POST').from, by('r1 POST').seconds], ['line', false]);

    // -n counts lines overall, after the merge.
    const last3 = (await mergedHistory(await listLogs(dir), { lines: 3 })).lines.map((l) => l.source);
    assert.deepEqual(last3, ['proxy', 'producer-0', 'supervisor']);
    // --since: only lines at or after the time (untimed ones by the time they carry).
    const since = (await mergedHistory(await listLogs(dir), { sinceMs: T(3) })).lines;
    assert.deepEqual(since.map((l) => l.source), ['consumer-0', 'consumer-0', 'consumer-0', 'consumer-0', 'proxy', 'producer-0', 'supervisor']);
    assert.equal(since[0]!.line, 'untimed before any time');
  } finally {
    await cleanup();
  }
});

test('history reads only the end of a large file, yet carries the time from before the window', async () => {
  const filler = Array.from({ length: 20_000 }, (_, i) => vllm(1, 0, i % 60, `old line ${i}`));
  const { dir, cleanup } = await logDir({ 'producer-0': [...filler, vllm(2, 0, 0, 'the last timed line'), ...Array.from({ length: 5 }, (_, i) => access(`/r${i}`))] });
  try {
    const [source] = await listLogs(dir);
    const { lines } = await readHistory(source!, { lines: 3 });
    assert.deepEqual(lines.map((l) => l.line.slice(-26)), ['"POST /r2 HTTP/1.1" 200 OK', '"POST /r3 HTTP/1.1" 200 OK', '"POST /r4 HTTP/1.1" 200 OK']);
    assert.ok(lines.every((l) => l.time === local(11, 30, 2, 0, 0) && l.from === 'carried'));
    assert.deepEqual((await tailFile(source!.file, 2)).lines, [access('/r3'), access('/r4')]);
    assert.equal((await readHistory(source!, { lines: 0 })).lines.length, 0);
    // A file whose last line has no newline yet: left for -f (completeOnly), shown otherwise.
    await appendFile(source!.file, 'half a li');
    assert.equal((await readHistory(source!, { lines: 1 })).lines[0]!.line, 'half a li');
    const complete = await readHistory(source!, { lines: 1, completeOnly: true });
    assert.match(complete.lines[0]!.line, /POST \/r4/);
  } finally {
    await cleanup();
  }
});

test('hidden lines (the proxy\'s /health probes) are not shown nor counted, but still carry their time', async () => {
  const probe = '(APIServer pid=7) INFO:     127.0.0.1:5000 - "GET /health HTTP/1.1" 200 OK';
  const { dir, cleanup } = await logDir({ 'consumer-0': [vllm(2, 0, 0, 'start'), access('/x'), probe, probe, probe] });
  try {
    const { lines } = await mergedHistory(await listLogs(dir), { lines: 2, hide: isProbeLine });
    assert.deepEqual(lines.map((l) => l.line.slice(-30)), [vllm(2, 0, 0, 'start').slice(-30), access('/x').slice(-30)]);
    assert.equal((await mergedHistory(await listLogs(dir), { lines: 2 })).lines.filter((l) => isProbeLine(l.line)).length, 2);
  } finally {
    await cleanup();
  }
});

test('mergeByTime keeps each file\'s order even when its times go backwards, and breaks ties by file order', () => {
  const l = (source: string, time: number): TimedLine => ({ source, line: `${source}@${time}`, time, from: 'line', seconds: false });
  const merged = mergeByTime([
    [l('a', 1), l('a', 5), l('a', 3)],
    [l('b', 1), l('b', 4), l('b', 5)],
  ]);
  assert.deepEqual(merged.map((x) => x.line), ['a@1', 'b@1', 'b@4', 'a@5', 'a@3', 'b@5']);
});

test('followLogs hands on new lines merged by time, picks up new and rotated files, and adds no listener per poll', async () => {
  const { dir, cleanup } = await tempDir('pd-follow-');
  try {
    await mkdir(dir, { recursive: true });
    const p = join(dir, 'producer-0.log');
    await writeFile(p, `${vllm(2, 0, 0, 'before')}\n`);
    const { marks } = await mergedHistory(await listLogs(dir), { lines: 10, completeOnly: true });
    const got: TimedLine[][] = [];
    const ac = new AbortController();
    let polls = 0;
    let maxListeners = 0;
    // Polls can be held at a gate, so that lines written to two files are read by one poll.
    let gate: Promise<void> = Promise.resolve();
    let release = (): void => undefined;
    let held = false;
    const done = followLogs({
      sources: async () => {
        held = true;
        await gate;
        held = false;
        polls++;
        maxListeners = Math.max(maxListeners, getEventListeners(ac.signal, 'abort').length);
        return listLogs(dir);
      },
      marks,
      onLines: (b) => void got.push(b),
      hide: isProbeLine,
      signal: ac.signal,
      pollMs: 5,
    });
    try {
      const waitFor = async (what: string, ok: () => boolean): Promise<void> => {
        const deadline = Date.now() + 10_000;
        while (!ok()) {
          if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}: ${JSON.stringify(got)}`);
          await new Promise((r) => setTimeout(r, 5));
        }
      };
      const all = (): string[] => got.flat().map((l) => l.line);
      // Lines of two files written before one poll reads them come out in time order.
      const T = Date.UTC(2026, 10, 30, 2, 0, 0);
      gate = new Promise((r) => (release = r));
      held = false;
      await waitFor('a poll held', () => held);
      await Promise.all([
        writeFile(join(dir, 'proxy.log'), `${iso(T + 2000)} second\n${iso(T + 4000)} fourth\n`),
        appendFile(p, `${iso(T + 1000)} first\n${iso(T + 3000)} third\n(APIServer pid=7) INFO:     127.0.0.1:5 - "GET /health HTTP/1.1" 200 OK\npartial`),
      ]);
      release();
      await waitFor('four lines', () => all().length >= 4);
      await appendFile(p, ' line done\n');
      await waitFor('the partial line whole', () => all().includes('partial line done'));
      assert.deepEqual(all().slice(0, 4).map((l) => l.split(' ')[1]), ['first', 'second', 'third', 'fourth']);
      assert.equal(all().filter((l) => l.includes('/health')).length, 0);
      assert.equal(all().filter((l) => l.includes('before')).length, 0, 'history is not repeated');
      // The next `pd up` rotates the log: the new file is read from its start.
      await rename(p, `${p}.1`);
      await writeFile(p, 'new generation\n');
      await waitFor('the rotated file', () => all().includes('new generation'));
      const arrived = got.flat().find((l) => l.line === 'new generation')!;
      assert.equal(arrived.from, 'arrived');
      await waitFor('many polls', () => polls > 50);
    } finally {
      release();
      ac.abort();
      await done;
    }
    assert.ok(maxListeners <= 1, `${maxListeners} abort listeners during a poll`);
    assert.equal(getEventListeners(ac.signal, 'abort').length, 0);
  } finally {
    await cleanup();
  }
});
