/**
 * Inline SVG charts for the HTML report, drawn from data in TypeScript (no scripts, no network): a line chart
 * over categorical x (request rates, then flood) and a stacked bar chart. Each plot area carries
 * `data-plot="<chart id>"` and each drawn series `data-series`, so the page can be checked automatically.
 */
import { type Scale, linearScale, logScale, tickLabel, wantsLog } from './scale.js';

export const CHART_WIDTH = 660;
export const CHART_HEIGHT = 384;
const M = { left: 64, right: 16, top: 40, bottom: 92 };

export type { LegendItem };

export function esc(s: string): string {
  return s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}

const f1 = (n: number) => Number(n.toFixed(1));

export type MarkerShape = 'circle' | 'square' | 'triangle' | 'diamond' | 'triangle-down' | 'cross';

/** A point marker of `shape` centred on (cx, cy) with radius r; `hollow` draws a white fill. */
export function marker(shape: MarkerShape, cx: number, cy: number, r: number, color: string, hollow: boolean, attrs: string, tip: string): string {
  const fill = hollow ? '#fff' : color;
  const paint = `fill="${fill}" stroke="${color}" stroke-width="2"`;
  const pts = (xy: Array<[number, number]>): string => xy.map(([x, y]) => `${f1(cx + x)},${f1(cy + y)}`).join(' ');
  switch (shape) {
    case 'circle':
      return `<circle ${attrs} cx="${cx}" cy="${cy}" r="${r}" ${paint}>${tip}</circle>`;
    case 'square':
      return `<rect ${attrs} x="${f1(cx - r)}" y="${f1(cy - r)}" width="${f1(2 * r)}" height="${f1(2 * r)}" ${paint}>${tip}</rect>`;
    case 'triangle':
      return `<polygon ${attrs} points="${pts([[0, -r * 1.2], [r * 1.1, r * 0.8], [-r * 1.1, r * 0.8]])}" ${paint}>${tip}</polygon>`;
    case 'triangle-down':
      return `<polygon ${attrs} points="${pts([[0, r * 1.2], [r * 1.1, -r * 0.8], [-r * 1.1, -r * 0.8]])}" ${paint}>${tip}</polygon>`;
    case 'diamond':
      return `<polygon ${attrs} points="${pts([[0, -r * 1.3], [r * 1.3, 0], [0, r * 1.3], [-r * 1.3, 0]])}" ${paint}>${tip}</polygon>`;
    case 'cross':
      return `<path ${attrs} d="M${f1(cx - r)} ${f1(cy - r)}L${f1(cx + r)} ${f1(cy + r)}M${f1(cx - r)} ${f1(cy + r)}L${f1(cx + r)} ${f1(cy - r)}" stroke="${color}" stroke-width="2.5" fill="none">${tip}</path>`;
  }
}

export interface LineSeries {
  /** Legend text. */
  name: string;
  color: string;
  dashed?: boolean;
  /** Marker of each point (default circle); sets get different ones so overlapping lines stay visible. */
  marker?: MarkerShape;
  /** Horizontal shift of the whole series in px (small, so identical lines do not hide each other). */
  offset?: number;
  /** y per category (same order as the chart's categories); null = no point. */
  values: (number | null)[];
  /** Marked on the element for automated checks, e.g. "pd-disaggregation/p50". */
  id: string;
}

export interface LineChart {
  id: string;
  title: string;
  yLabel: string;
  /** Category labels along x; a category named "flood" is set apart by a divider and never joined by a line. */
  categories: string[];
  xLabel: string;
  series: LineSeries[];
  /** Grey dashed guide (e.g. ideal throughput = offered rate). */
  guide?: { name: string; values: (number | null)[] };
  /** Legend entries (default: one per series). */
  legend?: LegendItem[];
}

interface Frame {
  x: (i: number) => number;
  plot: { x: number; y: number; w: number; h: number };
}

function frame(categories: string[]): Frame {
  const plot = { x: M.left, y: M.top, w: CHART_WIDTH - M.left - M.right, h: CHART_HEIGHT - M.top - M.bottom };
  const step = plot.w / Math.max(1, categories.length);
  return { plot, x: (i) => plot.x + step * (i + 0.5) };
}

