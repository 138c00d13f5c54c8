// The waiter's state machine with injected seams: a tool whose status the test sets, Git answers the test gives, and
// fake timers for the deadline and the backoff.
import { afterEach, beforeEach, describe, expect, it, jest } from '@jest/globals';
import { ServiceError } from '../../../src/shared/errors.js';
import type { Expectation, Relation, Verdict } from '../../../src/judge/verdict.js';
import type { RetryPolicy } from '../../../src/shared/retry.js';
import { FIRST_LOOK_MS, waitForVerdict, type FinalVerdict, type WaitSpec } from '../../../src/judge/wait.js';

const OURS = 'a'.repeat(40);
const OLD = 'b'.repeat(40);
const LATER = 'c'.repeat(40);
const REWRITTEN = 'd'.repeat(40);
const MINUTE = 60_000;
/** Delays are their ceilings (see `random` below): 100, 200, 400, 400 ... ms. */
const POLICY: RetryPolicy = { attempts: 3, baseDelayMs: 100, maxDelayMs: 400 };

/** What the tool reports; the rule below reads it like a Flux or Argo CD rule reads a status. */
interface ToolStatus {
  revision?: string;
  failure?: string;
  /** A failure the tool reports at its revision: final only once that revision is known to contain ours. */
  failureAtRevision?: string;
}

function rule(tool: ToolStatus) {
  return (e: Expectation): Verdict => {
    if (tool.failure) return { state: 'failed', message: tool.failure, ...(tool.revision ? { revision: tool.revision } : {}) };
    if (!tool.revision) return { state: 'pending', reason: 'nothing applied yet' };
    const relation = e.relation(tool.revision);
    if (relation === 'unknown')
      return { state: 'pending', reason: `checking ${tool.revision.slice(0, 7)}`, unknownRevision: tool.revision };
    if (tool.failureAtRevision && (relation === 'same' || relation === 'descendant'))
      return { state: 'failed', message: tool.failureAtRevision, revision: tool.revision };
    if (relation === 'same' || relation === 'descendant')
      return { state: 'passed', message: `applied ${tool.revision.slice(0, 7)}`, revision: tool.revision };
    return { state: 'pending', reason: `the tool is at ${tool.revision.slice(0, 7)}` };
  };
}

interface Harness {
  tool: ToolStatus;
  /** Tells the waiter that an observed object changed. */
  change(): void;
  result: Promise<FinalVerdict>;
  settled(): FinalVerdict | undefined;
  evaluations: number;
  reasons: string[];
  unsubscribed: boolean;
}

function start(overrides: Partial<WaitSpec> = {}, tool: ToolStatus = {}): Harness {
  let onChange: () => void = () => undefined;
  let final: FinalVerdict | undefined;
  const h: Harness = {
    tool,
    change: () => onChange(),
    result: undefined as unknown as Promise<FinalVerdict>,
    settled: () => final,
    evaluations: 0,
    reasons: [],
    unsubscribed: false,
  };
  const evaluate = rule(tool);
  h.result = waitForVerdict({
    commit: OURS,
    deadline: Date.now() + 10 * MINUTE,
    branch: 'main',
    retry: POLICY,
    observe: (cb) => {
      onChange = cb;
      return () => void (h.unsubscribed = true);
    },
    evaluate: (e) => {
      h.evaluations++;
      return evaluate(e);
    },
    relation: async () => 'unrelated',
    timeoutMessage: (last) => `timed out: ${last}`,
    onProgress: (reason) => h.reasons.push(reason),
    ...overrides,
  });
  void h.result.then((v) => (final = v));
  return h;
}

/** Lets promises and due timers run; advances fake time by `ms`. */
const elapse = (ms = 0) => jest.advanceTimersByTimeAsync(ms);

function deferred<T>() {
  let resolve!: (v: T) => void;
  let reject!: (e: unknown) => void;
  const promise = new Promise<T>((res, rej) => ((resolve = res), (reject = rej)));
  return { promise, resolve, reject };
}

function forbidden(): ServiceError {
  const cause = Object.assign(new Error('HTTP-Code: 403'), {
    code: 403,
    body: JSON.stringify({
      kind: 'Status',
      code: 403,
      message:
        'applications.argoproj.io "podtato" is forbidden: User "system:serviceaccount:keptn:gitops-service" cannot patch resource "applications" in API group "argoproj.io" in the namespace "argocd"',
    }),
  });
  return new ServiceError('FORBIDDEN', "not allowed to access Application argocd/podtato; check the service account's RBAC", { cause });
}

