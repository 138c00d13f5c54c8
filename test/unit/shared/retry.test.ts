import { describe, expect, it } from '@jest/globals';
import { ServiceError } from '../../../src/shared/errors.js';
import { backoffDelay, retry, type RetryPolicy } from '../../../src/shared/retry.js';

const policy: RetryPolicy = { attempts: 4, baseDelayMs: 100, maxDelayMs: 250 };

function recordingSleep() {
  const waits: number[] = [];
  return { waits, sleep: async (ms: number) => void waits.push(ms) };
}

describe('retry', () => {
  it('retries a retryable failure until it succeeds, sleeping between attempts only', async () => {
    const { waits, sleep } = recordingSleep();
    let calls = 0;
    const value = await retry(
      policy,
      async () => {
        calls++;
        if (calls < 3) throw new ServiceError('API_ERROR', 'busy', { retryable: true });
        return 'ok';
      },
      sleep,
    );
    expect(value).toBe('ok');
    expect(calls).toBe(3);
    expect(waits).toHaveLength(2);
  });

  it('throws a terminal failure at once, unchanged', async () => {
    const { waits, sleep } = recordingSleep();
    const terminal = new ServiceError('FORBIDDEN', 'no', { cause: new Error('403') });
    await expect(retry(policy, async () => Promise.reject(terminal), sleep)).rejects.toBe(terminal);
    expect(waits).toEqual([]);
  });

  it('gives up after the last attempt with the last error', async () => {
    const { waits, sleep } = recordingSleep();
    let calls = 0;
    await expect(
      retry(
        policy,
        async () => {
          calls++;
          throw new ServiceError('API_ERROR', `try ${calls}`, { retryable: true });
        },
        sleep,
      ),
    ).rejects.toThrow('try 4');
    expect(waits).toHaveLength(3);
  });

  it('asks the policy, not the error class, when the policy says what is retryable', async () => {
    const { sleep } = recordingSleep();
    let calls = 0;
    await retry(
      { ...policy, retryable: (err) => (err as Error).message === 'again' },
      async () => {
        if (++calls === 1) throw new Error('again');
      },
      sleep,
    );
    expect(calls).toBe(2);
  });
});

describe('retry until a deadline (issue 23)', () => {
  it('tries as often as fits before the deadline, never waits past it, and tells each retry', async () => {
    let clock = 0;
    const waits: number[] = [];
    const told: number[] = [];
    let calls = 0;
    const err = await retry(
      {
        attempts: Infinity,
        baseDelayMs: 1_000,
        maxDelayMs: 4_000,
        deadline: 10_000,
        now: () => clock,
        onRetry: (_err, attempt) => told.push(attempt),
      },
      async () => {
        calls++;
        throw new ServiceError('GIT_FETCH_FAILED', `try ${calls}`, { retryable: true });
      },
      async (ms) => {
        waits.push(ms);
        clock += ms;
      },
    ).catch((e: unknown) => e);
    expect((err as Error).message).toBe(`try ${calls}`);
    // The last wait ends exactly at the deadline, and one more try runs there.
    expect(clock).toBe(10_000);
    expect(waits.every((w) => w <= 4_000)).toBe(true);
    expect(told).toEqual(Array.from({ length: calls - 1 }, (_, i) => i + 1));
  });

  it('ends at once on a failure that is not retried, whatever time is left', async () => {
    const waits: number[] = [];
    const refused = new ServiceError('GIT_FETCH_FAILED', 'Authentication failed');
    await expect(
      retry(
        { attempts: Infinity, baseDelayMs: 1, maxDelayMs: 1, deadline: Date.now() + 60_000 },
        async () => Promise.reject(refused),
        async (ms) => void waits.push(ms),
      ),
    ).rejects.toBe(refused);
    expect(waits).toEqual([]);
  });
});

describe('backoffDelay', () => {
  it('is jittered below the capped exponential ceiling', () => {
    expect(backoffDelay(policy, 1, () => 1)).toBe(100);
    expect(backoffDelay(policy, 2, () => 1)).toBe(200);
    expect(backoffDelay(policy, 5, () => 1)).toBe(250);
    expect(backoffDelay(policy, 5, () => 0)).toBe(0);
    expect(backoffDelay(policy, 3, () => 0.5)).toBe(125);
  });
});
