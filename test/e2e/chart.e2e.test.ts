// The chart against the real kube-apiserver of the test environment, with the real helm (test/env/peers/helm):
// lint, render for several value sets, server-side dry runs (validation, defaulting and admission, Pod Security
// "restricted" included), install and upgrade until the Deployment is Available (kwok runs the pods), and the
// kubelet's runAsNonRoot rule on what was rendered and applied, which neither admission nor kwok enforces.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import {
  CoreV1Api,
  PatchStrategy,
  type KubernetesObject,
  type V1Deployment,
  type V1EnvVar,
  type V1Pod,
  type V1PodSpec,
} from '@kubernetes/client-node';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse } from 'yaml';
import { TestCluster } from '../env/cluster.js';
import { CHART_DIR, HelmError, setupHelm, type Helm } from '../env/helm.js';
import { containerStartProblems } from '../env/kubelet-rules.js';
import { startKube, type Kube } from '../env/kube.js';
import { waitUntil } from '../env/process.js';

type Values = Record<string, unknown>;

const SERVICE_IMAGE = 'ghcr.io/keptn-sandbox/keptn-gitops-service';
const DISTRIBUTOR_IMAGE = 'docker.io/keptn/distributor';
/** keptn/keptn 1.4.5 distributor/Dockerfile: `adduser -D nonroot -u 65532` then `USER nonroot` (a name, no number). */
const DISTRIBUTOR_USER = 'nonroot';
const CLUSTER_SCOPED = new Set(['ClusterRole', 'ClusterRoleBinding', 'Namespace', 'PriorityClass']);