beforeEach(() => {
  jest.useFakeTimers();
  jest.spyOn(Math, 'random').mockReturnValue(0.999999);
});

afterEach(() => {
  jest.useRealTimers();
  jest.restoreAllMocks();
});

describe('verdicts and the deadline', () => {
  it('passes as soon as the rule passes, and stops observing', async () => {
    const h = start({ relation: async (sha) => (sha === LATER ? 'descendant' : 'unrelated') }, { revision: OLD });
    await elapse();
    expect(h.settled()).toBeUndefined();
    h.tool.revision = LATER;
    h.change();
    await elapse();
    expect(h.settled()).toEqual({ state: 'passed', message: `applied ${LATER.slice(0, 7)}`, revision: LATER });
    expect(h.unsubscribed).toBe(true);
  });

  it('ends at the deadline, not before, with the last thing the tool said', async () => {
    const h = start({}, { revision: OLD });
    await elapse(10 * MINUTE - 1);
    expect(h.settled()).toBeUndefined();
    await elapse(1);
    expect(h.settled()).toEqual({ state: 'failed', message: `timed out: the tool is at ${OLD.slice(0, 7)}` });
    expect(h.unsubscribed).toBe(true);
  });

  it('reports a failure the rule finds at once', async () => {
    const h = start({}, { revision: OURS, failure: 'kustomize build failed' });
    await elapse();
    expect(h.settled()).toEqual({ state: 'failed', message: 'kustomize build failed', revision: OURS });
  });

  it('tells progress only when the reason changes', async () => {
    const h = start({}, {});
    await elapse();
    h.change();
    await elapse();
    h.tool.revision = OLD;
    h.change();
    await elapse();
    expect(h.reasons).toEqual(['nothing applied yet', `the tool is at ${OLD.slice(0, 7)}`]);
  });
});

describe('coalescing', () => {
  it('never overlaps passes: changes during one schedule exactly one more', async () => {
    const lookup = deferred<Relation>();
    let lookups = 0;
    const h = start({ relation: () => (lookups++, lookup.promise) }, { revision: LATER });
    await elapse();
    expect(h.evaluations).toBe(1);
    for (let i = 0; i < 5; i++) h.change();
    await elapse();
    expect(h.evaluations).toBe(1);
    lookup.resolve('unrelated');
    await elapse();
    // The first pass re-evaluates with the answer (2), then one more pass for the five changes (3).
    expect(h.evaluations).toBe(3);
    expect(lookups).toBe(1);
  });

  it('asks Git once per revision and remembers the answer', async () => {
    let lookups = 0;
    const h = start({ relation: async () => (lookups++, 'unrelated') }, { revision: OLD });
    await elapse();
    for (let i = 0; i < 3; i++) {
      h.change();
      await elapse();
    }
    expect(lookups).toBe(1);
    expect(h.settled()).toBeUndefined();
  });
});

