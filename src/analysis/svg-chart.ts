/**
 * Self-contained SVG charts for the trace tools (analyze, simulate): line charts for miss-rate curves,
 * bar charts for per-layer figures such as the inactive-experts bars of Huang et al. (arXiv 2303.06182,
 * Fig. "inactive experts"), and heatmaps for layer x expert popularity.
 *
 * Plain strings, no dependencies: an SVG opens in any browser and converts to PNG with rsvg-convert, so
 * the charts need no plotting stack. Every piece of user text passes through `esc`, so a model or series
 * name with `<` or `&` still yields well-formed XML. Non-finite values are never plotted (a line skips the
 * point, a bar or cell shows as empty) because NaN coordinates make renderers drop the whole element.
 */

export interface Series {
  name: string;
  points: Array<[number, number]>;
}

const W = 760; // total width, px
const H = 460; // total height, px
const M = { left: 78, right: 24, top: 44, bottom: 64 }; // plot margins, px
const FONT = 'font-family="sans-serif"';

/** Tableau-10: distinguishable colours; more series than that get evenly spaced hues. */
const PALETTE = ['#4e79a7', '#f28e2b', '#e15759', '#76b7b2', '#59a14f', '#edc948', '#b07aa1', '#ff9da7', '#9c755f', '#bab0ac'];

export function seriesColour(i: number): string {
  if (i < PALETTE.length) return PALETTE[i]!;
  const hue = Math.round(((i - PALETTE.length) * 137.508) % 360); // golden-angle spacing
  return `hsl(${hue},65%,45%)`;
}

/** Escapes the five XML special characters so arbitrary text is safe in element content and attributes. */
export function esc(text: string): string {
  return text.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}

/** Short, stable tick text: no float noise (0.30000000000000004), exponent only for extreme magnitudes. */
export function formatTick(v: number): string {
  if (v === 0) return '0';
  const a = Math.abs(v);
  if (a >= 1e6 || a < 1e-3) return v.toExponential(1);
  return String(Number(v.toPrecision(6)));
}

/** Ticks at 1, 2 or 5 x 10^k covering [lo, hi] with about `count` intervals (Heckbert's "nice numbers"). */
export function niceTicks(lo: number, hi: number, count = 5): { lo: number; hi: number; ticks: number[] } {
  if (!(hi > lo)) {
    const pad = lo === 0 ? 1 : Math.abs(lo) * 0.5;
    lo -= pad;
    hi += pad;
  }
  const raw = (hi - lo) / count;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const f = raw / mag;
  const step = (f <= 1 ? 1 : f <= 2 ? 2 : f <= 5 ? 5 : 10) * mag;
  const start = Math.floor(lo / step + 1e-9) * step;
  const end = Math.ceil(hi / step - 1e-9) * step;
  const ticks: number[] = [];
  for (let i = 0; start + i * step <= end + step * 1e-9; i++) ticks.push(Number((start + i * step).toPrecision(12)));
  return { lo: start, hi: end, ticks };
}

/** Log-axis ticks at 1, 2, 5 x 10^k inside [lo, hi] (lo > 0); the axis spans whole decades' candidates. */
function logTicks(lo: number, hi: number): number[] {
  const ticks: number[] = [];
  for (let d = Math.floor(Math.log10(lo)); d <= Math.ceil(Math.log10(hi)); d++) {
    for (const m of [1, 2, 5]) {
      const t = Number((m * 10 ** d).toPrecision(12));
      if (t >= lo * (1 - 1e-9) && t <= hi * (1 + 1e-9)) ticks.push(t);
    }
  }
  return ticks.length >= 2 ? ticks : [lo, hi];
}

/** Min and max without spreading (a spread of a very long array overflows the call stack). */
function extent(vs: number[], fallback: [number, number]): [number, number] {
  let lo = Infinity;
  let hi = -Infinity;
  for (const v of vs) {
    if (v < lo) lo = v;
    if (v > hi) hi = v;
  }
  return vs.length ? [lo, hi] : fallback;
}

