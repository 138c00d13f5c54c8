// The Flux rules, one row per observed state (docs/verdicts.md (Flux) is the same table for users). Objects here are
// built from the controllers' API types and source (kustomize-controller 1.9, helm-controller 1.6, source-controller
// 1.9); fixtures.test.ts runs the same rules over objects captured from the real controllers.
import { describe, expect, it } from '@jest/globals';
import {
  checkGitRepositoryRef,
  evaluateGitRepository,
  evaluateHelmRelease,
  evaluateKustomization,
  handledSince,
  IMAGE_SETTLE_MS,
  sameRepository,
  specMayCarryImage,
  type Clock,
  type FluxObject,
  type FluxView,
  type HelmReleaseContext,
} from '../../../src/flux/evaluate.js';
import { sameImage } from '../../../src/flux/inventory.js';
import type { WorkloadObject } from '../../../src/k8s/kstatus.js';
import { commitOf, relationFrom, type Expectation, type Relation } from '../../../src/readiness.js';

const OURS = 'a'.repeat(40);
const OLD = 'b'.repeat(40);
const LATER = 'c'.repeat(40);
const IMAGE = 'ghcr.io/podtato/head:0.2.0';
const expected = (
  known: Record<string, Relation> = {
    [OLD]: 'unrelated',
    [LATER]: 'descendant',
    [OLD.slice(0, 12)]: 'unrelated',
    [OURS.slice(0, 12)]: 'same',
  },
): Expectation => ({
  commit: OURS,
  relation: relationFrom(OURS, new Map(Object.entries(known))),
});

function viewOf(objects: { kustomizations?: FluxObject[]; charts?: FluxObject[]; workloads?: WorkloadObject[] } = {}): FluxView {
  const find = <T extends { metadata: { name: string; namespace?: string } }>(list: T[] | undefined, ns: string, name: string) =>
    list?.find((o) => o.metadata.name === name && (o.metadata.namespace ?? '') === ns);
  return {
    kustomization: (ns, name) => find(objects.kustomizations, ns, name),
    helmChart: (ns, name) => find(objects.charts, ns, name),
    workload: (ref) =>
      objects.workloads?.find((w) => w.kind === ref.kind && w.metadata.name === ref.name && w.metadata.namespace === ref.namespace),
  };
}
const clock = (now = 0, firstSeen = 0): Clock => ({ now, since: () => firstSeen });
const ctx = (extra: Partial<HelmReleaseContext> = {}): HelmReleaseContext => ({
  view: viewOf(),
  images: [],
  clock: clock(),
  chartFromOurRepo: false,
  ...extra,
});

const ready = (status: 'True' | 'False' | 'Unknown', reason: string, message = '', observedGeneration = 2) => ({
  type: 'Ready',
  status,
  reason,
  message,
  observedGeneration,
});
const stalled = (reason: string, message = '') => ({ type: 'Stalled', status: 'True' as const, reason, message, observedGeneration: 2 });
const reconciling = (reason: string, message = '') => ({
  type: 'Reconciling',
  status: 'True' as const,
  reason,
  message,
  observedGeneration: 2,
});

function kustomization(status: FluxObject['status'], spec: Record<string, unknown> = { wait: true }, name = 'app'): FluxObject {
  return {
    kind: 'Kustomization',
    metadata: { name, namespace: 'flux-system', generation: 2 },
    spec: { path: './apps/web', sourceRef: { kind: 'GitRepository', name: 'fleet' }, ...spec },
    status,
  };
}
const appliedStatus = (sha = OURS, extra: Partial<NonNullable<FluxObject['status']>> = {}): FluxObject['status'] => ({
  observedGeneration: 2,
  lastAppliedRevision: `main@sha1:${sha}`,
  lastAttemptedRevision: `main@sha1:${sha}`,
  conditions: [ready('True', 'ReconciliationSucceeded', `Applied revision: main@sha1:${sha}`)],
  ...extra,
});
const cast = (s: unknown) => s as FluxObject['status'];

