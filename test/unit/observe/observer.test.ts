// The observer loop over hand-driven watches, an in-memory record store and a recording sink: what Keptn receives
// (exactly one announcement per object and revision), across repeats, own deployments, send failures and a crash.
import { afterEach, describe, expect, it } from '@jest/globals';
import { pino } from 'pino';
import type { Cluster } from '../../../src/platform/k8s/cluster.js';
import type { KubeObject, ResourceKind, SharedWatch } from '../../../src/platform/k8s/watch.js';
import type { SequenceTriggeredEvent } from '../../../src/keptn/events.js';
import { Observer, type CommitFacts } from '../../../src/observe/observer.js';
import { observationGrant, type ObservedSettings } from '../../../src/observe/link.js';
import { MemoryObservationStore } from '../../../src/observe/records.js';

class FakeWatch {
  readonly objects = new Map<string, KubeObject>();
  private readonly all = new Set<(key: string, obj: KubeObject | undefined) => void>();
  constructor(readonly kind: ResourceKind) {}
  get(ns: string, name: string) {
    return this.objects.get(`${ns}/${name}`);
  }
  subscribeAll(listener: (key: string, obj: KubeObject | undefined) => void) {
    this.all.add(listener);
    queueMicrotask(() => this.objects.forEach((o, k) => listener(k, o)));
    return () => void this.all.delete(listener);
  }
  put(obj: KubeObject) {
    const k = `${obj.metadata.namespace}/${obj.metadata.name}`;
    this.objects.set(k, obj);
    for (const l of this.all) l(k, obj);
  }
}

function fakeCluster(): Cluster & { of(plural: string): FakeWatch } {
  const watches = new Map<string, FakeWatch>();
  const of = (kind: ResourceKind) => {
    let w = watches.get(kind.plural);
    if (!w) watches.set(kind.plural, (w = new FakeWatch(kind)));
    return w;
  };
  return {
    watch: <T extends KubeObject>(kind: ResourceKind) => of(kind) as unknown as SharedWatch<T>,
    of: (plural: string) => of({ group: '', version: '', plural }),
  } as unknown as Cluster & { of(plural: string): FakeWatch };
}

const REV1 = '1111111111111111111111111111111111111111';
const REV2 = '2222222222222222222222222222222222222222';
const REV3 = '3333333333333333333333333333333333333333';

function kustomization(
  attempted: string,
  applied: string,
  ready: 'True' | 'False' | 'Unknown',
  reason = 'ReconciliationSucceeded',
): KubeObject {
  return {
    apiVersion: 'kustomize.toolkit.fluxcd.io/v1',
    kind: 'Kustomization',
    metadata: {
      name: 'app',
      namespace: 'flux-system',
      generation: 1,
      annotations: {
        'gitops.keptn.sh/observe-project': 'podtato',
        'gitops.keptn.sh/observe-stage': 'dev',
        'gitops.keptn.sh/observe-service': 'web',
        'gitops.keptn.sh/projects': 'podtato',
      },
    },
    spec: { wait: true, sourceRef: { kind: 'GitRepository', name: 'app' } },
    status: {
      lastAttemptedRevision: `main@sha1:${attempted}`,
      lastAppliedRevision: `main@sha1:${applied}`,
      conditions: [{ type: 'Ready', status: ready, reason, message: `${reason} at ${attempted}`, observedGeneration: 1 }],
    },
  };
}

/** Polls a condition of in-process state (no I/O to wait on here); fails after 2 s. */
async function waitFor(cond: () => Promise<boolean>): Promise<void> {
  const end = Date.now() + 2_000;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error('condition not met within 2 s');
    await new Promise((r) => setTimeout(r, 5));
  }
}

const observers: Observer[] = [];
afterEach(async () => {
  for (const o of observers.splice(0)) await o.stop();
});

/** The linked service's settings: they name the object as target and observe it (ADR 16). */
const OBSERVING: ObservedSettings = {
  settings: { target: { kind: 'Kustomization', namespace: 'flux-system', name: 'app' }, observe: {} },
  where: 'resource gitops/config.yaml of service web',
};

