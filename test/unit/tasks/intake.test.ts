// The intake (ADR 18): events accepted together are recorded in one write before the answer, each gets its own
// record at its turn, and an acknowledged event survives a crash before that.
import { describe, expect, it } from '@jest/globals';
import type { OutgoingEvent, TriggeredEvent } from '../../../src/keptn/events.js';
import { DeploymentRunner } from '../../../src/tasks/runner.js';
import type { Handler } from '../../../src/tasks/handler.js';
import { MemoryStore } from '../../../src/platform/state/record.js';
import { MemoryIntake, type IntakeBatch, type IntakeEntry } from '../../../src/platform/state/intake.js';
import { SoloRegistry } from '../../../src/platform/state/replicas.js';
import { passedOutcome, silentLog } from '../helpers.js';

const eventNo = (n: number): TriggeredEvent => ({
  id: `00000000-0000-4000-8000-${String(n).padStart(12, '0')}`,
  type: 'sh.keptn.event.deployment.triggered',
  source: 'shipyard-controller',
  task: 'deployment',
  shkeptncontext: 'ctx',
  data: { project: 'p', stage: 's', service: `svc-${n}`, deployment: { deploymentstrategy: 'direct' } },
});

const pass = passedOutcome({ gitCommit: 'c0ffee' });

class Sink {
  sent: OutgoingEvent[] = [];
  async send(e: OutgoingEvent): Promise<void> {
    this.sent.push(e);
  }
  /** Per triggered id, the types sent for it. */
  perEvent(): Record<string, string[]> {
    const out: Record<string, string[]> = {};
    for (const e of this.sent) (out[e.triggeredid] ??= []).push(e.type.split('.').pop()!);
    return out;
  }
}

/** An intake whose writes wait for the test to open them, recording how many events each carried. */
class HeldIntake extends MemoryIntake {
  sizes: number[] = [];
  private readonly opens: Array<() => void> = [];
  override async create(owner: string, entries: IntakeEntry[]): Promise<IntakeBatch> {
    this.sizes.push(entries.length);
    await new Promise<void>((resolve) => this.opens.push(resolve));
    return super.create(owner, entries);
  }
  openAll(): void {
    for (const open of this.opens.splice(0)) open();
  }
}

function replica(identity: string, opts: { store: MemoryStore; intake: MemoryIntake; sink: Sink; handle: Handler; alive?: string[] }) {
  const replicas = new SoloRegistry(identity);
  if (opts.alive) replicas.isAlive = async (id: string) => opts.alive!.includes(id);
  return new DeploymentRunner({
    sink: opts.sink,
    handle: opts.handle,
    log: silentLog,
    source: 'gitops-service',
    store: opts.store,
    intake: opts.intake,
    replicas,
    sleep: async () => {},
  });
}

const turns = async (n = 5) => {
  for (let i = 0; i < n; i++) await new Promise((resolve) => setImmediate(resolve));
};