describe('Flux Kustomization: has our commit been applied?', () => {
  it.each([
    ['passes once our commit is applied and Ready at the current generation', appliedStatus(), 'passed'],
    ['passes on a later commit that contains ours', appliedStatus(LATER), 'passed'],
    ['waits while the old revision is still the Ready one (the stale-success trap)', appliedStatus(OLD), 'pending'],
    [
      'ignores a leftover failure of an older revision',
      {
        observedGeneration: 2,
        lastAppliedRevision: `main@sha1:${OLD}`,
        lastAttemptedRevision: `main@sha1:${OLD}`,
        conditions: [ready('False', 'BuildFailed', 'old breakage')],
      },
      'pending',
    ],
    [
      'fails early when our revision cannot be built',
      {
        observedGeneration: 2,
        lastAppliedRevision: `main@sha1:${OLD}`,
        lastAttemptedRevision: `main@sha1:${OURS}`,
        conditions: [ready('False', 'BuildFailed', 'kustomize build failed: accumulating resources')],
      },
      'failed',
    ],
    [
      'fails when health checks fail at our revision',
      {
        observedGeneration: 2,
        lastAppliedRevision: `main@sha1:${OLD}`,
        lastAttemptedRevision: `main@sha1:${OURS}`,
        conditions: [ready('False', 'HealthCheckFailed', 'timeout waiting for: [Deployment/default/app status: InProgress]')],
      },
      'failed',
    ],
    [
      'waits while reconciling our revision',
      {
        observedGeneration: 2,
        lastAppliedRevision: `main@sha1:${OLD}`,
        lastAttemptedRevision: `main@sha1:${OURS}`,
        conditions: [ready('Unknown', 'Progressing', 'Reconciliation in progress'), reconciling('Progressing')],
      },
      'pending',
    ],
    [
      'waits when Ready describes an older generation',
      { ...appliedStatus(), conditions: [ready('True', 'ReconciliationSucceeded', '', 1)] },
      'pending',
    ],
    [
      'fails when stalled at our revision',
      {
        observedGeneration: 2,
        lastAttemptedRevision: `main@sha1:${OURS}`,
        conditions: [ready('False', 'InvalidPath'), stalled('InvalidPath', 'path ./nope not found')],
      },
      'failed',
    ],
    // item 7: transient reasons are not final
    [
      'waits when health checks were canceled by a newer revision (HealthCheckCanceled)',
      {
        observedGeneration: 2,
        lastAppliedRevision: `main@sha1:${OLD}`,
        lastAttemptedRevision: `main@sha1:${OURS}`,
        conditions: [ready('False', 'HealthCheckCanceled', 'New reconciliation triggered by GitRepository/flux-system/fleet')],
      },
      'pending',
    ],
    [
      'waits while the source artifact is missing (ArtifactFailed)',
      {
        observedGeneration: 2,
        lastAppliedRevision: `main@sha1:${OLD}`,
        lastAttemptedRevision: `main@sha1:${OURS}`,
        conditions: [ready('False', 'ArtifactFailed', 'Source artifact not found, retrying in 30s')],
      },
      'pending',
    ],
    // item 18: stalled before our revision was attempted
    [
      'fails when stalled on an invalid CEL expression before trying our commit',
      {
        observedGeneration: 2,
        lastAttemptedRevision: `main@sha1:${OLD}`,
        conditions: [ready('False', 'InvalidCELExpression', 'terminal error'), stalled('InvalidCELExpression', 'invalid expression')],
      },
      'failed',
    ],
    [
      'fails when stalled on a denied cross-namespace source before trying our commit',
      {
        observedGeneration: -1,
        conditions: [
          ready('False', 'AccessDenied', 'cross-namespace references are not allowed'),
          stalled('AccessDenied', 'cross-namespace references are not allowed'),
        ],
      },
      'failed',
    ],
  ] as const)('%s', (_name, status, verdict) => {
    expect(evaluateKustomization(kustomization(cast(status)), expected(), ctx()).state).toBe(verdict);
  });

  it("reports Flux's own message when it fails", () => {
    const v = evaluateKustomization(
      kustomization({
        observedGeneration: 2,
        lastAttemptedRevision: `main@sha1:${OURS}`,
        conditions: [ready('False', 'BuildFailed', 'kustomize build failed: missing resource x.yaml')],
      }),
      expected(),
      ctx(),
    );
    expect(v).toMatchObject({
      state: 'failed',
      message: expect.stringContaining('BuildFailed: kustomize build failed: missing resource x.yaml'),
    });
  });

  it('asks the waiter about a revision it cannot place', () => {
    const v = evaluateKustomization(kustomization(appliedStatus('d'.repeat(40))), expected(), ctx());
    expect(v).toEqual({ state: 'pending', reason: expect.any(String), unknownRevision: 'd'.repeat(40) });
  });

  it('reports a suspended Kustomization at once', () => {
    expect(evaluateKustomization(kustomization({}, { suspend: true }), expected(), ctx())).toMatchObject({
      state: 'failed',
      message: expect.stringContaining('suspended'),
    });
  });
});

