// Argo CD verdicts on setups teams really run (issue 7), against the real Argo CD 3.5 controllers: an Application
// that tracks a tag, one that needs CreateNamespace=true, and settings that edit a file the Application does not
// deploy. Keptn's control plane is played by this test on NATS; the real distributor hands events to the service.
import { execFile } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import type { KubernetesObject } from '@kubernetes/client-node';
import { startEnvironment, type Environment } from '../env/environment.js';
import { answerTo, keptnEvent, type EventStream, type KeptnCloudEvent } from '../env/keptn.js';
import { waitUntil } from '../env/process.js';
import {
  appFiles,
  grantAnnotations,
  IMAGE,
  imageInCluster,
  keptnSecret,
  settingsYaml,
  toolObjects,
  type TestApp,
} from '../env/sample-app.js';

const execFileAsync = promisify(execFile);
const APP = { apiVersion: 'argoproj.io/v1alpha1', kind: 'Application' } as const;

interface ApplicationObject extends KubernetesObject {
  spec: Record<string, unknown>;
  status?: {
    operationState?: {
      phase?: string;
      operation?: { info?: Array<{ name: string; value: string }>; retry?: unknown; sync?: { syncOptions?: string[]; prune?: boolean } };
    };
  };
}

let env: Environment;
let events: EventStream;
let counter = 0;

beforeAll(async () => {
  env = await startEnvironment({ argocd: true });
  events = env.controlPlane.subscribe('sh.keptn.event.>');
}, 300_000);

afterAll(async () => {
  events?.close();
  await env?.stop();
}, 60_000);

/** A repository with the sample app (and `extra` files), the Keptn secret and settings; the Application is the test's. */
async function newRepo(extra: Record<string, string> = {}): Promise<TestApp> {
  const name = `argocd-verdict-${++counter}`;
  const { url, commit } = await env.git.createRepo(name, { ...appFiles(name), ...extra });
  const app: TestApp = { name, namespace: name, repo: name, repoUrl: url, initialCommit: commit, service: `svc-${name}` };
  const [repoSecret] = toolObjects('argocd', app, env);
  await env.cluster.apply([keptnSecret(app, env), repoSecret!]);
  return app;
}

function application(app: TestApp, spec: Record<string, unknown>): KubernetesObject {
  return {
    ...APP,
    metadata: { name: app.name, namespace: 'argocd', annotations: grantAnnotations() },
    spec: {
      project: 'default',
      source: { repoURL: app.repoUrl, path: `apps/${app.name}`, targetRevision: 'main' },
      destination: { server: 'https://kubernetes.default.svc', namespace: app.namespace },
      ...spec,
    },
  } as KubernetesObject;
}

async function initiallyDeployed(app: TestApp, revision: string): Promise<void> {
  await env.cluster.mergePatch({ ...APP, metadata: { name: app.name, namespace: 'argocd' }, operation: { sync: { revision } } });
  await waitUntil(`${app.name} initially deployed`, async () => (await imageInCluster(env.cluster, app)) === `${IMAGE}:0.1.0`, {
    timeoutMs: 120_000,
  });
}

async function deliver(
  app: TestApp,
  image = `${IMAGE}:0.2.0`,
): Promise<{ finished: KeptnCloudEvent; triggered: KeptnCloudEvent; ms: number }> {
  const triggered = keptnEvent('sh.keptn.event.deployment.triggered', {
    project: 'podtato',
    stage: 'dev',
    service: app.service,
    configurationChange: { values: { image } },
    deployment: { deploymentstrategy: 'direct' },
  });
  const t0 = Date.now();
  await env.controlPlane.publish(triggered);
  await events.waitFor(answerTo(triggered.id, 'started', 'deployment'), { timeoutMs: 10_000, what: '.started' });
  const finished = await events.waitFor(answerTo(triggered.id, 'finished', 'deployment'), { timeoutMs: 180_000, what: '.finished' });
  return { finished, triggered, ms: Date.now() - t0 };
}

/** With ARGOCD_CAPTURE=<dir>, keeps the Application as the real controller left it, for test/fixtures/argocd. */
async function capture(app: TestApp, file: string): Promise<void> {
  const dir = process.env['ARGOCD_CAPTURE'];
  if (!dir) return;
  const a = await readApplication(app);
  delete (a.metadata as { managedFields?: unknown }).managedFields;
  await writeFile(join(dir, `${file}.json`), `${JSON.stringify(a, null, 2)}\n`);
}

