/**
 * The throughput/latency (Pareto) chart of sweep runs (`pd bench run --max-concurrency 1,4,16 --lengths …`):
 * x = median TPOT (ms; lower is more interactive), y = output tokens per second; one marker per run, labelled
 * with its sweep coordinates, and per set the Pareto front (runs no other run beats on both axes) joined by a
 * line. Inline SVG like the other charts; the plot area carries data-plot="pareto".
 */
import type { RunResult } from '../result.js';
import { numberField } from '../sheet-runs.js';
import type { ReportSet } from './data.js';
import { linearScale } from './scale.js';
import { CHART_HEIGHT, CHART_WIDTH, esc, marker } from './svg.js';

export interface ParetoPoint {
  run: RunResult;
  x: number;
  y: number;
  label: string;
}

export function sweepLabel(r: RunResult): string {
  const s = r.pd_sweep;
  if (!s) return r.pd_run_name;
  return [s.maxConcurrency !== null ? `mc${s.maxConcurrency}` : '', s.inputLen !== null ? `${s.inputLen}:${s.outputLen}` : ''].filter(Boolean).join(' ');
}

/** The sweep runs of a series as chart points (failed runs have no numbers and are left out). */
export function paretoPoints(s: ReportSet): ParetoPoint[] {
  return s.runs
    .filter((r) => r.pd_sweep !== null)
    .flatMap((run) => {
      const x = numberField(run, 'median_tpot_ms');
      const y = numberField(run, 'output_throughput');
      return x === null || y === null ? [] : [{ run, x, y, label: sweepLabel(run) }];
    });
}

/** Points no other point beats on both axes (lower x and higher y), sorted by x. */
export function paretoFront(points: ParetoPoint[]): ParetoPoint[] {
  const front = points.filter((p) => !points.some((q) => q !== p && q.x <= p.x && q.y >= p.y && (q.x < p.x || q.y > p.y)));
  return front.sort((a, b) => a.x - b.x);
}

const f1 = (n: number) => Number(n.toFixed(1));

export function paretoChart(sets: ReportSet[]): string | null {
  const series = sets.map((s) => ({ s, points: paretoPoints(s) })).filter((x) => x.points.length > 0);
  if (series.length === 0) return null;
  const M = { left: 64, right: 24, top: 40, bottom: 70 };
  const plot = { x: M.left, y: M.top, w: CHART_WIDTH - M.left - M.right, h: CHART_HEIGHT - M.top - M.bottom };
  const all = series.flatMap((x) => x.points);
  const xs = linearScale(all.map((p) => p.x), [plot.x, plot.x + plot.w]);
  const ys = linearScale(all.map((p) => p.y), [plot.y + plot.h, plot.y]);
  const body: string[] = [];
  body.push(`<text x="${CHART_WIDTH / 2}" y="22" text-anchor="middle" class="chart-title">Throughput vs latency (sweep runs; the Pareto front is joined)</text>`);
  body.push(`<rect data-plot="pareto" x="${plot.x}" y="${plot.y}" width="${plot.w}" height="${plot.h}" class="plot-area"/>`);
  for (const t of ys.ticks) {
    const py = f1(ys.map(t));
    body.push(`<line x1="${plot.x}" x2="${plot.x + plot.w}" y1="${py}" y2="${py}" class="grid"/>`);
    body.push(`<text x="${plot.x - 6}" y="${py + 4}" text-anchor="end" class="tick">${esc(String(t))}</text>`);
  }
  for (const t of xs.ticks) body.push(`<text x="${f1(xs.map(t))}" y="${plot.y + plot.h + 16}" text-anchor="middle" class="tick">${esc(String(t))}</text>`);
  body.push(`<text x="${plot.x + plot.w / 2}" y="${plot.y + plot.h + 34}" text-anchor="middle" class="axis-label">TPOT p50 (ms): lower is more interactive</text>`);
  body.push(`<text transform="translate(14 ${plot.y + plot.h / 2}) rotate(-90)" text-anchor="middle" class="axis-label">output tok/s</text>`);
  let lx = M.left;
  for (const { s, points } of series) {
    const front = paretoFront(points);
    if (front.length > 1) body.push(`<path data-series="${esc(s.id)}/pareto" d="${front.map((p, i) => `${i ? 'L' : 'M'}${f1(xs.map(p.x))} ${f1(ys.map(p.y))}`).join('')}" fill="none" stroke="${s.color}" stroke-width="2"/>`);
    for (const p of points) {
      const cx = f1(xs.map(p.x));
      const cy = f1(ys.map(p.y));
      const onFront = front.includes(p);
      const tip = `<title>${esc(`${s.label} ${p.label}: TPOT p50 ${p.x.toFixed(2)} ms, ${p.y.toFixed(1)} tok/s${onFront ? ' (Pareto front)' : ''}`)}</title>`;
      body.push(marker(s.marker, cx, cy, 4.5, s.color, !onFront, `data-point="${esc(s.id)}/pareto"`, tip));
      body.push(`<text x="${f1(cx + 7)}" y="${f1(cy - 6)}" class="note">${esc(p.label)}</text>`);
    }
    body.push(marker(s.marker, lx + 6, CHART_HEIGHT - 18, 4, s.color, false, '', ''));
    body.push(`<text x="${lx + 15}" y="${CHART_HEIGHT - 14}" class="legend">${esc(s.label)}</text>`);
    lx += 30 + s.label.length * 6.4;
  }
  return `<svg xmlns="http://www.w3.org/2000/svg" id="chart-pareto" class="chart" width="${CHART_WIDTH}" height="${CHART_HEIGHT}" viewBox="0 0 ${CHART_WIDTH} ${CHART_HEIGHT}" role="img">${body.join('')}</svg>`;
}