describe('Flux Kustomization: a dependsOn dependency (item 18)', () => {
  const waiting = kustomization(
    {
      observedGeneration: 2,
      lastAppliedRevision: `main@sha1:${OLD}`,
      lastAttemptedRevision: `main@sha1:${OLD}`,
      conditions: [ready('False', 'DependencyNotReady', "dependency 'flux-system/infra' is not ready")],
    },
    { wait: true, dependsOn: [{ name: 'infra' }] },
  );
  it.each([
    [
      'fails when the dependency failed at our commit',
      kustomization(
        {
          observedGeneration: 2,
          lastAttemptedRevision: `main@sha1:${OURS}`,
          lastAppliedRevision: `main@sha1:${OLD}`,
          conditions: [ready('False', 'BuildFailed', 'infra build failed')],
        },
        {},
        'infra',
      ),
      'failed',
    ],
    [
      'waits while the dependency works on our commit',
      kustomization(
        {
          observedGeneration: 2,
          lastAttemptedRevision: `main@sha1:${OURS}`,
          lastAppliedRevision: `main@sha1:${OLD}`,
          conditions: [ready('Unknown', 'Progressing'), reconciling('Progressing')],
        },
        {},
        'infra',
      ),
      'pending',
    ],
    [
      'waits when the dependency failed at an older commit',
      kustomization(
        { observedGeneration: 2, lastAttemptedRevision: `main@sha1:${OLD}`, conditions: [ready('False', 'BuildFailed', 'old')] },
        {},
        'infra',
      ),
      'pending',
    ],
  ] as const)('%s', (_name, dependency, verdict) => {
    const v = evaluateKustomization(waiting, expected(), ctx({ view: viewOf({ kustomizations: [dependency] }) }));
    expect(v.state).toBe(verdict);
    if (verdict === 'failed')
      expect(v).toMatchObject({
        message: expect.stringMatching(/waits for its dependency Kustomization flux-system\/infra, which failed: .*infra build failed/),
      });
  });
});

const deployment = (image: string, rollout: 'done' | 'rolling' | 'deadline' = 'done'): WorkloadObject => ({
  kind: 'Deployment',
  metadata: { name: 'web', namespace: 'app', generation: 5 },
  spec: {
    replicas: 1,
    progressDeadlineSeconds: 600,
    template: { spec: { containers: [{ name: 'web', image }] } },
  } as WorkloadObject['spec'],
  status:
    rollout === 'done'
      ? {
          observedGeneration: 5,
          replicas: 1,
          updatedReplicas: 1,
          readyReplicas: 1,
          availableReplicas: 1,
          conditions: [
            { type: 'Progressing', status: 'True', reason: 'NewReplicaSetAvailable' },
            { type: 'Available', status: 'True' },
          ],
        }
      : rollout === 'rolling'
        ? {
            observedGeneration: 5,
            replicas: 1,
            updatedReplicas: 1,
            readyReplicas: 0,
            availableReplicas: 0,
            conditions: [
              { type: 'Progressing', status: 'True', reason: 'ReplicaSetUpdated' },
              { type: 'Available', status: 'False' },
            ],
          }
        : {
            observedGeneration: 5,
            replicas: 1,
            updatedReplicas: 1,
            conditions: [
              {
                type: 'Progressing',
                status: 'False',
                reason: 'ProgressDeadlineExceeded',
                message: 'ReplicaSet "web-5d" has timed out progressing.',
              },
            ],
          },
});
const inventory = (...ids: string[]) => ({ entries: ids.map((id) => ({ id, v: 'v1' })) });

describe('Flux Kustomization without spec.wait: the workloads in its inventory (item 2)', () => {
  const noWait = (inv = inventory('app_web_apps_Deployment', 'app_web__Service')) =>
    kustomization(appliedStatus(OURS, { inventory: inv }), { wait: false });
  it.each([
    ['passes when every workload rolled out', [deployment(IMAGE)], 'passed', /rolled out/],
    [
      'waits while a workload is rolling out, saying Flux did not check health',
      [deployment(IMAGE, 'rolling')],
      'pending',
      /without checking health \(spec.wait is off\); Deployment app\/web is rolling out: available 0\/1/,
    ],
    [
      'fails when a workload exceeded its progress deadline',
      [deployment(IMAGE, 'deadline')],
      'failed',
      /Deployment app\/web failed to roll out: progress deadline exceeded/,
    ],
    ['waits until the workload watch has the workload', [], 'pending', /waiting to see its Deployment app\/web/],
  ] as const)('%s', (_name, workloads, verdict, text) => {
    const v = evaluateKustomization(noWait(), expected(), ctx({ view: viewOf({ workloads: [...workloads] }), images: [IMAGE] }));
    expect(v.state).toBe(verdict);
    expect(v.state === 'pending' ? v.reason : v.message).toMatch(text);
  });

  it('trusts Flux with spec.wait: true (its own kstatus health checks)', () => {
    const k = kustomization(appliedStatus(OURS, { inventory: inventory('app_web_apps_Deployment') }), { wait: true });
    expect(
      evaluateKustomization(k, expected(), ctx({ view: viewOf({ workloads: [deployment(IMAGE, 'rolling')] }), images: [IMAGE] })).state,
    ).toBe('passed');
  });

  it('trusts Flux with spec.healthChecks', () => {
    const k = kustomization(appliedStatus(OURS, { inventory: inventory('app_web_apps_Deployment') }), {
      wait: false,
      healthChecks: [{ kind: 'Deployment', name: 'web', namespace: 'app' }],
    });
    expect(evaluateKustomization(k, expected(), ctx({ view: viewOf({ workloads: [deployment(IMAGE, 'rolling')] }) })).state).toBe('passed');
  });
});

