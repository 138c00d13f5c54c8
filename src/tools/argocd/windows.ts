/**
 * Argo CD sync windows (AppProject `spec.syncWindows`), to know at the start whether a window keeps our sync from
 * running until after the deadline. Behaviour follows Argo CD 3.5, pkg/apis/application/v1alpha1/types.go
 * (SyncWindows.Matches, CanSync, SyncWindow.active): a window is active at t when its cron schedule (five fields,
 * robfig/cron's standard parser, in the window's time zone) fired within the `duration` before t.
 * Anything this module cannot read exactly (a schedule or duration it does not parse) makes it decide nothing.
 * @see https://argo-cd.readthedocs.io/en/stable/user-guide/sync_windows/
 */

export interface SyncWindow {
  kind?: string;
  schedule?: string;
  duration?: string;
  applications?: string[];
  namespaces?: string[];
  clusters?: string[];
  manualSync?: boolean;
  timeZone?: string;
  andOperator?: boolean;
}

export interface WindowedApp {
  name: string;
  destination: { server?: string; name?: string; namespace?: string };
}

const MINUTE = 60_000;
/** Windows longer than this are not evaluated (the scan would be long); the wait then ends at the deadline. */
const LONGEST_WINDOW_MS = 31 * 24 * 3_600_000;

/** A glob as Argo CD's windows use it (gobwas/glob without separators): `*`, `?`, `[...]`, `{a,b}`. */
function globMatch(pattern: string, value: string): boolean {
  if (pattern === '*') return true;
  let re = '';
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i]!;
    if (c === '*') re += '.*';
    else if (c === '?') re += '.';
    else if (c === '[') {
      const end = pattern.indexOf(']', i + 1);
      if (end < 0) return pattern === value;
      const body = pattern.slice(i + 1, end).replace(/\\/g, '\\\\');
      re += `[${body.startsWith('!') ? `^${body.slice(1)}` : body}]`;
      i = end;
    } else if (c === '{') {
      const end = pattern.indexOf('}', i + 1);
      if (end < 0) return pattern === value;
      re += `(?:${pattern
        .slice(i + 1, end)
        .split(',')
        .map(escape)
        .join('|')})`;
      i = end;
    } else re += escape(c);
  }
  return new RegExp(`^${re}$`, 's').test(value);
}

function escape(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
}

/** The windows that apply to the app: by application name, then cluster, then namespace (`andOperator`: all set ones). */
export function matchingWindows(windows: readonly SyncWindow[], app: WindowedApp): SyncWindow[] {
  return windows.filter((w) => {
    const checks: boolean[] = [];
    if (w.applications?.length) checks.push(w.applications.some((p) => globMatch(p, app.name)));
    if (w.clusters?.length) {
      const { name, server } = app.destination;
      checks.push(w.clusters.some((p) => (Boolean(name) && globMatch(p, name!)) || (Boolean(server) && globMatch(p, server!))));
    }
    if (w.namespaces?.length) checks.push(w.namespaces.some((p) => globMatch(p, app.destination.namespace ?? '')));
    return w.andOperator ? checks.length > 0 && checks.every(Boolean) : checks.some(Boolean);
  });
}

/** Go's time.ParseDuration, for the units a window uses. */
export function parseGoDuration(text: string): number | undefined {
  if (!/^([0-9]+(\.[0-9]+)?(ns|us|µs|ms|s|m|h))+$/.test(text)) return undefined;
  const unit: Record<string, number> = { ns: 1e-6, us: 1e-3, µs: 1e-3, ms: 1, s: 1_000, m: MINUTE, h: 60 * MINUTE };
  let total = 0;
  for (const m of text.matchAll(/([0-9]+(?:\.[0-9]+)?)(ns|us|µs|ms|s|m|h)/g)) total += Number(m[1]) * unit[m[2]!]!;
  return total;
}

interface CronField {
  values: Set<number>;
  /** robfig/cron's "star bit": `*` or `?` without a step, which makes day-of-month and day-of-week combine with AND. */
  star: boolean;
}

const MONTHS = ['jan', 'feb', 'mar', 'apr', 'may', 'jun', 'jul', 'aug', 'sep', 'oct', 'nov', 'dec'];
const DAYS = ['sun', 'mon', 'tue', 'wed', 'thu', 'fri', 'sat'];

function cronField(text: string, min: number, max: number, names: string[] = [], firstName = 0): CronField | undefined {
  const values = new Set<number>();
  let star = false;
  const number = (s: string): number | undefined => {
    const named = names.indexOf(s.toLowerCase());
    if (named >= 0) return named + firstName;
    return /^[0-9]+$/.test(s) ? Number(s) : undefined;
  };
  for (const part of text.split(',')) {
    const [range = '', stepText] = part.split('/');
    const step = stepText === undefined ? 1 : Number(stepText);
    if (!Number.isInteger(step) || step < 1) return undefined;
    let from: number | undefined;
    let to: number | undefined;
    if (range === '*' || range === '?') {
      [from, to] = [min, max];
      if (stepText === undefined) star = true;
    } else {
      const [a = '', b] = range.split('-');
      from = number(a);
      to = b === undefined ? (stepText === undefined ? from : max) : number(b);
    }
    if (from === undefined || to === undefined || from < min || to > max || from > to) return undefined;
    for (let v = from; v <= to; v += step) values.add(v);
  }
  return { values, star };
}

