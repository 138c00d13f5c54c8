import { describe, expect, it } from '@jest/globals';
import { GroupWriter } from '../../../src/shared/group.js';

/** A write that holds until the test opens it, recording what each write carried. */
function heldWrites() {
  const writes: string[][] = [];
  const opens: Array<(fail?: Error) => void> = [];
  const write = (items: string[]) =>
    new Promise<number>((resolve, reject) => {
      writes.push(items);
      const n = writes.length;
      opens.push((fail) => (fail ? reject(fail) : resolve(n)));
    });
  return { writes, opens, write };
}

const tooLarge = (size: number) => new Error(`too large: ${size}`);
const turns = () => new Promise((resolve) => setImmediate(resolve));

describe('GroupWriter', () => {
  it('writes a lone item at once, and what arrives while writes are in flight together in the next write', async () => {
    const held = heldWrites();
    const writer = new GroupWriter({ write: held.write, sizeOf: (s: string) => s.length, maxSize: 100, inFlight: 2 });
    const results = ['a', 'b', 'c', 'd', 'e'].map((item) => writer.add(item, tooLarge));
    expect(held.writes).toEqual([['a'], ['b']]);
    held.opens[0]!();
    await turns();
    expect(held.writes).toEqual([['a'], ['b'], ['c', 'd', 'e']]);
    held.opens[1]!();
    held.opens[2]!();
    expect(await Promise.all(results)).toEqual([1, 2, 3, 3, 3]);
  });

  it('cuts a group before it would pass what one write may hold', async () => {
    const held = heldWrites();
    const writer = new GroupWriter({ write: held.write, sizeOf: (s: string) => s.length, maxSize: 5, inFlight: 1 });
    const results = ['x', 'aa', 'bb', 'cc', 'd'].map((item) => writer.add(item, tooLarge));
    for (let i = 0; i < 3; i++) {
      held.opens[i]!();
      await turns();
    }
    await Promise.all(results);
    expect(held.writes).toEqual([['x'], ['aa', 'bb'], ['cc', 'd']]);
  });

  it('refuses an item that could never fit, without a write', async () => {
    const held = heldWrites();
    const writer = new GroupWriter({ write: held.write, sizeOf: (s: string) => s.length, maxSize: 3 });
    await expect(writer.add('abcd', tooLarge)).rejects.toThrow('too large: 4');
    expect(held.writes).toEqual([]);
  });

  it('a failed write fails every item of its group, and the next group is written anyway', async () => {
    const held = heldWrites();
    const writer = new GroupWriter({ write: held.write, sizeOf: () => 1, maxSize: 10, inFlight: 1 });
    const first = writer.add('a', tooLarge);
    const second = [writer.add('b', tooLarge), writer.add('c', tooLarge)];
    held.opens[0]!();
    await first;
    await turns();
    held.opens[1]!(new Error('API server down'));
    for (const item of second) await expect(item).rejects.toThrow('API server down');
    await turns();
    const third = writer.add('d', tooLarge);
    held.opens[2]!();
    expect(await third).toBe(3);
    await turns();
    expect(writer.load).toEqual({ active: 0, waiting: 0 });
  });
});