describe('Flux: the image we wrote must be what runs (item 3)', () => {
  const k = kustomization(appliedStatus(OURS, { inventory: inventory('app_web_apps_Deployment') }));
  const old = [deployment('ghcr.io/podtato/head:0.1.0')];
  it('passes when a workload runs the image we wrote', () => {
    expect(evaluateKustomization(k, expected(), ctx({ view: viewOf({ workloads: [deployment(IMAGE)] }), images: [IMAGE] })).state).toBe(
      'passed',
    );
  });
  it('waits a settle window first: the workload watch may trail the Kustomization watch', () => {
    const v = evaluateKustomization(k, expected(), ctx({ view: viewOf({ workloads: old }), images: [IMAGE], clock: clock(1_000, 0) }));
    expect(v).toEqual({ state: 'pending', reason: expect.stringContaining(`no workload runs ${IMAGE} yet`), recheckAt: IMAGE_SETTLE_MS });
  });
  it('asks no image of a later commit that rewrote the file we edited (a later deployment superseded ours)', () => {
    const later = kustomization(appliedStatus(LATER, { inventory: inventory('app_web_apps_Deployment') }));
    const superseded = expected({ [LATER]: 'superseded' });
    const v = evaluateKustomization(
      later,
      superseded,
      ctx({ view: viewOf({ workloads: old }), images: [IMAGE], clock: clock(IMAGE_SETTLE_MS, 0) }),
    );
    expect(v.state).toBe('passed');
  });
  it('then fails, naming the target, what it deploys, the file and what runs instead', () => {
    const v = evaluateKustomization(
      k,
      expected(),
      ctx({
        view: viewOf({ workloads: old }),
        images: [IMAGE],
        files: ['apps/other/kustomization.yaml'],
        clock: clock(IMAGE_SETTLE_MS, 0),
      }),
    );
    expect(v).toMatchObject({ state: 'failed', revision: OURS });
    expect(v.state === 'failed' && v.message).toBe(
      `Kustomization flux-system/app applied our commit ${OURS.slice(0, 12)} and is ready, but none of its workloads runs ${IMAGE} (they run ghcr.io/podtato/head:0.1.0): the file we edited (apps/other/kustomization.yaml) is not part of what Kustomization flux-system/app deploys (spec.path ./apps/web)`,
    );
  });
  it('does not judge images when the inventory holds objects that may run them (a HelmRelease, a CronJob)', () => {
    const withRelease = kustomization(
      appliedStatus(OURS, { inventory: inventory('app_web_apps_Deployment', 'app_web_helm.toolkit.fluxcd.io_HelmRelease') }),
    );
    expect(
      evaluateKustomization(
        withRelease,
        expected(),
        ctx({ view: viewOf({ workloads: old }), images: [IMAGE], clock: clock(IMAGE_SETTLE_MS) }),
      ).state,
    ).toBe('passed');
  });
  it('does not judge images of a roll-back (it writes none)', () => {
    expect(evaluateKustomization(k, expected(), ctx({ view: viewOf({ workloads: old }), images: [] })).state).toBe('passed');
  });
  it.each([
    ['nginx:1.27', 'docker.io/library/nginx:1.27', true],
    ['docker.io/nginx:1.27', 'nginx:1.27', true],
    ['ghcr.io/podtato/head:0.2.0', 'ghcr.io/podtato/head:0.2.0@sha256:' + 'e'.repeat(64), true],
    ['ghcr.io/podtato/head@sha256:' + 'e'.repeat(64), 'ghcr.io/podtato/head:0.2.0@sha256:' + 'e'.repeat(64), true],
    ['ghcr.io/podtato/head@sha256:' + 'e'.repeat(64), 'ghcr.io/podtato/head:0.2.0', false],
    ['ghcr.io/podtato/head:0.2.0', 'ghcr.io/podtato/head:0.1.0', false],
    ['ghcr.io/podtato/head:0.2.0', 'ghcr.io/podtato/body:0.2.0', false],
    ['registry:5000/app', 'registry:5000/app:latest', true],
    ['ghcr.io/podtato/head:0.2.0', 'mirror.example.com/podtato/head:0.2.0', true],
    ['ghcr.io/podtato/head:0.2.0', 'mirror.example.com/podtato/head:0.1.0', false],
  ] as const)('image %s runs as %s: %s', (wrote, runs, same) => {
    expect(sameImage(wrote, runs)).toBe(same);
  });
});