/** Settings for the sample app with `extra` lines appended (e.g. an `argocd:` block). */
const settingsWith = (app: TestApp, extra: string) => `${settingsYaml('argocd', app).replace(/timeout: .*\n/, 'timeout: 120s\n')}${extra}`;

const readApplication = (app: TestApp) => env.cluster.read<ApplicationObject>(APP.apiVersion, APP.kind, 'argocd', app.name);
const ourOperation = (a: ApplicationObject, triggeredId: string) =>
  a.status?.operationState?.operation?.info?.some((i) => i.value === triggeredId) ?? false;

describe('Argo CD verdicts', () => {
  it('refuses at once, writing and syncing nothing, when the Application tracks a tag instead of our branch', async () => {
    const app = await newRepo();
    await execFileAsync('git', ['-C', join(env.git.root, 'repos', `${app.repo}.git`), 'tag', 'v1.4.0', app.initialCommit]);
    await env.cluster.apply([
      { apiVersion: 'v1', kind: 'Namespace', metadata: { name: app.namespace } } as KubernetesObject,
      application(app, { source: { repoURL: app.repoUrl, path: `apps/${app.name}`, targetRevision: 'v1.4.0' } }),
    ]);
    env.resources.put({ project: 'podtato', stage: 'dev', service: app.service }, 'gitops/config.yaml', settingsYaml('argocd', app));
    await initiallyDeployed(app, 'v1.4.0');

    const d = await deliver(app);
    // Issue 19: refused from the Application's spec before any Git access (src/target-source.ts).
    expect(d.finished.data).toMatchObject({ status: 'errored', result: 'fail' });
    expect(d.finished.data.message).toContain(
      `Application argocd/${app.name} reads ${app.repoUrl} at targetRevision v1.4.0, not branch main`,
    );
    expect(await env.git.log(app.repo)).toHaveLength(1);
    expect(d.ms).toBeLessThan(20_000);
    // The team's app stays on its tag: no operation of ours, the old image still runs.
    expect(ourOperation(await readApplication(app), d.triggered.id)).toBe(false);
    expect(await imageInCluster(env.cluster, app)).toBe(`${IMAGE}:0.1.0`);
  }, 240_000);

  it('in a multi-source Application, syncs the source that tracks our branch, not the first one with our URL', async () => {
    const app = await newRepo({ 'extra/cm.yaml': 'apiVersion: v1\nkind: ConfigMap\nmetadata: { name: extra }\ndata: { a: "1" }\n' });
    await execFileAsync('git', ['-C', join(env.git.root, 'repos', `${app.repo}.git`), 'tag', 'v1.4.0', app.initialCommit]);
    const sources = [
      { repoURL: app.repoUrl, path: 'extra', targetRevision: 'v1.4.0' },
      { repoURL: app.repoUrl, path: `apps/${app.name}`, targetRevision: 'main' },
    ];
    await env.cluster.apply([
      { apiVersion: 'v1', kind: 'Namespace', metadata: { name: app.namespace } } as KubernetesObject,
      application(app, { source: undefined, sources }),
    ]);
    env.resources.put({ project: 'podtato', stage: 'dev', service: app.service }, 'gitops/config.yaml', settingsYaml('argocd', app));
    await env.cluster.mergePatch({
      ...APP,
      metadata: { name: app.name, namespace: 'argocd' },
      operation: { sync: { revisions: ['v1.4.0', app.initialCommit], sourcePositions: [1, 2] } },
    });
    await waitUntil(`${app.name} initially deployed`, async () => (await imageInCluster(env.cluster, app)) === `${IMAGE}:0.1.0`, {
      timeoutMs: 120_000,
    });

    const d = await deliver(app);
    const ours = (await env.git.log(app.repo))[0]!.sha;
    expect(d.finished.data).toMatchObject({ result: 'pass', deployment: { gitCommit: ours } });
    expect(await imageInCluster(env.cluster, app)).toBe(`${IMAGE}:0.2.0`);
    const synced = await env.cluster.read<KubernetesObject & { status: { sync: { revisions: string[] } } }>(
      APP.apiVersion,
      APP.kind,
      'argocd',
      app.name,
    );
    expect(synced.status.sync.revisions).toEqual([app.initialCommit, ours]);
  }, 240_000);

  it("carries the Application's syncOptions, retry and prune into our sync: CreateNamespace=true makes the namespace", async () => {
    const app = await newRepo();
    // Automated sync switched off (Argo CD 3.x `enabled: false`), but its prune setting is the team's choice for syncs.
    const syncPolicy = {
      automated: { enabled: false, prune: true },
      syncOptions: ['CreateNamespace=true'],
      retry: { limit: 2, backoff: { duration: '2s', factor: 2, maxDuration: '10s' } },
    };
    // No namespace and no earlier sync: only a sync that carries CreateNamespace=true can deploy this app.
    await env.cluster.apply([application(app, { syncPolicy })]);
    env.resources.put({ project: 'podtato', stage: 'dev', service: app.service }, 'gitops/config.yaml', settingsYaml('argocd', app));

    const d = await deliver(app);
    expect(d.finished.data).toMatchObject({
      status: 'succeeded',
      result: 'pass',
      deployment: { gitCommit: (await env.git.log(app.repo))[0]!.sha },
    });
    expect(await imageInCluster(env.cluster, app)).toBe(`${IMAGE}:0.2.0`);
    const written = await readApplication(app);
    expect(ourOperation(written, d.triggered.id)).toBe(true);
    expect(written.status?.operationState?.operation).toMatchObject({
      retry: syncPolicy.retry,
      sync: { syncOptions: ['CreateNamespace=true'], prune: true },
    });
  }, 240_000);

  it('refuses, naming the file and the Application, settings that edit a file the Application does not deploy', async () => {
    const elsewhere = 'apps/unused/kustomization.yaml';
    const app = await newRepo({
      [elsewhere]: `apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nimages:\n  - name: ${IMAGE}\n    newTag: 0.1.0\n`,
    });
    await env.cluster.apply([
      { apiVersion: 'v1', kind: 'Namespace', metadata: { name: app.namespace } } as KubernetesObject,
      application(app, {}),
    ]);
    env.resources.put(
      { project: 'podtato', stage: 'dev', service: app.service },
      'gitops/config.yaml',
      settingsYaml('argocd', app).replace(`file: apps/${app.name}/kustomization.yaml`, `file: ${elsewhere}`),
    );
    await initiallyDeployed(app, app.initialCommit);

    const d = await deliver(app);
    // Issue 19: refused from the Application's spec before any Git access (src/target-source.ts).
    expect(d.finished.data).toMatchObject({ status: 'errored', result: 'fail' });
    expect(d.finished.data.message).toContain(
      `images[].file ${elsewhere} is not in what Application argocd/${app.name} deploys from ${app.repoUrl} on branch main (Application argocd/${app.name}: directory apps/${app.name})`,
    );
    expect(await env.git.readFile(app.repo, elsewhere)).toContain('newTag: 0.1.0');
    expect(await env.git.log(app.repo)).toHaveLength(1);
    expect(d.ms).toBeLessThan(20_000);
  }, 240_000);

  it('fails once Degraded outlasts the grace period, naming the workload that runs our image', async () => {
    const app = await newRepo();
    // Pods that never schedule, and a short progress deadline: the Deployment turns Degraded (ProgressDeadlineExceeded).
    const files = appFiles(app.name, { unschedulable: true });
    await env.git.commitAsOther(
      app.repo,
      {
        [`apps/${app.name}/deployment.yaml`]: files[`apps/${app.name}/deployment.yaml`]!.replace(
          'progressDeadlineSeconds: 600',
          'progressDeadlineSeconds: 5',
        ),
      },
      'unschedulable, short deadline',
    );
    await env.cluster.apply([
      { apiVersion: 'v1', kind: 'Namespace', metadata: { name: app.namespace } } as KubernetesObject,
      application(app, {}),
    ]);
    env.resources.put(
      { project: 'podtato', stage: 'dev', service: app.service },
      'gitops/config.yaml',
      settingsWith(app, 'argocd:\n  degradedGrace: 5s\n'),
    );
    await initiallyDeployed(app, 'main');

    const d = await deliver(app);
    expect(d.finished.data).toMatchObject({ status: 'succeeded', result: 'fail' });
    expect(d.finished.data.message).toMatch(
      new RegExp(
        `Application argocd/${app.name} has been Degraded at [0-9a-f]{40} for \\d+ s: .*our image runs in Deployment ${app.namespace}/web`,
      ),
    );
    expect(d.ms).toBeLessThan(90_000);
  }, 240_000);

  it('fails at once on a Suspended app (a paused Deployment), saying which setting lets it pass', async () => {
    const app = await newRepo();
    const deployment = appFiles(app.name)[`apps/${app.name}/deployment.yaml`]!.replace(
      '  replicas: 1\n',
      '  replicas: 1\n  paused: true\n',
    );
    await env.git.commitAsOther(app.repo, { [`apps/${app.name}/deployment.yaml`]: deployment }, 'paused');
    await env.cluster.apply([
      { apiVersion: 'v1', kind: 'Namespace', metadata: { name: app.namespace } } as KubernetesObject,
      application(app, {}),
    ]);
    env.resources.put({ project: 'podtato', stage: 'dev', service: app.service }, 'gitops/config.yaml', settingsWith(app, ''));
    await initiallyDeployed(app, 'main');

    const d = await deliver(app);
    await capture(app, 'suspended-deployment-paused');
    expect(d.finished.data).toMatchObject({ status: 'succeeded', result: 'fail' });
    expect(d.finished.data.message).toMatch(
      new RegExp(`Application argocd/${app.name} is Suspended at [0-9a-f]{40}.*set argocd.suspended to pass or wait`),
    );
    expect(d.ms).toBeLessThan(30_000);
  }, 240_000);

  it('fails at once when a deny sync window of its project blocks our sync until after the deadline', async () => {
    const app = await newRepo();
    const project = `${app.name}-frozen`;
    await env.cluster.apply([
      { apiVersion: 'v1', kind: 'Namespace', metadata: { name: app.namespace } } as KubernetesObject,
      {
        apiVersion: 'argoproj.io/v1alpha1',
        kind: 'AppProject',
        metadata: { name: project, namespace: 'argocd' },
        spec: {
          sourceRepos: ['*'],
          destinations: [{ server: '*', namespace: '*' }],
          syncWindows: [{ kind: 'deny', schedule: '0 0 * * *', duration: '24h', applications: [app.name] }],
        },
      } as KubernetesObject,
      application(app, { project }),
    ]);
    env.resources.put({ project: 'podtato', stage: 'dev', service: app.service }, 'gitops/config.yaml', settingsWith(app, ''));

    const d = await deliver(app);
    expect(d.finished.data).toMatchObject({ status: 'succeeded', result: 'fail' });
    expect(d.finished.data.message).toContain(
      `Argo CD cannot sync Application argocd/${app.name} before the deadline: sync window deny "0 0 * * *" for 24h in AppProject ${project} blocks manual syncs until after the deadline`,
    );
    expect(d.ms).toBeLessThan(30_000);
    await capture(app, 'sync-blocked-by-window');
  }, 240_000);

  it('fails at once when automated sync leaves it OutOfSync because it does not prune, naming what waits to be pruned', async () => {
    const app = await newRepo();
    const kustomization = (resources: string[]) =>
      `apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n${resources.map((r) => `  - ${r}\n`).join('')}images:\n  - name: ${IMAGE}\n    newTag: 0.1.0 # set by Keptn\n`;
    await env.git.commitAsOther(
      app.repo,
      {
        [`apps/${app.name}/legacy.yaml`]: 'apiVersion: v1\nkind: ConfigMap\nmetadata: { name: legacy }\ndata: { a: "1" }\n',
        [`apps/${app.name}/kustomization.yaml`]: kustomization(['deployment.yaml', 'legacy.yaml']),
      },
      'legacy config',
    );
    await env.cluster.apply([
      { apiVersion: 'v1', kind: 'Namespace', metadata: { name: app.namespace } } as KubernetesObject,
      application(app, { syncPolicy: { automated: { prune: false } } }),
    ]);
    env.resources.put({ project: 'podtato', stage: 'dev', service: app.service }, 'gitops/config.yaml', settingsWith(app, ''));
    await waitUntil(`${app.name} initially deployed`, async () => (await imageInCluster(env.cluster, app)) === `${IMAGE}:0.1.0`, {
      timeoutMs: 120_000,
    });
    await env.git.commitAsOther(
      app.repo,
      { [`apps/${app.name}/kustomization.yaml`]: kustomization(['deployment.yaml']) },
      'drop the legacy config',
    );

    const d = await deliver(app);
    expect(d.finished.data).toMatchObject({ status: 'succeeded', result: 'fail' });
    expect(d.finished.data.message).toContain(
      `until ConfigMap ${app.namespace}/legacy is pruned, and its sync policy does not prune (syncPolicy.automated.prune is off)`,
    );
    expect(d.ms).toBeLessThan(60_000);
    await capture(app, 'outofsync-prune-only-automated');
  }, 240_000);
});