/** The value sets every check runs with: what a platform team sets for a control-plane and a remote installation. */
const VALUE_SETS: Record<string, Values> = {
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

let workDir: string;
let kube: Kube;
let cluster: TestCluster;
let helm: Helm;
let serviceImageUser: string;
let chartVersion: string;

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

const userOf = (image: string): string | undefined => {
  if (image.startsWith(`${SERVICE_IMAGE}:`) || image.startsWith(`${SERVICE_IMAGE}@`)) return serviceImageUser;
  if (image.startsWith(`${DISTRIBUTOR_IMAGE}:`)) return DISTRIBUTOR_USER;
  return undefined;
};

/** The API server's own words when it refuses a request (client-node puts them in the error's body). */
async function explain<T>(what: string, work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (err: unknown) {
    const body = (err as { body?: unknown }).body;
    throw new Error(`${what}: ${typeof body === 'string' ? body : JSON.stringify(body ?? String(err))}`, { cause: err });
  }
}

/** A namespace whose pods must meet Pod Security "restricted", as a careful platform team would run Keptn's. */
async function restrictedNamespace(name: string): Promise<void> {
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

function namespaced(obj: KubernetesObject, namespace: string): KubernetesObject {
  if (CLUSTER_SCOPED.has(obj.kind ?? '') || obj.metadata?.namespace) return obj;
  return { ...obj, metadata: { ...obj.metadata, namespace } };
}

const deploymentOf = (objects: KubernetesObject[]): V1Deployment => {
  const deployments = objects.filter((o) => o.kind === 'Deployment') as V1Deployment[];
  expect(deployments).toHaveLength(1);
  return deployments[0]!;
};

const containerEnv = (spec: V1PodSpec, container: string): Record<string, V1EnvVar> =>
  Object.fromEntries((spec.containers.find((c) => c.name === container)?.env ?? []).map((e) => [e.name, e]));

beforeAll(async () => {
  workDir = await mkdtemp(join(tmpdir(), 'keptn-gitops-env-chart-'));
  const logDir = join(workDir, 'logs');
  [kube, helm, serviceImageUser] = await Promise.all([
    startKube({ workDir: join(workDir, 'kube'), logDir }),
    setupHelm(workDir),
    dockerfileUser(),
  ]);
  cluster = TestCluster.fromFile(kube.kubeconfigPath);
  chartVersion = (parse(await readFile(join(CHART_DIR, 'Chart.yaml'), 'utf8')) as { version: string }).version;
}, 300_000);

afterAll(async () => {
  await kube?.stop();
  // Keep the logs for whoever debugs a run, as test/env/environment.ts does.
  for (const entry of await readdir(workDir).catch(() => [])) {
    if (entry !== 'logs') await rm(join(workDir, entry), { recursive: true, force: true });
  }
}, 60_000);

describe('helm lint --strict and the values checks', () => {
  it.each(Object.entries(VALUE_SETS))('passes with the %s values', async (name, values) => {
    const file = await helm.valuesFile(name, values);
    const { stdout } = await helm.run(['lint', '--strict', CHART_DIR, '-f', file]);
    expect(stdout).toContain('0 chart(s) failed');
  });

  it.each<[string, Values, string]>([
    [
      'a remote plane without the token Secret',
      { distributor: { keptnApiEndpoint: 'https://keptn.example.com/api', keptnApiTokenSecret: '' } },
      'keptnApiTokenSecret',
    ],
    ['OAuth without the client secret', { distributor: { oauth: { clientId: 'gitops' } } }, 'clientSecretName'],
    ['an existing ServiceAccount without its name', { serviceAccount: { create: false } }, 'serviceAccount/name'],
    ['a misspelt value', { replica: 2 }, 'replica'],
    ['a preStop as long as the grace period', { distributor: { preStopSeconds: 30 }, terminationGracePeriodSeconds: 30 }, 'preStopSeconds'],
    // Ports: the pod's containers share one network (templates/checks.yaml; the schema cannot compare two values).
    [
      'the health port on the events port',
      { ports: { events: 8082, health: 8082 } },
      'ports.health is 8082, the same port as ports.events',
    ],
    [
      'the notifications port on the health port',
      { observe: { notifications: { enabled: true, port: 8082 } } },
      'observe.notifications.port is 8082, the same port as ports.health',
    ],
    [
      "the events port on the distributor's",
      { ports: { events: 8081 } },
      "ports.events is 8081, the same port as the distributor's API proxy",
    ],
    // Quantities and environment values, by the schema (its error names the value's path).
    ['a memory request in MB', { resources: { requests: { memory: '128MB' } } }, '/resources/requests/memory'],
    ['a CPU limit in words', { distributor: { resources: { limits: { cpu: 'half' } } } }, '/distributor/resources/limits/cpu'],
    ['a negative quantity', { resources: { limits: { memory: '-1Gi' } } }, '/resources/limits/memory'],
    ['a misspelt resources key', { resources: { limit: { memory: '1Gi' } } }, "additional properties 'limit' not allowed"],
    ['a clone cache size with a space', { gitCacheSizeLimit: '2 Gi' }, '/gitCacheSizeLimit'],
    ['a number as an environment value', { extraEnv: [{ name: 'LEASE_SECONDS', value: 30 }] }, '/extraEnv/0/value'],
    [
      'a boolean as a distributor environment value',
      { distributor: { extraEnv: [{ name: 'X', value: true }] } },
      '/distributor/extraEnv/0/value',
    ],
    [
      'an environment variable with value and valueFrom',
      { extraEnv: [{ name: 'A', value: 'a', valueFrom: { fieldRef: { fieldPath: 'metadata.name' } } }] },
      '/extraEnv/0',
    ],
    // Rendered as install and upgrade render: lint only logs a template's `fail` and `required` (helm.sh/helm/v3
    // pkg/engine/engine.go, LintMode), the schema it does check.
  ])('refuses %s', async (_name, values, mentioned) => {
    const file = await helm.valuesFile('bad', values);
    const failure = await helm.run(['template', 'bad', CHART_DIR, '-f', file]).then(
      () => undefined,
      (err: unknown) => err,
    );
    expect(failure).toBeInstanceOf(HelmError);
    expect(`${(failure as HelmError).stdout}${(failure as HelmError).stderr}`).toContain(mentioned);
  });

  it('accepts the valid forms next to those refused', async () => {
    const objects = await helm.render('edges', 'keptn', {
      resources: { requests: { cpu: '100m', memory: 134217728 }, limits: { cpu: 0.5, memory: '1e9', 'ephemeral-storage': '2Gi' } },
      distributor: { resources: { requests: { cpu: '.25' } }, extraEnv: [{ name: 'API_PROXY_HTTP_TIMEOUT', value: '60' }] },
      gitCacheSizeLimit: '512Mi',
      extraEnv: [{ name: 'NODE_NAME', valueFrom: { fieldRef: { fieldPath: 'spec.nodeName' } } }],
      // Notifications off: their port is not listened on, so it may equal another.
      observe: { notifications: { enabled: false, port: 8082 } },
    });
    expect(deploymentOf(objects).spec?.template.spec?.containers[0]?.resources?.limits).toEqual({
      cpu: 0.5,
      memory: '1e9',
      'ephemeral-storage': '2Gi',
    });
    const onItsOwnPort = await helm.render('notify', 'keptn', { observe: { notifications: { enabled: true, port: 9443 } } });
    expect(containerEnv(deploymentOf(onItsOwnPort).spec!.template.spec!, 'gitops-service')['NOTIFY_PORT']?.value).toBe('9443');
  });
});

describe('rendered templates', () => {
  it("pulls the image of the chart's appVersion by default, and that is package.json's version (what a release publishes)", async () => {
    const chart = parse(await readFile(join(CHART_DIR, 'Chart.yaml'), 'utf8')) as { appVersion: string };
    const pkg = JSON.parse(await readFile(join(CHART_DIR, '..', 'package.json'), 'utf8')) as { version: string };
    expect(chart.appVersion).toBe(pkg.version);
    const spec = deploymentOf(await helm.render('team-a', 'keptn', {})).spec!.template.spec!;
    expect(spec.containers.find((c) => c.name === 'gitops-service')?.image).toBe(`${SERVICE_IMAGE}:${chart.appVersion}`);
  });

  it('namespaced mode: no cluster-wide RBAC, the tool rules in a Role per listed namespace, and the service told to watch just those', async () => {
    const objects = await helm.render('team-a', 'keptn', { rbac: { namespaces: ['flux-system', 'team-a-apps'] } });
    expect(objects.filter((o) => o.kind?.startsWith('Cluster'))).toEqual([]);
    const tools = objects.filter((o) => o.kind === 'Role' && o.metadata?.name?.endsWith('-tools'));
    expect(tools.map((r) => r.metadata?.namespace)).toEqual(['flux-system', 'team-a-apps']);
    const rules = (tools[0] as KubernetesObject & { rules: Array<{ resources: string[]; verbs: string[] }> }).rules;
    expect(rules).toEqual(
      expect.arrayContaining([
        { apiGroups: ['kustomize.toolkit.fluxcd.io'], resources: ['kustomizations'], verbs: ['get', 'list', 'watch', 'patch'] },
      ]),
    );
    const env = deploymentOf(objects).spec!.template.spec!.containers.find((c) => c.name === 'gitops-service')!.env!;
    expect(env).toContainEqual({ name: 'WATCH_NAMESPACES', value: 'flux-system,team-a-apps' });
  });

  it.each(Object.entries(VALUE_SETS))('%s: the selector is name and instance only, and the pods carry it', async (_name, values) => {
    const deployment = deploymentOf(await helm.render('team-a', 'keptn', values));
    expect(deployment.spec?.selector.matchLabels).toEqual({
      'app.kubernetes.io/name': 'keptn-gitops-service',
      'app.kubernetes.io/instance': 'team-a',
    });
    expect(deployment.spec?.template.metadata?.labels).toEqual(expect.objectContaining(deployment.spec!.selector.matchLabels!));
    expect(deployment.metadata?.labels).toEqual(
      expect.objectContaining({
        'app.kubernetes.io/managed-by': 'Helm',
        'app.kubernetes.io/version': '0.1.0',
        'helm.sh/chart': `keptn-gitops-service-${chartVersion}`,
      }),
    );
  });

  it("gives the distributor what Keptn's own service charts give it", async () => {
    const spec = deploymentOf(await helm.render('team-a', 'keptn', {})).spec!.template.spec!;
    const env = containerEnv(spec, 'distributor');
    expect(
      Object.fromEntries(
        Object.entries(env)
          .filter(([, e]) => e.value !== undefined)
          .map(([k, e]) => [k, e.value]),
      ),
    ).toEqual(
      expect.objectContaining({
        DISTRIBUTOR_VERSION: '1.4.5',
        LOCATION: 'control-plane',
        VERSION: '0.1.0',
        K8S_DEPLOYMENT_NAME: 'team-a',
        PUBSUB_RECIPIENT: '127.0.0.1',
        PROJECT_FILTER: '',
        STAGE_FILTER: '',
        SERVICE_FILTER: '',
        DISABLE_REGISTRATION: 'false',
        HEARTBEAT_INTERVAL: '3s',
        API_PROXY_HTTP_TIMEOUT: '30',
        API_PROXY_MAX_PAYLOAD_BYTES_KB: '64',
      }),
    );
    const distributor = spec.containers.find((c) => c.name === 'distributor')!;
    expect(distributor.lifecycle?.preStop?.exec?.command).toEqual(['/bin/sleep', '10']);
    expect(distributor.readinessProbe?.exec?.command).toEqual(expect.arrayContaining(['http://127.0.0.1:8081/health']));
    expect(Number(distributor.lifecycle?.preStop?.exec?.command?.[1])).toBeLessThan(spec.terminationGracePeriodSeconds!);
  });

  it('mounts the API token in the service container only; the distributor gets none (issue 19, item 10)', async () => {
    const spec = deploymentOf(await helm.render('team-a', 'keptn', {})).spec!.template.spec!;
    expect(spec.automountServiceAccountToken).toBe(false);
    const mounts = (name: string) => spec.containers.find((c) => c.name === name)!.volumeMounts ?? [];
    expect(mounts('gitops-service')).toContainEqual({
      name: 'kube-api-access',
      mountPath: '/var/run/secrets/kubernetes.io/serviceaccount',
      readOnly: true,
    });
    expect(mounts('distributor')).toEqual([]);
    const volume = spec.volumes!.find((v) => v.name === 'kube-api-access')!;
    expect(volume.projected!.sources).toEqual([
      { serviceAccountToken: { path: 'token', expirationSeconds: 3607 } },
      { configMap: { name: 'kube-root-ca.crt', items: [{ key: 'ca.crt', path: 'ca.crt' }] } },
      { downwardAPI: { items: [{ path: 'namespace', fieldRef: { apiVersion: 'v1', fieldPath: 'metadata.namespace' } }] } },
    ]);
  });

  it('bounds the Git cache below its volume and passes the internal Git hosts allowed (issue 19, items 5 and 8)', async () => {
    const defaults = containerEnv(deploymentOf(await helm.render('team-a', 'keptn', {})).spec!.template.spec!, 'gitops-service');
    expect(defaults['GIT_CACHE_LIMIT']?.value).toBe('1536Mi');
    expect(defaults['ALLOWED_GIT_HOSTS']).toBeUndefined();
    const set = containerEnv(
      deploymentOf(await helm.render('team-a', 'keptn', { git: { allowedHosts: ['gitea.gitea.svc', '10.0.0.7:3000'] } })).spec!.template
        .spec!,
      'gitops-service',
    );
    expect(set['ALLOWED_GIT_HOSTS']?.value).toBe('gitea.gitea.svc,10.0.0.7:3000');
  });

  it('extra environment replaces a variable the chart sets instead of repeating it', async () => {
    const spec = deploymentOf(
      await helm.render('team-a', 'keptn', { ...VALUE_SETS['customised'], extraEnv: [{ name: 'LOG_LEVEL', value: 'debug' }] }),
    ).spec!.template.spec!;
    for (const container of spec.containers) {
      const names = (container.env ?? []).map((e) => e.name);
      expect(names).toEqual([...new Set(names)]);
    }
    expect(containerEnv(spec, 'gitops-service')['LOG_LEVEL']?.value).toBe('debug');
    expect(containerEnv(spec, 'distributor')['API_PROXY_HTTP_TIMEOUT']?.value).toBe('60');
    expect(containerEnv(spec, 'distributor')['STAGE_FILTER']?.value).toBe('dev,prod');
  });

  it('gives every release its own NATS queue group and integration name', async () => {
    const releases: Array<[string, string]> = [
      ['team-a', 'keptn'],
      ['team-b', 'keptn'],
      ['team-a', 'keptn-prod'],
    ];
    const envs = await Promise.all(
      releases.map(async ([release, ns]) =>
        containerEnv(deploymentOf(await helm.render(release, ns, {})).spec!.template.spec!, 'distributor'),
      ),
    );
    const groups = envs.map((e) => e['PUBSUB_GROUP']?.value);
    expect(new Set(groups).size).toBe(releases.length);
    expect(groups.every((g) => typeof g === 'string' && g.length > 0)).toBe(true);
    expect(new Set(envs.slice(0, 2).map((e) => e['K8S_DEPLOYMENT_NAME']?.value)).size).toBe(2);
  });

  it('remote plane: the Keptn API token comes from a named Secret, TLS and OAuth options reach the distributor', async () => {
    const spec = deploymentOf(await helm.render('remote', 'keptn-exec', VALUE_SETS['remotePlane'])).spec!.template.spec!;
    const env = containerEnv(spec, 'distributor');
    expect(env['KEPTN_API_ENDPOINT']?.value).toBe('https://keptn.example.com/api');
    expect(env['KEPTN_API_TOKEN']?.valueFrom?.secretKeyRef).toEqual({ name: 'keptn-api-token', key: 'keptn-api-token' });
    expect(env['OAUTH_CLIENT_SECRET']?.valueFrom?.secretKeyRef).toEqual({ name: 'keptn-oauth', key: 'client-secret' });
    expect(env['HTTP_SSL_VERIFY']?.value).toBe('false');
    expect(env['LOCATION']?.value).toBe('remote-execution-plane');
    const refs = spec.containers
      .flatMap((c) => c.env ?? [])
      .map((e) => e.valueFrom?.secretKeyRef)
      .filter((r) => r !== undefined);
    expect(refs.every((r) => typeof r.name === 'string' && r.name.length > 0)).toBe(true);
  });

  it("the kubelet check fails when the chart leaves the distributor's user to its image, and passes for the service image alone", async () => {
    const spec = deploymentOf(
      await helm.render('team-a', 'keptn', {
        distributor: { securityContext: { runAsUser: null, runAsGroup: null } },
        securityContext: { runAsUser: null, runAsGroup: null },
      }),
    ).spec!.template.spec!;
    expect(containerStartProblems(spec, userOf)).toEqual([
      expect.stringContaining('container distributor: runAsNonRoot and the image has a non-numeric user (nonroot)'),
    ]);
  });
});

describe('the notes after install', () => {
  /** NOTES.txt as `helm install` prints it, rendered without touching the cluster. */
  async function notes(release: string, namespace: string, values: Values): Promise<string> {
    const file = await helm.valuesFile(`notes-${release}`, values);
    const { stdout } = await helm.run(['install', release, CHART_DIR, '--namespace', namespace, '-f', file, '--dry-run=client'], {
      kubeconfig: kube.kubeconfigPath,
    });
    const at = stdout.indexOf('NOTES:');
    expect(at).toBeGreaterThanOrEqual(0);
    return stdout.slice(at);
  }

  it('name every step after install: the image, the Secret grant, the target grant, the settings and the shipyard tasks', async () => {
    const text = await notes('gitops-service', 'keptn', {});
    expect(text).toContain(`the pod runs ${SERVICE_IMAGE}:0.1.0`);
    expect(text).toContain('keptn create secret <name> --scope=keptn-default');
    expect(text).toContain(
      'kubectl -n keptn annotate secret <name> gitops.keptn.sh/projects=<project> gitops.keptn.sh/git-hosts=<git host>',
    );
    expect(text).toContain(
      'kubectl -n flux-system annotate kustomizations.kustomize.toolkit.fluxcd.io <name> gitops.keptn.sh/projects=<project>',
    );
    expect(text).toContain('kubectl -n argocd annotate applications.argoproj.io <name> gitops.keptn.sh/projects=<project>');
    expect(text).toContain('--resourceUri=gitops/config.yaml');
    for (const task of ['deployment', 'release', 'rollback']) expect(text).toContain(`${task}: subscribed`);
    expect(text).toContain('its pod is removed afterwards, passed or failed');
  });

  it('say which shipyard task is not subscribed, and how to subscribe it', async () => {
    const text = await notes('gitops-service', 'keptn', {
      distributor: { topics: 'sh.keptn.event.deployment.triggered,sh.keptn.event.rollback.triggered', registration: false },
    });
    expect(text).toContain('release: NOT subscribed (add sh.keptn.event.release.triggered to distributor.topics)');
    expect(text).toContain('deployment: subscribed');
  });

  it("fit where the chart was installed: beside Keptn, or apart from Keptn's namespace", async () => {
    const beside = await notes('gitops-service', 'keptn', {});
    expect(beside).toContain("Keptn is taken to run in keptn, this release's namespace");
    expect(beside).toContain("and that is\n  Keptn's namespace: Keptn's own ConfigMaps and leader-election Leases included");

    const apart = await notes('gitops', 'keptn-gitops', {
      service: { secretNamespace: 'keptn' },
      state: { namespace: 'keptn-gitops-state' },
    });
    expect(apart).toContain('Keptn runs in keptn (service.secretNamespace), apart from this release');
    expect(apart).toContain('WARNING: distributor.natsUrl=nats://keptn-nats is a name in keptn-gitops, not in keptn');
    expect(apart).toContain('kubectl -n keptn annotate secret <name>');
    expect(apart).not.toContain("Keptn's own ConfigMaps");

    const apartWithNats = await notes('gitops', 'keptn-gitops', {
      service: { secretNamespace: 'keptn' },
      distributor: { natsUrl: 'nats://keptn-nats.keptn' },
    });
    expect(apartWithNats).not.toContain('WARNING');
    // Records in the release's own namespace, which is not Keptn's: a warning about that namespace, not Keptn's.
    expect(apartWithNats).toContain('keep nothing else in\n  keptn-gitops');

    const remote = await notes('remote', 'keptn-exec', VALUE_SETS['remotePlane']!);
    expect(remote).toContain('Keptn runs in another cluster: Git credentials are Secrets in namespace keptn-exec of this one.');
    expect(remote).toContain('kubectl -n keptn-exec create secret generic <name>');
    expect(remote).not.toContain('keptn create secret');
  });
});

/**
 * Pod Security only warns about a Deployment; it refuses a Pod. This asks for the pod the ReplicaSet would create (its
 * ServiceAccount exists only after a real install, so `default` stands in: admission checks that it exists).
 */
function dryRunPodOf(deployment: V1Deployment, name: string): Promise<KubernetesObject> {
  const template = deployment.spec!.template;
  return cluster.objects.create(
    {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { ...template.metadata, name, namespace: 'chart-dry-run' },
      spec: { ...template.spec!, serviceAccountName: 'default' },
    } as KubernetesObject,
    undefined,
    'All',
  );
}

describe('server-side dry run on the real API server', () => {
  beforeAll(async () => {
    await restrictedNamespace('chart-dry-run');
  }, 60_000);

  it.each(Object.entries(VALUE_SETS))(
    '%s: every object is accepted, and so are the pods it would make',
    async (name, values) => {
      const objects = (await helm.render(`dry-${name.toLowerCase()}`, 'chart-dry-run', values)).map((o) => namespaced(o, 'chart-dry-run'));
      const clusterWide = name === 'namespaced' ? [] : ['ClusterRole', 'ClusterRoleBinding'];
      expect(objects.map((o) => o.kind)).toEqual(
        expect.arrayContaining(['ServiceAccount', 'Role', 'RoleBinding', ...clusterWide, 'Service', 'Deployment', 'Pod']),
      );
      for (const obj of objects) {
        const accepted = await explain(`dry run of ${obj.kind} ${obj.metadata?.name}`, () =>
          cluster.objects.patch(obj, undefined, 'All', 'chart-e2e', true, PatchStrategy.ServerSideApply),
        );
        expect(accepted.metadata?.name).toBe(obj.metadata?.name);
        if (obj.kind === 'Deployment' || obj.kind === 'Pod') {
          const spec = obj.kind === 'Deployment' ? (accepted as V1Deployment).spec!.template.spec! : (accepted as V1Pod).spec!;
          expect(containerStartProblems(spec, userOf)).toEqual([]);
        }
      }
      await explain("dry run of the Deployment's pod", () => dryRunPodOf(deploymentOf(objects), `dry-${name.toLowerCase()}-pod`));
    },
    60_000,
  );

  it("Pod Security refuses the pod once the chart's pod security settings are taken away (the check above is live)", async () => {
    const objects = await helm.render('dry-unsafe', 'chart-dry-run', { podSecurityContext: { runAsNonRoot: null, seccompProfile: null } });
    const refusal = await dryRunPodOf(deploymentOf(objects), 'dry-unsafe-pod').then(
      () => undefined,
      (err: unknown) => err as { code?: number; body?: unknown },
    );
    expect(refusal?.code).toBe(403);
    expect(JSON.stringify(refusal?.body)).toContain('violates PodSecurity');
  });
});

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
    await Promise.all([restrictedNamespace('keptn'), restrictedNamespace('keptn-exec')]);
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