describe('Flux Kustomization applied by another Kustomization (item 4)', () => {
  it.each([
    ['spec.images', { images: [{ name: 'ghcr.io/podtato/head', newTag: '0.1.0' }] }, true],
    ['postBuild.substitute', { postBuild: { substitute: { TAG: '0.1.0' } } }, true],
    [
      'neither: our change is in the files it reads',
      { images: [], postBuild: { substituteFrom: [{ kind: 'ConfigMap', name: 'vars' }] } },
      false,
    ],
  ] as const)('follows the manager when its own spec holds %s: %s', (_name, spec, follow) => {
    expect(specMayCarryImage(kustomization({}, spec))).toBe(follow);
  });

  const parentApplied = kustomization(appliedStatus(OURS), { wait: true }, 'flux-system');
  const child = kustomization(appliedStatus(OURS, { lastHandledReconcileAt: 'after' }), {
    wait: true,
    images: [{ name: 'ghcr.io/podtato/head', newTag: '0.2.0' }],
  });
  it.each([
    [
      'waits while the manager has not applied our commit',
      kustomization(appliedStatus(OLD), {}, 'flux-system'),
      child,
      undefined,
      'pending',
    ],
    [
      'fails when the manager failed at our commit',
      kustomization(
        { observedGeneration: 2, lastAttemptedRevision: `main@sha1:${OURS}`, conditions: [ready('False', 'BuildFailed', 'parent broken')] },
        {},
        'flux-system',
      ),
      child,
      undefined,
      'failed',
    ],
    [
      'waits when the child applied our revision but not since the manager applied its new spec',
      parentApplied,
      child,
      'later-token',
      'pending',
    ],
    ['passes once the child reconciled after the manager applied our commit', parentApplied, child, 'after', 'passed'],
  ] as const)('%s', (_name, manager, target, requestedAfterApply, verdict) => {
    expect(evaluateKustomization(target, expected(), ctx({ manager, ...(requestedAfterApply ? { requestedAfterApply } : {}) })).state).toBe(
      verdict,
    );
  });
});

