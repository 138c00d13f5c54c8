/**
 * Waiting out another party's outage (issue 23): a Git host or the resource-service away for a minute must not fail a
 * deployment that still has time. A transient failure (src/shared/failures.ts decides which are) is tried again under
 * the one retry policy, with capped, jittered backoff, until the deployment's deadline; a permanent one ends the
 * deployment at once. While it waits, the deployment holds no start turn (the runner's `aside`) and no lock (each
 * attempt takes and gives back its own), its log says `waiting for <party>: <last error>`, and a gauge counts it.
 * At the deadline, the error names the party, how long it was away, and what it last said.
 */
import type { Logger } from 'pino';
import { messageOf, ServiceError } from '../shared/errors.js';
import { isRetryableError, realSleep, retry, type Sleep } from '../shared/retry.js';
import type { Metrics, OutageParty } from '../platform/metrics.js';
import { repositoryKey } from '../platform/git/repository.js';
import { safeUrl } from '../platform/git/workspace.js';
import type { HandlerContext } from './handler.js';

/** From a second up to 10 s between attempts: a party that comes back is used within seconds, not hammered before. */
export const OUTAGE_BACKOFF = { baseDelayMs: 1_000, maxDelayMs: 10_000 };

export interface Outage {
  /** Which party, for the metric's label. */
  party: OutageParty;
  /** Who, for people: `Git host git.example.com`, `the resource-service`. */
  name: string;
  /** Epoch ms: no attempt starts after it. */
  deadline: number;
}

export interface OutageHooks {
  log: Logger;
  metrics?: Pick<Metrics, 'outageWaiting'> | undefined;
  aside?: HandlerContext['aside'];
  /** Tests pass a clock of their own; the backoff waits go through it (and through `aside`). */
  sleep?: Sleep;
  now?: () => number;
}

/** Runs `work` until it succeeds, fails for good, or the outage outlasts the deadline (then an error that names it). */
export async function rideOut<T>(outage: Outage, work: () => Promise<T>, hooks: OutageHooks): Promise<T> {
  const now = hooks.now ?? Date.now;
  const sleep = hooks.sleep ?? realSleep;
  const aside = hooks.aside ?? ((wait) => wait());
  let since: number | undefined;
  try {
    return await retry(
      {
        attempts: Infinity,
        ...OUTAGE_BACKOFF,
        deadline: outage.deadline,
        now,
        retryable: isRetryableError,
        onRetry: (err, attempt, delayMs) => {
          if (since === undefined) {
            since = now();
            hooks.metrics?.outageWaiting(outage.party, 1);
          }
          hooks.log.warn(
            { party: outage.party, attempt, retryInMs: delayMs, awaySeconds: Math.round((now() - since) / 1000) },
            `waiting for ${outage.name}: ${messageOf(err)}`,
          );
        },
      },
      () => work(),
      (ms) => aside(() => sleep(ms)),
    );
  } catch (err: unknown) {
    if (!isRetryableError(err)) throw err;
    const away =
      since === undefined ? "at the deployment's deadline" : `for ${Math.round((now() - since) / 1000)} s, until the deployment's deadline`;
    throw new ServiceError((err as ServiceError).code, `${outage.name} was unavailable ${away}: ${messageOf(err)}`, { cause: err });
  } finally {
    if (since !== undefined) hooks.metrics?.outageWaiting(outage.party, -1);
  }
}

/** `Git host <host[:port]>`, for the log and the final message; the URL without its credentials when it cannot be read. */
export function gitHostName(url: string): string {
  const key = repositoryKey(url);
  if ('problem' in key) return `Git host of ${safeUrl(url)}`;
  return `Git host ${key.host}${key.port !== undefined ? `:${key.port}` : ''}`;
}
