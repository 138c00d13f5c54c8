// The chart installed with the real helm into the real kube-apiserver (kwok runs the pods): install and upgrade
// until the Deployment is Available, with the kubelet's runAsNonRoot rule on the pods, which neither admission nor
// kwok enforces; helm test and helm uninstall. Lint, render and dry runs: chart.e2e.test.ts.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import {
  AuthorizationV1Api,
  CoreV1Api,
  RbacAuthorizationV1Api,
  type KubernetesObject,
  type V1Deployment,
  type V1Pod,
} from '@kubernetes/client-node';
import { StateMove } from '../../src/platform/state/move.js';
import {
  restrictedNamespace,
  SERVICE_IMAGE,
  startChartCluster,
  userOfImages,
  VALUE_SETS,
  type ChartCluster,
} from '../env/chart-support.js';
import { serviceAccountKubeConfig } from '../env/chart-rbac.js';
import type { TestCluster } from '../env/cluster.js';
import { CHART_DIR, HelmError, type Helm } from '../env/helm.js';
import { containerStartProblems } from '../env/kubelet-rules.js';
import type { Kube } from '../env/kube.js';
import { waitUntil } from '../env/process.js';

let chartEnv: ChartCluster;
let kube: Kube;
let cluster: TestCluster;
let helm: Helm;
let userOf: (image: string) => string | undefined;

beforeAll(async () => {
  chartEnv = await startChartCluster('keptn-gitops-env-chart-install-');
  ({ kube, cluster, helm } = chartEnv);
  userOf = userOfImages(chartEnv.serviceImageUser);
}, 300_000);

afterAll(async () => {
  await chartEnv?.stop();
}, 60_000);

