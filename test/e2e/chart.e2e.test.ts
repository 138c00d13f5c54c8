// The chart against the real kube-apiserver of the test environment, with the real helm (test/env/peers/helm):
// lint, render for several value sets, the notes, and server-side dry runs (validation, defaulting and admission, Pod
// Security "restricted" included), with the kubelet's runAsNonRoot rule on what was rendered and applied, which
// neither admission nor kwok enforces. Install and upgrade: chart-install.e2e.test.ts.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parse } from 'yaml';
import { PatchStrategy, type KubernetesObject, type V1Deployment, type V1Pod } from '@kubernetes/client-node';
import {
  containerEnv,
  deploymentOf,
  explain,
  namespaced,
  restrictedNamespace,
  SERVICE_IMAGE,
  startChartCluster,
  userOfImages,
  VALUE_SETS,
  type ChartCluster,
  type Values,
} from '../env/chart-support.js';
import type { TestCluster } from '../env/cluster.js';
import { CHART_DIR, HelmError, type Helm } from '../env/helm.js';
import { containerStartProblems } from '../env/kubelet-rules.js';
import type { Kube } from '../env/kube.js';

let chartEnv: ChartCluster;
let kube: Kube;
let cluster: TestCluster;
let helm: Helm;
let userOf: (image: string) => string | undefined;

beforeAll(async () => {
  chartEnv = await startChartCluster('keptn-gitops-env-chart-');
  ({ kube, cluster, helm } = chartEnv);
  userOf = userOfImages(chartEnv.serviceImageUser);
}, 300_000);