/** A five-field cron schedule as a test on a UTC-shifted minute; undefined when it cannot be read. */
export function cronSchedule(schedule: string): ((at: Date) => boolean) | undefined {
  const fields = schedule.trim().split(/\s+/);
  if (fields.length !== 5) return undefined;
  const [minute, hour, dom, month, dow] = [
    cronField(fields[0]!, 0, 59),
    cronField(fields[1]!, 0, 23),
    cronField(fields[2]!, 1, 31),
    cronField(fields[3]!, 1, 12, MONTHS, 1),
    cronField(fields[4]!, 0, 6, DAYS),
  ];
  if (!minute || !hour || !dom || !month || !dow) return undefined;
  return (at) => {
    if (!minute.values.has(at.getUTCMinutes()) || !hour.values.has(at.getUTCHours()) || !month.values.has(at.getUTCMonth() + 1))
      return false;
    const byDom = dom.values.has(at.getUTCDate());
    const byDow = dow.values.has(at.getUTCDay());
    return dom.star || dow.star ? byDom && byDow : byDom || byDow;
  };
}

/** The zone's UTC offset at `at`, as Argo CD shifts schedules by it; an unknown zone counts as UTC, as there. */
function zoneOffsetMs(timeZone: string | undefined, at: number): number {
  if (!timeZone) return 0;
  try {
    const parts = new Intl.DateTimeFormat('en-US', {
      timeZone,
      hourCycle: 'h23',
      year: 'numeric',
      month: 'numeric',
      day: 'numeric',
      hour: 'numeric',
      minute: 'numeric',
      second: 'numeric',
    }).formatToParts(at);
    const get = (type: string) => Number(parts.find((p) => p.type === type)?.value);
    return Date.UTC(get('year'), get('month') - 1, get('day'), get('hour'), get('minute'), get('second')) - Math.floor(at / 1000) * 1000;
  } catch {
    return 0;
  }
}

/** For each minute from `from` to `to` (epoch ms, minute steps), whether the window is active; undefined if unreadable. */
function activeMinutes(w: SyncWindow, from: number, to: number, now: number): boolean[] | undefined {
  const fires = w.schedule ? cronSchedule(w.schedule) : undefined;
  const duration = w.duration ? parseGoDuration(w.duration) : undefined;
  if (!fires || duration === undefined || duration > LONGEST_WINDOW_MS) return undefined;
  const offset = zoneOffsetMs(w.timeZone, now);
  const count = Math.floor((to - from) / MINUTE) + 1;
  // Minute i (t = from + i·MINUTE, shifted by the zone) is active when a firing s lies in (t - duration, t),
  // i.e. t in (s, s + duration): mark that run of minutes for each firing, through a difference array.
  const delta = new Array<number>(count + 1).fill(0);
  const firstFire = Math.floor((from + offset - duration) / MINUTE) * MINUTE;
  for (let s = firstFire; s <= to + offset; s += MINUTE) {
    if (!fires(new Date(s))) continue;
    const lo = Math.max(0, Math.floor((s - from - offset) / MINUTE) + 1);
    const hi = Math.min(count - 1, Math.ceil((s + duration - from - offset) / MINUTE) - 1);
    if (lo > hi) continue;
    delta[lo]! += 1;
    delta[hi + 1]! -= 1;
  }
  const active = new Array<boolean>(count);
  let running = 0;
  for (let i = 0; i < count; i++) {
    running += delta[i]!;
    active[i] = running > 0;
  }
  return active;
}

export interface WindowBlock {
  /** The windows that keep the sync from running, described for the user. */
  because: string;
}

/**
 * Whether the windows keep a sync (`manual`: started by us, not by automated sync) from running at every minute
 * between now and the deadline. Undefined when a sync can run at some point, or when a window cannot be read.
 */
export function blockedUntil(
  windows: readonly SyncWindow[],
  app: WindowedApp,
  manual: boolean,
  now: number,
  deadline: number,
): WindowBlock | undefined {
  const applying = matchingWindows(windows, app);
  if (applying.length === 0 || deadline <= now) return undefined;
  const from = Math.floor(now / MINUTE) * MINUTE;
  const to = Math.ceil(deadline / MINUTE) * MINUTE;
  const activity: boolean[][] = [];
  for (const w of applying) {
    const active = activeMinutes(w, from, to, now);
    if (!active) return undefined;
    activity.push(active);
  }
  for (let i = 0; i < activity[0]!.length; i++) {
    const active = applying.filter((_, j) => activity[j]![i]);
    if (canSync(applying, active, manual)) return undefined;
  }
  const denies = applying.filter((w) => w.kind === 'deny');
  const allows = applying.filter((w) => w.kind === 'allow');
  const describe = (w: SyncWindow) => `${w.kind} "${w.schedule}" for ${w.duration}${w.timeZone ? ` (${w.timeZone})` : ''}`;
  const because = denies.length
    ? `sync window ${denies.map(describe).join(', ')}`
    : `no allow window (${allows.map(describe).join(', ')}) opens`;
  return { because };
}

/** Argo CD's SyncWindows.CanSync without an operation already running (no overrun). */
function canSync(applying: SyncWindow[], active: SyncWindow[], manual: boolean): boolean {
  const activeDenies = active.filter((w) => w.kind === 'deny');
  if (activeDenies.length > 0) return manual && activeDenies.every((w) => w.manualSync === true);
  if (active.some((w) => w.kind === 'allow')) return true;
  const inactiveAllows = applying.filter((w) => w.kind === 'allow' && !active.includes(w));
  if (inactiveAllows.length > 0) return manual && inactiveAllows.every((w) => w.manualSync === true);
  return true;
}
