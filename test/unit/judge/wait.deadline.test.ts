// What the deadline says and when it comes (issue 24): the message says whether the tool applied our commit, and a
// tool busy with an earlier revision (`busyUntil`) moves the deadline so our commit gets its full time once it is free.
import { afterEach, beforeEach, describe, expect, it, jest } from '@jest/globals';
import type { PendingVerdict, Verdict } from '../../../src/judge/verdict.js';
import { MAX_TOOL_BUSY_MS, toolTimeoutMessage, waitForVerdict, type FinalVerdict } from '../../../src/judge/wait.js';

const OURS = 'a'.repeat(40);
const LATER = 'c'.repeat(40);
const MINUTE = 60_000;

beforeEach(() => {
  jest.useFakeTimers();
});
afterEach(() => {
  jest.useRealTimers();
});

const elapse = (ms = 0) => jest.advanceTimersByTimeAsync(ms);

/** A wait of `length` ms over a rule that says `say()` each time it is asked; `change()` makes it look again. */
function start(say: () => Verdict, length = MINUTE) {
  let onChange: () => void = () => undefined;
  let final: FinalVerdict | undefined;
  void waitForVerdict({
    commit: OURS,
    deadline: Date.now() + length,
    observe: (cb) => {
      onChange = cb;
      return () => undefined;
    },
    evaluate: say,
    relation: async () => 'unrelated',
    timeoutMessage: toolTimeoutMessage('Flux', OURS),
  }).then((v) => (final = v));
  return { change: () => onChange(), settled: () => final };
}

describe('the message at the deadline says what was last true (issue 24 item 2)', () => {
  const message = toolTimeoutMessage('Argo CD', OURS);
  it.each<[string, string, { applied?: string }, string]>([
    [
      'not applied',
      'app compares bbbbbbbbbbbb so far',
      {},
      `Argo CD did not apply commit ${OURS} in time: app compares bbbbbbbbbbbb so far`,
    ],
    [
      'applied, our commit itself',
      'app is Progressing at …: Deployment shop/web: Waiting for rollout to finish',
      { applied: OURS },
      `Argo CD applied commit ${OURS}, but it did not become healthy in time: app is Progressing at …: Deployment shop/web: Waiting for rollout to finish`,
    ],
    [
      'applied, a later commit that contains ours (a Flux revision string)',
      'Deployment shop/web is not ready: updated 0/1',
      { applied: `main@sha1:${LATER}` },
      `Argo CD applied commit ${OURS} (in cccccccccccc, which contains it), but it did not become healthy in time: Deployment shop/web is not ready: updated 0/1`,
    ],
  ])('%s', (_name, reason, last, want) => {
    expect(message(reason, last)).toBe(want);
  });

  it('the wait passes the last pending verdict’s `applied` to the message', async () => {
    const h = start(() => ({ state: 'pending', reason: 'checking its health', applied: OURS }));
    await elapse(MINUTE);
    expect(h.settled()).toEqual({
      state: 'failed',
      message: `Flux applied commit ${OURS}, but it did not become healthy in time: checking its health`,
    });
  });

  it('a later pending verdict without `applied` takes it back (the tool moved on to a revision without ours)', async () => {
    let said: PendingVerdict = { state: 'pending', reason: 'checking its health', applied: OURS };
    const h = start(() => said);
    await elapse(1_000);
    said = { state: 'pending', reason: 'nothing applied' };
    h.change();
    await elapse(MINUTE);
    expect(h.settled()?.message).toBe(`Flux did not apply commit ${OURS} in time: nothing applied`);
  });
});

describe('a tool busy with an earlier revision moves the deadline (issue 24 item 1)', () => {
  it('to the wait’s own length after the tool is free, and no further', async () => {
    const busyUntil = Date.now() + 5 * MINUTE;
    const h = start(() => ({ state: 'pending', reason: 'still checking another revision', busyUntil }));
    await elapse(MINUTE);
    expect(h.settled()).toBeUndefined();
    await elapse(5 * MINUTE - 1);
    expect(h.settled()).toBeUndefined();
    await elapse(1);
    expect(h.settled()?.message).toBe(`Flux did not apply commit ${OURS} in time: still checking another revision`);
  });

  it('to the wait’s own length after the moment it is seen free, when its check ends earlier than it said', async () => {
    let said: Verdict = { state: 'pending', reason: 'busy', busyUntil: Date.now() + 5 * MINUTE };
    const h = start(() => said);
    await elapse(2 * MINUTE);
    said = { state: 'pending', reason: 'applying ours now' };
    h.change();
    await elapse(MINUTE - 1);
    expect(h.settled()).toBeUndefined();
    await elapse(1);
    expect(h.settled()?.message).toBe(`Flux did not apply commit ${OURS} in time: applying ours now`);
  });

  it('not at all when the tool is free before the deadline would end the wait anyway', async () => {
    const h = start(() => ({ state: 'pending', reason: 'busy a little', busyUntil: Date.now() - 10_000 }));
    await elapse(MINUTE);
    expect(h.settled()).toBeDefined();
  });

  it('once the tool is free, a pass ends the wait at once', async () => {
    let said: Verdict = { state: 'pending', reason: 'busy', busyUntil: Date.now() + 5 * MINUTE };
    const h = start(() => said);
    await elapse(3 * MINUTE);
    said = { state: 'passed', message: 'applied', revision: OURS };
    h.change();
    await elapse();
    expect(h.settled()).toEqual({ state: 'passed', message: 'applied', revision: OURS });
  });

  it('never beyond MAX_TOOL_BUSY_MS however long the tool says it is busy', async () => {
    const h = start(() => ({ state: 'pending', reason: 'busy for days', busyUntil: Date.now() + 30 * 24 * 3600_000 }));
    await elapse(MAX_TOOL_BUSY_MS + MINUTE);
    expect(h.settled()?.message).toContain('busy for days');
  });
});