describe('intake: events accepted together, one write', () => {
  it('records the events that arrive while writes are in flight in one write; each runs once and the batches go', async () => {
    const intake = new HeldIntake();
    const store = new MemoryStore();
    const sink = new Sink();
    const runner = replica('replica-a', { store, intake, sink, handle: async () => pass });
    const answers = Array.from({ length: 10 }, (_, i) => runner.accept(eventNo(i)));
    await turns();
    expect(intake.sizes).toEqual([1, 1]);
    intake.openAll();
    await turns();
    expect(intake.sizes).toEqual([1, 1, 8]);
    intake.openAll();
    expect(await Promise.all(answers)).toEqual(Array(10).fill('accepted'));
    await runner.drain();
    const per = sink.perEvent();
    expect(Object.keys(per)).toHaveLength(10);
    for (const types of Object.values(per)) expect(types).toEqual(['started', 'finished']);
    expect((await store.list()).map((r) => r.phase)).toEqual(Array(10).fill('done'));
    await turns();
    expect(await intake.list()).toEqual([]);
  });

  it('an acknowledged event whose record was never made (the process died first) runs once after the restart', async () => {
    const intake = new MemoryIntake();
    const store = new MemoryStore();
    const sink = new Sink();
    // The batch as a process that answered and then died leaves it: recorded, no deployment record yet.
    await intake.create('replica-a', [{ event: eventNo(1), acceptedAt: Date.now() }]);
    let runs = 0;
    const handle: Handler = async () => (runs++, pass);
    const restarted = replica('replica-a', { store, intake, sink, handle });
    await restarted.resume();
    await restarted.drain();
    await restarted.resume();
    await restarted.drain();
    expect(runs).toBe(1);
    expect(sink.perEvent()).toEqual({ [eventNo(1).id]: ['started', 'finished'] });
    expect(await intake.list()).toEqual([]);
  });

  it("two replicas adopting a stopped replica's batch: each event runs once", async () => {
    const intake = new MemoryIntake();
    const store = new MemoryStore();
    const sink = new Sink();
    await intake.create(
      'replica-dead',
      [1, 2, 3].map((n) => ({ event: eventNo(n), acceptedAt: Date.now() })),
    );
    let runs = 0;
    const handle: Handler = async () => (runs++, pass);
    const alive = ['replica-b', 'replica-c'];
    const b = replica('replica-b', { store, intake, sink, handle, alive });
    const c = replica('replica-c', { store, intake, sink, handle, alive });
    await Promise.all([b.resume(), c.resume()]);
    await Promise.all([b.drain(), c.drain()]);
    expect(runs).toBe(3);
    for (const types of Object.values(sink.perEvent())) expect(types).toEqual(['started', 'finished']);
  });

  it('the same event delivered to two replicas at once (two batches): one record, one run', async () => {
    const intake = new MemoryIntake();
    const store = new MemoryStore();
    const sink = new Sink();
    let runs = 0;
    const handle: Handler = async () => (runs++, pass);
    const a = replica('replica-a', { store, intake, sink, handle });
    const b = replica('replica-b', { store, intake, sink, handle });
    expect(await Promise.all([a.accept(eventNo(7)), b.accept(eventNo(7))])).toEqual(['accepted', 'accepted']);
    await Promise.all([a.drain(), b.drain()]);
    expect(runs).toBe(1);
    expect(sink.perEvent()).toEqual({ [eventNo(7).id]: ['started', 'finished'] });
    await turns();
    expect(await intake.list()).toEqual([]);
  });

  it('a record that cannot be made now leaves the event in its batch; a later round starts it, once', async () => {
    const intake = new MemoryIntake();
    const store = new MemoryStore();
    const sink = new Sink();
    const create = store.create.bind(store);
    let down = true;
    store.create = async (r) => {
      if (down) throw new Error('connect ECONNREFUSED');
      return create(r);
    };
    let runs = 0;
    const runner = replica('replica-a', { store, intake, sink, handle: async () => (runs++, pass) });
    expect(await runner.accept(eventNo(1))).toBe('accepted');
    await runner.drain();
    expect(runs).toBe(0);
    expect(await intake.list()).toHaveLength(1);
    down = false;
    await runner.resume();
    await runner.drain();
    expect(runs).toBe(1);
    expect(sink.perEvent()).toEqual({ [eventNo(1).id]: ['started', 'finished'] });
  });

  it('a resume round listing a batch before it was removed does not bring its events back', async () => {
    const intake = new MemoryIntake();
    const store = new MemoryStore();
    let creates = 0;
    const create = store.create.bind(store);
    store.create = async (r) => (creates++, create(r));
    const runner = replica('replica-a', { store, intake, sink: new Sink(), handle: async () => pass });
    await runner.accept(eventNo(1));
    const stale = await intake.list();
    await runner.drain();
    await turns();
    expect(await intake.list()).toEqual([]);
    intake.list = async () => stale;
    await runner.resume();
    await runner.drain();
    expect(creates).toBe(1);
  });

  it('an event too large for one write is refused with RECORD_TOO_LARGE, not recorded', async () => {
    const intake = new MemoryIntake();
    const runner = replica('replica-a', { store: new MemoryStore(), intake, sink: new Sink(), handle: async () => pass });
    const huge = { ...eventNo(1), data: { ...eventNo(1).data, labels: { blob: 'x'.repeat(1024 * 1024) } } };
    await expect(runner.accept(huge as TriggeredEvent)).rejects.toMatchObject({ code: 'RECORD_TOO_LARGE' });
    expect(await intake.list()).toEqual([]);
  });
});
