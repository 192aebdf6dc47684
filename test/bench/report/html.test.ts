import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFile, mkdir, cp } from 'node:fs/promises';
import { join, delimiter } from 'node:path';
import { accessSync, constants } from 'node:fs';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { execa } from 'execa';
import { tempDir } from '../../helpers/tmp.js';
import { writeReport } from '../../../src/bench/report/html.js';
import { DECODE_COLOR, PREFILL_COLOR, SERIES_COLORS } from '../../../src/bench/report/data.js';
import { UsageError } from '../../../src/util/errors.js';
import { countColour, decodePng } from './png.js';

const FIX = fileURLToPath(new URL('../fixtures-report/', import.meta.url));
const REAL = join(FIX, 'sprint-sheet-results-real-gpus.csv');
const RESULTS = join(FIX, 'results');

/**
 * Debian's Chromium ($PD_CHROMIUM, /usr/bin/chromium, or chromium on PATH); null when this machine has none
 * (a fresh machine with only Node: the browser check is then reported as not run, loudly, and the rest runs).
 */
function findChromium(): string | null {
  const names = process.env.PD_CHROMIUM ? [process.env.PD_CHROMIUM] : ['/usr/bin/chromium', 'chromium', 'chromium-browser', 'google-chrome'];
  for (const name of names) {
    const candidates = name.includes('/') ? [name] : (process.env.PATH ?? '').split(delimiter).map((d) => join(d, name));
    for (const c of candidates) {
      try {
        accessSync(c, constants.X_OK);
        return c;
      } catch {
        /* next */
      }
    }
  }
  return null;
}

async function chromium(bin: string, userDataDir: string, url: string, mode: string[]): Promise<string> {
  const { stdout } = await execa(
    bin,
    [
      '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
      '--disable-component-update', '--disable-sync', `--user-data-dir=${userDataDir}`, '--window-size=1400,2000',
      '--force-device-scale-factor=1', '--hide-scrollbars', ...mode, url,
    ],
    { timeout: 90_000, forceKillAfterDelay: 2_000, reject: true, stdin: 'ignore' },
  );
  return stdout;
}

