// The sample GitOps repository with one app, and the Flux or Argo CD objects that deliver it: what a team would have.
import type { KubernetesObject } from '@kubernetes/client-node';
import type { Environment } from './environment.js';
import type { TestCluster } from './cluster.js';
import { waitUntil } from './process.js';

export const IMAGE = 'ghcr.io/podtato/head';
/** The Keptn project every sample deployment is triggered in. */
export const PROJECT = 'podtato';

/**
 * The grant annotations (src/platform/grants.ts) a platform engineer puts on a target object or a Secret: the projects that
 * may use it and, for a Secret, the Git hosts (`host` or `host:port`) its credentials may go to.
 */
export function grantAnnotations(projects: string[] = [PROJECT], gitHosts?: string[]): Record<string, string> {
  return { 'gitops.keptn.sh/projects': projects.join(','), ...(gitHosts ? { 'gitops.keptn.sh/git-hosts': gitHosts.join(',') } : {}) };
}

/** `host:port` of a Git URL, as the git-hosts annotation names it. */
export function gitHostOf(url: string): string {
  return new URL(url).host;
}
export type Tool = 'flux' | 'argocd';

export interface AppOptions {
  /** A nodeSelector no node matches: the workload never becomes ready. */
  unschedulable?: boolean;
  /** Argo CD automated sync instead of a sync started by the service. */
  automated?: boolean;
  /** Settings timeout. */
  timeout?: string;
}

export interface TestApp {
  name: string;
  namespace: string;
  repo: string;
  repoUrl: string;
  initialCommit: string;
  service: string;
}

export function appFiles(name: string, opts: AppOptions = {}): Record<string, string> {
  return {
    [`apps/${name}/kustomization.yaml`]: `apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
resources:
  - deployment.yaml
images:
  - name: ${IMAGE}
    newTag: 0.1.0 # set by Keptn
`,
    [`apps/${name}/deployment.yaml`]: `apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  labels: { app: web }
spec:
  replicas: 1
  progressDeadlineSeconds: 600
  selector:
    matchLabels: { app: web }
  template:
    metadata:
      labels: { app: web }
    spec:${opts.unschedulable ? '\n      nodeSelector: { no-such-node: "true" }' : ''}
      containers:
        - name: web
          image: ${IMAGE}:0.1.0
`,
  };
}

function gitSecret(
  name: string,
  namespace: string,
  env: Environment,
  extraLabels: Record<string, string> = {},
  extra: Record<string, string> = {},
): KubernetesObject {
  return {
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: { name, namespace, labels: extraLabels },
    stringData: { username: env.git.username, password: env.git.password, ...extra },
  } as KubernetesObject;
}

export function toolObjects(tool: Tool, app: TestApp, env: Environment, opts: AppOptions = {}): KubernetesObject[] {
  if (tool === 'flux') {
    return [
      gitSecret(`${app.name}-git`, 'flux-system', env),
      {
        apiVersion: 'source.toolkit.fluxcd.io/v1',
        kind: 'GitRepository',
        metadata: { name: app.name, namespace: 'flux-system' },
        // A long interval: only the service's reconcile request can make Flux look at Git in time.
        spec: { interval: '1h', url: app.repoUrl, ref: { branch: 'main' }, secretRef: { name: `${app.name}-git` } },
      } as KubernetesObject,
      {
        apiVersion: 'kustomize.toolkit.fluxcd.io/v1',
        kind: 'Kustomization',
        metadata: { name: app.name, namespace: 'flux-system', annotations: grantAnnotations() },
        spec: {
          interval: '1h',
          retryInterval: '5s',
          path: `./apps/${app.name}`,
          prune: true,
          wait: true,
          timeout: '5m',
          targetNamespace: app.namespace,
          sourceRef: { kind: 'GitRepository', name: app.name },
        },
      } as KubernetesObject,
    ];
  }
  return [
    gitSecret(`${app.name}-repo`, 'argocd', env, { 'argocd.argoproj.io/secret-type': 'repository' }, { url: app.repoUrl, type: 'git' }),
    {
      apiVersion: 'argoproj.io/v1alpha1',
      kind: 'Application',
      metadata: { name: app.name, namespace: 'argocd', annotations: grantAnnotations() },
      spec: {
        project: 'default',
        source: { repoURL: app.repoUrl, path: `apps/${app.name}`, targetRevision: 'main' },
        destination: { server: 'https://kubernetes.default.svc', namespace: app.namespace },
        ...(opts.automated ? { syncPolicy: { automated: {} } } : {}),
      },
    } as KubernetesObject,
  ];
}

