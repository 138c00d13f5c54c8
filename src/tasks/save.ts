/** Saving a deployment record: the retry policy, and the rule for a save whose answer was lost. */
import { ServiceError } from '../shared/errors.js';
import { retry, type RetryPolicy, type Sleep } from '../shared/retry.js';
import { StoreConflictError, type DeploymentRecord, type StateStore } from '../platform/state/record.js';

/**
 * Saving a record: the API server may be restarting, so a few quick attempts. A conflict is final (someone else
 * holds the claim); so is a record too large to store. Anything without a verdict of its own is taken as transient.
 */
export const SAVE_POLICY: RetryPolicy = {
  attempts: 6,
  baseDelayMs: 250,
  maxDelayMs: 4_000,
  retryable: (err) => !(err instanceof ServiceError) || err.retryable,
};

/**
 * Saves under SAVE_POLICY. A conflict is final unless the stored record still carries our claim: then an earlier
 * save of ours went through but its answer was lost, and this one goes over that version.
 */
export function saveRecord(store: StateStore, record: DeploymentRecord, sleep: Sleep): Promise<DeploymentRecord> {
  let next = record;
  const attempt = async () => {
    try {
      return await store.update(next);
    } catch (err: unknown) {
      if (!(err instanceof StoreConflictError)) throw err;
      const stored = await store.get(next.event.id);
      if (!stored || stored.claim !== next.claim || stored.version === next.version) throw err;
      next = { ...next, version: stored.version };
      return await store.update(next);
    }
  };
  return retry(SAVE_POLICY, attempt, sleep);
}