function text(x: number, y: number, s: string, attrs = '', size = 12): string {
  return `<text x="${r(x)}" y="${r(y)}" ${FONT} font-size="${size}"${attrs ? ' ' + attrs : ''}>${esc(s)}</text>`;
}

function r(v: number): string {
  return String(Math.round(v * 100) / 100);
}

function frame(title: string, body: string[], width = W, height = H): string {
  return [
    `<?xml version="1.0" encoding="UTF-8"?>`,
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}">`,
    `<title>${esc(title)}</title>`,
    `<rect x="0" y="0" width="${width}" height="${height}" fill="#ffffff"/>`,
    text(width / 2, 24, title, 'font-weight="bold" text-anchor="middle"', 15),
    ...body,
    `</svg>`,
    '',
  ].join('\n');
}

/** Axis titles: x centred under the plot, y rotated along its left edge. */
function axisTitles(x0: number, x1: number, y0: number, y1: number, xLabel: string, yLabel: string): string[] {
  return [
    text((x0 + x1) / 2, H - 14, xLabel, 'text-anchor="middle"'),
    text(18, (y0 + y1) / 2, yLabel, `text-anchor="middle" transform="rotate(-90 18 ${r((y0 + y1) / 2)})"`),
  ];
}

/** A y axis with gridlines and tick labels; returns the value -> pixel map. */
function yAxis(lo: number, hi: number, ticks: number[], x0: number, x1: number, y0: number, y1: number) {
  const sy = (v: number) => y0 - ((v - lo) / (hi - lo)) * (y0 - y1);
  const out: string[] = [];
  for (const t of ticks) {
    const y = sy(t);
    out.push(`<line x1="${r(x0)}" y1="${r(y)}" x2="${r(x1)}" y2="${r(y)}" stroke="#e5e5e5"/>`);
    out.push(`<line x1="${r(x0 - 5)}" y1="${r(y)}" x2="${r(x0)}" y2="${r(y)}" stroke="#333"/>`);
    out.push(text(x0 - 8, y + 4, formatTick(t), 'text-anchor="end"'));
  }
  out.push(`<line x1="${r(x0)}" y1="${r(y0)}" x2="${r(x0)}" y2="${r(y1)}" stroke="#333"/>`);
  return { sy, svg: out };
}

/**
 * Line chart, one `<path class="series">` per series (points in the given order), optional log10 x axis.
 * With logX, points with x <= 0 cannot be placed and are skipped.
 */
