// What the fault suites share: an app held mid-wait behind a gate, the deployment records, the Git history of our
// commits, and the reliability report (docs/reliability.md).
import { CoreV1Api, type KubernetesObject } from '@kubernetes/client-node';
import { stateNamespace, type Environment } from '../../env/environment.js';
import { keptnEvent, type KeptnCloudEvent } from '../../env/keptn.js';
import { waitUntil } from '../../env/process.js';
import { appFiles, IMAGE, imageInCluster, keptnSecret, settingsYaml, toolObjects, type TestApp } from '../../env/sample-app.js';

/** A status condition as the controllers write it. */
type Condition = { type: string; status: string };

export type GatedApp = TestApp & { openGate(): Promise<void> };

/**
 * A Flux app whose Kustomization depends on a gate Kustomization that is not ready yet: a deployment waits (Flux says
 * DependencyNotReady) until the test opens the gate. This holds a deployment mid-wait for as long as a test needs.
 * The closed gate reads a GitRepository that does not exist, which kustomize-controller 1.9 reports as Ready=False
 * ArtifactFailed and retries (kustomization_controller.go reconcile, getSource NotFound): a dependency that may still
 * become ready. A gate that had failed at our commit instead (a missing path) is a dependency that cannot become ready
 * without a fix, and the service rightly fails the deployment on it (tools/flux/dependencies.ts).
 */
export async function gatedApp(env: Environment, name: string, opts: { timeout?: string } = {}): Promise<GatedApp> {
  const files = {
    ...appFiles(name),
    [`gates/open/gate.yaml`]: `apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: gate\ndata: { open: "true" }\n`,
  };
  const { url, commit } = await env.git.createRepo(name, files);
  const app: TestApp = { name, namespace: name, repo: name, repoUrl: url, initialCommit: commit, service: `svc-${name}` };
  await env.cluster.apply([
    { apiVersion: 'v1', kind: 'Namespace', metadata: { name } } as KubernetesObject,
    keptnSecret(app, env),
    ...toolObjects('flux', app, env),
  ]);
  env.resources.put(
    { project: 'podtato', stage: 'dev', service: app.service },
    'gitops/config.yaml',
    settingsYaml('flux', app, { timeout: opts.timeout ?? '240s' }),
  );
  await waitUntil(`${name} initially deployed`, async () => (await imageInCluster(env.cluster, app)) === `${IMAGE}:0.1.0`, {
    timeoutMs: 120_000,
  });
  // And its health check over (Ready at the first commit): a test that stops kustomize-controller must not freeze a
  // "Running health checks" status, which the service rightly reads as Flux busy with that revision (issue 24).
  await waitUntil(
    `${name} Ready at its first commit`,
    async () => {
      const k = await env.cluster.read<KubernetesObject & { status?: { lastAppliedRevision?: string; conditions?: Condition[] } }>(
        'kustomize.toolkit.fluxcd.io/v1',
        'Kustomization',
        'flux-system',
        name,
      );
      const ready = k.status?.conditions?.find((c) => c.type === 'Ready');
      return ready?.status === 'True' && (k.status?.lastAppliedRevision ?? '').endsWith(app.initialCommit);
    },
    { timeoutMs: 120_000 },
  );
  const gate = (source: string) =>
    ({
      apiVersion: 'kustomize.toolkit.fluxcd.io/v1',
      kind: 'Kustomization',
      metadata: { name: `gate-${name}`, namespace: 'flux-system' },
      spec: {
        interval: '1h',
        retryInterval: '2s',
        path: './gates/open',
        prune: true,
        targetNamespace: name,
        sourceRef: { kind: 'GitRepository', name: source },
      },
    }) as KubernetesObject;
  await env.cluster.apply([gate(`${name}-gate-never-created`)]);
  await env.cluster.mergePatch({
    apiVersion: 'kustomize.toolkit.fluxcd.io/v1',
    kind: 'Kustomization',
    metadata: { name, namespace: 'flux-system' },
    spec: { dependsOn: [{ name: `gate-${name}` }] },
  });
  return { ...app, openGate: () => env.cluster.apply([gate(name)]) };
}

