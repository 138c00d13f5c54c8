import { describe, expect, it } from '@jest/globals';
import type { DeploymentOutcome, OutgoingEvent, TriggeredEvent } from '../../../src/keptn/events.js';
import type { EventSink } from '../../../src/keptn/sender.js';
import { DeploymentRunner, type RunnerOptions } from '../../../src/tasks/runner.js';
import { MAX_MESSAGE_CHARS } from '../../../src/keptn/events.js';
import type { Handler } from '../../../src/tasks/handler.js';
import { MemoryStore, StoreConflictError, type DeploymentRecord } from '../../../src/platform/state/record.js';
import { SoloRegistry } from '../../../src/platform/state/replicas.js';
import { passedOutcome, silentLog } from '../helpers.js';

const noSleep = async () => {};

const event: TriggeredEvent = {
  id: 'trig-1',
  type: 'sh.keptn.event.deployment.triggered',
  source: 'shipyard-controller',
  task: 'deployment',
  shkeptncontext: 'ctx',
  data: { project: 'p', stage: 's', service: 'svc', deployment: { deploymentstrategy: 'direct' } },
};

/** Records what was sent; `failing` types are refused as by an endpoint that is down. */
class RecordingSink implements EventSink {
  sent: OutgoingEvent[] = [];
  failing = new Set<string>();
  async send(e: OutgoingEvent): Promise<void> {
    if (this.failing.has(e.type)) throw new Error('endpoint down');
    this.sent.push(e);
  }
  types(): string[] {
    return this.sent.map((e) => e.type.replace('sh.keptn.event.deployment.', ''));
  }
}

const pass = passedOutcome({ gitCommit: 'c0ffee' });

/** A store whose saves fail as if the API server refused the connection, while `refuses` says so for the phase. */
function storeRefusing(refuses: (phase: string) => boolean): MemoryStore {
  const store = new MemoryStore();
  const update = store.update.bind(store);
  store.update = async (r) => {
    if (refuses(r.phase)) throw new Error('connect ECONNREFUSED');
    return update(r);
  };
  return store;
}

function setup(
  handle: Handler,
  opts: { store?: MemoryStore; identity?: string; alive?: string[]; sink?: RecordingSink; runner?: Partial<RunnerOptions> } = {},
) {
  const sink = opts.sink ?? new RecordingSink();
  const store = opts.store ?? new MemoryStore();
  const replicas = new SoloRegistry(opts.identity ?? 'replica-a');
  if (opts.alive) replicas.isAlive = async (id: string) => opts.alive!.includes(id);
  const runner = new DeploymentRunner({
    sink,
    handle,
    log: silentLog,
    source: 'gitops-service',
    store,
    replicas,
    sleep: noSleep,
    ...opts.runner,
  });
  return { sink, store, runner, replicas };
}

/** A promise and the function that resolves it: lets a test hold a step until it says so. */
function gate<T = void>(): { promise: Promise<T>; open(value: T): void } {
  let open!: (value: T) => void;
  const promise = new Promise<T>((resolve) => (open = resolve));
  return { promise, open };
}

/** Waits for a condition, checking after every turn of the event loop; fails with `what` after `timeoutMs`. */
async function until(what: string, condition: () => boolean | Promise<boolean>, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 1));
  }
}

const eventNo = (n: number): TriggeredEvent => ({ ...event, id: `00000000-0000-4000-8000-${String(n).padStart(12, '0')}` });

async function seed(store: MemoryStore, record: Omit<DeploymentRecord, 'event' | 'acceptedAt'>): Promise<void> {
  await store.create({ event, acceptedAt: Date.now(), ...record });
}

