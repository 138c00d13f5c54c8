// The limiter that keeps the deployments' background requests from crowding out acknowledgements (issue 11).
import { describe, expect, it } from '@jest/globals';
import { FairSlots, Limiter } from '../../../src/shared/limit.js';

const settled = () => new Promise<void>((resolve) => setImmediate(resolve));

describe('Limiter', () => {
  it('runs at most `size` at once and the rest in arrival order, each as a slot frees', async () => {
    const limiter = new Limiter(2);
    const order: string[] = [];
    const gates = new Map<string, () => void>();
    const job = (name: string) =>
      limiter.run(async () => {
        order.push(name);
        await new Promise<void>((resolve) => gates.set(name, resolve));
        return name;
      });
    const all = ['a', 'b', 'c', 'd'].map(job);
    await settled();
    expect(order).toEqual(['a', 'b']);
    expect(limiter.load).toEqual({ active: 2, waiting: 2 });
    gates.get('b')!();
    await settled();
    expect(order).toEqual(['a', 'b', 'c']);
    gates.get('a')!();
    gates.get('c')!();
    await settled();
    gates.get('d')!();
    await expect(Promise.all(all)).resolves.toEqual(['a', 'b', 'c', 'd']);
    expect(limiter.load).toEqual({ active: 0, waiting: 0 });
  });

  it('frees the slot of work that failed', async () => {
    const limiter = new Limiter(1);
    await expect(limiter.run(() => Promise.reject(new Error('refused')))).rejects.toThrow('refused');
    await expect(limiter.run(async () => 'next')).resolves.toBe('next');
    expect(limiter.load).toEqual({ active: 0, waiting: 0 });
  });

  it('refuses a size below one', () => {
    expect(() => new Limiter(0)).toThrow(RangeError);
  });
});

describe('FairSlots (issue 19, item 4)', () => {
  it('keeps a quarter of the turns from any one key, so another key starts at once', async () => {
    const slots = new FairSlots(8);
    expect(slots.perKey).toBe(6);
    const held = await Promise.all(Array.from({ length: 6 }, () => slots.acquire('a')));
    let seventh = false;
    void slots.acquire('a').then(() => (seventh = true));
    await settled();
    expect(seventh).toBe(false);
    expect(slots.load('a')).toEqual({ active: 6, waiting: 1 });
    // A key with nothing running gets a turn without waiting for any of the six.
    const b = await slots.acquire('b');
    expect(slots.load()).toEqual({ active: 7, waiting: 1 });
    b();
    held[0]!();
    await settled();
    expect(seventh).toBe(true);
  });

  it('gives a freed turn to the waiting key that holds the fewest, in arrival order within a key', async () => {
    const slots = new FairSlots(4, 0);
    const a = await Promise.all([slots.acquire('a'), slots.acquire('a'), slots.acquire('a'), slots.acquire('b')]);
    const order: string[] = [];
    for (const [key, n] of [
      ['a', 1],
      ['a', 2],
      ['b', 1],
      ['c', 1],
    ] as const)
      void slots.acquire(key).then(() => order.push(`${key}${n}`));
    await settled();
    a[0]!();
    await settled();
    expect(order).toEqual(['c1']);
    a[1]!();
    await settled();
    // a and b hold one each now: a began waiting first, and then goes to the back of the line.
    expect(order).toEqual(['c1', 'a1']);
    a[2]!();
    await settled();
    expect(order).toEqual(['c1', 'a1', 'b1']);
  });

  it('ends a turn once, however often its end is called', async () => {
    const slots = new FairSlots(1);
    const end = await slots.acquire('a');
    end();
    end();
    expect(slots.load()).toEqual({ active: 0, waiting: 0 });
  });
});

describe('FairSlots turns set aside while waiting for another party (issue 23)', () => {
  it('gives the turn to someone else for the wait and takes one again after it', async () => {
    const slots = new FairSlots(4);
    const turn = await slots.turn('a');
    expect(slots.load('a').active).toBe(1);
    let during = -1;
    await turn.aside(async () => {
      during = slots.load('a').active;
    });
    expect(during).toBe(0);
    expect(slots.load('a').active).toBe(1);
    turn.end();
    turn.end();
    expect(slots.load()).toEqual({ active: 0, waiting: 0 });
  });

  it('a waiting project does not keep another from starting, and waits its turn to go on', async () => {
    const slots = new FairSlots(4);
    const a = await Promise.all([slots.turn('a'), slots.turn('a'), slots.turn('a')]);
    const b = await slots.turn('b');
    // All four held: a fifth waits, until one of project a's deployments starts waiting for its Git host.
    let cStarted = false;
    const c = slots.turn('c').then((t) => ((cStarted = true), t));
    await Promise.resolve();
    expect(cStarted).toBe(false);
    let outageOver!: () => void;
    const outage = new Promise<void>((resolve) => (outageOver = resolve));
    const waiting = a[0]!.aside(() => outage);
    const cTurn = await c;
    expect(cStarted).toBe(true);
    // The outage ends: the waiting deployment needs a turn again, and gets one once another ends.
    outageOver();
    let resumed = false;
    void waiting.then(() => (resumed = true));
    await new Promise((resolve) => setImmediate(resolve));
    expect(resumed).toBe(false);
    b.end();
    await waiting;
    expect(slots.load('a').active).toBe(3);
    for (const t of [...a, cTurn]) t.end();
    expect(slots.load()).toEqual({ active: 0, waiting: 0 });
  });

  it('a turn ended while it waits to be taken again is given straight back', async () => {
    const slots = new FairSlots(4);
    const held = await Promise.all([slots.turn('a'), slots.turn('a'), slots.turn('b'), slots.turn('c')]);
    let back!: () => void;
    const waiting = held[0]!.aside(() => new Promise<void>((resolve) => (back = resolve)));
    const other = await slots.turn('d');
    back();
    await new Promise((resolve) => setImmediate(resolve));
    held[0]!.end();
    other.end();
    await waiting;
    for (const t of held.slice(1)) t.end();
    expect(slots.load()).toEqual({ active: 0, waiting: 0 });
  });
});