describe('Flux HelmRelease applied by a Kustomization (items 1, 5, 6, 7, 18)', () => {
  const managerApplied = kustomization(appliedStatus(OURS), { wait: false }, 'apps');
  const managerWorking = kustomization(
    {
      observedGeneration: 2,
      lastAppliedRevision: `main@sha1:${OLD}`,
      lastAttemptedRevision: `main@sha1:${OURS}`,
      conditions: [ready('Unknown', 'Progressing', 'Health check in progress'), reconciling('Progressing')],
    },
    { wait: true },
    'apps',
  );
  const release = (
    conditions: unknown[],
    status: Partial<NonNullable<FluxObject['status']>> = {},
    generation = 3,
    spec: Record<string, unknown> = {},
  ): FluxObject => ({
    kind: 'HelmRelease',
    metadata: { name: 'web', namespace: 'apps', generation },
    spec: { chart: { spec: { chart: 'web', sourceRef: { kind: 'HelmRepository', name: 'charts' } } }, ...spec },
    status: { observedGeneration: 3, lastAttemptedGeneration: 3, conditions: conditions as never, ...status },
  });
  const readyAt3 = [
    { type: 'Ready', status: 'True', reason: 'UpgradeSucceeded', message: 'Helm upgrade succeeded', observedGeneration: 3 },
  ];
  const failedAt3 = (reason: string, message = `${reason} message`) => [
    { type: 'Ready', status: 'False', reason, message, observedGeneration: 3 },
  ];

  it.each([
    // item 1: evidence that helm-controller acted after our commit was applied
    [
      'waits for a reconcile after the manager applied our commit, though Ready at its generation',
      managerApplied,
      release(readyAt3),
      {},
      'pending',
    ],
    [
      'passes once helm-controller handled the request we made after the manager applied our commit',
      managerApplied,
      release(readyAt3, { lastHandledReconcileAt: 'after' }),
      { requestedAfterApply: 'after' },
      'passed',
    ],
    [
      'passes when a later request was handled (another deployment through the same release)',
      managerApplied,
      release(readyAt3, { lastHandledReconcileAt: '2026-11-24T12:00:05Z' }),
      { requestedAfterApply: '2026-11-24T12:00:00.000Z' },
      'passed',
    ],
    ['waits while the manager has not applied our commit', managerWorking, release(readyAt3), {}, 'pending'],
    // item 5: a leftover failure is not ours
    [
      'ignores a leftover upgrade failure while the manager starts on our commit',
      managerWorking,
      release([
        ...failedAt3('UpgradeFailed'),
        { ...stalled('RetriesExceeded', 'Failed to upgrade after 1 attempt(s)'), observedGeneration: 3 },
      ]),
      { startGeneration: 3 },
      'pending',
    ],
    [
      'counts a failure once the manager changed the spec and helm-controller attempted it',
      managerWorking,
      release([
        ...failedAt3('UpgradeFailed'),
        { ...stalled('RetriesExceeded', 'Failed to upgrade after 1 attempt(s)'), observedGeneration: 3 },
      ]),
      { startGeneration: 2 },
      'failed',
    ],
    [
      'counts a failure of the reconcile we requested after the manager applied our commit',
      managerApplied,
      release(failedAt3('UpgradeFailed'), { lastHandledReconcileAt: 'after' }),
      { requestedAfterApply: 'after' },
      'failed',
    ],
    // item 6: remediation retries left
    [
      'waits while helm-controller retries after a rolled-back upgrade',
      managerApplied,
      release(
        [
          ...failedAt3('RollbackSucceeded', 'Helm rollback to previous release apps/web.v1 succeeded'),
          reconciling('ProgressingWithRetry', 'retrying after 5s'),
        ],
        { lastHandledReconcileAt: 'after' },
      ),
      { requestedAfterApply: 'after' },
      'pending',
    ],
    [
      'fails when retries are exhausted',
      managerApplied,
      release(
        [
          ...failedAt3('RollbackSucceeded'),
          { ...stalled('RetriesExceeded', 'Failed to upgrade after 2 attempt(s)'), observedGeneration: 3 },
        ],
        { lastHandledReconcileAt: 'after' },
      ),
      { requestedAfterApply: 'after' },
      'failed',
    ],
    // item 7: transient reasons
    [
      'waits on ArtifactFailed',
      managerApplied,
      release(failedAt3('ArtifactFailed', 'Source not ready: artifact not found'), { lastHandledReconcileAt: 'after' }),
      { requestedAfterApply: 'after' },
      'pending',
    ],
    [
      'waits on ValuesError (a values ConfigMap not there yet)',
      managerApplied,
      release(failedAt3('ValuesError', 'could not resolve ConfigMap reference'), { lastHandledReconcileAt: 'after' }),
      { requestedAfterApply: 'after' },
      'pending',
    ],
    // item 18: helm-controller's own configuration errors and early stalls
    ...(['ChartMutateError', 'RESTClientError', 'ResourceManagerError', 'FactoryError'] as const).map(
      (reason) => [`fails at once on ${reason}`, managerWorking, release(failedAt3(reason)), {}, 'failed'] as const,
    ),
    [
      'fails at once when stalled on an invalid CEL health check',
      managerWorking,
      release([...failedAt3('InvalidCELExpression'), { ...stalled('InvalidCELExpression', 'bad expr'), observedGeneration: 3 }]),
      {},
      'failed',
    ],
  ] as const)('%s', (_name, manager, hr, extra, verdict) => {
    expect(evaluateHelmRelease(hr, expected(), ctx({ manager, ...extra })).state).toBe(verdict);
  });

  it('says why it still waits after the manager applied our commit', () => {
    expect(evaluateHelmRelease(release(readyAt3), expected(), ctx({ manager: managerApplied }))).toMatchObject({
      reason: expect.stringContaining(
        'waiting for helm-controller to reconcile it after Kustomization flux-system/apps applied our commit',
      ),
    });
  });

  it('with the chart in our repository, needs the chart built from our commit as well (item 1)', () => {
    const fromGit = (revision: string) =>
      release(readyAt3, { lastHandledReconcileAt: 'after', lastAttemptedRevision: revision }, 3, {
        chart: { spec: { chart: './charts/web', reconcileStrategy: 'Revision', sourceRef: { kind: 'GitRepository', name: 'fleet' } } },
      });
    const c = ctx({ manager: managerApplied, requestedAfterApply: 'after', chartFromOurRepo: true });
    expect(evaluateHelmRelease(fromGit(`0.1.0+${OLD.slice(0, 12)}`), expected(), c).state).toBe('pending');
    expect(evaluateHelmRelease(fromGit(`0.1.0+${OURS.slice(0, 12)}`), expected(), c).state).toBe('passed');
  });
});