describe('DeploymentRunner', () => {
  it('a graceful stop lets a deployment that ends within the drain time send its .finished, then lets the Lease go', async () => {
    const hold = gate<DeploymentOutcome>();
    const { runner, sink, replicas } = setup(() => hold.promise);
    let released = 0;
    replicas.release = async () => (released++, true);
    expect(await runner.accept(event)).toBe('accepted');
    await until('.started', () => sink.types().includes('started'));
    const stopping = runner.shutdown(60_000);
    hold.open(pass);
    await stopping;
    expect(sink.types()).toEqual(['started', 'finished']);
    expect(released).toBe(1);
  });

  it('a graceful stop waits no longer than the drain time for a deployment still running', async () => {
    const { runner, sink } = setup(() => new Promise<DeploymentOutcome>(() => {}));
    expect(await runner.accept(event)).toBe('accepted');
    await until('.started', () => sink.types().includes('started'));
    expect(await runner.drain(10)).toBe(false);
    await runner.shutdown(10);
    expect(sink.types()).toEqual(['started']);
  });

  it('records, sends .started, runs the deployment, then .finished with its outcome', async () => {
    const order: string[] = [];
    const { runner, sink, store } = setup(async () => {
      order.push(`handler after ${sink.types().join(',')}`);
      return pass;
    });
    expect(await runner.accept(event)).toBe('accepted');
    await runner.drain();
    expect(order).toEqual(['handler after started']);
    expect(sink.types()).toEqual(['started', 'finished']);
    expect(sink.sent[1]?.data).toMatchObject({ status: 'succeeded', result: 'pass', deployment: { gitCommit: 'c0ffee' } });
    expect((await store.list()).map((r) => r.phase)).toEqual(['done']);
  });

  it('turns a thrown error into exactly one errored .finished with its message', async () => {
    const { runner, sink } = setup(async () => {
      throw new Error('Secret keptn/git not found');
    });
    await runner.accept(event);
    await runner.drain();
    expect(sink.types()).toEqual(['started', 'finished']);
    expect(sink.sent[1]?.data).toMatchObject({ status: 'errored', result: 'fail', message: 'Secret keptn/git not found' });
  });

  it('runs a repeated event id once, during and after the deployment', async () => {
    let runs = 0;
    const { runner, sink } = setup(async () => {
      runs++;
      return pass;
    });
    expect(await runner.accept(event)).toBe('accepted');
    expect(await runner.accept(event)).toBe('duplicate');
    await runner.drain();
    // Recorded again (the intake cannot tell without a read), then it finds its deployment record and ends there.
    expect(await runner.accept(event)).toBe('accepted');
    await runner.drain();
    expect(runs).toBe(1);
    expect(sink.types()).toEqual(['started', 'finished']);
  });

  it('does not deploy when .started cannot be delivered, and still closes with .finished', async () => {
    let runs = 0;
    const { runner, sink } = setup(async () => {
      runs++;
      return pass;
    });
    sink.failing.add('sh.keptn.event.deployment.started');
    await runner.accept(event);
    await runner.drain();
    expect(runs).toBe(0);
    expect(sink.types()).toEqual(['finished']);
    expect(sink.sent[0]?.data).toMatchObject({
      status: 'errored',
      message: expect.stringContaining('could not deliver deployment.started'),
    });
  });

  it('after a restart, resumes its started deployment without a second .started', async () => {
    const store = new MemoryStore();
    await seed(store, { phase: 'started', owner: 'replica-a' });
    let runs = 0;
    const { runner, sink } = setup(
      async () => {
        runs++;
        return pass;
      },
      { store },
    );
    await runner.resume();
    await runner.drain();
    expect(runs).toBe(1);
    expect(sink.types()).toEqual(['finished']);
  });

  it('records the progress its handler reports, and hands it back when the deployment is resumed', async () => {
    const store = new MemoryStore();
    const progress = {
      commit: 'c0ffee',
      ownCommit: true,
      deadline: Date.now() + 60_000,
      target: { kind: 'Kustomization', name: 'app', namespace: 'flux-system' },
      repoUrl: 'http://git/fleet.git',
    };
    const first = setup(
      async (_e, _l, context) => {
        await context.checkpoint(progress);
        throw new Error('crash after the commit');
      },
      { store },
    );
    await first.runner.accept(event);
    await first.runner.drain();
    const [record] = await store.list();
    expect(record?.progress).toEqual(progress);

    // As after a crash before the outcome was saved: the record is back at `started`, with its progress.
    await store.update({ ...record!, phase: 'started', outcome: undefined });
    const seen: unknown[] = [];
    const resumed = setup(
      async (_e, _l, context) => {
        seen.push(context.progress);
        return pass;
      },
      { store },
    );
    await resumed.runner.resume();
    await resumed.runner.drain();
    expect(seen).toEqual([progress]);
  });

  it('goes on when the API cannot take the started phase: still one .started and one .finished', async () => {
    let refusals = 6; // every quick retry of the first save
    const store = storeRefusing((phase) => phase === 'started' && refusals-- > 0);
    let runs = 0;
    const { runner, sink } = setup(
      async () => {
        runs++;
        return pass;
      },
      { store },
    );
    await runner.accept(event);
    await runner.drain();
    await runner.resume();
    await runner.drain();
    expect(runs).toBe(1);
    expect(sink.types()).toEqual(['started', 'finished']);
    expect((await store.list())[0]?.phase).toBe('done');
  });

  it('saves over its own earlier write whose answer was lost', async () => {
    const store = new MemoryStore();
    const update = store.update.bind(store);
    let lose = true;
    store.update = async (r) => {
      const saved = await update(r);
      if (lose && r.phase === 'started') {
        lose = false;
        throw new Error('connection reset after the write');
      }
      return saved;
    };
    const { runner, sink } = setup(async () => pass, { store });
    await runner.accept(event);
    await runner.drain();
    expect(sink.types()).toEqual(['started', 'finished']);
    expect((await store.list())[0]?.phase).toBe('done');
  });

  it('keeps a .finished the endpoint refused and sends it on a later round, once', async () => {
    const { runner, sink, store } = setup(async () => pass);
    sink.failing.add('sh.keptn.event.deployment.finished');
    await runner.accept(event);
    await runner.drain();
    expect((await store.list())[0]?.phase).toBe('finishing');
    sink.failing.clear();
    await runner.resume();
    await runner.drain();
    await runner.resume();
    await runner.drain();
    expect(sink.types()).toEqual(['started', 'finished']);
    expect((await store.list())[0]?.phase).toBe('done');
  });

  it('gives up re-sending .finished once the bound has passed', async () => {
    const store = new MemoryStore();
    await store.create({ event, acceptedAt: Date.now() - 2 * 3_600_000, phase: 'finishing', owner: 'replica-a', outcome: pass });
    const sink = new RecordingSink();
    const runner = new DeploymentRunner({
      sink,
      handle: async () => pass,
      log: silentLog,
      source: 'gitops-service',
      store,
      replicas: new SoloRegistry('replica-a'),
      finishedRetryMs: 3_600_000,
    });
    await runner.resume();
    await runner.drain();
    expect(sink.sent).toHaveLength(0);
    expect((await store.list())[0]?.phase).toBe('done');
  });

  it("adopts a stopped replica's deployment, and leaves a live replica's alone", async () => {
    const store = new MemoryStore();
    await seed(store, { phase: 'started', owner: 'replica-dead' });
    let runs = 0;
    const handle: Handler = async () => {
      runs++;
      return pass;
    };
    const live = setup(handle, { store, identity: 'replica-b', alive: ['replica-b', 'replica-dead'] });
    await live.runner.resume();
    await live.runner.drain();
    expect(runs).toBe(0);

    const adopting = setup(handle, { store, identity: 'replica-b', alive: ['replica-b'] });
    await adopting.runner.resume();
    await adopting.runner.drain();
    expect(runs).toBe(1);
    expect(adopting.sink.types()).toEqual(['finished']);
    expect((await store.list())[0]).toMatchObject({ owner: 'replica-b', phase: 'done' });
  });
});

