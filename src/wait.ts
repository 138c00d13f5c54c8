/**
 * Waits for a tool's verdict on our commit: re-evaluates a pure rule on every observed change, answers the rule's
 * ancestry questions from Git, and ends at the deadline with the last thing the tool said.
 */
import { relationFrom, type Relation, type Expectation, type Verdict } from './readiness.js';

export type FinalVerdict = Extract<Verdict, { state: 'passed' | 'failed' }>;

export interface WaitSpec {
  commit: string;
  /** Epoch milliseconds. */
  deadline: number;
  /** Subscribes to every object the rule reads; returns the unsubscribe function. */
  observe(onChange: () => void): () => void;
  /** The pure rule over the current objects. */
  evaluate(expected: Expectation): Verdict;
  /** Side effects a fresh observation may call for (e.g. starting an Argo CD sync once the way is clear). */
  react?(): Promise<void>;
  /** Looks up in Git how `sha` relates to our commit. */
  relation(sha: string): Promise<Relation>;
  /** Turns the last pending reason into the timeout message. */
  timeoutMessage(lastReason: string): string;
  onProgress?(reason: string): void;
}

export function waitForVerdict(spec: WaitSpec): Promise<FinalVerdict> {
  return new Promise<FinalVerdict>((resolve) => {
    const known = new Map<string, Relation>();
    let lastReason = 'nothing observed yet';
    let settled = false;
    let running = false;
    let again = false;

    const finish = (verdict: FinalVerdict) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      unsubscribe();
      resolve(verdict);
    };

    // Evaluations never overlap; a change during one schedules exactly one more.
    const evaluate = async (): Promise<void> => {
      if (settled) return;
      if (running) {
        again = true;
        return;
      }
      running = true;
      try {
        do {
          again = false;
          await spec.react?.();
          let verdict = spec.evaluate({ commit: spec.commit, relation: relationFrom(spec.commit, known) });
          while (verdict.state === 'pending' && verdict.unknownRevision && !known.has(verdict.unknownRevision)) {
            const sha = verdict.unknownRevision;
            const rel = await spec.relation(sha);
            // A commit Git cannot find (force-pushed away) does not contain ours.
            known.set(sha, rel === 'unknown' ? 'unrelated' : rel);
            verdict = spec.evaluate({ commit: spec.commit, relation: relationFrom(spec.commit, known) });
          }
          if (verdict.state !== 'pending') return finish(verdict);
          if (verdict.reason !== lastReason) spec.onProgress?.(verdict.reason);
          lastReason = verdict.reason;
        } while (again && !settled);
      } catch (err: unknown) {
        lastReason = `error while checking: ${err instanceof Error ? err.message : String(err)}`;
      } finally {
        running = false;
      }
    };

    const timer = setTimeout(() => finish({ state: 'failed', message: spec.timeoutMessage(lastReason) }), Math.max(0, spec.deadline - Date.now()));
    const unsubscribe = spec.observe(() => void evaluate());
    void evaluate();
  });
}