afterAll(async () => {
  await chartEnv?.stop();
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
    ['fewer start turns than a project needs to share them', { maxStarting: 2 }, '/maxStarting'],
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
  /** Namespace → the resources its Roles let the service write (create, update or delete). */
  const writable = (objects: KubernetesObject[]): Record<string, string[]> => {
    const out: Record<string, string[]> = {};
    for (const role of objects.filter((o) => o.kind === 'Role') as Array<
      KubernetesObject & { rules: Array<{ resources: string[]; verbs: string[] }> }
    >)
      for (const rule of role.rules)
        if (rule.verbs.some((v) => ['create', 'update', 'delete'].includes(v)))
          (out[role.metadata!.namespace!] ??= []).push(...rule.resources);
    return out;
  };
  const podSpec = (objects: KubernetesObject[]) => deploymentOf(objects).spec!.template.spec!;

  it('keeps the state in a namespace of its own, made by the chart and kept on uninstall; the only writes are there (ADR 17)', async () => {
    const objects = await helm.render('gitops-service', 'keptn', {});
    const namespaces = objects.filter((o) => o.kind === 'Namespace');
    expect(namespaces.map((n) => [n.metadata?.name, n.metadata?.annotations?.['helm.sh/resource-policy']])).toEqual([
      ['keptn-gitops-service-state', 'keep'],
    ]);
    expect(writable(objects)).toEqual({ 'keptn-gitops-service-state': ['configmaps', 'leases'] });
    const env = containerEnv(podSpec(objects), 'gitops-service');
    expect(env['STATE_NAMESPACE']?.value).toBe('keptn-gitops-service-state');
    expect(env['PREVIOUS_STATE_NAMESPACE']).toBeUndefined();
    // A namespace named in the values is the user's: the chart makes none.
    const named = await helm.render('gitops-service', 'keptn', { state: { namespace: 'gitops-state' } });
    expect(named.filter((o) => o.kind === 'Namespace')).toEqual([]);
    expect(writable(named)).toEqual({ 'gitops-state': ['configmaps', 'leases'] });
    // Names past 63 characters are cut, and a hash of the whole keeps two releases apart.
    const long = (release: string) =>
      helm
        .render(release, 'keptn-team-platform-delivery', {})
        .then((o) => containerEnv(podSpec(o), 'gitops-service')['STATE_NAMESPACE']?.value ?? '');
    const [a, b] = await Promise.all([long('gitops-service-for-the-payments-team-a'), long('gitops-service-for-the-payments-team-b')]);
    expect([a.length, b.length]).toEqual([63, 63]);
    expect(a).not.toBe(b);
    expect(a).toMatch(/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/);
  });

  it('moving the state (state.moveFrom, or what helm upgrade finds): the service is told, and keeps its Role there meanwhile', async () => {
    const objects = await helm.render('gitops-service', 'keptn', { state: { moveFrom: 'keptn' } });
    expect(containerEnv(podSpec(objects), 'gitops-service')['PREVIOUS_STATE_NAMESPACE']?.value).toBe('keptn');
    expect(writable(objects)).toEqual({ 'keptn-gitops-service-state': ['configmaps', 'leases'], keptn: ['configmaps', 'leases'] });
    // From a namespace into itself there is nothing to move.
    const same = await helm.render('gitops-service', 'keptn', { state: { namespace: 'keptn', moveFrom: 'keptn' } });
    expect(containerEnv(podSpec(same), 'gitops-service')['PREVIOUS_STATE_NAMESPACE']).toBeUndefined();
  });

  it("apart from Keptn: Keptn's Secrets, and a DNS search path into Keptn's namespace for NATS and the distributor's API proxy", async () => {
    const beside = podSpec(await helm.render('gitops-service', 'keptn', {}));
    expect(beside.dnsConfig).toBeUndefined();
    const objects = await helm.render('gitops', 'keptn-gitops', { keptnNamespace: 'keptn' });
    const spec = podSpec(objects);
    // resource-service:8080 and shipyard-controller:8080 are fixed in the distributor (keptn/keptn 1.4.5
    // distributor/pkg/config/const.go): short names, found only through the search path.
    expect(spec.dnsConfig).toEqual({ searches: ['keptn.svc.cluster.local'] });
    expect(containerEnv(spec, 'distributor')['PUBSUB_URL']?.value).toBe('nats://keptn-nats');
    expect(containerEnv(spec, 'gitops-service')['SECRET_NAMESPACE']?.value).toBe('keptn');
    expect(containerEnv(spec, 'gitops-service')['STATE_NAMESPACE']?.value).toBe('keptn-gitops-gitops-state');
    expect(
      objects
        .filter((o) => o.kind === 'RoleBinding' && o.metadata?.namespace === 'keptn')
        .map((o) => (o as { roleRef: { name: string } }).roleRef.name),
    ).toEqual(['keptn-secrets-default-read']);
    expect(writable(objects)).toEqual({ 'keptn-gitops-gitops-state': ['configmaps', 'leases'] });
    const domain = podSpec(await helm.render('gitops', 'keptn-gitops', { keptnNamespace: 'keptn', clusterDomain: 'corp.example' }));
    expect(domain.dnsConfig).toEqual({ searches: ['keptn.svc.corp.example'] });
    // A remote execution plane reaches Keptn through its API, not by cluster names.
    const remote = podSpec(await helm.render('remote', 'keptn-exec', { ...VALUE_SETS['remotePlane'], keptnNamespace: 'keptn' }));
    expect(remote.dnsConfig).toBeUndefined();
  });

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
        'helm.sh/chart': `keptn-gitops-service-${chartEnv.chartVersion}`,
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

  it('bounds the Git cache below its volume, passes the internal Git hosts allowed (issue 19, items 5 and 8) and the start turns (issue 23)', async () => {
    const defaults = containerEnv(deploymentOf(await helm.render('team-a', 'keptn', {})).spec!.template.spec!, 'gitops-service');
    expect(defaults['GIT_CACHE_LIMIT']?.value).toBe('1536Mi');
    // The start turns (issue 23): the service's own default, unless set.
    expect(defaults['MAX_STARTING']?.value).toBe('267');
    const turns = containerEnv(
      deploymentOf(await helm.render('team-a', 'keptn', { maxStarting: 200 })).spec!.template.spec!,
      'gitops-service',
    );
    expect(turns['MAX_STARTING']?.value).toBe('200');
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
    expect(beside).toContain("If Keptn runs in another namespace, upgrade with --set keptnNamespace=<Keptn's namespace>");
    expect(beside).toContain("Deployment records and replica Leases: namespace keptn-gitops-service-state, the release's own");
    expect(beside).not.toContain("Keptn's own ConfigMaps");

    // The state in Keptn's namespace, asked for: said plainly what that allows.
    const inKeptns = await notes('gitops-service', 'keptn', { state: { namespace: 'keptn' } });
    expect(inKeptns).toContain("and that is\n  Keptn's namespace: Keptn's own ConfigMaps and leader-election Leases included");

    const apart = await notes('gitops', 'keptn-gitops', { keptnNamespace: 'keptn' });
    expect(apart).toContain('Keptn runs in keptn (keptnNamespace), apart from this release: Git credentials are read in keptn');
    expect(apart).toContain("the pod's DNS search path goes on to keptn.svc.cluster.local, where the distributor finds NATS");
    expect(apart).toContain('kubectl -n keptn annotate secret <name>');
    expect(apart).toContain('namespace keptn-gitops-gitops-state, the release');
    expect(apart).not.toContain("Keptn's own ConfigMaps");

    // Installations made before keptnNamespace named Keptn's namespace as the Secrets' one: it counts as Keptn's.
    const apartBySecrets = await notes('gitops', 'keptn-gitops', { service: { secretNamespace: 'keptn' } });
    expect(apartBySecrets).toContain('Keptn runs in keptn (keptnNamespace), apart from this release');

    // Records in the release's own namespace, which is not Keptn's: a warning about that namespace, not Keptn's.
    const inRelease = await notes('gitops', 'keptn-gitops', { keptnNamespace: 'keptn', state: { namespace: 'keptn-gitops' } });
    expect(inRelease).toContain('keep nothing else in\n  keptn-gitops.');

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
    await restrictedNamespace(cluster, 'chart-dry-run');
  }, 60_000);

  it.each(Object.entries(VALUE_SETS))(
    '%s: every object is accepted, and so are the pods it would make',
    async (name, values) => {
      const objects = (await helm.render(`dry-${name.toLowerCase()}`, 'chart-dry-run', values)).map((o) => namespaced(o, 'chart-dry-run'));
      const clusterWide = name === 'namespaced' ? [] : ['ClusterRole', 'ClusterRoleBinding'];
      expect(objects.map((o) => o.kind)).toEqual(
        expect.arrayContaining(['ServiceAccount', 'Role', 'RoleBinding', ...clusterWide, 'Service', 'Deployment', 'Pod']),
      );
      // helm creates the namespaces it renders before what goes into them; a dry run of a Namespace creates none.
      await cluster.apply(objects.filter((o) => o.kind === 'Namespace'));
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