describe('resume rounds', () => {
  it("read each other replica's Lease once per round, however many of its records are listed", async () => {
    const store = new MemoryStore();
    for (const [i, owner] of ['replica-c', 'replica-c', 'replica-c', 'replica-d'].entries())
      await store.create({ event: { ...event, id: `e-${i}` }, acceptedAt: Date.now(), phase: 'started', owner });
    const { runner, replicas } = setup(async () => pass, { store, identity: 'replica-b' });
    const asked: string[] = [];
    replicas.isAlive = async (id: string) => (asked.push(id), true);
    await runner.resume();
    expect(asked.sort()).toEqual(['replica-c', 'replica-d']);
    await runner.resume();
    expect(asked).toHaveLength(4);
  });
});

describe('claims: nothing acts on a record it has not claimed', () => {
  it('a resume round working from a list taken before the deployment finished does not run it again', async () => {
    // The doubled .finished seen under load: the list was taken while the deployment ran, and read after it was done.
    const store = new MemoryStore();
    const listed = gate();
    const proceed = gate();
    const list = store.list.bind(store);
    store.list = async () => {
      const snapshot = await list();
      listed.open();
      await proceed.promise;
      return snapshot;
    };
    const handlerDone = gate();
    let runs = 0;
    const { runner, sink } = setup(
      async () => {
        runs++;
        await handlerDone.promise;
        return pass;
      },
      { store },
    );
    await runner.accept(event);
    await until('deployment started', () => sink.types().includes('started') && runs === 1);
    const round = runner.resume();
    await listed.promise; // the snapshot says `started`
    handlerDone.open();
    await runner.drain(); // .finished sent, record done
    expect((await list())[0]?.phase).toBe('done');
    proceed.open();
    await round;
    await runner.drain();
    expect(runs).toBe(1);
    expect(sink.types()).toEqual(['started', 'finished']);
  });

  it('a resume round that lists a record while it is being accepted leaves it to the acceptance', async () => {
    const store = new MemoryStore();
    const created = gate();
    const proceed = gate();
    const create = store.create.bind(store);
    store.create = async (r) => {
      const saved = await create(r);
      created.open(); // stored, but accept() has not heard back yet
      await proceed.promise;
      return saved;
    };
    let runs = 0;
    const { runner, sink } = setup(
      async () => {
        runs++;
        return pass;
      },
      { store },
    );
    const accepting = runner.accept(event);
    await created.promise;
    await runner.resume();
    proceed.open();
    expect(await accepting).toBe('accepted');
    await runner.drain();
    expect(runs).toBe(1);
    expect(sink.types()).toEqual(['started', 'finished']);
  });

  it("two replicas adopting the same stopped replica's deployment: one wins, one .finished", async () => {
    const store = new MemoryStore();
    await seed(store, { phase: 'started', owner: 'replica-dead' });
    const sink = new RecordingSink();
    let runs = 0;
    const handle: Handler = async () => {
      runs++;
      return pass;
    };
    const b = setup(handle, { store, sink, identity: 'replica-b', alive: ['replica-b', 'replica-c'] });
    const c = setup(handle, { store, sink, identity: 'replica-c', alive: ['replica-b', 'replica-c'] });
    await Promise.all([b.runner.resume(), c.runner.resume()]);
    await Promise.all([b.runner.drain(), c.runner.drain()]);
    expect(runs).toBe(1);
    expect(sink.types()).toEqual(['finished']);
  });

  it('a run whose record was claimed by another stops at its next save and sends nothing more', async () => {
    const store = new MemoryStore();
    const handlerDone = gate();
    const first = setup(
      async () => {
        await handlerDone.promise;
        return pass;
      },
      { store },
    );
    await first.runner.accept(event);
    await until('deployment started', async () => (await store.list())[0]?.phase === 'started');
    // Another replica took it over meanwhile (say this one's Lease ran out while it was paused).
    const [record] = await store.list();
    await store.update({ ...record!, owner: 'replica-b', claim: 'claim-of-b' });
    handlerDone.open();
    await first.runner.drain();
    expect(first.sink.types()).toEqual(['started']);
    expect((await store.list())[0]).toMatchObject({ owner: 'replica-b', phase: 'started' });
  });

  it('claims its own record with a write the store cannot skip, before running it', async () => {
    // kube-apiserver does not write an update that changes nothing and keeps its resourceVersion (MemoryStore does
    // the same); a claim that only re-wrote our own name as owner would change nothing, and a stale copy could still win.
    const store = new MemoryStore();
    await seed(store, { phase: 'started', owner: 'replica-a' });
    const [listed] = await store.list();
    const handlerDone = gate();
    const { runner } = setup(
      async () => {
        await handlerDone.promise;
        return pass;
      },
      { store },
    );
    await runner.resume();
    const [claimed] = await store.list();
    expect(claimed?.version).not.toBe(listed?.version);
    expect(claimed?.claim).toEqual(expect.any(String));
    await expect(store.update({ ...listed!, phase: 'finishing', outcome: pass })).rejects.toBeInstanceOf(StoreConflictError);
    handlerDone.open();
    await runner.drain();
  });

  it.each([
    ['the done mark', ['done'], 'finishing'],
    ['the outcome and the done mark', ['finishing', 'done'], 'started'],
  ])('a .finished delivered while %s could not be saved is not sent again by this process', async (_what, refused, left) => {
    let refuse = true;
    const store = storeRefusing((phase) => refused.includes(phase) && refuse);
    let runs = 0;
    const { runner, sink } = setup(
      async () => {
        runs++;
        return pass;
      },
      { store },
    );
    await runner.accept(event);
    await runner.drain();
    expect((await store.list())[0]?.phase).toBe(left);
    refuse = false;
    await runner.resume();
    await runner.drain();
    expect(runs).toBe(1);
    expect(sink.types()).toEqual(['started', 'finished']);
    expect((await store.list())[0]).toMatchObject({ phase: 'done', outcome: pass });
  });

  it('bounds the message it records and sends: the distributor refuses bodies over 64 KiB', async () => {
    const { runner, sink, store } = setup(async () => {
      throw new Error(`git said: ${'x'.repeat(200_000)}`);
    });
    await runner.accept(event);
    await runner.drain();
    const message = String(sink.sent[1]?.data.message);
    expect(message.length).toBeLessThan(MAX_MESSAGE_CHARS + 100);
    expect(message).toMatch(/^git said: x+… \(\d+ more characters\)$/);
    expect((await store.list())[0]?.outcome?.message).toBe(message);
  });

  it('a burst of 20 deployments with a resume round every millisecond: exactly one .started and one .finished each', async () => {
    // A store as slow and as interleaved as an API server under load: every call yields for a random while, so
    // resume rounds list while deployments save, and read their lists after the deployments moved on.
    const store = new MemoryStore();
    const jitter = () => new Promise((resolve) => setTimeout(resolve, Math.floor(Math.random() * 4)));
    for (const method of ['create', 'update', 'get', 'list'] as const) {
      const original = (store[method] as (...args: unknown[]) => Promise<unknown>).bind(store);
      (store as unknown as Record<string, unknown>)[method] = async (...args: unknown[]) => {
        await jitter();
        const result = await original(...args);
        await jitter();
        return result;
      };
    }
    const runs = new Map<string, number>();
    const { runner, sink } = setup(
      async (e) => {
        runs.set(e.id, (runs.get(e.id) ?? 0) + 1);
        await jitter();
        return pass;
      },
      { store, runner: { resumeIntervalMs: 1 } },
    );
    await runner.start();
    try {
      const events = Array.from({ length: 20 }, (_, i) => eventNo(i + 1));
      expect(await Promise.all(events.map((e) => runner.accept(e)))).toEqual(Array(20).fill('accepted'));
      await until('all 20 done', async () => (await store.list()).filter((r) => r.phase === 'done').length === 20);
      // Let resume rounds run over the finished records for a while longer.
      let rounds = 0;
      await until('50 more resume rounds', async () => {
        await runner.resume();
        return ++rounds >= 50;
      });
      await runner.drain();
      for (const e of events) {
        const answers = sink.sent.filter((s) => s.triggeredid === e.id).map((s) => s.type.replace('sh.keptn.event.deployment.', ''));
        expect({ id: e.id, answers, runs: runs.get(e.id) }).toEqual({ id: e.id, answers: ['started', 'finished'], runs: 1 });
      }
    } finally {
      runner.stop();
    }
  });
});