export function settingsYaml(tool: Tool, app: TestApp, opts: AppOptions = {}, overrides = ''): string {
  const target = tool === 'flux' ? { kind: 'Kustomization', namespace: 'flux-system' } : { kind: 'Application', namespace: 'argocd' };
  return (
    overrides ||
    `# gitops/config.yaml for ${app.service}
git:
  url: ${app.repoUrl}
  branch: main
  secretRef: { name: ${app.name}-git }
images:
  - file: apps/${app.name}/kustomization.yaml
    kustomizeImage: ${IMAGE}
target:
  kind: ${target.kind}
  name: ${app.name}
  namespace: ${target.namespace}
timeout: ${opts.timeout ?? '90s'}
report:
  deploymentURIsLocal: [http://web.${app.namespace}.svc.cluster.local:80]
`
  );
}

/**
 * The Secret the service reads, in Keptn's namespace, as `keptn create secret` would make it, then granted with
 * `kubectl annotate` to the sample project and the test Git server.
 */
export function keptnSecret(app: TestApp, env: Environment): KubernetesObject {
  const secret = gitSecret(`${app.name}-git`, 'keptn', env, {
    'app.kubernetes.io/managed-by': 'keptn-secret-service',
    'app.kubernetes.io/scope': 'keptn-default',
  });
  return { ...secret, metadata: { ...secret.metadata, annotations: grantAnnotations([PROJECT], [gitHostOf(env.git.url)]) } };
}

/**
 * A `direct` deployment of `values` (by default the image at 0.2.0) to `service` in the project's dev stage: the data
 * of the `deployment.triggered` Keptn sends for `keptn trigger delivery --image=...`.
 */
export function directDeployment(service: string, values: Record<string, unknown> = { image: `${IMAGE}:0.2.0` }): Record<string, unknown> {
  return { project: PROJECT, stage: 'dev', service, configurationChange: { values }, deployment: { deploymentstrategy: 'direct' } };
}

/** The chart's one template: the web Deployment, its image from the values' `image.repository` and `image.tag`. */
export const CHART_DEPLOYMENT = `apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  replicas: 1
  selector:
    matchLabels: { app: web }
  template:
    metadata:
      labels: { app: web }
    spec:
      containers:
        - name: web
          image: "{{ .Values.image.repository }}:{{ .Values.image.tag }}"
`;

/** The same app as a Helm chart in the repository, released by a HelmRelease that a Kustomization applies. */
export function helmAppFiles(name: string): Record<string, string> {
  return {
    'charts/web/Chart.yaml': 'apiVersion: v2\nname: web\nversion: 0.1.0\n',
    'charts/web/values.yaml': `image:\n  repository: ${IMAGE}\n  tag: 0.1.0\n`,
    'charts/web/templates/deployment.yaml': CHART_DEPLOYMENT,
    [`apps/${name}/release.yaml`]: helmReleaseYaml(
      name,
      { reconcileStrategy: 'Revision' },
      '  values:\n    image:\n      tag: 0.1.0 # set by Keptn\n',
    ),
  };
}

/** A HelmRelease of the repository's chart ./charts/web, with `chartSpec` beside `chart` and the source, and `values` (YAML under spec) as given. */
export function helmReleaseYaml(name: string, chartSpec: Record<string, unknown>, values?: string): string {
  return `apiVersion: helm.toolkit.fluxcd.io/v2
kind: HelmRelease
metadata:
  name: ${name}
  annotations: { gitops.keptn.sh/projects: ${PROJECT} }
spec:
  interval: 1h
  targetNamespace: ${name}
  chart:
    spec:
${Object.entries({ chart: './charts/web', ...chartSpec, sourceRef: `{ kind: GitRepository, name: ${name}, namespace: flux-system }` })
  .map(([k, v]) => `      ${k}: ${Array.isArray(v) ? `[${v.join(', ')}]` : String(v)}`)
  .join('\n')}
${values ?? ''}`;
}