describe('helm install and upgrade', () => {
  const deploymentAvailable = (namespace: string, name: string, replicas: number, image: string) =>
    waitUntil(
      `Deployment ${namespace}/${name} Available with ${replicas} ready pods of ${image}`,
      async () => {
        const d = await cluster.read<V1Deployment>('apps/v1', 'Deployment', namespace, name);
        const available = d.status?.conditions?.some((c) => c.type === 'Available' && c.status === 'True');
        const current =
          d.status?.observedGeneration === d.metadata?.generation &&
          d.status?.updatedReplicas === replicas &&
          d.status?.readyReplicas === replicas &&
          d.status?.replicas === replicas;
        return available && current && d.spec?.template.spec?.containers[0]?.image === image ? d : undefined;
      },
      { timeoutMs: 120_000 },
    );

  /** The pods as the kubelet gets them: none may be refused under runAsNonRoot. */
  async function podsStartable(namespace: string, deployment: V1Deployment): Promise<V1Pod[]> {
    const selector = Object.entries(deployment.spec!.selector.matchLabels!)
      .map(([k, v]) => `${k}=${v}`)
      .join(',');
    const pods = (
      await cluster.objects.list<V1Pod>('v1', 'Pod', namespace, undefined, undefined, undefined, undefined, selector)
    ).items.filter((p) => !p.metadata?.deletionTimestamp);
    expect(pods.length).toBe(deployment.spec!.replicas);
    for (const pod of pods) expect(containerStartProblems(pod.spec!, userOf)).toEqual([]);
    return pods;
  }

  beforeAll(async () => {
    await Promise.all([restrictedNamespace(cluster, 'keptn'), restrictedNamespace(cluster, 'keptn-exec')]);
  }, 60_000);

  it('installs with the defaults; the Deployment becomes Available and its pods would start', async () => {
    const file = await helm.valuesFile('install', {});
    const { stdout } = await helm.run(
      ['install', 'gitops-service', CHART_DIR, '--namespace', 'keptn', '-f', file, '--wait', '--timeout', '2m'],
      { kubeconfig: kube.kubeconfigPath, timeoutMs: 150_000 },
    );
    // NOTES.txt: what to do next, with this release's names.
    expect(stdout).toContain('kubectl -n keptn rollout status deployment/gitops-service');
    expect(stdout).toContain('from NATS at nats://keptn-nats, queue group keptn-gitops-service_keptn_gitops-service.');
    const deployment = await deploymentAvailable('keptn', 'gitops-service', 1, `${SERVICE_IMAGE}:0.1.0`);
    await podsStartable('keptn', deployment);
    const service = await cluster.read<KubernetesObject & { spec: { selector: Record<string, string> } }>(
      'v1',
      'Service',
      'keptn',
      'gitops-service',
    );
    expect(service.spec.selector).toEqual(deployment.spec!.selector.matchLabels);
  }, 180_000);

  /** Access reviews as the release's ServiceAccount (a TokenRequest token): `kubectl auth can-i --as` in code. */
  async function canI(namespace: string, serviceAccount: string) {
    const reviews = (await serviceAccountKubeConfig(cluster.kc, namespace, serviceAccount)).makeApiClient(AuthorizationV1Api);
    return async (attrs: { namespace: string; verb: string; group?: string; resource: string; name?: string }) =>
      (await reviews.createSelfSubjectAccessReview({ body: { spec: { resourceAttributes: attrs } } })).status?.allowed === true;
  }

  /**
   * What the ServiceAccount may write: ConfigMaps and Leases in `own` (records and replica Leases), nothing of them in
   * `others` (Keptn's namespace among them, with Keptn's own leader-election Lease named).
   */
  async function writesOnlyItsOwn(namespace: string, serviceAccount: string, own: string, others: string[]): Promise<void> {
    const allowed = await canI(namespace, serviceAccount);
    const kinds = [{ resource: 'configmaps' }, { group: 'coordination.k8s.io', resource: 'leases' }];
    // RBAC reaches the authorizer through its informers a moment after helm made it.
    await waitUntil(
      'the state Role counts',
      async () => (await allowed({ namespace: own, verb: 'create', resource: 'configmaps' })) || undefined,
      {
        timeoutMs: 20_000,
      },
    );
    for (const kind of kinds)
      for (const verb of ['get', 'list', 'create', 'update', 'delete'])
        expect({ own, verb, ...kind, allowed: await allowed({ namespace: own, verb, ...kind }) }).toEqual({
          own,
          verb,
          ...kind,
          allowed: true,
        });
    for (const other of others)
      for (const kind of kinds)
        for (const verb of ['create', 'update', 'patch', 'delete', 'deletecollection'])
          expect({ other, verb, ...kind, allowed: await allowed({ namespace: other, verb, ...kind }) }).toEqual({
            other,
            verb,
            ...kind,
            allowed: false,
          });
    for (const verb of ['update', 'patch', 'delete'])
      expect(
        await allowed({ namespace: 'keptn', verb, group: 'coordination.k8s.io', resource: 'leases', name: 'shipyard-controller' }),
      ).toBe(false);
  }

  it("beside Keptn, its ServiceAccount writes ConfigMaps and Leases in its own state namespace only, never Keptn's (ADR 17)", async () => {
    await writesOnlyItsOwn('keptn', 'gitops-service', 'keptn-gitops-service-state', ['keptn', 'default', 'kube-system']);
  }, 60_000);

  it('installs into a namespace of its own, apart from Keptn: Available, DNS search path into Keptn, Secrets and state where documented', async () => {
    await restrictedNamespace(cluster, 'keptn-gitops');
    const file = await helm.valuesFile('apart', { keptnNamespace: 'keptn' });
    const { stdout } = await helm.run(
      ['install', 'gitops', CHART_DIR, '--namespace', 'keptn-gitops', '-f', file, '--wait', '--timeout', '2m'],
      {
        kubeconfig: kube.kubeconfigPath,
        timeoutMs: 150_000,
      },
    );
    expect(stdout).toContain('Keptn runs in keptn (keptnNamespace), apart from this release');
    const deployment = await deploymentAvailable('keptn-gitops', 'gitops', 1, `${SERVICE_IMAGE}:0.1.0`);
    const [pod] = await podsStartable('keptn-gitops', deployment);
    // The API server kept the search path on the pod (the kubelet writes it into the pod's resolv.conf).
    expect(pod!.spec?.dnsConfig?.searches).toEqual(['keptn.svc.cluster.local']);
    const env = Object.fromEntries(
      (pod!.spec!.containers.find((c) => c.name === 'gitops-service')!.env ?? []).map((e) => [e.name, e.value]),
    );
    expect(env).toMatchObject({ SECRET_NAMESPACE: 'keptn', STATE_NAMESPACE: 'keptn-gitops-gitops-state' });
    const scope = await cluster.read<KubernetesObject & { subjects: unknown[] }>(
      'rbac.authorization.k8s.io/v1',
      'RoleBinding',
      'keptn',
      'gitops-keptn-secrets-default-read',
    );
    expect(scope.subjects).toEqual([{ kind: 'ServiceAccount', name: 'gitops', namespace: 'keptn-gitops' }]);
    await writesOnlyItsOwn('keptn-gitops', 'gitops', 'keptn-gitops-gitops-state', ['keptn', 'keptn-gitops', 'keptn-gitops-service-state']);
    // Uninstalled, the state namespace stays with whatever is unfinished in it, for a reinstall to resume.
    await helm.run(['uninstall', 'gitops', '--namespace', 'keptn-gitops', '--wait', '--timeout', '2m'], {
      kubeconfig: kube.kubeconfigPath,
      timeoutMs: 150_000,
    });
    const kept = await cluster.kc.makeApiClient(CoreV1Api).readNamespace({ name: 'keptn-gitops-gitops-state' });
    expect(kept.metadata?.deletionTimestamp).toBeUndefined();
  }, 240_000);

  it('an upgrade from the state in the release namespace (the chart before ADR 17) moves it, and drops the old rights after', async () => {
    await restrictedNamespace(cluster, 'keptn-legacy');
    const opts = { kubeconfig: kube.kubeconfigPath, timeoutMs: 150_000 };
    const upgrade = async (values: Record<string, unknown>) => {
      const file = await helm.valuesFile('legacy', values);
      // --reset-values: with no value set, helm upgrade would reuse the last release's values (helm pkg/action/upgrade.go, reuseValues).
      await helm.run(
        [
          'upgrade',
          '--install',
          '--reset-values',
          'legacy',
          CHART_DIR,
          '--namespace',
          'keptn-legacy',
          '-f',
          file,
          '--wait',
          '--timeout',
          '2m',
        ],
        opts,
      );
      const d = await cluster.read<V1Deployment>('apps/v1', 'Deployment', 'keptn-legacy', 'legacy');
      return Object.fromEntries(
        (d.spec!.template.spec!.containers.find((c) => c.name === 'gitops-service')!.env ?? []).map((e) => [e.name, e.value]),
      );
    };
    const stateRoles = async () =>
      (
        await cluster.kc
          .makeApiClient(RbacAuthorizationV1Api)
          .listRoleForAllNamespaces({ labelSelector: 'app.kubernetes.io/instance=legacy' })
      ).items
        .filter((r) => r.metadata?.name === 'legacy-state')
        .map((r) => r.metadata?.namespace)
        .sort();
    expect(await upgrade({ state: { namespace: 'keptn-legacy' } })).toMatchObject({ STATE_NAMESPACE: 'keptn-legacy' });
    // What its replica left: an unfinished deployment's record, and its Lease, run out since the replica stopped.
    const managed = { 'app.kubernetes.io/managed-by': 'keptn-gitops-service' };
    await cluster.apply([
      {
        apiVersion: 'v1',
        kind: 'ConfigMap',
        metadata: {
          name: 'keptn-gitops-legacy-record',
          namespace: 'keptn-legacy',
          labels: { ...managed, 'keptn-gitops-service/kind': 'deployment', 'keptn-gitops-service/phase': 'started' },
        },
        data: { record: '{"phase":"started"}' },
      },
      {
        apiVersion: 'coordination.k8s.io/v1',
        kind: 'Lease',
        metadata: { name: 'keptn-gitops-replica-legacy-0', namespace: 'keptn-legacy', labels: managed },
        spec: { holderIdentity: 'legacy-0', leaseDurationSeconds: 20, renewTime: '2026-01-01T00:00:00.000000Z' },
      },
    ] as unknown as KubernetesObject[]);

    // The default now: a namespace of its own. helm upgrade finds where the state was (lookup of the Deployment).
    expect(await upgrade({})).toMatchObject({ STATE_NAMESPACE: 'keptn-legacy-legacy-state', PREVIOUS_STATE_NAMESPACE: 'keptn-legacy' });
    expect(await stateRoles()).toEqual(['keptn-legacy', 'keptn-legacy-legacy-state']);
    // Upgraded again before the move: the old namespace still holds the service's records, so it stays in the move.
    expect(await upgrade({ image: { tag: '0.1.1' } })).toMatchObject({ PREVIOUS_STATE_NAMESPACE: 'keptn-legacy' });

    // The service's move, with nothing but the chart's rights (its ServiceAccount's token).
    const sa = await serviceAccountKubeConfig(cluster.kc, 'keptn-legacy', 'legacy');
    const allowed = await canI('keptn-legacy', 'legacy');
    await waitUntil(
      'the state Role in the new namespace counts',
      async () => (await allowed({ namespace: 'keptn-legacy-legacy-state', verb: 'create', resource: 'configmaps' })) || undefined,
      { timeoutMs: 20_000 },
    );
    expect(await new StateMove(sa, 'keptn-legacy', 'keptn-legacy-legacy-state').round()).toEqual({ state: 'done', moved: 1 });
    const moved = await cluster.read<KubernetesObject & { data: Record<string, string> }>(
      'v1',
      'ConfigMap',
      'keptn-legacy-legacy-state',
      'keptn-gitops-legacy-record',
    );
    expect(moved.data).toEqual({ record: '{"phase":"started"}' });

    // Nothing of the service left there: the next upgrade takes its rights away.
    const after = await upgrade({ image: { tag: '0.1.1' } });
    expect(after['PREVIOUS_STATE_NAMESPACE']).toBeUndefined();
    expect(await stateRoles()).toEqual(['keptn-legacy-legacy-state']);
    await waitUntil(
      'the Role in keptn-legacy gone from the authorizer',
      async () => !(await allowed({ namespace: 'keptn-legacy', verb: 'create', resource: 'configmaps' })) || undefined,
      {
        timeoutMs: 20_000,
      },
    );
  }, 300_000);

  it('upgrades in place to a new image, more replicas and other values; the selector is unchanged', async () => {
    const before = await cluster.read<V1Deployment>('apps/v1', 'Deployment', 'keptn', 'gitops-service');
    const file = await helm.valuesFile('upgrade', {
      image: { tag: '0.1.1' },
      replicas: 2,
      podAnnotations: { 'prometheus.io/scrape': 'true' },
      distributor: { projectFilter: 'podtato' },
      extraEnv: [{ name: 'LEASE_SECONDS', value: '30' }],
    });
    await helm.run(['upgrade', 'gitops-service', CHART_DIR, '--namespace', 'keptn', '-f', file, '--wait', '--timeout', '2m'], {
      kubeconfig: kube.kubeconfigPath,
      timeoutMs: 150_000,
    });
    const after = await deploymentAvailable('keptn', 'gitops-service', 2, `${SERVICE_IMAGE}:0.1.1`);
    expect(after.spec?.selector).toEqual(before.spec?.selector);
    expect(after.metadata?.uid).toBe(before.metadata?.uid);
    const pods = await podsStartable('keptn', after);
    expect(pods.every((p) => p.metadata?.labels?.['app.kubernetes.io/version'] === '0.1.1')).toBe(true);
    const history = JSON.parse(
      (await helm.run(['history', 'gitops-service', '--namespace', 'keptn', '-o', 'json'], { kubeconfig: kube.kubeconfigPath })).stdout,
    ) as Array<{ revision: number; status: string }>;
    expect(history.map((h) => [h.revision, h.status])).toEqual([
      [1, 'superseded'],
      [2, 'deployed'],
    ]);
  }, 180_000);

  it('installs a remote execution plane beside it; both releases run', async () => {
    await cluster.apply([
      {
        apiVersion: 'v1',
        kind: 'Secret',
        metadata: { name: 'keptn-api-token', namespace: 'keptn-exec' },
        stringData: { 'keptn-api-token': 'test-token' },
      },
      {
        apiVersion: 'v1',
        kind: 'Secret',
        metadata: { name: 'keptn-oauth', namespace: 'keptn-exec' },
        stringData: { 'client-secret': 'test-secret' },
      },
    ] as unknown as KubernetesObject[]);
    const file = await helm.valuesFile('remote', VALUE_SETS['remotePlane']!);
    const { stdout } = await helm.run(
      ['install', 'gitops-remote', CHART_DIR, '--namespace', 'keptn-exec', '-f', file, '--wait', '--timeout', '2m'],
      { kubeconfig: kube.kubeconfigPath, timeoutMs: 150_000 },
    );
    expect(stdout).toContain('polled from the Keptn API at https://keptn.example.com/api (remote execution plane)');
    expect(stdout).toContain("WARNING: the Keptn API's TLS certificate is not verified");
    await podsStartable('keptn-exec', await deploymentAvailable('keptn-exec', 'gitops-remote', 1, `${SERVICE_IMAGE}:0.1.0`));
    await deploymentAvailable('keptn', 'gitops-service', 2, `${SERVICE_IMAGE}:0.1.1`);
  }, 180_000);

  /**
   * Ends a running pod as the kubelet does when its only container exits: kwok runs no containers and completes only
   * pods of Jobs (its pod-complete stage), so the test plays the container of the `helm test` pod.
   */
  async function containerExits(namespace: string, name: string, exitCode: number): Promise<void> {
    const core = cluster.kc.makeApiClient(CoreV1Api);
    const pod = await waitUntil(
      `pod ${namespace}/${name} running`,
      async () => {
        const p = await core.readNamespacedPod({ namespace, name }).catch(() => undefined);
        return p?.status?.phase === 'Running' && !p.metadata?.deletionTimestamp ? p : undefined;
      },
      { timeoutMs: 60_000 },
    );
    const now = new Date();
    const container = pod.spec!.containers[0]!;
    pod.status = {
      ...pod.status,
      phase: exitCode === 0 ? 'Succeeded' : 'Failed',
      conditions: (pod.status?.conditions ?? []).map((c) =>
        c.type === 'Ready' || c.type === 'ContainersReady' ? { ...c, status: 'False' } : c,
      ),
      containerStatuses: [
        {
          name: container.name,
          image: container.image!,
          imageID: '',
          ready: false,
          restartCount: 0,
          state: { terminated: { exitCode, reason: exitCode === 0 ? 'Completed' : 'Error', startedAt: now, finishedAt: now } },
        },
      ],
    };
    await core.replaceNamespacedPodStatus({ namespace, name, body: pod });
  }

  const podGone = (namespace: string, name: string) =>
    waitUntil(
      `pod ${namespace}/${name} deleted`,
      async () => {
        const core = cluster.kc.makeApiClient(CoreV1Api);
        return core.readNamespacedPod({ namespace, name }).then(
          () => false,
          (err: unknown) => (err as { code?: number }).code === 404,
        );
      },
      { timeoutMs: 60_000 },
    );

  it('helm test removes its pod whether it failed or passed, and helm uninstall leaves no pod of the release', async () => {
    const opts = { kubeconfig: kube.kubeconfigPath, timeoutMs: 150_000 };
    const testPod = 'gitops-remote-test-ready';

    const failing = helm.run(['test', 'gitops-remote', '--namespace', 'keptn-exec', '--timeout', '2m'], opts).then(
      () => undefined,
      (err: unknown) => err,
    );
    await containerExits('keptn-exec', testPod, 1);
    const failure = await failing;
    expect(failure).toBeInstanceOf(HelmError);
    expect((failure as HelmError).stderr).toContain(testPod);
    await podGone('keptn-exec', testPod);

    const passing = helm.run(['test', 'gitops-remote', '--namespace', 'keptn-exec', '--timeout', '2m'], opts);
    await containerExits('keptn-exec', testPod, 0);
    expect((await passing).stdout).toMatch(/TEST SUITE:\s+gitops-remote-test-ready[\s\S]*Phase:\s+Succeeded/);
    await podGone('keptn-exec', testPod);

    await helm.run(['uninstall', 'gitops-remote', '--namespace', 'keptn-exec', '--wait', '--timeout', '2m'], opts);
    const core = cluster.kc.makeApiClient(CoreV1Api);
    await waitUntil(
      'no pod of release gitops-remote left',
      async () =>
        (await core.listNamespacedPod({ namespace: 'keptn-exec', labelSelector: 'app.kubernetes.io/instance=gitops-remote' })).items
          .length === 0,
      { timeoutMs: 60_000 },
    );
  }, 240_000);
});