export function trigger(app: TestApp, image = `${IMAGE}:0.2.0`): KeptnCloudEvent {
  return keptnEvent('sh.keptn.event.deployment.triggered', {
    project: 'podtato',
    stage: 'dev',
    service: app.service,
    configurationChange: { values: { image } },
  });
}

export async function records(env: Environment): Promise<Array<{ owner: string; phase: string; triggeredid: string }>> {
  const list = await env.cluster.kc
    .makeApiClient(CoreV1Api)
    .listNamespacedConfigMap({ namespace: stateNamespace(env), labelSelector: 'keptn-gitops-service/kind=deployment' });
  return list.items.map((cm) => ({
    owner: cm.metadata?.annotations?.['keptn-gitops-service/owner'] ?? '',
    phase: cm.metadata?.labels?.['keptn-gitops-service/phase'] ?? '',
    triggeredid: cm.metadata?.annotations?.['keptn-gitops-service/triggeredid'] ?? '',
  }));
}

/** The service's commits on the app's branch (they carry the deployment trailer). */
export const commits = async (env: Environment, app: TestApp) =>
  (await env.git.log(app.repo)).filter((c) => c.body.includes('Keptn-Deployment-Id'));

export function renderReport(report: ReadonlyArray<{ fault: string; outcome: string }>): string {
  return `# Reliability: faults tried and what happened

Produced by \`RELIABILITY_REPORT=docs/reliability.md npm run test:e2e -- test/e2e/faults\` against the real peers
(kube-apiserver, Flux, Git over HTTP, NATS, the Keptn distributor) on ${new Date().toISOString().slice(0, 10)}.
Every row is a passing test that asserted exactly one \`.started\` and one \`.finished\` per triggered event and the
Git history.

| fault | what happened |
|---|---|
${report.map((r) => `| ${r.fault} | ${r.outcome.replaceAll('|', '\\|')} |`).join('\n')}

## Inputs tried
Hostile and broken input is the corpus in \`test/unit/corpus.test.ts\`, run through the real HTTP endpoint, runner,
settings loader and Git workspace against a Git server: 22 malformed requests (4xx with the reason, nothing
started), 10 bad images and 16 bad settings files (\`.started\`, then \`.finished\` errored naming the problem,
no commit, the tool never called), and a secret canary (the Git password is in no log line, event or message, also
when the server rejects it). Property-based tests (fast-check,
\`test/unit/properties/\`) feed the request parser, image references and manifest editors arbitrary input.

## Not tried yet
NATS itself restarting; a network partition between replicas and the API server longer than the Lease; Argo CD's
repo-server alone failing.
`;
}

/**
 * An app whose objects and settings are in place, without waiting for Flux's first deployment: for faults that end
 * a deployment before Flux has anything to do. `password` replaces the Git password of the Secret the service reads.
 */
export async function appInPlace(env: Environment, name: string, opts: { timeout?: string; password?: string } = {}): Promise<TestApp> {
  const { url, commit } = await env.git.createRepo(name, appFiles(name));
  const app: TestApp = { name, namespace: name, repo: name, repoUrl: url, initialCommit: commit, service: `svc-${name}` };
  const secret = keptnSecret(app, env) as KubernetesObject & { stringData: Record<string, string> };
  await env.cluster.apply([
    { apiVersion: 'v1', kind: 'Namespace', metadata: { name } } as KubernetesObject,
    opts.password === undefined
      ? secret
      : ({ ...secret, stringData: { ...secret.stringData, password: opts.password } } as KubernetesObject),
    ...toolObjects('flux', app, env),
  ]);
  env.resources.put(
    { project: 'podtato', stage: 'dev', service: app.service },
    'gitops/config.yaml',
    settingsYaml('flux', app, opts.timeout ? { timeout: opts.timeout } : {}),
  );
  return app;
}

/** A gauge or counter of a replica's `/metrics` (0 when it has no sample with these labels yet). */
export async function metricOf(healthPort: number, name: string, labels: string): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${healthPort}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith(`${name}{${labels}}`));
  return line ? Number(line.split(' ').pop()) : 0;
}
