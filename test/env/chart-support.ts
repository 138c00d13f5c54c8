// What the chart's end-to-end files share (test/e2e/chart.e2e.test.ts renders and dry-runs the chart,
// chart-install.e2e.test.ts installs and upgrades it): a kube-apiserver with kwok and the real helm, the value sets
// every check runs with, and the helpers that read what the chart rendered.
import type { KubernetesObject, V1Deployment, V1EnvVar, V1PodSpec } from '@kubernetes/client-node';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse } from 'yaml';
import { TestCluster } from './cluster.js';
import { CHART_DIR, setupHelm, type Helm } from './helm.js';
import { startKube, type Kube } from './kube.js';
import { waitUntil } from './process.js';

export type Values = Record<string, unknown>;

export const SERVICE_IMAGE = 'ghcr.io/keptn-sandbox/keptn-gitops-service';
export const DISTRIBUTOR_IMAGE = 'docker.io/keptn/distributor';
/** keptn/keptn 1.4.5 distributor/Dockerfile: `adduser -D nonroot -u 65532` then `USER nonroot` (a name, no number). */
export const DISTRIBUTOR_USER = 'nonroot';
const CLUSTER_SCOPED = new Set(['ClusterRole', 'ClusterRoleBinding', 'Namespace', 'PriorityClass']);

/** The value sets every check runs with: what a platform team sets for a control-plane and a remote installation. */
export const VALUE_SETS: Record<string, Values> = {
  default: {},
  remotePlane: {
    distributor: {
      keptnApiEndpoint: 'https://keptn.example.com/api',
      sslVerify: false,
      pollingInterval: 5,
      oauth: {
        clientId: 'gitops',
        clientSecretName: 'keptn-oauth',
        discovery: 'https://idp.example.com/.well-known/openid-configuration',
        scopes: 'keptn:events,keptn:resources',
      },
    },
  },
  customised: {
    replicas: 2,
    fullnameOverride: 'gitops-team-a',
    image: { tag: '0.1.0', digest: `sha256:${'ab'.repeat(32)}` },
    distributor: {
      projectFilter: 'podtato',
      stageFilter: 'dev,prod',
      registration: false,
      extraEnv: [{ name: 'API_PROXY_HTTP_TIMEOUT', value: '60' }],
    },
    extraEnv: [
      { name: 'LEASE_SECONDS', value: '30' },
      { name: 'GIT_AUTHOR_NAME', value: 'Team A' },
    ],
    gitCacheLimit: '1Gi',
    git: { allowedHosts: ['gitea.gitea.svc', '10.0.0.7:3000'] },
    podAnnotations: { 'prometheus.io/scrape': 'true' },
    podLabels: { team: 'a' },
    deploymentAnnotations: { 'team.example.com/owner': 'a' },
    nodeSelector: { 'kubernetes.io/os': 'linux' },
    tolerations: [{ key: 'dedicated', operator: 'Equal', value: 'keptn', effect: 'NoSchedule' }],
    affinity: {
      podAntiAffinity: {
        preferredDuringSchedulingIgnoredDuringExecution: [
          {
            weight: 100,
            podAffinityTerm: {
              topologyKey: 'kubernetes.io/hostname',
              labelSelector: { matchLabels: { 'app.kubernetes.io/instance': 'team-a' } },
            },
          },
        ],
      },
    },
    topologySpreadConstraints: [
      {
        maxSkew: 1,
        topologyKey: 'kubernetes.io/hostname',
        whenUnsatisfiable: 'ScheduleAnyway',
        labelSelector: { matchLabels: { 'app.kubernetes.io/instance': 'team-a' } },
      },
    ],
    gitCacheSizeLimit: '',
  },
  // Namespaced mode: Roles in the listed namespaces instead of a ClusterRole (the dry runs' namespace exists).
  namespaced: { rbac: { namespaces: ['chart-dry-run'] }, state: { namespace: 'chart-dry-run' } },
};

export interface ChartCluster {
  workDir: string;
  kube: Kube;
  cluster: TestCluster;
  helm: Helm;
  /** The user the service image runs as when the chart does not say (the Dockerfile's last USER). */
  serviceImageUser: string;
  chartVersion: string;
  stop(): Promise<void>;
}

