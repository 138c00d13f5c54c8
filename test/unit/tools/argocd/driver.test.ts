// The driver's own observations: when a refresh we asked for was handled, and how long Degraded has lasted.
import { describe, expect, it, jest } from '@jest/globals';
import { DegradedClock, RefreshRequest } from '../../../../src/tools/argocd/driver.js';

const app = (resourceVersion: string, refresh?: string) => ({
  metadata: {
    name: 'podtato',
    namespace: 'argocd',
    resourceVersion,
    ...(refresh ? { annotations: { 'argocd.argoproj.io/refresh': refresh } } : {}),
  },
  spec: {},
});

describe('a refresh we asked for', () => {
  it('is handled once an object written after our request no longer carries the annotation', () => {
    const r = new RefreshRequest();
    r.requested('10');
    r.observe(app('10')); // the object from before our request, still in the cache
    expect(r.state).toBe('requested');
    r.observe(app('11', 'hard')); // our own write
    expect(r.state).toBe('requested');
    r.observe(app('12')); // the controller's comparison, which consumes the annotation
    expect(r.state).toBe('handled');
    r.observe(app('13', 'normal')); // someone else's later request does not undo it
    expect(r.state).toBe('handled');
  });
  it('is not handled before it was requested', () => {
    const r = new RefreshRequest();
    r.observe(app('12'));
    expect(r.state).toBe('none');
  });
});

describe('the Degraded clock', () => {
  it("counts on the service's clock from the first Degraded sighting, and starts again for a new revision", () => {
    jest.useFakeTimers();
    try {
      let now = 1_000_000;
      const elapsed = jest.fn();
      const clock = new DegradedClock(60_000, () => now);
      clock.onElapsed = elapsed;
      expect(clock.observe(true, 'rev-a')).toBe(0);
      now += 30_000;
      expect(clock.observe(true, 'rev-a')).toBe(30_000);
      expect(clock.observe(true, 'rev-b')).toBe(0);
      now += 10_000;
      expect(clock.observe(false, 'rev-b')).toBe(0);
      expect(clock.observe(true, 'rev-b')).toBe(0);
      jest.advanceTimersByTime(60_010);
      expect(elapsed).toHaveBeenCalledTimes(1);
      clock.stop();
    } finally {
      jest.useRealTimers();
    }
  });
});
