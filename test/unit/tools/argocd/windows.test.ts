// Sync windows as Argo CD 3.5 reads them (pkg/apis/application/v1alpha1/types.go): which apply, when they are
// active, and whether they keep a sync out until after the deadline.
import { describe, expect, it } from '@jest/globals';
import {
  blockedUntil,
  cronSchedule,
  matchingWindows,
  parseGoDuration,
  type SyncWindow,
  type WindowedApp,
} from '../../../../src/tools/argocd/windows.js';

const app: WindowedApp = { name: 'podtato-dev', destination: { server: 'https://kubernetes.default.svc', namespace: 'podtato' } };
const at = (iso: string) => Date.parse(iso);
const MIN = 60_000;

describe('cron schedules (five fields, robfig/cron standard parser)', () => {
  it.each([
    ['0 22 * * *', '2026-11-24T22:00:00Z', true],
    ['0 22 * * *', '2026-11-24T22:01:00Z', false],
    ['*/15 * * * *', '2026-11-24T10:45:00Z', true],
    ['*/15 * * * *', '2026-11-24T10:50:00Z', false],
    ['0 9-17 * * MON-FRI', '2026-11-24T12:00:00Z', true], // a Tuesday
    ['0 9-17 * * MON-FRI', '2026-11-29T12:00:00Z', false], // a Sunday
    ['0 0 1 JAN *', '2027-01-01T00:00:00Z', true],
    ['0 0 1,15 * 1', '2026-11-23T00:00:00Z', true], // day-of-month and day-of-week both set: either matches (a Monday)
    ['0 0 1,15 * 1', '2026-11-24T00:00:00Z', false],
    ['5/20 * * * *', '2026-11-24T10:45:00Z', true],
  ])('%s at %s → %s', (schedule, time, fires) => {
    expect(cronSchedule(schedule)!(new Date(time))).toBe(fires);
  });
  it.each(['@daily', '0 22 * *', '61 * * * *', '0 22 * * 7', 'x * * * *', '0 0 * * */0'])('does not read %s', (schedule) => {
    expect(cronSchedule(schedule)).toBeUndefined();
  });
  it('reads Go durations', () => {
    expect(parseGoDuration('1h30m')).toBe(90 * MIN);
    expect(parseGoDuration('1.5h')).toBe(90 * MIN);
    expect(parseGoDuration('90')).toBeUndefined();
  });
});

describe('which windows apply', () => {
  it.each([
    [{ applications: ['podtato-*'] }, true],
    [{ applications: ['other'] }, false],
    [{ namespaces: ['pod?ato'] }, true],
    [{ clusters: ['https://kubernetes.default.svc'] }, true],
    [{ applications: ['podtato-*'], namespaces: ['prod'], andOperator: true }, false],
    [{ applications: ['podtato-*'], namespaces: ['podtato'], andOperator: true }, true],
    [{ applications: ['other'], namespaces: ['podtato'] }, true],
    [{ applications: ['{podtato-dev,podtato-prod}'] }, true],
    [{}, false],
  ] as Array<[Partial<SyncWindow>, boolean]>)('%j → %s', (selector, applies) => {
    expect(matchingWindows([{ kind: 'deny', schedule: '* * * * *', duration: '1h', ...selector }], app)).toHaveLength(applies ? 1 : 0);
  });
});

describe('a sync blocked until after the deadline', () => {
  const nightly: SyncWindow = { kind: 'deny', schedule: '0 22 * * *', duration: '8h', applications: ['*'] };
  const now = at('2026-11-24T23:00:00Z');

  it('is blocked while a deny window covers the whole wait', () => {
    expect(blockedUntil([nightly], app, false, now, now + 10 * MIN)).toEqual({ because: 'sync window deny "0 22 * * *" for 8h' });
    expect(blockedUntil([nightly], app, true, now, now + 10 * MIN)).toBeDefined();
  });
  it('is not blocked when the window ends before the deadline', () => {
    expect(blockedUntil([nightly], app, false, at('2026-11-25T05:55:00Z'), at('2026-11-25T06:10:00Z'))).toBeUndefined();
  });
  it('is not blocked for our manual sync when the deny window allows manual syncs', () => {
    expect(blockedUntil([{ ...nightly, manualSync: true }], app, true, now, now + 10 * MIN)).toBeUndefined();
    expect(blockedUntil([{ ...nightly, manualSync: true }], app, false, now, now + 10 * MIN)).toBeDefined();
  });
  it('is blocked outside the only allow window, and not once it opens before the deadline', () => {
    const office: SyncWindow = { kind: 'allow', schedule: '0 9 * * *', duration: '8h', applications: ['*'] };
    expect(blockedUntil([office], app, false, now, now + 10 * MIN)).toEqual({
      because: 'no allow window (allow "0 9 * * *" for 8h) opens',
    });
    expect(blockedUntil([office], app, false, at('2026-11-25T08:50:00Z'), at('2026-11-25T09:10:00Z'))).toBeUndefined();
  });
  it("follows the window's time zone", () => {
    // 22:00 in Berlin is 21:00 UTC in winter: at 21:30 UTC the window is already active there, not in UTC.
    const berlin = { ...nightly, timeZone: 'Europe/Berlin' };
    expect(blockedUntil([berlin], app, false, at('2026-11-24T21:30:00Z'), at('2026-11-24T21:40:00Z'))).toBeDefined();
    expect(blockedUntil([nightly], app, false, at('2026-11-24T21:30:00Z'), at('2026-11-24T21:40:00Z'))).toBeUndefined();
  });
  it('decides nothing for a window it cannot read, or one that does not apply', () => {
    expect(blockedUntil([{ ...nightly, schedule: '@daily' }], app, false, now, now + 10 * MIN)).toBeUndefined();
    expect(blockedUntil([{ ...nightly, applications: ['other'] }], app, false, now, now + 10 * MIN)).toBeUndefined();
  });
});
