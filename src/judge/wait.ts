/**
 * Waits for a tool's verdict on our commit: re-evaluates a pure rule on every observed change, answers the rule's
 * ancestry questions from Git, and ends at the deadline with the last thing the tool said: whether it applied our
 * commit, and what it still waited for. Time the tool spends on an earlier revision before it can act on ours
 * (`busyUntil`) does not count (issue 24).
 *
 * A resumed wait (after a restart or a takeover) decides from the state it finds: the first look (one evaluation pass,
 * with its ancestry lookups) always runs to its end before the deadline is applied, so a service that was away longer
 * than the timeout still reports what the tool did meanwhile (ADR 14). A pass judges before it acts: when the state
 * found is final, nothing is asked of the tool.
 *
 * Failures along the way are never taken for answers: a step that fails (the tool's side effect, an ancestry lookup,
 * the on-branch check) is tried again after a backoff from the one retry policy, and its error stays in the reason
 * until it succeeds, so a timeout says what kept failing. Only a refusal (FORBIDDEN) or a missing object or kind
 * (NOT_FOUND) ends the wait at once, with the API server's own words, which name the missing permission.
 */
import type { Logger } from 'pino';
import { codeOf, messageOf } from '../shared/errors.js';
import { kubeStatusMessage } from '../platform/k8s/watch.js';
import { commitOf, relationFrom, type Expectation, type FinalVerdict, type Relation, type Verdict } from './verdict.js';
import { backoffDelay, type RetryPolicy } from '../shared/retry.js';
import type { DeliveryRequest } from './tool.js';

export type { FinalVerdict };

export interface WaitSpec {
  commit: string;
  /** Epoch milliseconds. */
  deadline: number;
  /** Subscribes to every object the rule reads; returns the unsubscribe function. */
  observe(onChange: () => void): () => void;
  /** The pure rule over the current objects. */
  evaluate(expected: Expectation): Verdict;
  /**
   * Side effects a fresh observation may call for (e.g. starting an Argo CD sync once the way is clear). Called
   * before every evaluation, so it must be idempotent; after a failure it is called again after a backoff.
   */
  nudge?(): Promise<void>;
  /** Looks up in Git how `sha` relates to our commit. */
  relation(sha: string): Promise<Relation>;
  /**
   * Whether our commit is still on the branch. Asked once for each new revision the tool reports that does not
   * contain our commit: false (history rewritten after our push) ends the wait, as no later revision can contain it.
   */
  onBranch?(): Promise<boolean>;
  /** Our branch, for messages. */
  branch?: string;
  /** A wait resumed after a restart or a takeover: the deadline applies no earlier than FIRST_LOOK_MS after its start. */
  resumed?: boolean;
  /**
   * Turns the last pending reason into the timeout message; `last.applied` is the revision the tool had applied (ours
   * or one containing it) when the rule last said so, undefined when it had not applied our commit.
   */
  timeoutMessage(lastReason: string, last: { applied?: string }): string;
  onProgress?(reason: string): void;
  log?: Logger;
  /**
   * Delays between retries of failed steps; `attempts` bounds how often a revision Git cannot find is looked for
   * again before it is taken as not containing our commit (a fetch may have failed; or it was force-pushed away).
   */
  retry?: RetryPolicy;
}

type RequestPart = 'commit' | 'deadline' | 'relation' | 'onBranch' | 'branch' | 'log' | 'onProgress' | 'resumed';

/** The part of a wait a delivery request decides: `waitForVerdict({ ...waitingFor(req), observe, evaluate, ... })`. */
export function waitingFor(req: DeliveryRequest): Pick<WaitSpec, RequestPart> {
  return {
    commit: req.commit,
    deadline: req.deadline,
    relation: req.relation,
    onBranch: req.onBranch,
    branch: req.branch,
    log: req.log,
    ...(req.onProgress ? { onProgress: req.onProgress } : {}),
    ...(req.resumed ? { resumed: true } : {}),
  };
}

/**
 * How long the first look may take when the deadline has passed already (a wait resumed late): the watches' first
 * list and the pass's Git lookups; and the least time a resumed wait runs before its deadline applies. k8s/watch.ts
 * untilSynced grants the first list the same time.
 */
export const FIRST_LOOK_MS = 30_000;

export const WAIT_RETRY: RetryPolicy = { attempts: 4, baseDelayMs: 1_000, maxDelayMs: 15_000 };

/**
 * The longest a tool's own timer (`busyUntil`) may move a deadline: the settings' longest `timeout` (schema.ts), so a
 * tool object set to wait for days (a Kustomization `spec.timeout: 720h`) cannot hold a Keptn task for longer.
 */
export const MAX_TOOL_BUSY_MS = 24 * 3600_000;

