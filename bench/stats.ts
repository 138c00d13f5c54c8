// Small pure helpers of the benchmark: percentiles and the Markdown table.

/** The p-th percentile (0..100) by nearest rank; NaN for no samples. */
export function percentile(samples: readonly number[], p: number): number {
  if (!samples.length) return NaN;
  const sorted = [...samples].sort((a, b) => a - b);
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length, Math.max(1, rank)) - 1]!;
}

export const median = (samples: readonly number[]): number => percentile(samples, 50);

/** Milliseconds as text: `12 ms`, `1.4 s`, `n/a`. */
export function ms(value: number): string {
  if (!Number.isFinite(value)) return 'n/a';
  return Math.abs(value) < 1000 ? `${Math.round(value)} ms` : `${(value / 1000).toFixed(1)} s`;
}

export interface Row {
  measure: string;
  value: string;
  baseline: string;
  target: string;
  met: boolean | undefined;
  note?: string;
}

export function table(rows: readonly Row[]): string {
  const cell = (s: string) => s.replace(/\|/g, '\\|').replace(/\n/g, ' ');
  const lines = ['| measure | result | baseline (same run) | target | met |', '|---|---|---|---|---|'];
  for (const r of rows) {
    const met = r.met === undefined ? '–' : r.met ? 'yes' : `**no**${r.note ? `: ${r.note}` : ''}`;
    lines.push(`| ${cell(r.measure)} | ${cell(r.value)} | ${cell(r.baseline)} | ${cell(r.target)} | ${cell(met)} |`);
  }
  return lines.join('\n');
}
