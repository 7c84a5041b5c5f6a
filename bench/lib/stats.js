// Small statistics and formatting helpers for the benchmark.

/** The q-quantile (0..1) of numbers, by nearest rank on a sorted copy. */
export function quantile(values, q) {
  if (values.length === 0) return NaN;
  const sorted = Float64Array.from(values).sort();
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1));
  return sorted[rank];
}

export const median = (values) => quantile(values, 0.5);

/** Median, min and max of repeated measurements. */
export function summarize(values) {
  const finite = values.filter((v) => Number.isFinite(v));
  if (finite.length === 0) return { median: NaN, min: NaN, max: NaN, n: 0, values };
  return { median: median(finite), min: Math.min(...finite), max: Math.max(...finite), n: finite.length, values };
}

/** A number for a table: thousands separators, a few significant digits. */
export function fmt(value, unit = '') {
  if (value === undefined || value === null || Number.isNaN(value)) return '-';
  const abs = Math.abs(value);
  let text;
  if (abs >= 100) text = Math.round(value).toLocaleString('en-US');
  else if (abs >= 10) text = value.toFixed(1);
  else if (abs >= 1) text = value.toFixed(2);
  else text = value.toPrecision(2);
  return unit ? `${text} ${unit}` : text;
}

/** "median (min–max)". */
export function fmtSpread(s, unit = '') {
  if (s === undefined || s.n === 0) return '-';
  if (s.n === 1) return fmt(s.median, unit);
  return `${fmt(s.median, unit)} (${fmt(s.min)}–${fmt(s.max)})`;
}

/** Renders rows of cells as a Markdown table (readable as plain text too). */
export function table(header, rows) {
  const all = [header, ...rows].map((row) => row.map((cell) => String(cell ?? '')));
  const widths = header.map((_, i) => Math.max(3, ...all.map((row) => row[i].length)));
  const line = (row) => `| ${row.map((cell, i) => cell.padEnd(widths[i])).join(' | ')} |`;
  return [line(all[0]), `|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`, ...all.slice(1).map(line)].join('\n');
}
