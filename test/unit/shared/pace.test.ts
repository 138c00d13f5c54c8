// Admission by the event loop's delay (issue 22, item 1): new work waits while the loop is late, then goes in a few
// at a time. The samples are given by hand here; the timer that takes them in the service is Node's own.
import { afterEach, describe, expect, it } from '@jest/globals';
import { LoopPace } from '../../../src/shared/pace.js';

const HOUR = 3_600_000;
let pace: LoopPace;
afterEach(() => pace.stop());

/** Admits `n` works, noting which have begun. */
function starts(n: number) {
  const begun: number[] = [];
  for (let i = 0; i < n; i++) void pace.admit().then(() => begun.push(i));
  return begun;
}
const settle = () => new Promise<void>((resolve) => setImmediate(resolve));

describe('admission by the event loop delay', () => {
  it('lets work in at once while the loop keeps up and nothing waits', async () => {
    pace = new LoopPace({ intervalMs: HOUR, lateMs: 20, perSample: 2 });
    pace.start();
    pace.sampled(3);
    const begun = starts(3);
    await settle();
    expect(begun).toEqual([0, 1, 2]);
  });

  it('holds new work while the loop is late, then lets it in a few per sample, in order', async () => {
    pace = new LoopPace({ intervalMs: HOUR, lateMs: 20, perSample: 2 });
    pace.start();
    pace.sampled(150);
    const begun = starts(5);
    await settle();
    expect(begun).toEqual([]);
    expect(pace.queued).toBe(5);
    pace.sampled(25); // still late
    await settle();
    expect(begun).toEqual([]);
    pace.sampled(4);
    await settle();
    expect(begun).toEqual([0, 1]);
    // A newcomer queues behind those already waiting, even once the loop keeps up.
    void pace.admit().then(() => begun.push(99));
    pace.sampled(2);
    pace.sampled(2);
    await settle();
    expect(begun).toEqual([0, 1, 2, 3, 4, 99]);
  });

  it('lets everything waiting in when stopped (a shutdown does not strand accepted work)', async () => {
    pace = new LoopPace({ intervalMs: HOUR, lateMs: 20, perSample: 1 });
    pace.start();
    pace.sampled(500);
    const begun = starts(3);
    pace.stop();
    await settle();
    expect(begun).toEqual([0, 1, 2]);
  });

  it('measures a blocked loop as late by its timer, and lets work in again once the loop keeps up', async () => {
    pace = new LoopPace({ intervalMs: 5, lateMs: 20, perSample: 8 });
    pace.start();
    const until = Date.now() + 60;
    while (Date.now() < until); // the loop held for 60 ms, as a long synchronous step would
    // Timers fire in the order they were due: the sampling timer, 55 ms late, before this one.
    await new Promise<void>((resolve) => setTimeout(resolve, 0));
    const held = pace.admit();
    expect(pace.queued).toBe(1);
    await held;
    expect(pace.queued).toBe(0);
  });
});