function setup(
  opts: { own?: string[]; failSends?: number; store?: MemoryObservationStore; identity?: string; settings?: () => ObservedSettings } = {},
) {
  const cluster = fakeCluster();
  const store = opts.store ?? new MemoryObservationStore();
  const sent: SequenceTriggeredEvent[] = [];
  let failures = opts.failSends ?? 0;
  const observer = new Observer({
    cluster,
    tools: ['flux'],
    store,
    lease: { identity: opts.identity ?? 'r1', acquire: async () => true },
    sink: {
      send: async (e) => {
        if (failures-- > 0) throw new Error('distributor down');
        sent.push(e);
      },
    },
    source: 'gitops-service',
    log: pino({ level: 'silent' }),
    commit: async (_link, revision): Promise<CommitFacts> => ({
      revision,
      author: 'Someone Else <else@example.test>',
      subject: 'bump\nthe image',
      ownDeployment: (opts.own ?? []).includes(revision),
    }),
    authorize: async (object, hint) => observationGrant(object, hint, opts.settings?.() ?? OBSERVING),
    deployedByUs: async () => false,
    renewIntervalMs: 20,
  });
  observers.push(observer);
  return { cluster, store, sent, observer, ks: cluster.of('kustomizations') };
}

describe('the observer', () => {
  it('takes the revision an object is at when first linked as its baseline, then announces each new final revision once', async () => {
    const { ks, sent, observer, store } = setup();
    ks.put(kustomization(REV1, REV1, 'True'));
    observer.start();
    await waitFor(async () => (await store.get('Kustomization flux-system/app', REV1))?.phase === 'baseline');
    // A new revision being applied: nothing yet.
    ks.put(kustomization(REV2, REV1, 'Unknown', 'Progressing'));
    // Applied and ready: announced.
    ks.put(kustomization(REV2, REV2, 'True'));
    await waitFor(async () => sent.length === 1);
    // The controller reports the same revision again (a periodic reconcile): nothing more.
    ks.put({ ...kustomization(REV2, REV2, 'True'), metadata: { ...kustomization(REV2, REV2, 'True').metadata, resourceVersion: '9' } });
    await waitFor(async () => (await store.get('Kustomization flux-system/app', REV2))?.phase === 'sent');
    expect(sent).toHaveLength(1);
    expect(sent[0]).toMatchObject({
      type: 'sh.keptn.event.dev.delivery.triggered',
      source: 'gitops-service',
      data: {
        project: 'podtato',
        stage: 'dev',
        service: 'web',
        result: 'pass',
        labels: {
          'gitops.keptn.sh/tool': 'flux',
          'gitops.keptn.sh/object': 'Kustomization flux-system/app',
          'gitops.keptn.sh/revision': REV2,
          'gitops.keptn.sh/author': 'Someone Else <else@example.test>',
          'gitops.keptn.sh/subject': 'bump the image',
        },
      },
    });
    expect(sent[0]).not.toHaveProperty('triggeredid');
  });

  it("announces a failed revision as a failure, with the tool's message", async () => {
    const { ks, sent, observer, store } = setup();
    ks.put(kustomization(REV1, REV1, 'True'));
    observer.start();
    await waitFor(async () => (await store.get('Kustomization flux-system/app', REV1)) !== undefined);
    ks.put(kustomization(REV2, REV1, 'False', 'BuildFailed'));
    await waitFor(async () => sent.length === 1);
    expect(sent[0]!.data).toMatchObject({ result: 'fail', labels: { 'gitops.keptn.sh/verdict': 'fail' } });
    expect(sent[0]!.data.message).toContain(`BuildFailed at ${REV2}`);
  });

  it('does not announce a revision this service deployed for a Keptn sequence', async () => {
    const { ks, sent, observer, store } = setup({ own: [REV2] });
    ks.put(kustomization(REV1, REV1, 'True'));
    observer.start();
    await waitFor(async () => (await store.get('Kustomization flux-system/app', REV1)) !== undefined);
    ks.put(kustomization(REV2, REV2, 'True'));
    await waitFor(async () => (await store.get('Kustomization flux-system/app', REV2))?.phase === 'own');
    ks.put(kustomization(REV3, REV3, 'True'));
    await waitFor(async () => sent.length === 1);
    expect(sent[0]!.data.labels).toMatchObject({ 'gitops.keptn.sh/revision': REV3 });
  });

  it('keeps an announcement the distributor did not take, and sends it at a later round', async () => {
    // More failures than one round's retries: the sink here does not retry, so the first send fails outright.
    const { ks, sent, observer, store } = setup({ failSends: 1 });
    ks.put(kustomization(REV1, REV1, 'True'));
    observer.start();
    await waitFor(async () => (await store.get('Kustomization flux-system/app', REV1)) !== undefined);
    ks.put(kustomization(REV2, REV2, 'True'));
    await waitFor(async () => (await store.get('Kustomization flux-system/app', REV2))?.phase === 'sent');
    expect(sent).toHaveLength(1);
  });

  it('after a crash between record and send, the next observer sends the announcement once, with the same id', async () => {
    const store = new MemoryObservationStore();
    const first = setup({ store, failSends: 1_000, identity: 'crashed' });
    first.ks.put(kustomization(REV1, REV1, 'True'));
    first.observer.start();
    await waitFor(async () => (await store.get('Kustomization flux-system/app', REV1)) !== undefined);
    first.ks.put(kustomization(REV2, REV2, 'True'));
    await waitFor(async () => (await store.get('Kustomization flux-system/app', REV2))?.phase === 'announcing');
    await first.observer.stop();
    const recorded = (await store.get('Kustomization flux-system/app', REV2))!.event!;

    const second = setup({ store, identity: 'r2' });
    second.ks.put(kustomization(REV2, REV2, 'True'));
    second.observer.start();
    await waitFor(async () => (await store.get('Kustomization flux-system/app', REV2))?.phase === 'sent');
    // A later round and a repeated report change nothing.
    second.ks.put(kustomization(REV2, REV2, 'True'));
    await waitFor(async () => second.observer.observing);
    await new Promise((r) => setImmediate(r));
    expect(second.sent.map((e) => e.id)).toEqual([recorded.id]);
    expect((await store.get('Kustomization flux-system/app', REV2))!.owner).toBe('r2');
  });

  it("starts nothing for an object its project's settings do not observe, not even that revision once they do", async () => {
    // The object is linked and granted by its own annotations; the settings of podtato/dev/web name another target.
    let settings: ObservedSettings = {
      settings: { target: { kind: 'Kustomization', namespace: 'podtato', name: 'web' }, observe: { sequence: 'delivery' } },
      where: 'resource gitops/config.yaml of service web',
    };
    const { ks, sent, observer, store } = setup({ settings: () => settings });
    ks.put(kustomization(REV1, REV1, 'True'));
    observer.start();
    await waitFor(async () => (await store.get('Kustomization flux-system/app', REV1))?.phase === 'baseline');
    ks.put(kustomization(REV2, REV2, 'True'));
    await waitFor(async () => (await store.get('Kustomization flux-system/app', REV2))?.phase === 'refused');
    expect(sent).toHaveLength(0);
    // The project now observes it, with a sequence of its choosing: the refused revision stays unannounced (it was
    // deployed before the project asked), the next one starts that sequence.
    settings = {
      settings: { target: { kind: 'Kustomization', namespace: 'flux-system', name: 'app' }, observe: { sequence: 'gitops' } },
      where: 'resource gitops/config.yaml of service web',
    };
    ks.put(kustomization(REV2, REV2, 'True'));
    ks.put(kustomization(REV3, REV3, 'True'));
    await waitFor(async () => sent.length === 1);
    expect(sent[0]).toMatchObject({ type: 'sh.keptn.event.dev.gitops.triggered', data: { labels: { 'gitops.keptn.sh/revision': REV3 } } });
    expect((await store.get('Kustomization flux-system/app', REV2))?.phase).toBe('refused');
  });

  it("moves a record forward when its object returns to its revision, so the current revision's record is kept longest", async () => {
    const { ks, sent, observer, store } = setup();
    ks.put(kustomization(REV1, REV1, 'True'));
    observer.start();
    await waitFor(async () => (await store.get('Kustomization flux-system/app', REV1))?.phase === 'baseline');
    // Recorded long ago.
    const old = store.records.get(`Kustomization flux-system/app@${REV1}`)!;
    store.records.set(`Kustomization flux-system/app@${REV1}`, { ...old, at: 0 });
    ks.put(kustomization(REV2, REV2, 'True'));
    await waitFor(async () => sent.length === 1);
    // Rolled back to REV1 (an Argo CD rollback, a Flux ref moved back): not announced again, its record refreshed.
    ks.put(kustomization(REV1, REV1, 'True'));
    await waitFor(async () => ((await store.get('Kustomization flux-system/app', REV1))?.at ?? 0) > 0);
    const back = (await store.get('Kustomization flux-system/app', REV1))!;
    expect(back.at).toBeGreaterThanOrEqual((await store.get('Kustomization flux-system/app', REV2))!.at);
    expect(back.phase).toBe('baseline');
    expect(sent).toHaveLength(1);
  });

  it('observes nothing while another replica holds the Lease', async () => {
    const { sent, store } = setup();
    const cluster = fakeCluster();
    const idle = new Observer({
      cluster,
      tools: ['flux'],
      store,
      lease: { identity: 'r2', acquire: async () => false },
      sink: { send: async (e) => void sent.push(e) },
      source: 'gitops-service',
      log: pino({ level: 'silent' }),
      commit: async () => undefined,
      authorize: async (object, hint) => observationGrant(object, hint, OBSERVING),
      deployedByUs: async () => false,
      renewIntervalMs: 10,
    });
    observers.push(idle);
    cluster.of('kustomizations').put(kustomization(REV1, REV1, 'True'));
    idle.start();
    await new Promise((r) => setTimeout(r, 50));
    expect(idle.observing).toBe(false);
    expect(await store.seen('Kustomization flux-system/app')).toBe(false);
    expect(sent).toHaveLength(0);
  });
});

