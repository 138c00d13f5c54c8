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

describe('backoffDelay', () => {
  it('is jittered below the capped exponential ceiling', () => {
    expect(backoffDelay(policy, 1, () => 1)).toBe(100);
    expect(backoffDelay(policy, 2, () => 1)).toBe(200);
    expect(backoffDelay(policy, 5, () => 1)).toBe(250);
    expect(backoffDelay(policy, 5, () => 0)).toBe(0);
    expect(backoffDelay(policy, 3, () => 0.5)).toBe(125);
  });
});