export function lineChartSvg(opts: { title: string; xLabel: string; yLabel: string; series: Series[]; logX?: boolean }): string {
  const logX = opts.logX ?? false;
  const usable = (p: [number, number]) => Number.isFinite(p[0]) && Number.isFinite(p[1]) && (!logX || p[0] > 0);
  const pts = opts.series.flatMap((s) => s.points.filter(usable));
  const [dxlo, dxhi] = extent(pts.map((p) => p[0]), logX ? [1, 10] : [0, 1]);
  const [dylo, dyhi] = extent(pts.map((p) => p[1]), [0, 1]);
  const legendW = opts.series.length > 0 ? 150 : 0;
  const x0 = M.left;
  const x1 = W - M.right - legendW;
  const y0 = H - M.bottom;
  const y1 = M.top;

  let xlo: number, xhi: number, xt: number[];
  if (logX) {
    [xlo, xhi] = [dxlo, dxhi];
    if (!(xhi > xlo)) [xlo, xhi] = [xlo / 2, xlo * 2];
    xt = logTicks(xlo, xhi);
  } else {
    ({ lo: xlo, hi: xhi, ticks: xt } = niceTicks(dxlo, dxhi));
  }
  const { lo: ylo, hi: yhi, ticks: yt } = niceTicks(Math.min(0, dylo), dyhi);
  const fx = logX ? Math.log10 : (v: number) => v;
  const sx = (v: number) => x0 + ((fx(v) - fx(xlo)) / (fx(xhi) - fx(xlo))) * (x1 - x0);

  const body: string[] = [];
  const ya = yAxis(ylo, yhi, yt, x0, x1, y0, y1);
  body.push(...ya.svg);
  body.push(`<line x1="${r(x0)}" y1="${r(y0)}" x2="${r(x1)}" y2="${r(y0)}" stroke="#333"/>`);
  for (const t of xt) {
    body.push(`<line x1="${r(sx(t))}" y1="${r(y0)}" x2="${r(sx(t))}" y2="${r(y0 + 5)}" stroke="#333"/>`);
    body.push(text(sx(t), y0 + 19, formatTick(t), 'text-anchor="middle"'));
  }
  body.push(...axisTitles(x0, x1, y0, y1, opts.xLabel + (logX ? ' (log scale)' : ''), opts.yLabel));

  opts.series.forEach((s, i) => {
    const c = seriesColour(i);
    const d = s.points
      .filter(usable)
      .map((p, j) => `${j === 0 ? 'M' : 'L'}${r(sx(p[0]))},${r(ya.sy(p[1]))}`)
      .join(' ');
    body.push(`<path class="series" data-name="${esc(s.name)}" d="${d}" fill="none" stroke="${c}" stroke-width="2"/>`);
    // legend entry: a swatch and the name, stacked at the right of the plot
    const ly = y1 + 8 + i * 20;
    body.push(`<rect x="${r(x1 + 16)}" y="${r(ly - 9)}" width="14" height="10" fill="${c}"/>`);
    body.push(text(x1 + 36, ly, s.name));
  });
  return frame(opts.title, body);
}

/** Vertical bar chart, one `<rect class="bar">` per label; y axis from 0 (or the most negative value). */
export function barChartSvg(opts: { title: string; xLabel: string; yLabel: string; labels: string[]; values: number[] }): string {
  const n = opts.labels.length;
  const [vlo, vhi] = extent(opts.values.filter(Number.isFinite), [0, 1]);
  // bars grow from 0, so 0 is always on the axis; an all-zero chart still gets a 0..1 axis
  const { lo, hi, ticks } = niceTicks(Math.min(0, vlo), Math.max(0, vhi) === Math.min(0, vlo) ? 1 : Math.max(0, vhi));
  const x0 = M.left;
  const x1 = W - M.right;
  const y0 = H - M.bottom;
  const y1 = M.top;
  const body: string[] = [];
  const ya = yAxis(lo, hi, ticks, x0, x1, y0, y1);
  body.push(...ya.svg);
  body.push(`<line x1="${r(x0)}" y1="${r(ya.sy(0))}" x2="${r(x1)}" y2="${r(ya.sy(0))}" stroke="#333"/>`);
  const slot = (x1 - x0) / Math.max(n, 1);
  const labelEvery = Math.max(1, Math.ceil(n / 32)); // keep labels legible on many bars
  for (let i = 0; i < n; i++) {
    const v = opts.values[i] ?? NaN;
    const cx = x0 + slot * (i + 0.5);
    if (Number.isFinite(v)) {
      const top = ya.sy(Math.max(v, 0));
      const h = Math.abs(ya.sy(v) - ya.sy(0));
      body.push(
        `<rect class="bar" x="${r(cx - slot * 0.4)}" y="${r(top)}" width="${r(slot * 0.8)}" height="${r(h)}" fill="${seriesColour(0)}"><title>${esc(`${opts.labels[i]}: ${formatTick(v)}`)}</title></rect>`,
      );
    } else {
      body.push(`<rect class="bar" x="${r(cx - slot * 0.4)}" y="${r(ya.sy(0))}" width="${r(slot * 0.8)}" height="0" fill="none"/>`);
    }
    if (i % labelEvery === 0) body.push(text(cx, y0 + 18, opts.labels[i]!, 'text-anchor="middle"', 11));
  }
  body.push(...axisTitles(x0, x1, y0, y1, opts.xLabel, opts.yLabel));
  return frame(opts.title, body);
}

