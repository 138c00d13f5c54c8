import { describe, expect, it } from '@jest/globals';
import type { DeploymentOutcome, OutgoingEvent, TriggeredEvent } from '../../src/keptn/events.js';
import type { EventSink } from '../../src/keptn/sender.js';
import { DeploymentRunner, type Handler } from '../../src/runner.js';
import { MemoryStore, type DeploymentRecord } from '../../src/state/record.js';
import { SoloRegistry } from '../../src/state/replicas.js';
import { silentLog } from './helpers.js';

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

const pass: DeploymentOutcome = { status: 'succeeded', result: 'pass', message: 'ok', deploymentstrategy: 'direct', deploymentNames: ['svc'], deploymentURIsLocal: [], deploymentURIsPublic: [], gitCommit: 'c0ffee' };

function setup(handle: Handler, opts: { store?: MemoryStore; identity?: string; alive?: string[] } = {}) {
  const sink = new RecordingSink();
  const store = opts.store ?? new MemoryStore();
  const replicas = new SoloRegistry(opts.identity ?? 'replica-a');
  if (opts.alive) replicas.isAlive = async (id: string) => opts.alive!.includes(id);
  const runner = new DeploymentRunner({ sink, handle, log: silentLog, source: 'gitops-service', store, replicas });
  return { sink, store, runner };
}

async function seed(store: MemoryStore, record: Omit<DeploymentRecord, 'event' | 'acceptedAt'>): Promise<void> {
  await store.create({ event, acceptedAt: Date.now(), ...record });
}

describe('DeploymentRunner', () => {
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
    expect(await runner.accept(event)).toBe('duplicate');
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
    expect(sink.sent[0]?.data).toMatchObject({ status: 'errored', message: expect.stringContaining('could not deliver deployment.started') });
  });

  it('after a restart, resumes its started deployment without a second .started', async () => {
    const store = new MemoryStore();
    await seed(store, { phase: 'started', owner: 'replica-a' });
    let runs = 0;
    const { runner, sink } = setup(async () => {
      runs++;
      return pass;
    }, { store });
    await runner.resume();
    await runner.drain();
    expect(runs).toBe(1);
    expect(sink.types()).toEqual(['finished']);
  });

  it('records the progress its handler reports, and hands it back when the deployment is resumed', async () => {
    const store = new MemoryStore();
    const progress = { commit: 'c0ffee', ownCommit: true, deadline: Date.now() + 60_000, target: { kind: 'Kustomization', name: 'app', namespace: 'flux-system' }, repoUrl: 'http://git/fleet.git' };
    const first = setup(async (_e, _l, context) => {
      await context.checkpoint(progress);
      throw new Error('crash after the commit');
    }, { store });
    await first.runner.accept(event);
    await first.runner.drain();
    const [record] = await store.list();
    expect(record?.progress).toEqual(progress);

    // As after a crash before the outcome was saved: the record is back at `started`, with its progress.
    await store.update({ ...record!, phase: 'started', outcome: undefined });
    const seen: unknown[] = [];
    const resumed = setup(async (_e, _l, context) => {
      seen.push(context.progress);
      return pass;
    }, { store });
    await resumed.runner.resume();
    await resumed.runner.drain();
    expect(seen).toEqual([progress]);
  });

  it('goes on when the API cannot take the started phase: still one .started and one .finished', async () => {
    const store = new MemoryStore();
    const update = store.update.bind(store);
    let refusals = 6; // every quick retry of the first save
    store.update = async (r) => {
      if (r.phase === 'started' && refusals-- > 0) throw new Error('connect ECONNREFUSED');
      return update(r);
    };
    let runs = 0;
    const { runner, sink } = setup(async () => {
      runs++;
      return pass;
    }, { store });
    await runner.accept(event);
    await runner.drain();
    await runner.resume();
    await runner.drain();
    expect(runs).toBe(1);
    expect(sink.types()).toEqual(['started', 'finished']);
    expect((await store.list())[0]?.phase).toBe('done');
  }, 20_000);

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
    const runner = new DeploymentRunner({ sink, handle: async () => pass, log: silentLog, source: 'gitops-service', store, replicas: new SoloRegistry('replica-a'), finishedRetryMs: 3_600_000 });
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