describe('Flux HelmRelease with its chart in our repository, no Kustomization (item 14)', () => {
  const release = (
    status: Partial<NonNullable<FluxObject['status']>>,
    chartSpec: Record<string, unknown> = { reconcileStrategy: 'Revision' },
  ): FluxObject => ({
    kind: 'HelmRelease',
    metadata: { name: 'web', namespace: 'flux-system', generation: 1 },
    spec: { chart: { spec: { chart: './charts/web', sourceRef: { kind: 'GitRepository', name: 'fleet' }, ...chartSpec } } },
    status: {
      observedGeneration: 1,
      helmChart: 'flux-system/flux-system-web',
      conditions: [{ type: 'Ready', status: 'True', reason: 'UpgradeSucceeded', observedGeneration: 1 }],
      ...status,
    },
  });
  const chart = (conditions: unknown[], source: string): FluxObject => ({
    kind: 'HelmChart',
    metadata: { name: 'flux-system-web', namespace: 'flux-system', generation: 1 },
    status: { observedSourceArtifactRevision: `main@sha1:${source}`, conditions: conditions as never },
  });

  it.each([
    ['passes on a chart built from our commit', `0.1.0+${OURS.slice(0, 12)}`, 'passed'],
    ['passes on a chart built from our commit with valuesFiles (<ver>+<sha12>.<generation>)', `0.1.0+${OURS.slice(0, 12)}.3`, 'passed'],
    ['waits while the chart is an older build', `0.1.0+${OLD.slice(0, 12)}`, 'pending'],
  ] as const)('%s', (_name, revision, verdict) => {
    expect(evaluateHelmRelease(release({ lastAttemptedRevision: revision }), expected(), ctx({ chartFromOurRepo: true })).state).toBe(
      verdict,
    );
  });

  it('fails at once with the ChartVersion strategy, saying why', () => {
    const v = evaluateHelmRelease(release({ lastAttemptedRevision: '0.1.0' }, {}), expected(), ctx({ chartFromOurRepo: true }));
    expect(v).toMatchObject({
      state: 'failed',
      message: expect.stringMatching(
        /reconcileStrategy ChartVersion \(the default\).*never produces a new chart; set spec.chart.spec.reconcileStrategy: Revision/,
      ),
    });
  });

  it('fails when the HelmChart cannot be built from our commit', () => {
    const broken = chart(
      [
        { type: 'BuildFailed', status: 'True', reason: 'ChartPackageError', message: 'values file not found: values-prod.yaml' },
        { type: 'Ready', status: 'False', reason: 'ChartPackageError' },
      ],
      OURS,
    );
    const v = evaluateHelmRelease(
      release({ lastAttemptedRevision: `0.1.0+${OLD.slice(0, 12)}` }),
      expected(),
      ctx({ chartFromOurRepo: true, view: viewOf({ charts: [broken] }) }),
    );
    expect(v).toMatchObject({
      state: 'failed',
      message: expect.stringContaining('HelmChart flux-system/flux-system-web could not be built at'),
    });
  });

  it('does not hold an older chart build failure against us', () => {
    const broken = chart([{ type: 'BuildFailed', status: 'True', reason: 'ChartPackageError', message: 'old' }], OLD);
    expect(
      evaluateHelmRelease(
        release({ lastAttemptedRevision: `0.1.0+${OLD.slice(0, 12)}` }),
        expected(),
        ctx({ chartFromOurRepo: true, view: viewOf({ charts: [broken] }) }),
      ).state,
    ).toBe('pending');
  });

  it.each([
    ['0.1.0+86eb1df762d6', '86eb1df762d6'],
    ['0.1.0+86eb1df762d6.3', '86eb1df762d6'],
    ['0.1.0+3', undefined],
    ['main@sha1:' + OURS, OURS],
  ])('reads the commit in %s', (revision, sha) => {
    expect(commitOf(revision)).toBe(sha);
  });
});