function axes(id: string, title: string, yLabel: string, xLabel: string, categories: string[], fr: Frame, y: Scale): string[] {
  const { plot } = fr;
  const out: string[] = [];
  out.push(`<text x="${CHART_WIDTH / 2}" y="22" text-anchor="middle" class="chart-title">${esc(title)}</text>`);
  out.push(`<rect data-plot="${esc(id)}" x="${plot.x}" y="${plot.y}" width="${plot.w}" height="${plot.h}" class="plot-area"/>`);
  for (const t of y.ticks) {
    const py = f1(y.map(t));
    out.push(`<line x1="${plot.x}" x2="${plot.x + plot.w}" y1="${py}" y2="${py}" class="grid"/>`);
    out.push(`<text x="${plot.x - 6}" y="${py + 4}" text-anchor="end" class="tick">${esc(tickLabel(t))}</text>`);
  }
  categories.forEach((c, i) => {
    out.push(`<text x="${f1(fr.x(i))}" y="${plot.y + plot.h + 16}" text-anchor="middle" class="tick">${esc(c)}</text>`);
    if (c === 'flood' && i > 0) {
      const dx = f1((fr.x(i) + fr.x(i - 1)) / 2);
      out.push(`<line x1="${dx}" x2="${dx}" y1="${plot.y}" y2="${plot.y + plot.h}" class="divider"/>`);
    }
  });
  out.push(`<text x="${plot.x + plot.w / 2}" y="${plot.y + plot.h + 34}" text-anchor="middle" class="axis-label">${esc(xLabel)}</text>`);
  out.push(
    `<text transform="translate(14 ${plot.y + plot.h / 2}) rotate(-90)" text-anchor="middle" class="axis-label">${esc(yLabel)}${y.kind === 'log' ? ' (log scale)' : ''}</text>`,
  );
  return out;
}

type LegendItem = { name: string; color: string; dashed?: boolean; kind: 'line' | 'box'; marker?: MarkerShape };

/** Legend rows below the x-axis label; returns the elements and the chart height they need. */
function legend(items: LegendItem[]): { body: string[]; height: number } {
  const out: string[] = [];
  const first = CHART_HEIGHT - M.bottom + 50;
  let x = M.left;
  let y = first;
  for (const it of items) {
    const w = 34 + it.name.length * 6.4;
    if (x > M.left && x + w > CHART_WIDTH - M.right) {
      x = M.left;
      y += 14;
    }
    if (it.kind === 'line') {
      out.push(`<line x1="${x}" x2="${x + 22}" y1="${y - 4}" y2="${y - 4}" stroke="${it.color}" stroke-width="2.5"${it.dashed ? ' stroke-dasharray="6 4"' : ''}/>`);
      if (it.marker) out.push(marker(it.marker, x + 11, y - 4, 3.5, it.color, false, '', ''));
    }
    else out.push(`<rect x="${x + 4}" y="${y - 10}" width="14" height="10" fill="${it.color}"/>`);
    out.push(`<text x="${x + 27}" y="${y}" class="legend">${esc(it.name)}</text>`);
    x += w;
  }
  return { body: out, height: Math.max(CHART_HEIGHT, y + 10) };
}

function svg(id: string, body: string[], height = CHART_HEIGHT): string {
  return `<svg xmlns="http://www.w3.org/2000/svg" id="chart-${esc(id)}" class="chart" width="${CHART_WIDTH}" height="${height}" viewBox="0 0 ${CHART_WIDTH} ${height}" role="img">${body.join('')}</svg>`;
}

/** Polyline path through the non-null steady points (gaps break the line; flood is never joined). */
function pathOf(values: (number | null)[], categories: string[], fr: Frame, y: Scale): string {
  let d = '';
  let pen = false;
  values.forEach((v, i) => {
    if (v === null || categories[i] === 'flood') {
      pen = false;
      return;
    }
    d += `${pen ? 'L' : 'M'}${f1(fr.x(i))} ${f1(y.map(v))}`;
    pen = true;
  });
  return d;
}

