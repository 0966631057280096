/**
 * Hand-written SVG line plots, enough for the tutorials' matplotlib figures: panels stacked
 * vertically, each with a title, axes, ticks, a few series (solid or dashed) and a legend above the axes.
 */

export interface Series {
  readonly label: string;
  readonly values: ArrayLike<number>;
  readonly color: string;
  readonly dashed?: boolean;
}

export interface Panel {
  readonly title?: string;
  readonly series: readonly Series[];
}

export interface FigureOptions {
  readonly title?: string;
  readonly width?: number;
  /** Height of one panel. */
  readonly panelHeight?: number;
}

/** matplotlib's default colour cycle, first two: what the tutorials' figures show. */
export const BLUE = '#1f77b4';
export const ORANGE = '#ff7f0e';

const esc = (s: string): string => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
const fmt = (v: number): string => (Math.round(v * 100) / 100).toString();

/** About `count` round tick values covering [lo, hi] (1, 2, 5 times a power of ten apart). */
export function niceTicks(lo: number, hi: number, count = 5): number[] {
  if (!(hi > lo)) {
    const pad = Math.abs(lo) > 0 ? Math.abs(lo) * 0.1 : 1;
    return niceTicks(lo - pad, hi + pad, count);
  }
  const raw = (hi - lo) / count;
  const p = 10 ** Math.floor(Math.log10(raw));
  const step = ([1, 2, 2.5, 5, 10].find((m) => m * p >= raw) ?? 10) * p;
  const ticks: number[] = [];
  for (let t = Math.floor(lo / step) * step; t <= hi + step * 1e-9; t += step) ticks.push(Math.abs(t) < step * 1e-9 ? 0 : t);
  if (ticks[ticks.length - 1]! < hi - step * 1e-9) ticks.push(ticks[ticks.length - 1]! + step);
  return ticks;
}

/** A tick label with as many decimals as the step needs, and a proper minus sign. */
function tickLabel(t: number, step: number): string {
  let d = 0;
  while (d < 10 && Math.abs(step * 10 ** d - Math.round(step * 10 ** d)) > 1e-6 * step * 10 ** d) d++;
  const s = t.toFixed(d);
  return s.startsWith('-') ? `\u2212${s.slice(1)}` : s;
}

/** The SVG document of a figure with `panels` stacked vertically (matplotlib's `subplot(n, 1, i)`). */
export function linePlotSvg(panels: readonly Panel[], opts: FigureOptions = {}): string {
  const W = opts.width ?? 640;
  const PH = opts.panelHeight ?? 240;
  const top = opts.title === undefined ? 0 : 32;
  const H = top + PH * panels.length;
  const m = { left: 62, right: 16, top: 30, bottom: 34 };
  const out: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="DejaVu Sans, Helvetica, Arial, sans-serif" font-size="12">`,
    `<rect x="0" y="0" width="${W}" height="${H}" fill="#ffffff"/>`,
  ];
  if (opts.title !== undefined) out.push(`<text x="${W / 2}" y="22" text-anchor="middle" font-size="15">${esc(opts.title)}</text>`);
  panels.forEach((panel, p) => {
    const y0 = top + p * PH;
    const px = m.left;
    const py = y0 + m.top;
    const pw = W - m.left - m.right;
    const ph = PH - m.top - m.bottom;
    const n = Math.max(...panel.series.map((s) => s.values.length));
    let lo = Infinity;
    let hi = -Infinity;
    for (const s of panel.series) for (let k = 0; k < s.values.length; k++) {
      const v = s.values[k]!;
      if (Number.isFinite(v)) {
        lo = Math.min(lo, v);
        hi = Math.max(hi, v);
      }
    }
    if (!Number.isFinite(lo)) [lo, hi] = [0, 1];
    const yt = niceTicks(lo, hi);
    const ylo = yt[0]!;
    const yhi = yt[yt.length - 1]!;
    const xhi = Math.max(1, n - 1);
    const xt = niceTicks(0, xhi, 8).filter((t) => t <= xhi + 1e-9);
    const X = (i: number): number => px + (i / xhi) * pw;
    const Y = (v: number): number => py + ph - ((v - ylo) / (yhi - ylo)) * ph;
    out.push(`<g class="panel" id="panel-${p}">`);
    if (panel.title !== undefined) out.push(`<text x="${px}" y="${fmt(py - 11)}" dominant-baseline="central" font-size="13">${esc(panel.title)}</text>`);
    // Grid and ticks.
    const ystep = yt.length > 1 ? yt[1]! - yt[0]! : 1;
    for (const t of yt) {
      const y = fmt(Y(t));
      out.push(`<line x1="${px}" y1="${y}" x2="${fmt(px + pw)}" y2="${y}" stroke="#e6e6e6" stroke-width="1"/>`);
      out.push(`<line x1="${px - 4}" y1="${y}" x2="${px}" y2="${y}" stroke="#000" stroke-width="1"/>`);
      out.push(`<text x="${px - 7}" y="${y}" text-anchor="end" dominant-baseline="central">${tickLabel(t, ystep)}</text>`);
    }
    for (const t of xt) {
      const x = fmt(X(t));
      out.push(`<line x1="${x}" y1="${fmt(py + ph)}" x2="${x}" y2="${fmt(py + ph + 4)}" stroke="#000" stroke-width="1"/>`);
      out.push(`<text x="${x}" y="${fmt(py + ph + 17)}" text-anchor="middle">${fmt(t)}</text>`);
    }
    // The series, clipped to the axes box.
    out.push(`<clipPath id="clip-${p}"><rect x="${px}" y="${fmt(py)}" width="${fmt(pw)}" height="${fmt(ph)}"/></clipPath>`);
    for (const s of panel.series) {
      const pts: string[] = [];
      for (let k = 0; k < s.values.length; k++) pts.push(`${fmt(X(k))},${fmt(Y(s.values[k]!))}`);
      const dash = s.dashed === true ? ' stroke-dasharray="7 4"' : '';
      out.push(`<polyline clip-path="url(#clip-${p})" fill="none" stroke="${s.color}" stroke-width="1.8"${dash} stroke-linejoin="round" points="${pts.join(' ')}"/>`);
    }
    out.push(`<rect x="${px}" y="${fmt(py)}" width="${fmt(pw)}" height="${fmt(ph)}" fill="none" stroke="#000" stroke-width="1"/>`);
    // Legend above the axes, right-aligned, so that it never hides a data point.
    let cursor = px + pw;
    const ly = py - 11;
    for (const s of [...panel.series].reverse()) {
      const start = cursor - s.label.length * 6.6; // DejaVu Sans at 12px: about 6.6 px a character
      out.push(`<text x="${fmt(cursor)}" y="${fmt(ly)}" text-anchor="end" dominant-baseline="central">${esc(s.label)}</text>`);
      const dash = s.dashed === true ? ' stroke-dasharray="7 4"' : '';
      out.push(`<line x1="${fmt(start - 34)}" y1="${fmt(ly)}" x2="${fmt(start - 6)}" y2="${fmt(ly)}" stroke="${s.color}" stroke-width="1.8"${dash}/>`);
      cursor = start - 34 - 16;
    }
    out.push('</g>');
  });
  out.push('</svg>');
  return out.join('\n') + '\n';
}