describe('Flux GitRepository', () => {
  const repo = (spec: Record<string, unknown>, status: FluxObject['status'] = {}): FluxObject => ({
    kind: 'GitRepository',
    metadata: { name: 'fleet', namespace: 'flux-system', generation: 1 },
    spec: { url: 'https://git.example.com/team/fleet.git', ...spec },
    status,
  });
  const wanted = { repoUrl: 'https://git.example.com/team/fleet', branch: 'main' };

  describe('reads our repository and branch, checked at the start (item 13)', () => {
    it.each([
      ['our branch', { ref: { branch: 'main' } }, undefined],
      ['our branch by ref name', { ref: { name: 'refs/heads/main' } }, undefined],
      ['another branch', { ref: { branch: 'dev' } }, /tracks branch dev, not branch main/],
      ['no ref: master by default', {}, /tracks branch master, not branch main/],
      ['a tag', { ref: { tag: 'v1.4.0', branch: 'main' } }, /tracks tag v1.4.0/],
      ['a semver range', { ref: { semver: '>=1.0.0' } }, /tracks semver >=1.0.0/],
      ['a pinned commit', { ref: { branch: 'main', commit: OLD } }, /tracks commit/],
      [
        'another repository',
        { url: 'https://git.example.com/team/other.git', ref: { branch: 'main' } },
        /reads https:\/\/git.example.com\/team\/other.git, not our repository/,
      ],
    ] as const)('%s', (_name, spec, message) => {
      const v = checkGitRepositoryRef(repo(spec), wanted);
      if (message) expect(v).toMatchObject({ state: 'failed', message: expect.stringMatching(message) });
      else expect(v).toBeUndefined();
    });

    it.each([
      ['https://git.example.com/team/fleet.git', 'https://user@git.example.com:443/team/fleet/', true],
      ['git@github.com:team/fleet.git', 'ssh://git@github.com/team/fleet', true],
      ['http://127.0.0.1:3000/fleet.git', 'http://127.0.0.1:3001/fleet.git', false],
      ['https://git.example.com/team/fleet', 'https://git.example.com/team/fleet-2', false],
    ])('%s and %s are the same repository: %s', (a, b, same) => {
      expect(sameRepository(a, b)).toBe(same);
    });
  });

  const readyAt = (sha: string) =>
    [
      { type: 'Ready', status: 'True' as const, reason: 'Succeeded', observedGeneration: 1 },
      { type: 'ArtifactInStorage', status: 'True' as const, reason: 'Succeeded' },
    ].map((c) => ({ ...c, message: `stored artifact for revision 'main@sha1:${sha}'` }));
  it.each([
    [
      'fails when the fetch after our request fails',
      {
        lastHandledReconcileAt: 't1',
        conditions: [
          { type: 'FetchFailed', status: 'True', reason: 'AuthenticationFailed', message: 'authentication required' },
          { type: 'Ready', status: 'False', reason: 'AuthenticationFailed' },
        ],
      },
      'failed',
    ],
    [
      'does not hold an older failure against us',
      {
        lastHandledReconcileAt: 't0',
        conditions: [
          { type: 'FetchFailed', status: 'True', reason: 'AuthenticationFailed' },
          { type: 'Ready', status: 'False', reason: 'AuthenticationFailed' },
        ],
      },
      undefined,
    ],
    // item 15
    [
      'fails when the signature of our commit cannot be verified',
      {
        lastHandledReconcileAt: 't1',
        conditions: [
          { type: 'SourceVerified', status: 'False', reason: 'VerificationError', message: 'signature verification of commit failed' },
        ],
      },
      'failed',
    ],
    // item 13: after our request is handled, an artifact without our commit is final
    [
      'fails when the artifact fetched after our request does not contain our commit',
      { lastHandledReconcileAt: 't1', artifact: { revision: `main@sha1:${OLD}` }, conditions: readyAt(OLD) },
      'failed',
    ],
    [
      // Seen in faults.e2e: kube-apiserver went away between source-controller storing our artifact and its status
      // write; the retried reconcile (Reconciling=True, ProgressingWithRetry: fluxcd/source-controller
      // gitrepository_controller.go reconcile → ProgressiveStatus) showed our token beside the old artifact.
      'says nothing while Reconciling is True, even with our token handled and an old artifact',
      {
        lastHandledReconcileAt: 't1',
        artifact: { revision: `main@sha1:${OLD}` },
        conditions: [...readyAt(OLD), { type: 'Reconciling', status: 'True', reason: 'ProgressingWithRetry' }],
      },
      undefined,
    ],
    [
      // Seen in faults.e2e (kube-apiserver away after source-controller stored our artifact): a later status write
      // carried our token beside the artifact from before our request, Ready=True, no Reconciling.
      'says nothing when the artifact is still the one from before our request, even with our token handled',
      { lastHandledReconcileAt: 't1', artifact: { revision: `main@sha1:${OLD}` }, conditions: readyAt(OLD), before: `main@sha1:${OLD}` },
      undefined,
    ],
    [
      'says nothing when the artifact contains our commit',
      { lastHandledReconcileAt: 't1', artifact: { revision: `main@sha1:${LATER}` }, conditions: readyAt(LATER) },
      undefined,
    ],
    [
      'says nothing about an artifact from before our request',
      { lastHandledReconcileAt: 't0', artifact: { revision: `main@sha1:${OLD}` }, conditions: readyAt(OLD) },
      undefined,
    ],
  ] as const)('%s', (_name, { before, ...status }: Record<string, unknown> & { before?: string }, verdict) => {
    expect(
      evaluateGitRepository(repo({ ref: { branch: 'main' } }, cast(status)), 't1', expected(), before ?? `main@sha1:${'9'.repeat(40)}`)
        ?.state,
    ).toBe(verdict);
  });

  it('asks the waiter about the artifact it cannot place', () => {
    const v = evaluateGitRepository(
      repo(
        {},
        { lastHandledReconcileAt: 't1', artifact: { revision: `main@sha1:${'d'.repeat(40)}` }, conditions: readyAt('d'.repeat(40)) },
      ),
      't1',
      expected(),
    );
    expect(v).toMatchObject({ state: 'pending', unknownRevision: 'd'.repeat(40) });
  });

  it.each([
    ['2026-11-24T12:00:00.000Z', '2026-11-24T12:00:00.000Z', true],
    ['2026-11-24T12:00:01.123456789Z', '2026-11-24T12:00:00.000Z', true],
    ['2026-11-24T11:59:59.000Z', '2026-11-24T12:00:00.000Z', false],
    ['someone-else', 'ours', false],
    [undefined, 'ours', false],
  ] as const)('a handled request %s answers ours %s: %s (item 15)', (handled, requested, answered) => {
    expect(handledSince(handled, requested)).toBe(answered);
  });
});