export function helmSettingsYaml(app: TestApp): string {
  return `git:
  url: ${app.repoUrl}
  branch: main
  secretRef: { name: ${app.name}-git }
images:
  - file: apps/${app.name}/release.yaml
    yamlPath: spec.values.image.tag
    part: tag
target:
  kind: HelmRelease
  name: ${app.name}
  namespace: ${app.namespace}
timeout: 120s
`;
}

/** The image the sample app's Deployment `web` runs now, or undefined while there is none. */
export async function imageInCluster(cluster: TestCluster, app: Pick<TestApp, 'namespace'>): Promise<string | undefined> {
  try {
    const d = await cluster.read<KubernetesObject & { spec: { template: { spec: { containers: Array<{ image: string }> } } } }>(
      'apps/v1',
      'Deployment',
      app.namespace,
      'web',
    );
    return d.spec.template.spec.containers[0]?.image;
  } catch {
    return undefined;
  }
}

/**
 * Where most tests start: the sample app in a repository of its own, its namespace, its Keptn Secret, its Flux or
 * Argo CD objects and its Keptn settings (project podtato, stage dev), first deployed by the tool at 0.1.0.
 */
export async function deployedApp(
  env: Environment,
  tool: Tool,
  name: string,
  opts: AppOptions & { files?: Record<string, string>; service?: string } = {},
): Promise<TestApp> {
  const { url, commit } = await env.git.createRepo(name, { ...appFiles(name), ...opts.files });
  const app: TestApp = { name, namespace: name, repo: name, repoUrl: url, initialCommit: commit, service: opts.service ?? `svc-${name}` };
  await env.cluster.apply([
    { apiVersion: 'v1', kind: 'Namespace', metadata: { name } } as KubernetesObject,
    keptnSecret(app, env),
    ...toolObjects(tool, app, env, opts),
  ]);
  env.resources.put({ project: PROJECT, stage: 'dev', service: app.service }, 'gitops/config.yaml', settingsYaml(tool, app, opts));
  try {
    await waitUntil(`${name} first deployed by ${tool}`, async () => (await imageInCluster(env.cluster, app)) === `${IMAGE}:0.1.0`, {
      timeoutMs: 120_000,
    });
  } catch (err: unknown) {
    // Say what the tool itself reports, so a slow or failed first deployment explains itself.
    throw new Error(`${err instanceof Error ? err.message : String(err)}\n${tool} says: ${await toolStatus(env, tool, name)}`, {
      cause: err,
    });
  }
  return app;
}

async function toolStatus(env: Environment, tool: Tool, name: string): Promise<string> {
  const [apiVersion, kind, namespace] =
    tool === 'flux'
      ? ['kustomize.toolkit.fluxcd.io/v1', 'Kustomization', 'flux-system']
      : ['argoproj.io/v1alpha1', 'Application', 'argocd'];
  try {
    const obj = await env.cluster.read<KubernetesObject & { status?: unknown }>(apiVersion, kind, namespace, name);
    return JSON.stringify(obj.status ?? 'no status yet');
  } catch (err: unknown) {
    return `could not read ${kind} ${namespace}/${name}: ${err instanceof Error ? err.message : String(err)}`;
  }
}

/** `flux reconcile kustomization <name> --with-source`: what a team does to make Flux look at Git now. */
export async function requestFluxReconcile(cluster: TestCluster, name: string): Promise<void> {
  const at = new Date().toISOString();
  for (const [apiVersion, kind] of [
    ['source.toolkit.fluxcd.io/v1', 'GitRepository'],
    ['kustomize.toolkit.fluxcd.io/v1', 'Kustomization'],
  ] as const)
    await cluster.mergePatch({
      apiVersion,
      kind,
      metadata: { name, namespace: 'flux-system', annotations: { 'reconcile.fluxcd.io/requestedAt': at } },
    });
}
