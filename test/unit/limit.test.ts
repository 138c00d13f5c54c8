// The limiter that keeps the deployments' background requests from crowding out acknowledgements (issue 11).
import { describe, expect, it } from '@jest/globals';
import { Limiter } from '../../src/limit.js';

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
