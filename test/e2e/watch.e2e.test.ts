// The shared watch against the real kube-apiserver (RBAC on): a kind the service may not list, or that is not served
// (its CRD not installed), fails a waiter at once with the API server's status, and the watch recovers once the
// permission is granted or the CRD installed. The service account and its token are real (TokenRequest API).
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { CoreV1Api, KubeConfig, type KubernetesObject } from '@kubernetes/client-node';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { mkdir, rm } from 'node:fs/promises';
import { pino } from 'pino';
import { SharedWatch, untilSynced, type KubeObject } from '../../src/platform/k8s/watch.js';
import { TestCluster } from '../env/cluster.js';
import { startKube, type Kube } from '../env/kube.js';
import { waitUntil } from '../env/process.js';

const GROUP = 'widgets.keptn-gitops.test';
const WIDGETS = { group: GROUP, version: 'v1', plural: 'widgets' };
const log = pino({ level: 'silent' });

let kube: Kube;
let workDir: string;
let admin: TestCluster;
/** The restricted identity: a service account with no RBAC until a test grants it some. */
let restricted: KubeConfig;
const watches: Array<SharedWatch<KubeObject>> = [];

function widgetCrd(): KubernetesObject & Record<string, unknown> {
  return {
    apiVersion: 'apiextensions.k8s.io/v1',
    kind: 'CustomResourceDefinition',
    metadata: { name: `widgets.${GROUP}` },
    spec: {
      group: GROUP,
      scope: 'Namespaced',
      names: { plural: 'widgets', singular: 'widget', kind: 'Widget', listKind: 'WidgetList' },
      versions: [
        {
          name: 'v1',
          served: true,
          storage: true,
          schema: { openAPIV3Schema: { type: 'object', 'x-kubernetes-preserve-unknown-fields': true } },
        },
      ],
    },
  };
}

function watchAs(kc: KubeConfig): SharedWatch<KubeObject> {
  const w = new SharedWatch<KubeObject>(kc, WIDGETS, log, { backoff: { baseDelayMs: 200, maxDelayMs: 500 } });
  watches.push(w);
  w.start();
  return w;
}

beforeAll(async () => {
  workDir = join(tmpdir(), `keptn-gitops-env-watch-${process.pid}-${Date.now()}`);
  const logDir = join(workDir, 'logs');
  await mkdir(logDir, { recursive: true });
  kube = await startKube({ workDir: join(workDir, 'kube'), logDir });
  admin = TestCluster.fromFile(kube.kubeconfigPath);
  await admin.apply([
    { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'keptn' } },
    { apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name: 'gitops-service', namespace: 'keptn' } },
  ]);
  const core = admin.kc.makeApiClient(CoreV1Api);
  const token = await waitUntil(
    'a token for the service account',
    async () => {
      const t = await core
        .createNamespacedServiceAccountToken({
          name: 'gitops-service',
          namespace: 'keptn',
          body: { spec: { audiences: [], expirationSeconds: 3600 } },
        })
        .catch(() => undefined);
      return t?.status?.token;
    },
    { timeoutMs: 30_000 },
  );
  const cluster = admin.kc.getCurrentCluster()!;
  restricted = new KubeConfig();
  restricted.loadFromOptions({
    clusters: [{ ...cluster, name: 'test' }],
    users: [{ name: 'gitops-service', token }],
    contexts: [{ name: 'test', cluster: 'test', user: 'gitops-service' }],
    currentContext: 'test',
  });
}, 120_000);

afterAll(async () => {
  for (const w of watches) w.stop();
  await kube?.stop();
  // Keep the logs, as the environment does; the etcd data is only ballast.
  if (workDir) await rm(join(workDir, 'kube'), { recursive: true, force: true });
}, 60_000);

describe('refusals from the real API server', () => {
  it('a kind whose CRD is not installed fails at once (404), and is watched once the CRD is there', async () => {
    const w = watchAs(admin.kc);
    const t0 = Date.now();
    await expect(untilSynced(w.synced, Date.now() + 60_000, 'widgets')).rejects.toMatchObject({
      code: 'NOT_FOUND',
      message: `cannot list widgets.${GROUP}: the API server does not serve ${GROUP}/v1 widgets; the CRD is not installed (or not at version v1)`,
    });
    expect(Date.now() - t0).toBeLessThan(10_000);

    await admin.apply([widgetCrd()]);
    await waitUntil('the watch recovered after the CRD was installed', async () => w.state === 'synced', { timeoutMs: 30_000 });
    await expect(untilSynced(w.synced, Date.now() + 1_000, 'widgets')).resolves.toBeUndefined();
  }, 60_000);

  it('a kind the service account may not list fails at once (403) naming the grant, and recovers once granted', async () => {
    await admin.apply([widgetCrd()]);
    const w = watchAs(restricted);
    const err = await untilSynced(w.synced, Date.now() + 60_000, 'widgets').catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'FORBIDDEN' });
    const message = (err as Error).message;
    expect(message).toMatch(
      new RegExp(
        `^cannot list widgets\\.${GROUP.replace(/\./g, '\\.')}: forbidden; grant the service account list and watch on widgets in API group ${GROUP.replace(/\./g, '\\.')}, cluster-wide`,
      ),
    );
    // The API server's own words name the identity and the verb.
    expect(message).toContain('User "system:serviceaccount:keptn:gitops-service" cannot list resource "widgets"');

    await admin.apply([
      {
        apiVersion: 'rbac.authorization.k8s.io/v1',
        kind: 'ClusterRole',
        metadata: { name: 'gitops-widgets' },
        rules: [{ apiGroups: [GROUP], resources: ['widgets'], verbs: ['list', 'watch'] }],
      } as KubernetesObject,
      {
        apiVersion: 'rbac.authorization.k8s.io/v1',
        kind: 'ClusterRoleBinding',
        metadata: { name: 'gitops-widgets' },
        roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'gitops-widgets' },
        subjects: [{ kind: 'ServiceAccount', name: 'gitops-service', namespace: 'keptn' }],
      } as KubernetesObject,
    ]);
    await waitUntil('the watch recovered after the grant', async () => w.state === 'synced', { timeoutMs: 30_000 });
    await admin.apply([{ apiVersion: `${GROUP}/v1`, kind: 'Widget', metadata: { name: 'w1', namespace: 'keptn' } }]);
    await waitUntil('the new widget arrived through the watch', async () => w.get('keptn', 'w1') !== undefined, { timeoutMs: 10_000 });
  }, 60_000);
});
