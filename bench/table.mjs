// Figures for the browser benchmarks' tables: medians of runs and a plain-text table.

/** The median of the numbers in `xs`, ignoring missing ones; null when none is left. */
export const median = (xs) => {
  const s = xs.filter((x) => x !== null && x !== undefined && !Number.isNaN(x)).sort((a, b) => a - b);
  if (!s.length) return null;
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};

/** `x` with `digits` decimals, or a dash when it is missing. */
export const fmt = (x, digits = 0) => (x === null || x === undefined ? '—' : x.toFixed(digits));

/** Rows of equal keys as right-aligned columns under their keys. */
export function table(rows) {
  const head = Object.keys(rows[0]);
  const widths = head.map((h) => Math.max(h.length, ...rows.map((r) => String(r[h]).length)));
  const line = (cells) => cells.map((c, i) => String(c).padStart(widths[i])).join('  ');
  return [line(head), line(widths.map((w) => '-'.repeat(w))), ...rows.map((r) => line(head.map((h) => r[h])))].join('\n');
}