/** A kube-apiserver (kwok runs the pods) and the real helm, each file its own. */
export async function startChartCluster(prefix: string): Promise<ChartCluster> {
  const workDir = await mkdtemp(join(tmpdir(), prefix));
  const logDir = join(workDir, 'logs');
  const [kube, helm, serviceImageUser] = await Promise.all([
    startKube({ workDir: join(workDir, 'kube'), logDir }),
    setupHelm(workDir),
    dockerfileUser(),
  ]);
  const cluster = TestCluster.fromFile(kube.kubeconfigPath);
  const chartVersion = (parse(await readFile(join(CHART_DIR, 'Chart.yaml'), 'utf8')) as { version: string }).version;
  return {
    workDir,
    kube,
    cluster,
    helm,
    serviceImageUser,
    chartVersion,
    async stop() {
      await kube.stop();
      // Keep the logs for whoever debugs a run, as test/env/environment.ts does.
      for (const entry of await readdir(workDir).catch(() => [])) {
        if (entry !== 'logs') await rm(join(workDir, entry), { recursive: true, force: true });
      }
    },
  };
}

/** The last USER of the repository's Dockerfile: what the service image runs as when the chart does not say. */
async function dockerfileUser(): Promise<string> {
  const lines = (await readFile(join(CHART_DIR, '..', 'Dockerfile'), 'utf8')).split('\n');
  const user = lines
    .map((l) => /^USER\s+(\S+)/.exec(l.trim())?.[1])
    .filter((u): u is string => u !== undefined)
    .pop();
  if (!user) throw new Error('the Dockerfile sets no USER');
  return user;
}

/** The user an image runs as when the pod does not say: the service image's and the distributor's. */
export const userOfImages =
  (serviceImageUser: string) =>
  (image: string): string | undefined => {
    if (image.startsWith(`${SERVICE_IMAGE}:`) || image.startsWith(`${SERVICE_IMAGE}@`)) return serviceImageUser;
    if (image.startsWith(`${DISTRIBUTOR_IMAGE}:`)) return DISTRIBUTOR_USER;
    return undefined;
  };

/** The API server's own words when it refuses a request (client-node puts them in the error's body). */
export async function explain<T>(what: string, work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (err: unknown) {
    const body = (err as { body?: unknown }).body;
    throw new Error(`${what}: ${typeof body === 'string' ? body : JSON.stringify(body ?? String(err))}`, { cause: err });
  }
}

/** A namespace whose pods must meet Pod Security "restricted", as a careful platform team would run Keptn's. */
export async function restrictedNamespace(cluster: TestCluster, name: string): Promise<void> {
  await cluster.apply([
    {
      apiVersion: 'v1',
      kind: 'Namespace',
      metadata: {
        name,
        labels: { 'pod-security.kubernetes.io/enforce': 'restricted', 'pod-security.kubernetes.io/enforce-version': 'latest' },
      },
    } as KubernetesObject,
  ]);
  // Pods need the namespace's `default` ServiceAccount, which the controller-manager makes a moment later.
  await waitUntil(
    `ServiceAccount ${name}/default`,
    async () => (await cluster.read('v1', 'ServiceAccount', name, 'default')).metadata?.name,
    { timeoutMs: 30_000 },
  );
}

export function namespaced(obj: KubernetesObject, namespace: string): KubernetesObject {
  if (CLUSTER_SCOPED.has(obj.kind ?? '') || obj.metadata?.namespace) return obj;
  return { ...obj, metadata: { ...obj.metadata, namespace } };
}

/** The one Deployment the chart renders. */
export const deploymentOf = (objects: KubernetesObject[]): V1Deployment => {
  const deployments = objects.filter((o) => o.kind === 'Deployment') as V1Deployment[];
  if (deployments.length !== 1) throw new Error(`the chart rendered ${deployments.length} Deployments, not one`);
  return deployments[0]!;
};

export const containerEnv = (spec: V1PodSpec, container: string): Record<string, V1EnvVar> =>
  Object.fromEntries((spec.containers.find((c) => c.name === container)?.env ?? []).map((e) => [e.name, e]));
