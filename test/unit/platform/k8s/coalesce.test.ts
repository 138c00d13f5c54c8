// Coalesced controller requests (issue 11): one request per object at a time, and never one that began before the
// caller asked (its commit might not have been pushed yet when that request reached the controller).
import { describe, expect, it } from '@jest/globals';
import { Coalescer } from '../../../../src/platform/k8s/coalesce.js';

/** A request whose end the test decides; `started` records the order in which requests began. */
function requests() {
  const started: number[] = [];
  const finishers: Array<(ok: boolean) => void> = [];
  const work = () => {
    const n = started.length + 1;
    started.push(n);
    return new Promise<number>((resolve, reject) => finishers.push((ok) => (ok ? resolve(n) : reject(new Error(`request ${n} failed`)))));
  };
  return { started, work, finish: (i: number, ok = true) => finishers[i]!(ok) };
}

const settled = () => new Promise<void>((resolve) => setImmediate(resolve));

describe('Coalescer', () => {
  it('starts a request at once when none is in flight for the object', async () => {
    const c = new Coalescer<number>();
    const r = requests();
    const a = c.run('app/web', r.work);
    expect(r.started).toEqual([1]);
    r.finish(0);
    await expect(a).resolves.toBe(1);
  });

  it('does not join the request in flight: callers arriving meanwhile share one request that starts after it', async () => {
    const c = new Coalescer<number>();
    const r = requests();
    const first = c.run('app/web', r.work);
    const later = [c.run('app/web', r.work), c.run('app/web', r.work), c.run('app/web', r.work)];
    expect(r.started).toEqual([1]);
    r.finish(0);
    await first;
    await settled();
    expect(r.started).toEqual([1, 2]);
    r.finish(1);
    await expect(Promise.all(later)).resolves.toEqual([2, 2, 2]);
  });

  it('keeps objects apart', async () => {
    const c = new Coalescer<number>();
    const r = requests();
    void c.run('app/web', r.work);
    void c.run('app/api', r.work);
    expect(r.started).toEqual([1, 2]);
  });

  it('a failed request fails the callers that shared it, and the queued one still starts', async () => {
    const c = new Coalescer<number>();
    const r = requests();
    const first = c.run('app/web', r.work);
    const second = c.run('app/web', r.work);
    r.finish(0, false);
    await expect(first).rejects.toThrow('request 1 failed');
    await settled();
    expect(r.started).toEqual([1, 2]);
    r.finish(1, false);
    await expect(second).rejects.toThrow('request 2 failed');
    // Nothing left behind: the next caller starts a request of its own at once.
    void c.run('app/web', r.work);
    expect(r.started).toEqual([1, 2, 3]);
  });
});