describe('transient failures are retried, never taken for answers', () => {
  it('a failed ancestry lookup is not cached as unrelated: retried after a backoff, then the answer counts', async () => {
    const answers: Array<Relation | Error> = [
      new ServiceError('GIT_FETCH_FAILED', 'cannot fetch: connection reset', { retryable: true }),
      'descendant',
    ];
    const h = start(
      {
        relation: async () => {
          const a = answers.shift()!;
          if (a instanceof Error) throw a;
          return a;
        },
      },
      { revision: LATER },
    );
    await elapse();
    expect(h.settled()).toBeUndefined();
    expect(h.reasons.at(-1)).toBe(
      `checking ${LATER.slice(0, 7)}; looking up revision ${LATER} in Git failed: cannot fetch: connection reset`,
    );
    await elapse(99);
    expect(h.settled()).toBeUndefined();
    await elapse(1);
    expect(h.settled()).toMatchObject({ state: 'passed', revision: LATER });
  });

  it('a revision Git cannot find is looked for again, and only after the attempts taken as not containing ours', async () => {
    let lookups = 0;
    let branchChecks = 0;
    const h = start({ relation: async () => (lookups++, 'unknown'), onBranch: async () => (branchChecks++, true) }, { revision: LATER });
    await elapse();
    expect(lookups).toBe(1);
    expect(h.reasons.at(-1)).toBe(`checking ${LATER.slice(0, 7)}`);
    await elapse(100);
    expect(lookups).toBe(2);
    await elapse(200);
    expect(lookups).toBe(3);
    expect(h.reasons.at(-1)).toBe(`the tool is at ${LATER.slice(0, 7)}`);
    expect(branchChecks).toBe(1);
    await elapse(MINUTE);
    expect(lookups).toBe(3);
    expect(h.settled()).toBeUndefined();
  });

  it('a failed side effect is retried with growing delays, and its error stays in the reason until it succeeds', async () => {
    let calls = 0;
    const nudge = async () => {
      calls++;
      if (calls <= 3) throw new ServiceError('API_ERROR', 'Kubernetes API error on Application argocd/podtato: HTTP 500');
    };
    const h = start({ nudge, deadline: Date.now() + 250 }, { revision: OLD });
    await elapse();
    expect(calls).toBe(1);
    // A change in between does not wipe the error out of the reason.
    h.change();
    await elapse();
    expect(calls).toBe(2);
    await elapse(249);
    expect(h.settled()).toBeUndefined();
    expect(calls).toBe(3);
    await elapse(1);
    expect(h.settled()).toEqual({
      state: 'failed',
      message: `timed out: the tool is at ${OLD.slice(0, 7)}; acting on the tool failed: Kubernetes API error on Application argocd/podtato: HTTP 500`,
    });
  });

  it('retries a failed side effect until it works, then waits quietly', async () => {
    let calls = 0;
    const nudge = async () => {
      calls++;
      if (calls <= 2) throw new Error('socket hang up');
    };
    const h = start({ nudge }, { revision: OLD });
    await elapse();
    await elapse(100);
    expect(calls).toBe(2);
    await elapse(200);
    expect(calls).toBe(3);
    expect(h.reasons.at(-1)).toBe(`the tool is at ${OLD.slice(0, 7)}`);
    await elapse(MINUTE);
    expect(calls).toBe(3);
  });

  it('a side effect that fails still lets the rule decide (someone else may have applied our commit)', async () => {
    const h = start({ nudge: async () => Promise.reject(new Error('socket hang up')), relation: async () => 'same' }, { revision: OURS });
    await elapse();
    expect(h.settled()).toMatchObject({ state: 'passed' });
  });
});

describe('refusals end the wait at once', () => {
  it('a side effect refused with 403 fails with the permission the API server names', async () => {
    const h = start({ nudge: async () => Promise.reject(forbidden()) }, { revision: OLD });
    await elapse();
    const v = h.settled();
    expect(v?.state).toBe('failed');
    expect(v?.message).toBe(
      "acting on the tool failed: not allowed to access Application argocd/podtato; check the service account's RBAC " +
        '(API server: applications.argoproj.io "podtato" is forbidden: User "system:serviceaccount:keptn:gitops-service" cannot patch resource "applications" in API group "argoproj.io" in the namespace "argocd")',
    );
  });

  it('a NOT_FOUND from a side effect fails at once too', async () => {
    const h = start(
      { nudge: async () => Promise.reject(new ServiceError('NOT_FOUND', 'Application argocd/podtato not found')) },
      { revision: OLD },
    );
    await elapse();
    expect(h.settled()).toEqual({ state: 'failed', message: 'acting on the tool failed: Application argocd/podtato not found' });
  });
});

describe('our commit no longer on the branch', () => {
  it('fails at once when the tool reports a revision without our commit and the branch no longer has it', async () => {
    const h = start({ onBranch: async () => false }, { revision: REWRITTEN });
    await elapse();
    expect(h.settled()).toEqual({
      state: 'failed',
      message: `commit ${OURS} is no longer on branch main: its history was rewritten after our push, so no revision the tool applies will contain it (the tool reports ${REWRITTEN}); trigger the delivery again to write on the new history`,
    });
  });

  it('asks once per new unrelated revision, not on every change', async () => {
    let asked = 0;
    const h = start({ onBranch: async () => (asked++, true) }, { revision: OLD });
    await elapse();
    h.change();
    h.change();
    await elapse();
    expect(asked).toBe(1);
    h.tool.revision = REWRITTEN;
    h.change();
    await elapse();
    expect(asked).toBe(2);
    expect(h.settled()).toBeUndefined();
  });

  it('does not ask for revisions that contain our commit', async () => {
    let asked = 0;
    const h = start({ onBranch: async () => (asked++, false), relation: async () => 'descendant' }, { revision: LATER });
    await elapse();
    expect(asked).toBe(0);
    expect(h.settled()).toMatchObject({ state: 'passed' });
  });

  it('a failed on-branch check is retried, not taken for an answer', async () => {
    const answers: Array<boolean | Error> = [new Error('fetch failed'), false];
    const h = start(
      {
        onBranch: async () => {
          const a = answers.shift()!;
          if (a instanceof Error) throw a;
          return a;
        },
      },
      { revision: REWRITTEN },
    );
    await elapse();
    expect(h.settled()).toBeUndefined();
    expect(h.reasons.at(-1)).toContain('checking that our commit is still on the branch failed: fetch failed');
    await elapse(100);
    expect(h.settled()?.message).toMatch(/is no longer on branch main/);
  });
});