describe('start turns (issue 11)', () => {
  it('lets at most maxStarting deployments start at once; the next starts when one has pushed its commit', async () => {
    const progress = {
      commit: 'c0ffee',
      ownCommit: true,
      deadline: Date.now() + 60_000,
      target: { kind: 'Kustomization', name: 'app', namespace: 'flux-system' },
      repoUrl: 'http://git/fleet.git',
    };
    const began: string[] = [];
    const pushed = new Map(['a', 'b', 'c'].map((id) => [id, gate()]));
    const finish = gate();
    const { runner, sink } = setup(
      async (e, _l, context) => {
        began.push(e.id);
        await pushed.get(e.id)!.promise;
        await context.checkpoint(progress);
        await finish.promise;
        return pass;
      },
      { runner: { maxStarting: 2 } },
    );
    for (const id of ['a', 'b', 'c']) expect(await runner.accept({ ...event, id })).toBe('accepted');
    await until('two started', () => began.length === 2);
    expect(began).toEqual(['a', 'b']);
    pushed.get('b')!.open();
    await until('the third started', () => began.length === 3);
    expect(began).toEqual(['a', 'b', 'c']);
    pushed.get('a')!.open();
    pushed.get('c')!.open();
    finish.open();
    await runner.drain();
    expect(sink.types().filter((t) => t === 'finished')).toHaveLength(3);
  });

  it("a project whose starts never end does not hold back another project's .started (issue 19, item 4)", async () => {
    const hang = gate();
    const { runner, sink } = setup(
      async (e) => {
        // Project "stuck" stands for settings naming a Git host that never answers: its starts hold their turns.
        if (e.data.project === 'stuck') await hang.promise;
        return pass;
      },
      { runner: { maxStarting: 8 } },
    );
    const stuck = (n: number) => ({ ...event, id: `stuck-${n}`, data: { ...event.data, project: 'stuck' } });
    for (let n = 0; n < 20; n++) await runner.accept(stuck(n));
    await until('the stuck project holds its share', () => sink.sent.filter((e) => e.type.endsWith('.started')).length === 6);
    expect(await runner.accept({ ...event, id: 'other-1', data: { ...event.data, project: 'other' } })).toBe('accepted');
    await until("the other project's .finished", () => sink.sent.some((e) => e.type.endsWith('.finished') && e.triggeredid === 'other-1'));
    // Six of eight turns at most for one project; the stuck ones beyond them are still waiting, not started.
    expect(sink.sent.filter((e) => e.type.endsWith('.started') && e.triggeredid.startsWith('stuck-'))).toHaveLength(6);
    hang.open();
    await runner.drain();
    expect(sink.sent.filter((e) => e.type.endsWith('.finished'))).toHaveLength(21);
  });

  it('gives the turn back when a deployment ends before any checkpoint', async () => {
    const began: string[] = [];
    const { runner } = setup(
      async (e) => {
        began.push(e.id);
        throw new Error('no settings');
      },
      { runner: { maxStarting: 1 } },
    );
    for (const id of ['a', 'b', 'c']) await runner.accept({ ...event, id });
    await runner.drain();
    expect(began).toEqual(['a', 'b', 'c']);
  });
});