/** A Kustomization without `wait`, applied and Ready at `applied`, its inventory a Deployment (kustomize-controller 1.9). */
function withoutWait(applied: string): KubeObject {
  const k = kustomization(applied, applied, 'True');
  return {
    ...k,
    spec: { sourceRef: { kind: 'GitRepository', name: 'app' } },
    status: { ...(k as unknown as { status: object }).status, inventory: { entries: [{ id: 'web_web_apps_Deployment', v: 'v1' }] } },
  } as KubeObject;
}

/** A Deployment whose rollout is complete, or still waiting for its new ReplicaSet (kstatus: InProgress). */
function deployment(rolledOut: boolean): KubeObject {
  return {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name: 'web', namespace: 'web', generation: 2 },
    spec: { replicas: 1, template: { spec: { containers: [{ name: 'web', image: 'ghcr.io/podtato/head:0.2.0' }] } } },
    status: rolledOut
      ? {
          observedGeneration: 2,
          replicas: 1,
          updatedReplicas: 1,
          readyReplicas: 1,
          availableReplicas: 1,
          conditions: [
            { type: 'Available', status: 'True', reason: 'MinimumReplicasAvailable' },
            { type: 'Progressing', status: 'True', reason: 'NewReplicaSetAvailable' },
          ],
        }
      : { observedGeneration: 2, replicas: 2, updatedReplicas: 1, readyReplicas: 1, availableReplicas: 1, unavailableReplicas: 1 },
  } as KubeObject;
}