describe('a wait resumed after its deadline (the service was away longer than the timeout): ADR 14', () => {
  const GIT_ANSWERS_AFTER = 5_000;
  /** Git answers late (a clone fetched anew after the restart); the deadline passed a minute ago. */
  const slowGit = (answer: Relation) => async () => {
    await new Promise((r) => setTimeout(r, GIT_ANSWERS_AFTER));
    return answer;
  };
  const rows: Array<{ name: string; tool: ToolStatus; relation: Relation; want: FinalVerdict }> = [
    {
      name: 'the tool applied our commit while the service was away: pass, not a timeout',
      tool: { revision: LATER },
      relation: 'descendant',
      want: { state: 'passed', message: `applied ${LATER.slice(0, 7)}`, revision: LATER },
    },
    {
      name: 'the tool failed at our commit while the service was away: its own failure, not a timeout',
      tool: { revision: LATER, failureAtRevision: 'Flux could not apply it: kustomize build failed' },
      relation: 'descendant',
      want: { state: 'failed', message: 'Flux could not apply it: kustomize build failed', revision: LATER },
    },
    {
      name: 'the tool is still at an older revision: the deadline applies after the look, with what the tool says',
      tool: { revision: OLD },
      relation: 'unrelated',
      want: { state: 'failed', message: `timed out: the tool is at ${OLD.slice(0, 7)}` },
    },
  ];
  it.each(rows)('$name', async ({ tool, relation, want }) => {
    const h = start({ deadline: Date.now() - MINUTE, resumed: true, relation: slowGit(relation) }, tool);
    await elapse(0);
    // The deadline is long gone, and yet nothing is decided before the first look (and its Git lookup) is over.
    expect(h.settled()).toBeUndefined();
    await elapse(GIT_ANSWERS_AFTER + 1);
    if (want.state === 'passed' || !want.message.startsWith('timed out')) expect(h.settled()).toEqual(want);
    else {
      // Nothing final: the resumed wait's requests get FIRST_LOOK_MS to be answered, then the timeout applies.
      expect(h.settled()).toBeUndefined();
      await elapse(FIRST_LOOK_MS - GIT_ANSWERS_AFTER);
      expect(h.settled()).toEqual(want);
    }
  });

  it('the tool answers the resumed wait\'s request (a passing "reconciling" first) within FIRST_LOOK_MS: its answer, not a timeout', async () => {
    const h = start(
      { deadline: Date.now() - MINUTE, resumed: true, relation: async (sha) => (sha === OURS ? 'same' : 'unrelated') },
      { revision: OLD },
    );
    await elapse(10_000);
    expect(h.settled()).toBeUndefined();
    h.tool.revision = OURS;
    h.change();
    await elapse(0);
    expect(h.settled()).toMatchObject({ state: 'passed' });
  });

  it('a fresh (not resumed) wait keeps its deadline: it ends once its first look is over', async () => {
    const h = start({ deadline: Date.now() - 1, relation: async () => 'unrelated' }, { revision: OLD });
    await elapse(2);
    expect(h.settled()).toEqual({ state: 'failed', message: `timed out: the tool is at ${OLD.slice(0, 7)}` });
  });

  it('does not act on the tool when the state found is final (no sync of an Application already there)', async () => {
    let nudged = 0;
    const h = start(
      { deadline: Date.now() - MINUTE, resumed: true, relation: async () => 'same', nudge: async () => void nudged++ },
      { revision: OURS },
    );
    await elapse(0);
    expect(h.settled()).toMatchObject({ state: 'passed' });
    expect(nudged).toBe(0);
  });

  it('a first look that hangs on Git is bounded: the deadline applies FIRST_LOOK_MS after the start', async () => {
    const h = start(
      { deadline: Date.now() - MINUTE, resumed: true, relation: () => new Promise<Relation>(() => undefined) },
      { revision: LATER },
    );
    await elapse(FIRST_LOOK_MS - 1);
    expect(h.settled()).toBeUndefined();
    await elapse(2);
    expect(h.settled()).toEqual({ state: 'failed', message: `timed out: checking ${LATER.slice(0, 7)}` });
  });
});