describe('HTML report', () => {
  let tmp: { dir: string; cleanup: () => Promise<void> };
  before(async () => (tmp = await tempDir('pd-report-')));
  after(async () => tmp.cleanup());

  test('is self-contained: no external scripts, styles, fonts or images; data is escaped', async () => {
    // The results dir is shown on the page: give it characters that must be escaped.
    const dir = join(tmp.dir, '<b>&"x');
    await cp(join(RESULTS, 'tensor-parallelism'), join(dir, 'tensor-parallelism'), { recursive: true });
    const out = await writeReport({ resultsDir: dir, out: join(tmp.dir, 'esc', 'r.html') });
    const html = await readFile(out, 'utf8');
    assert.doesNotMatch(html, /<(link|img|iframe|object)\b/i);
    assert.doesNotMatch(html, /\b(src|href)\s*=/i);
    assert.doesNotMatch(html, /@import|url\(/i);
    assert.doesNotMatch(html, /<script[^>]*\bsrc/i);
    assert.ok(!html.includes('<b>&"x'), 'paths are HTML-escaped');
    assert.match(html, /&lt;b&gt;&amp;&quot;x/);
    assert.match(html, /No prefill\/decode split/);
  });

  test('from a sheet only: latency charts, no throughput, notes say why', async () => {
    const out = await writeReport({ resultsDir: join(tmp.dir, 'none'), out: join(tmp.dir, 'sheet-only.html'), sheetPath: REAL, sets: ['pd-disaggregation', 'tensor-parallelism'] });
    const html = await readFile(out, 'utf8');
    for (const id of ['ttft', 'tpot', 'itl']) assert.match(html, new RegExp(`data-plot="${id}"`));
    assert.doesNotMatch(html, /data-plot="request-throughput"/);
    assert.match(html, /data-series="pd-disaggregation\/p50" d="M[\d. ]+(L[\d. ]+){4}"/, 'five steady points joined');
    assert.match(html, /No throughput charts/);
    assert.match(html, /pd-disaggregation \(sheet\)/);
    assert.match(html, /\(log scale\)/, 'TTFT from 43 ms to 64 s is drawn on a log axis');
    await assert.rejects(writeReport({ resultsDir: join(tmp.dir, 'none'), out: join(tmp.dir, 'x.html') }), (e: unknown) => e instanceof UsageError && /nothing to report/.test(e.message));
    await assert.rejects(
      writeReport({ resultsDir: RESULTS, out: join(tmp.dir, 'x.html'), sets: ['nope'] }),
      (e: unknown) => e instanceof UsageError && /no results for set "nope"/.test(e.message) && /pd-disaggregation/.test(e.hint ?? ''),
    );
  });

  test('the three-set report: every chart and series in the page; rendered in headless Chromium when this machine has it', async () => {
    const out = await writeReport({
      resultsDir: RESULTS,
      out: join(tmp.dir, 'report', 'index.html'),
      sheetPath: REAL,
      sets: ['pd-disaggregation', 'tensor-parallelism', 'pd-disaggregation-nixl'],
    });
    // 0. Without a browser: the page holds each chart's plot area and each set's p50/p99 lines.
    const html = await readFile(out, 'utf8');
    const plots = [...html.matchAll(/data-plot="([^"]+)"/g)].map((m) => m[1]);
    assert.deepEqual(plots, ['ttft', 'tpot', 'itl', 'request-throughput', 'output-throughput', 'split-pd-disaggregation']);
    for (const set of ['pd-disaggregation', 'tensor-parallelism', 'pd-disaggregation-nixl'])
      for (const stat of ['p50', 'p99']) assert.match(html, new RegExp(`<path data-series="${set}/${stat}" d="M[^"]*L`), `${set} ${stat} line`);
    assert.match(html, /<rect data-series="pd-disaggregation\/prefill"/);

    const bin = findChromium();
    if (bin === null) {
      // .ci/run sets PD_REQUIRE_BROWSER=1 after installing Debian's chromium: there the check must run.
      assert.notEqual(process.env.PD_REQUIRE_BROWSER, '1', 'PD_REQUIRE_BROWSER=1 but no chromium was found (set PD_CHROMIUM)');
      process.stderr.write('HTML report browser check NOT RUN: no chromium on this machine (install Debian\'s chromium, or set PD_CHROMIUM; .ci/run installs it)\n');
      return;
    }
    const url = pathToFileURL(out).href;
    const png = join(tmp.dir, 'shot.png');
    await mkdir(join(tmp.dir, 'ud'));
    // One browser run prints the DOM after load and takes the screenshot (a browser costs seconds of CPU).
    const dom = await chromium(bin, join(tmp.dir, 'ud'), url, ['--dump-dom', `--screenshot=${png}`]);

    // 1. The DOM after load: the page's own layout record and the drawn series.
    const m = /data-plot-rects="([^"]*)"/.exec(dom);
    assert.ok(m, 'the page recorded its chart positions (its inline script ran)');
    const rects = JSON.parse(m[1]!.replaceAll('&quot;', '"')) as { id: string; x: number; y: number; w: number; h: number }[];
    assert.deepEqual(rects.map((r) => r.id), ['ttft', 'tpot', 'itl', 'request-throughput', 'output-throughput', 'split-pd-disaggregation']);
    for (const set of ['pd-disaggregation', 'tensor-parallelism', 'pd-disaggregation-nixl'])
      for (const stat of ['p50', 'p99']) assert.match(dom, new RegExp(`<path data-series="${set}/${stat}" d="M[^"]*L`), `${set} ${stat} line`);
    assert.match(dom, /<rect data-series="pd-disaggregation\/prefill"/);

    // 2. The screenshot: each chart's plot area holds pixels of each series colour it should, and none it should not.
    const img = decodePng(await readFile(png));
    assert.equal(img.width, 1400);
    assert.equal(img.height, 2000);
    const [blue, red, green] = [SERIES_COLORS[0], SERIES_COLORS[1], SERIES_COLORS[2]];
    const byId = new Map(rects.map((r) => [r.id, r]));
    for (const r of rects) assert.ok(r.y + r.h <= 2000 && r.x + r.w <= 1400, `${r.id} is inside the 1400x2000 screenshot`);
    const counts: Record<string, Record<string, number>> = {};
    const count = (id: string, colour: string) => {
      const n = countColour(img, byId.get(id)!, colour);
      (counts[id] ??= {})[colour] = n;
      return n;
    };
    for (const id of ['ttft', 'tpot', 'itl'])
      for (const c of [blue, red, green]) assert.ok(count(id, c) > 150, `chart ${id}: colour ${c} drawn (${JSON.stringify(counts[id])})`);
    for (const id of ['request-throughput', 'output-throughput']) {
      for (const c of [blue, red]) assert.ok(count(id, c) > 100, `chart ${id}: colour ${c} drawn (${JSON.stringify(counts[id])})`);
      assert.ok(count(id, green) < 20, `chart ${id}: the sheet-only set has no throughput, so no ${green} (${JSON.stringify(counts[id])})`);
    }
    assert.ok(count('split-pd-disaggregation', PREFILL_COLOR) > 3000, `prefill bars drawn (${JSON.stringify(counts['split-pd-disaggregation'])})`);
    assert.ok(count('split-pd-disaggregation', DECODE_COLOR) > 100, `decode bars drawn (${JSON.stringify(counts['split-pd-disaggregation'])})`);
  });
});
