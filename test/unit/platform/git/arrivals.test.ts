// Changes on their way to a group commit (issue 22, item 2): the group waits for them, never past its deadline.
import { describe, expect, it } from '@jest/globals';
import { Arrivals } from '../../../../src/platform/git/arrivals.js';

const FAR = () => Date.now() + 60_000;

describe('changes on their way to a group commit', () => {
  it('is settled at once when nothing is on its way for the key (a lone deployment waits for nothing)', async () => {
    const arrivals = new Arrivals();
    arrivals.expect('other-branch', 'd-1');
    await arrivals.settled('main', FAR());
    expect(arrivals.onTheirWay('other-branch')).toBe(1);
  });

  it('settles when the last one on its way arrives or withdraws, not before', async () => {
    const arrivals = new Arrivals();
    arrivals.expect('main', 'd-1');
    const withdraw = arrivals.expect('main', 'd-2');
    let settled = false;
    const wait = arrivals.settled('main', FAR()).then(() => (settled = true));
    arrivals.arrived('main', 'd-1');
    await Promise.resolve();
    expect(settled).toBe(false);
    withdraw();
    withdraw(); // twice changes nothing
    await wait;
    expect(arrivals.onTheirWay('main')).toBe(0);
  });

  it('settles at the deadline when one on its way never comes', async () => {
    const arrivals = new Arrivals();
    arrivals.expect('main', 'd-slow');
    const began = Date.now();
    await arrivals.settled('main', began + 100);
    expect(Date.now() - began).toBeGreaterThanOrEqual(95);
    expect(arrivals.onTheirWay('main')).toBe(1);
  });

  it('wakes every group waiting on the key', async () => {
    const arrivals = new Arrivals();
    arrivals.expect('main', 'd-1');
    const both = Promise.all([arrivals.settled('main', FAR()), arrivals.settled('main', FAR())]);
    arrivals.arrived('main', 'd-1');
    await both;
  });
});