/**
 * The deadline message of a GitOps tool's wait: what was last true. Applied (the rule said which revision) but not
 * healthy is not "did not apply" (issue 24 item 2); the reason then names what is not healthy, in the tool's words.
 */
export function toolTimeoutMessage(tool: string, commit: string): WaitSpec['timeoutMessage'] {
  return (reason, last) => {
    if (!last.applied) return `${tool} did not apply commit ${commit} in time: ${reason}`;
    const applied = commitOf(last.applied);
    const via = applied && !commit.startsWith(applied) ? ` (in ${applied.slice(0, 12)}, which contains it)` : '';
    return `${tool} applied commit ${commit}${via}, but it did not become healthy in time: ${reason}`;
  };
}

/** A step that failed during one evaluation pass. */
interface StepFailure {
  step: string;
  err: unknown;
}

const REFUSED = new Set(['FORBIDDEN', 'NOT_FOUND']);

export function waitForVerdict(spec: WaitSpec): Promise<FinalVerdict> {
  const policy = spec.retry ?? WAIT_RETRY;
  return new Promise<FinalVerdict>((resolve) => {
    const known = new Map<string, Relation>();
    /** How often Git could not find a revision. */
    const misses = new Map<string, number>();
    /** Unrelated revisions whose on-branch check is still to be made (or failed and is to be made again). */
    const branchChecks = new Set<string>();
    const branchChecked = new Set<string>();
    let lastReason = 'nothing observed yet';
    /** What the rule last said the tool had applied (PendingVerdict.applied). */
    let lastApplied: string | undefined;
    /** What the first look was finding out when the deadline came (a Git lookup that hung). */
    let lookingUp: string | undefined;
    let lastReasonSet = false;
    let settled = false;
    let running = false;
    let again = false;
    /** Consecutive passes that needed a retry: the backoff's attempt number. */
    let failedPasses = 0;
    let retryTimer: NodeJS.Timeout | undefined;

    const finish = (verdict: FinalVerdict) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      clearTimeout(firstLookTimer);
      clearTimeout(retryTimer);
      unsubscribe?.();
      resolve(verdict);
    };

    const refused = (failure: StepFailure): FinalVerdict => {
      const said = kubeStatusMessage(failure.err);
      const message = messageOf(failure.err);
      const detail = said && !message.includes(said) ? ` (API server: ${said})` : '';
      return { state: 'failed', message: `${failure.step} failed: ${message}${detail}` };
    };

    const learn = (sha: string, relation: Relation) => {
      known.set(sha, relation);
      if (relation === 'unrelated' && spec.onBranch && !branchChecked.has(sha)) branchChecks.add(sha);
    };

    /** One evaluation: the rule, the ancestry lookups it asks for, the side effect, the on-branch checks. */
    const pass = async (): Promise<void> => {
      const failures: StepFailure[] = [];
      let retrySoon = false;
      const failed = (step: string, err: unknown): boolean => {
        const failure = { step, err };
        if (REFUSED.has(codeOf(err) ?? '')) {
          finish(refused(failure));
          return true;
        }
        spec.log?.warn({ err, step }, 'a step failed while waiting for the tool; retrying after a backoff');
        failures.push(failure);
        return false;
      };

      const asked = new Set<string>();
      /** The rule with every ancestry question it asks answered (or failed); undefined when the wait ended. */
      const look = async (): Promise<Verdict | undefined> => {
        for (;;) {
          let verdict: Verdict;
          try {
            verdict = spec.evaluate({ commit: spec.commit, relation: relationFrom(spec.commit, known) });
          } catch (err: unknown) {
            if (failed('evaluating the tool status', err)) return undefined;
            return { state: 'pending', reason: lastReason };
          }
          const sha = verdict.state === 'pending' ? verdict.unknownRevision : undefined;
          if (!sha || known.has(sha) || asked.has(sha)) return verdict;
          asked.add(sha);
          if (verdict.state === 'pending') lookingUp = verdict.reason;
          let relation: Relation;
          try {
            relation = await spec.relation(sha);
          } catch (err: unknown) {
            if (failed(`looking up revision ${sha} in Git`, err)) return undefined;
            continue;
          }
          if (settled) return undefined;
          if (relation === 'unknown') {
            const n = (misses.get(sha) ?? 0) + 1;
            misses.set(sha, n);
            // Not found even after a fetch, again and again: gone from the repository (force-pushed away).
            if (n >= policy.attempts) learn(sha, 'unrelated');
            else retrySoon = true;
            continue;
          }
          learn(sha, relation);
        }
      };

      let verdict = await look();
      if (!verdict || settled) return;
      // Judged before acting: a final state (reached while this service was away, or before it asked) needs nothing
      // from the tool, and an action would only race it (a sync started on an Application that is there already).
      if (verdict.state === 'pending' && spec.nudge) {
        try {
          await spec.nudge();
        } catch (err: unknown) {
          if (failed('acting on the tool', err)) return;
        }
        if (settled) return;
        verdict = await look();
        if (!verdict || settled) return;
      }

      for (const sha of [...branchChecks]) {
        let onBranch: boolean;
        try {
          onBranch = await spec.onBranch!();
        } catch (err: unknown) {
          if (failed('checking that our commit is still on the branch', err)) return;
          continue;
        }
        if (settled) return;
        branchChecks.delete(sha);
        branchChecked.add(sha);
        if (!onBranch) {
          return finish({
            state: 'failed',
            message:
              `commit ${spec.commit} is no longer on branch ${spec.branch ?? 'the branch'}: its history was rewritten after our ` +
              `push, so no revision the tool applies will contain it (the tool reports ${sha}); trigger the delivery again ` +
              'to write on the new history',
          });
        }
      }

      if (verdict.state !== 'pending') return finish(verdict);
      const reason = failures.length
        ? `${verdict.reason}; ${failures.map((f) => `${f.step} failed: ${messageOf(f.err)}`).join('; ')}`
        : verdict.reason;
      if (reason !== lastReason) spec.onProgress?.(reason);
      lastReason = reason;
      lastApplied = verdict.applied;
      lastReasonSet = true;
      countFrom(verdict.busyUntil);
      if (failures.length || retrySoon) scheduleRetry();
      else failedPasses = 0;
    };

    const scheduleRetry = () => {
      clearTimeout(retryTimer);
      retryTimer = setTimeout(() => void evaluate(), backoffDelay(policy, ++failedPasses));
    };

    // Passes never overlap; a change during one schedules exactly one more.
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
          await pass();
        } while (again && !settled);
      } catch (err: unknown) {
        spec.log?.error({ err }, 'evaluation pass failed');
      } finally {
        running = false;
      }
    };

    const timedOut = () =>
      finish({
        state: 'failed',
        message: spec.timeoutMessage(lastReasonSet ? lastReason : (lookingUp ?? lastReason), lastReasonSet ? { applied: lastApplied } : {}),
      });
    // Armed once the first look is over (or FIRST_LOOK_MS after the start at the latest, should it hang on Git): a
    // deadline that passed while the service was away must not pre-empt the look at what happened meanwhile.
    let timer: NodeJS.Timeout | undefined;
    // A resumed wait's requests (a reconcile, a refresh) get FIRST_LOOK_MS to be answered: right after one the tool may
    // show a passing "reconciling" over the final state it reached while the service was away.
    const startedAt = Date.now();
    let deadline = spec.resumed ? Math.max(spec.deadline, startedAt + FIRST_LOOK_MS) : spec.deadline;
    /** The wait's own length: what our commit gets once the tool is free to act on it. */
    const allowance = Math.max(deadline - startedAt, FIRST_LOOK_MS);
    const armDeadline = () => {
      if (settled || timer) return;
      clearTimeout(firstLookTimer);
      timer = setTimeout(timedOut, Math.max(0, deadline - Date.now()));
    };
    /** The deadline before any tool said it was busy; `busy` while the last pending answer said so. */
    const baseDeadline = deadline;
    let busy = false;
    /**
     * The tool cannot act on our commit before `busyUntil` (issue 24 item 1: kustomize-controller finishing the health
     * check of a failed revision before it applies a revert): that time is not ours to count. While it is busy the
     * deadline is the wait's own length after `busyUntil` (an upper bound); once it is free, the wait's own length
     * after the moment it was seen free, so a check that ended early gives back the time it did not take. Never before
     * the deadline the wait began with.
     */
    const countFrom = (busyUntil: number | undefined) => {
      if (settled || (busyUntil === undefined && !busy)) return;
      busy = busyUntil !== undefined;
      const free = busyUntil === undefined ? Date.now() : Math.min(busyUntil, Date.now() + MAX_TOOL_BUSY_MS);
      const moved = Math.max(baseDeadline, free + allowance);
      if (moved === deadline) return;
      spec.log?.info(
        { busy, free: new Date(free).toISOString(), deadline: new Date(moved).toISOString() },
        busy
          ? 'the tool is busy with an earlier revision; the deadline counts from when it is free'
          : 'the tool is free; the deadline counts from now',
      );
      deadline = moved;
      if (timer) {
        clearTimeout(timer);
        timer = undefined;
        armDeadline();
      }
    };
    const firstLookTimer = setTimeout(armDeadline, Math.max(deadline - Date.now(), FIRST_LOOK_MS));
    // Not const: finish() reads it, and may run while observe() is still subscribing.
    // eslint-disable-next-line prefer-const
    let unsubscribe: (() => void) | undefined;
    unsubscribe = spec.observe(() => void evaluate());
    if (settled) unsubscribe();
    void evaluate().finally(armDeadline);
  });
}