type Step = { put: KubeObject } | { wake: true } | { expect: Array<'pass' | 'fail'> };

/**
 * The one judge (ADR 14), table-driven: whatever the wake-ups (notifications, in any number and order), the verdict
 * announced is the one the deployment rules give for the object as the watches hold it.
 */
describe('the observer decides from the objects; a wake-up only makes it look', () => {
  const rows: Array<{ name: string; steps: Step[] }> = [
    {
      name: 'a wake-up before health is known (no wait, the Deployment still rolling out): no pass until it has rolled out',
      steps: [
        { put: withoutWait(REV1) },
        { put: deployment(true) },
        { expect: [] },
        { put: deployment(false) },
        { put: withoutWait(REV2) },
        { wake: true },
        { wake: true },
        { expect: [] },
        { put: deployment(true) },
        { expect: ['pass'] },
      ],
    },
    {
      name: 'repeated and stale wake-ups after the announcement change nothing',
      steps: [
        { put: kustomization(REV1, REV1, 'True') },
        { expect: [] },
        { put: kustomization(REV2, REV2, 'True') },
        { expect: ['pass'] },
        { wake: true },
        { wake: true },
        { wake: true },
        { expect: ['pass'] },
      ],
    },
    {
      name: 'a failure the controller still retries is not announced; the retry that succeeds is, once',
      steps: [
        { put: kustomization(REV1, REV1, 'True') },
        { expect: [] },
        { put: kustomization(REV2, REV1, 'Unknown', 'ProgressingWithRetry') },
        { wake: true },
        { expect: [] },
        { put: kustomization(REV2, REV2, 'True') },
        { wake: true },
        { expect: ['pass'] },
      ],
    },
  ];

  it.each(rows)('$name', async ({ steps }) => {
    const { cluster, ks, sent, observer } = setup();
    const deployments = cluster.of('deployments');
    observer.start();
    await waitFor(async () => observer.observing);
    for (const step of steps) {
      if ('put' in step) (step.put.kind === 'Deployment' ? deployments : ks).put(step.put);
      else if ('wake' in step) observer.wake('Kustomization', 'flux-system', 'app');
      else {
        // Every look queued so far has run (the chain per object settles before a timer turn passes).
        await new Promise((r) => setTimeout(r, 30));
        expect(sent.map((e) => e.data.result)).toEqual(step.expect);
      }
    }
  });
});
