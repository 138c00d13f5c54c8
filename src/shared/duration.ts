/**
 * Durations as the service's environment and the per-service settings write them: `250ms`, `90s`, `10m`, `1h30m`.
 * One grammar for both, so a timeout that is valid in one place is valid in the other.
 */

/** The grammar as a JSON Schema `pattern` (the settings schema) and a RegExp (everything else). */
export const DURATION_PATTERN = '^([0-9]+(ms|s|m|h))+$';
const DURATION = new RegExp(DURATION_PATTERN);
const PART = /([0-9]+)(ms|s|m|h)/g;
const UNIT_MS = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000 } as const;

export function isDuration(text: string): boolean {
  return DURATION.test(text);
}

/** Milliseconds of a duration; throws a RangeError on text that is not one (check with `isDuration` first). */
export function parseDuration(text: string): number {
  if (!isDuration(text)) throw new RangeError(`not a duration like 10m or 90s: ${JSON.stringify(text)}`);
  let total = 0;
  for (const m of text.matchAll(PART)) total += Number(m[1]) * UNIT_MS[m[2] as keyof typeof UNIT_MS];
  return total;
}