export function lineChart(c: LineChart): string {
  const fr = frame(c.categories);
  const all = [...c.series.flatMap((s) => s.values), ...(c.guide?.values ?? [])].filter((v): v is number => v !== null);
  const range: [number, number] = [fr.plot.y + fr.plot.h, fr.plot.y];
  const y = all.length === 0 ? linearScale([0, 1], range) : wantsLog(all) ? logScale(all, range) : linearScale(all, range);
  const body = axes(c.id, c.title, c.yLabel, c.xLabel, c.categories, fr, y);
  if (all.length === 0)
    body.push(`<text x="${CHART_WIDTH / 2}" y="${CHART_HEIGHT / 2}" text-anchor="middle" class="empty">no data</text>`);
  if (c.guide) {
    const d = pathOf(c.guide.values, c.categories, fr, y);
    if (d) body.push(`<path d="${d}" class="guide"/>`);
  }
  for (const s of c.series) {
    const shifted: Frame = s.offset ? { ...fr, x: (i) => fr.x(i) + s.offset! } : fr;
    const d = pathOf(s.values, c.categories, shifted, y);
    const dash = s.dashed ? ' stroke-dasharray="7 4"' : '';
    if (d) body.push(`<path data-series="${esc(s.id)}" d="${d}" fill="none" stroke="${s.color}" stroke-width="2.5"${dash}/>`);
    s.values.forEach((v, i) => {
      if (v === null) return;
      const cx = f1(shifted.x(i));
      const cy = f1(y.map(v));
      const tip = `<title>${esc(`${s.name} @ ${c.categories[i]}: ${v.toFixed(2)} ${c.yLabel}`)}</title>`;
      // The flood point (past the divider) is drawn larger.
      const r = c.categories[i] === 'flood' ? 5.5 : 4;
      body.push(marker(s.marker ?? 'circle', cx, cy, r, s.color, Boolean(s.dashed), `data-point="${esc(s.id)}"`, tip));
    });
  }
  const items: LegendItem[] = c.legend ?? c.series.map((s) => ({ name: s.name, color: s.color, dashed: s.dashed, kind: 'line', marker: s.marker }));
  if (c.guide) items.push({ name: c.guide.name, color: '#999', dashed: true, kind: 'line' });
  const lg = legend(items);
  body.push(...lg.body);
  return svg(c.id, body, lg.height);
}

export interface StackedBarChart {
  id: string;
  title: string;
  yLabel: string;
  xLabel: string;
  categories: string[];
  /** Bottom to top. */
  layers: { name: string; color: string; id: string; values: (number | null)[] }[];
  /** Text above each bar (e.g. "97% prefill"). */
  notes?: (string | null)[];
}

export function stackedBarChart(c: StackedBarChart): string {
  const fr = frame(c.categories);
  const totals = c.categories.map((_, i) => c.layers.reduce((a, l) => a + (l.values[i] ?? 0), 0));
  const y = linearScale(totals, [fr.plot.y + fr.plot.h, fr.plot.y]);
  const body = axes(c.id, c.title, c.yLabel, c.xLabel, c.categories, fr, y);
  const bw = Math.min(56, (fr.plot.w / c.categories.length) * 0.6);
  c.categories.forEach((cat, i) => {
    let base = 0;
    for (const l of c.layers) {
      const v = l.values[i];
      if (v === null || v === undefined || v <= 0) continue;
      const y0 = y.map(base);
      const y1 = y.map(base + v);
      body.push(
        `<rect data-series="${esc(l.id)}" x="${f1(fr.x(i) - bw / 2)}" y="${f1(y1)}" width="${f1(bw)}" height="${f1(Math.max(0.5, y0 - y1))}" fill="${l.color}"><title>${esc(`${l.name} @ ${cat}: ${v.toFixed(2)} ${c.yLabel}`)}</title></rect>`,
      );
      base += v;
    }
    const note = c.notes?.[i];
    if (note) body.push(`<text x="${f1(fr.x(i))}" y="${f1(y.map(totals[i]!) - 6)}" text-anchor="middle" class="note">${esc(note)}</text>`);
  });
  const lg = legend(c.layers.map((l) => ({ name: l.name, color: l.color, kind: 'box' as const })));
  body.push(...lg.body);
  return svg(c.id, body, lg.height);
}
