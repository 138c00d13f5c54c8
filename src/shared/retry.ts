/**
 * The one retry policy: a bounded number of attempts with capped exponential backoff and full jitter, and an
 * explicit test of what is worth retrying. Every loop that talks to something that may be briefly away (the Git
 * server, the Kubernetes API, the distributor, the resource-service) goes through `retry`, so attempts, delays and
 * the idea of "transient" are decided in one place per caller, in plain sight.
 *
 * Full jitter (a random delay between 0 and the capped exponential) keeps replicas that contend for the same thing,
 * such as a Git branch, from retrying in lock-step.
 * @see https://aws.amazon.com/builders-library/timeouts-retries-and-backoff-with-jitter/
 */
import { ServiceError } from './errors.js';

export interface RetryPolicy {
  /** Attempts in all, the first included; at least 1. `Infinity` with a `deadline`: as many as fit before it. */
  attempts: number;
  /** Upper bound of the first delay, in milliseconds. */
  baseDelayMs: number;
  /** No delay is longer than this. */
  maxDelayMs: number;
  /** Whether a failure is worth another attempt. Default: `ServiceError.retryable`. */
  retryable?(err: unknown): boolean;
  /**
   * Epoch ms after which no attempt starts (a deployment's deadline): a wait that would end past it is cut short to
   * one last attempt at it, then the last error is thrown.
   */
  deadline?: number;
  /** Hears each failure that will be tried again, with the delay before the next attempt (logs, metrics). */
  onRetry?(err: unknown, attempt: number, delayMs: number): void;
  /** The clock of `deadline`; tests pass their own. */
  now?(): number;
}

/** Waits between attempts; tests pass a clock that does not sleep. */
export type Sleep = (ms: number) => Promise<void>;

export const realSleep: Sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** The delay before attempt `attempt + 1` (attempt counts from 1): uniform in [0, min(max, base · 2^(attempt-1))]. */
export function backoffDelay(
  policy: Pick<RetryPolicy, 'baseDelayMs' | 'maxDelayMs'>,
  attempt: number,
  random: () => number = Math.random,
): number {
  const ceiling = Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** Math.min(attempt - 1, 30));
  return Math.round(random() * ceiling);
}

export function isRetryableError(err: unknown): boolean {
  return err instanceof ServiceError && err.retryable;
}

/**
 * Runs `work` until it succeeds, fails with an error the policy does not retry, runs out of attempts or reaches the
 * policy's deadline; then the last error is thrown as it was (with its code and cause).
 */
export async function retry<T>(policy: RetryPolicy, work: (attempt: number) => Promise<T>, sleep: Sleep = realSleep): Promise<T> {
  const retryable = policy.retryable ?? isRetryableError;
  const now = policy.now ?? Date.now;
  for (let attempt = 1; ; attempt++) {
    try {
      return await work(attempt);
    } catch (err: unknown) {
      if (attempt >= policy.attempts || !retryable(err)) throw err;
      let delay = backoffDelay(policy, attempt);
      if (policy.deadline !== undefined) {
        const left = policy.deadline - now();
        if (left <= 0) throw err;
        delay = Math.min(delay, left);
      }
      policy.onRetry?.(err, attempt, delay);
      await sleep(delay);
    }
  }
}