/** White -> dark blue, linear in t in [0, 1]: a sequential scale readable in grey print too. */
function heat(t: number): string {
  const a = [247, 251, 255];
  const b = [8, 48, 107];
  const c = a.map((v, i) => Math.round(v + (b[i]! - v) * Math.min(1, Math.max(0, t))));
  return `rgb(${c[0]},${c[1]},${c[2]})`;
}

/**
 * Heatmap, one `<rect class="cell">` per finite value, rows top to bottom; the colour scale runs from the
 * smallest to the largest finite value and is drawn as a bar with its end values at the right.
 */
export function heatmapSvg(opts: { title: string; xLabel: string; yLabel: string; rows: number[][]; rowLabels?: string[]; colLabels?: string[] }): string {
  const nr = opts.rows.length;
  const nc = extent(opts.rows.map((row) => row.length), [0, 0])[1];
  const [vmin, vmax] = extent(opts.rows.flat().filter(Number.isFinite), [0, 1]);
  const x0 = M.left;
  const x1 = W - M.right - 90; // room for the colour bar
  const y0 = H - M.bottom;
  const y1 = M.top;
  const cw = (x1 - x0) / Math.max(nc, 1);
  const ch = (y0 - y1) / Math.max(nr, 1);
  const body: string[] = [];
  for (let i = 0; i < nr; i++) {
    const row = opts.rows[i]!;
    for (let j = 0; j < row.length; j++) {
      const v = row[j]!;
      if (!Number.isFinite(v)) continue;
      const t = vmax > vmin ? (v - vmin) / (vmax - vmin) : 0.5;
      const label = `${opts.rowLabels?.[i] ?? i}, ${opts.colLabels?.[j] ?? j}: ${formatTick(v)}`;
      body.push(
        `<rect class="cell" x="${r(x0 + j * cw)}" y="${r(y1 + i * ch)}" width="${r(cw)}" height="${r(ch)}" fill="${heat(t)}"><title>${esc(label)}</title></rect>`,
      );
    }
  }
  body.push(`<rect x="${r(x0)}" y="${r(y1)}" width="${r(x1 - x0)}" height="${r(y0 - y1)}" fill="none" stroke="#333"/>`);
  const rowEvery = Math.max(1, Math.ceil(nr / 24));
  for (let i = 0; i < nr; i += rowEvery) {
    body.push(text(x0 - 6, y1 + (i + 0.5) * ch + 4, opts.rowLabels?.[i] ?? String(i), 'text-anchor="end"', 11));
  }
  const colEvery = Math.max(1, Math.ceil(nc / 32));
  for (let j = 0; j < nc; j += colEvery) {
    body.push(text(x0 + (j + 0.5) * cw, y0 + 16, opts.colLabels?.[j] ?? String(j), 'text-anchor="middle"', 11));
  }
  // colour bar: 20 steps from vmin (bottom) to vmax (top)
  const bx = x1 + 30;
  const steps = 20;
  const bh = (y0 - y1) / steps;
  for (let s = 0; s < steps; s++) {
    body.push(`<rect x="${r(bx)}" y="${r(y0 - (s + 1) * bh)}" width="16" height="${r(bh + 0.5)}" fill="${heat((s + 0.5) / steps)}"/>`);
  }
  body.push(`<rect x="${r(bx)}" y="${r(y1)}" width="16" height="${r(y0 - y1)}" fill="none" stroke="#333"/>`);
  body.push(text(bx + 20, y1 + 10, formatTick(Number(vmax.toPrecision(3))), '', 11));
  body.push(text(bx + 20, y0, formatTick(Number(vmin.toPrecision(3))), '', 11));
  body.push(...axisTitles(x0, x1, y0, y1, opts.xLabel, opts.yLabel));
  return frame(opts.title, body);
}
