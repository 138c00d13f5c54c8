// The Flux verdicts of issue 7 on the setups teams really run, against the real controllers: each scenario is a
// repository, Flux objects and settings a team would have, a Keptn deployment through the real distributor, and the
// verdict the service reports (docs/verdicts.md (Flux) is the table these scenarios prove rows of).
import { execFile } from 'node:child_process';
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
  PROJECT,
  settingsYaml,
  toolObjects,
  type TestApp,
} from '../env/sample-app.js';

let env: Environment;
let events: EventStream;
let counter = 0;

beforeAll(async () => {
  env = await startEnvironment({ flux: true });
  events = env.controlPlane.subscribe('sh.keptn.event.>');
}, 300_000);

afterAll(async () => {
  events?.close();
  await env?.stop();
}, 60_000);

const ns = (name: string) => ({ apiVersion: 'v1', kind: 'Namespace', metadata: { name } }) as KubernetesObject;

/** A repository with `files`, its namespace and Secret, and the team's Flux objects. */
async function newApp(
  prefix: string,
  files: (name: string) => Record<string, string>,
  objects: (app: TestApp) => KubernetesObject[],
  settings: (app: TestApp) => string,
): Promise<TestApp> {
  const name = `${prefix}-${++counter}`;
  const { url, commit } = await env.git.createRepo(name, files(name));
  const app: TestApp = { name, namespace: name, repo: name, repoUrl: url, initialCommit: commit, service: `svc-${name}` };
  await env.cluster.apply([ns(name), keptnSecret(app, env), ...objects(app)]);
  env.resources.put({ project: 'podtato', stage: 'dev', service: app.service }, 'gitops/config.yaml', settings(app));
  return app;
}

const initiallyDeployed = (app: TestApp) =>
  waitUntil(`${app.name} initially deployed`, async () => (await imageInCluster(env.cluster, app)) === `${IMAGE}:0.1.0`, {
    timeoutMs: 120_000,
  });

interface Delivery {
  triggered: KeptnCloudEvent;
  finished: KeptnCloudEvent;
  imageAtFinish: string | undefined;
  ms: number;
}

async function deliver(app: TestApp, image = `${IMAGE}:0.2.0`): Promise<Delivery> {
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
  return { triggered, finished, imageAtFinish: await imageInCluster(env.cluster, app), ms: Date.now() - t0 };
}

function gitRepository(app: TestApp, ref: Record<string, string> = { branch: 'main' }): KubernetesObject {
  return {
    apiVersion: 'source.toolkit.fluxcd.io/v1',
    kind: 'GitRepository',
    metadata: { name: app.name, namespace: 'flux-system' },
    spec: { interval: '1h', url: app.repoUrl, ref, secretRef: { name: `${app.name}-git` } },
  } as KubernetesObject;
}

/** The team's Kustomization, as in sample-app.ts, with `spec` overrides. */
function fluxObjects(app: TestApp, spec: Record<string, unknown> = {}): KubernetesObject[] {
  const [secret, source, kustomization] = toolObjects('flux', app, env);
  const k = kustomization as KubernetesObject & { spec: Record<string, unknown> };
  return [secret!, source!, { ...k, spec: { ...k.spec, ...spec } } as KubernetesObject];
}

/**
 * A chart in the repository; `extra` adds files. With `failOn`, that tag adds a ConfigMap the API server rejects, so
 * the Helm upgrade fails the way a real broken release does (a Helm release record marked failed).
 */
function chartFiles(extra: Record<string, string> = {}, failOn?: string): Record<string, string> {
  return {
    'charts/web/Chart.yaml': 'apiVersion: v2\nname: web\nversion: 0.1.0\n',
    'charts/web/values.yaml': `image:\n  repository: ${IMAGE}\n  tag: 0.1.0 # set by Keptn\n`,
    ...(failOn
      ? {
          'charts/web/templates/broken.yaml': `{{- if eq .Values.image.tag "${failOn}" }}\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: Bad_Name\n{{- end }}\n`,
        }
      : {}),
    'charts/web/templates/deployment.yaml': `apiVersion: apps/v1
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
`,
    ...extra,
  };
}

function helmRelease(name: string, chartSpec: Record<string, unknown>, values?: string): string {
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

function helmSettings(
  app: TestApp,
  file: string,
  yamlPath: string,
  target: { kind: string; namespace: string } = { kind: 'HelmRelease', namespace: app.namespace },
  timeout = '120s',
): string {
  return `git:
  url: ${app.repoUrl}
  branch: main
  secretRef: { name: ${app.name}-git }
images:
  - file: ${file}
    yamlPath: ${yamlPath}
    part: tag
target:
  kind: ${target.kind}
  name: ${app.name}
  namespace: ${target.namespace}
timeout: ${timeout}
`;
}

describe('Flux verdicts on the setups teams run (issue 7)', () => {
  it('item 1: a chart in our repository where only values.yaml changes passes once helm-controller upgraded to it', async () => {
    // The HelmRelease spec does not change: only a new HelmChart artifact (<version>+<sha12>) can trigger the upgrade.
    const app = await newApp(
      'flux-chart-values',
      (name) => ({ ...chartFiles(), [`apps/${name}/release.yaml`]: helmRelease(name, { reconcileStrategy: 'Revision' }) }),
      (a) => fluxObjects(a),
      (a) => helmSettings(a, 'charts/web/values.yaml', 'image.tag'),
    );
    await initiallyDeployed(app);
    const d = await deliver(app);
    const ours = (await env.git.log(app.repo))[0]!.sha;
    expect(d.finished.data).toMatchObject({ result: 'pass', deployment: { gitCommit: ours } });
    expect(d.finished.data.message).toMatch(/HelmRelease (flux-chart-values-\d+)\/\1 is ready: UpgradeSucceeded/);
    expect(d.imageAtFinish).toBe(`${IMAGE}:0.2.0`);
    const release = await env.cluster.read<KubernetesObject & { status: { lastAttemptedRevision: string } }>(
      'helm.toolkit.fluxcd.io/v2',
      'HelmRelease',
      app.namespace,
      app.name,
    );
    expect(release.status.lastAttemptedRevision).toBe(`0.1.0+${ours.slice(0, 12)}`);
  }, 240_000);

  it('item 2: a Kustomization without spec.wait whose workload never becomes available fails, saying Flux did not check health', async () => {
    const app = await newApp(
      'flux-nowait',
      (name) => appFiles(name, { unschedulable: true }),
      (a) => fluxObjects(a, { wait: false }),
      (a) => settingsYaml('flux', a, { timeout: '25s' }),
    );
    await initiallyDeployed(app);
    const d = await deliver(app);
    expect(d.finished.data).toMatchObject({ status: 'succeeded', result: 'fail' });
    expect(d.finished.data.message).toMatch(
      new RegExp(
        `Flux applied commit [0-9a-f]{40}, but it did not become healthy in time: Kustomization flux-system/${app.name} applied [0-9a-f]{12} without checking health \\(spec.wait is off\\); Deployment ${app.namespace}/web is rolling out: `,
      ),
    );
    // Flux itself calls it applied and Ready: only the service's own rollout check stands between that and a pass.
    const k = await env.cluster.read<
      KubernetesObject & { status: { lastAppliedRevision: string; conditions: Array<{ type: string; status: string }> } }
    >('kustomize.toolkit.fluxcd.io/v1', 'Kustomization', 'flux-system', app.name);
    expect(k.status.lastAppliedRevision).toContain(String(d.finished.data.deployment.gitCommit));
    expect(k.status.conditions.find((c) => c.type === 'Ready')?.status).toBe('True');
  }, 240_000);

  it('issue 18 item 7: spec.healthChecks that list only a ConfigMap leave the Deployment unchecked; it never becomes available, so the deployment fails', async () => {
    const app = await newApp(
      'flux-hc-other',
      (name) => {
        const files = appFiles(name, { unschedulable: true });
        const dir = `apps/${name}`;
        files[`${dir}/kustomization.yaml`] = files[`${dir}/kustomization.yaml`]!.replace(
          '  - deployment.yaml\n',
          '  - deployment.yaml\n  - configmap.yaml\n',
        );
        files[`${dir}/configmap.yaml`] = 'apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\ndata:\n  mode: demo\n';
        return files;
      },
      (a) =>
        fluxObjects(a, { wait: false, healthChecks: [{ apiVersion: 'v1', kind: 'ConfigMap', name: 'settings', namespace: a.namespace }] }),
      (a) => settingsYaml('flux', a, { timeout: '25s' }),
    );
    await initiallyDeployed(app);
    const d = await deliver(app);
    expect(d.finished.data).toMatchObject({ status: 'succeeded', result: 'fail' });
    expect(d.finished.data.message).toMatch(
      new RegExp(
        `Kustomization flux-system/${app.name} applied [0-9a-f]{12} without checking health \\(spec.wait is off and spec.healthChecks does not list it\\); Deployment ${app.namespace}/web is rolling out: `,
      ),
    );
    // kustomize-controller checked the ConfigMap it was told to check and called the revision applied and Ready.
    const k = await env.cluster.read<
      KubernetesObject & { status: { lastAppliedRevision: string; conditions: Array<{ type: string; status: string; reason: string }> } }
    >('kustomize.toolkit.fluxcd.io/v1', 'Kustomization', 'flux-system', app.name);
    expect(k.status.lastAppliedRevision).toContain(String(d.finished.data.deployment.gitCommit));
    expect(k.status.conditions.find((c) => c.type === 'Ready')).toMatchObject({ status: 'True', reason: 'ReconciliationSucceeded' });
    expect(k.status.conditions.find((c) => c.type === 'Healthy')).toMatchObject({ status: 'True' });
  }, 240_000);

  it('issue 18 item 15: a dependsOn Kustomization that failed at our commit and is not retried fails the deployment, naming it', async () => {
    const app = await newApp(
      'flux-depends',
      (name) => ({
        ...appFiles(name),
        // The dependency's path, broken from the start: kustomize cannot build it at any commit.
        [`infra/${name}/kustomization.yaml`]:
          'apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n  - missing.yaml\n',
      }),
      (a) => fluxObjects(a),
      (a) => settingsYaml('flux', a, { timeout: '90s' }),
    );
    await initiallyDeployed(app);
    const dependency = `${app.name}-infra`;
    const [, , target] = fluxObjects(app, { dependsOn: [{ name: dependency }] });
    await env.cluster.apply([
      {
        apiVersion: 'kustomize.toolkit.fluxcd.io/v1',
        kind: 'Kustomization',
        metadata: { name: dependency, namespace: 'flux-system' },
        spec: {
          interval: '1h',
          retryInterval: '1h',
          path: `./infra/${app.name}`,
          prune: true,
          sourceRef: { kind: 'GitRepository', name: app.name },
        },
      } as KubernetesObject,
      target!,
    ]);
    const d = await deliver(app);
    expect(d.finished.data).toMatchObject({ status: 'succeeded', result: 'fail' });
    expect(d.finished.data.message).toMatch(
      new RegExp(
        `Kustomization flux-system/${app.name} waits for its dependency Kustomization flux-system/${dependency}, which failed at main@sha1:${String(d.finished.data.deployment.gitCommit)} and cannot become ready until it is fixed: BuildFailed: `,
      ),
    );
    expect(d.ms).toBeLessThan(60_000);
  }, 240_000);

  it('item 2: a Kustomization without spec.wait passes once its Deployment rolled out the image we wrote', async () => {
    const app = await newApp(
      'flux-nowait-ok',
      (name) => appFiles(name),
      (a) => fluxObjects(a, { wait: false }),
      (a) => settingsYaml('flux', a),
    );
    await initiallyDeployed(app);
    const d = await deliver(app);
    expect(d.finished.data).toMatchObject({ result: 'pass', deployment: { gitCommit: (await env.git.log(app.repo))[0]!.sha } });
    expect(d.finished.data.message).toContain('its workloads rolled out');
    const web = await env.cluster.read<KubernetesObject & { status: { availableReplicas?: number; updatedReplicas?: number } }>(
      'apps/v1',
      'Deployment',
      app.namespace,
      'web',
    );
    expect(web.status).toMatchObject({ availableReplicas: 1, updatedReplicas: 1 });
    expect(d.imageAtFinish).toBe(`${IMAGE}:0.2.0`);
  }, 240_000);

  it('item 3: settings that point at a file the Kustomization does not deploy are refused before any write, naming the target and its path', async () => {
    const app = await newApp(
      'flux-otherfile',
      (name) => ({ ...appFiles(name), [`overlays/old-${name}/kustomization.yaml`]: appFiles(name)[`apps/${name}/kustomization.yaml`]! }),
      (a) => fluxObjects(a),
      (a) => settingsYaml('flux', a).replace(`file: apps/${a.name}/kustomization.yaml`, `file: overlays/old-${a.name}/kustomization.yaml`),
    );
    await initiallyDeployed(app);
    const d = await deliver(app);
    // Issue 19: decided from the Kustomization and its GitRepository before any Git access (src/tasks/target-source.ts).
    expect(d.finished.data).toMatchObject({ status: 'errored', result: 'fail' });
    expect(d.finished.data.message).toMatch(
      new RegExp(
        `images\\[\\]\\.file overlays/old-${app.name}/kustomization\\.yaml is not in what Kustomization flux-system/${app.name} deploys from .*: directory apps/${app.name}\\)`,
      ),
    );
    expect(await env.git.log(app.repo)).toHaveLength(1);
    expect(d.imageAtFinish).toBe(`${IMAGE}:0.1.0`);
    expect(d.ms).toBeLessThan(20_000);
  }, 240_000);

  it('item 5: a failed Helm upgrade fails; the roll-back after it passes, not blamed for the old failure', async () => {
    const app = await newApp(
      'flux-helm-fail',
      (name) => ({
        ...chartFiles({}, '0.9.9'),
        [`apps/${name}/release.yaml`]: helmRelease(
          name,
          { reconcileStrategy: 'Revision' },
          '  values:\n    image:\n      tag: 0.1.0 # set by Keptn\n',
        ),
      }),
      (a) => fluxObjects(a),
      (a) => helmSettings(a, `apps/${a.name}/release.yaml`, 'spec.values.image.tag'),
    );
    await initiallyDeployed(app);
    const d = await deliver(app, `${IMAGE}:0.9.9`);
    expect(d.finished.data).toMatchObject({ status: 'succeeded', result: 'fail' });
    // helm-controller's own message, or the manager's health check that saw the release fail first.
    expect(d.finished.data.message).toMatch(
      /ConfigMap "Bad_Name" is invalid|HelmRelease\/flux-helm-fail-\d+\/flux-helm-fail-\d+ status: 'Failed'/,
    );
    expect(d.imageAtFinish).toBe(`${IMAGE}:0.1.0`);

    const rollback = keptnEvent(
      'sh.keptn.event.rollback.triggered',
      { project: 'podtato', stage: 'dev', service: app.service },
      { shkeptncontext: d.triggered.shkeptncontext },
    );
    await env.controlPlane.publish(rollback);
    const finished = await events.waitFor(answerTo(rollback.id, 'finished', 'rollback'), {
      timeoutMs: 180_000,
      what: 'rollback .finished',
    });
    const log = await env.git.log(app.repo);
    expect(finished.data).toMatchObject({ status: 'succeeded', result: 'pass', rollback: { gitCommit: log[0]!.sha } });
    expect(await imageInCluster(env.cluster, app)).toBe(`${IMAGE}:0.1.0`);
    const release = await env.cluster.read<KubernetesObject & { status: { history: Array<{ status: string }> } }>(
      'helm.toolkit.fluxcd.io/v2',
      'HelmRelease',
      app.namespace,
      app.name,
    );
    expect(release.status.history[0]!.status).toBe('deployed');
  }, 300_000);

  it('item 13: a GitRepository that follows another branch is refused before any write, saying which', async () => {
    const app = await newApp(
      'flux-branch',
      (name) => appFiles(name),
      () => [],
      () => '',
    );
    await promisify(execFile)('git', ['--git-dir', join(env.git.root, 'repos', `${app.name}.git`), 'branch', 'dev', 'main']);
    const [secret, , kustomization] = toolObjects('flux', app, env);
    await env.cluster.apply([secret!, gitRepository(app, { branch: 'dev' }), kustomization!]);
    env.resources.put({ project: 'podtato', stage: 'dev', service: app.service }, 'gitops/config.yaml', settingsYaml('flux', app));
    await initiallyDeployed(app);
    const d = await deliver(app);
    expect(d.finished.data).toMatchObject({ status: 'errored', result: 'fail' });
    expect(d.finished.data.message).toContain(
      `Kustomization flux-system/${app.name} reads ${app.repoUrl} at branch dev, not branch main: point the target's source at branch main`,
    );
    expect(await env.git.log(app.repo)).toHaveLength(1);
    expect(d.ms).toBeLessThan(20_000);
  }, 240_000);

  describe('item 14: a chart built from Git with valuesFiles', () => {
    const files = () => chartFiles({ 'charts/web/values-prod.yaml': `image:\n  tag: 0.1.0 # set by Keptn\n` });
    const release = (app: TestApp, strategy: string): KubernetesObject[] => [
      keptnSecret(app, env),
      toolObjects('flux', app, env)[0]!,
      gitRepository(app),
      {
        apiVersion: 'helm.toolkit.fluxcd.io/v2',
        kind: 'HelmRelease',
        metadata: { name: app.name, namespace: 'flux-system', annotations: grantAnnotations() },
        spec: {
          interval: '1h',
          targetNamespace: app.namespace,
          chart: {
            spec: {
              chart: './charts/web',
              reconcileStrategy: strategy,
              valuesFiles: ['charts/web/values.yaml', 'charts/web/values-prod.yaml'],
              sourceRef: { kind: 'GitRepository', name: app.name },
            },
          },
        },
      } as KubernetesObject,
    ];

    it('passes once the chart <version>+<sha12>.<generation> built from our commit is released', async () => {
      const app = await newApp(
        'flux-valuesfiles',
        files,
        (a) => release(a, 'Revision'),
        (a) => helmSettings(a, 'charts/web/values-prod.yaml', 'image.tag', { kind: 'HelmRelease', namespace: 'flux-system' }),
      );
      await initiallyDeployed(app);
      const d = await deliver(app);
      const ours = (await env.git.log(app.repo))[0]!.sha;
      expect(d.finished.data).toMatchObject({ result: 'pass', deployment: { gitCommit: ours } });
      expect(d.imageAtFinish).toBe(`${IMAGE}:0.2.0`);
      const hr = await env.cluster.read<KubernetesObject & { status: { lastAttemptedRevision: string } }>(
        'helm.toolkit.fluxcd.io/v2',
        'HelmRelease',
        'flux-system',
        app.name,
      );
      expect(hr.status.lastAttemptedRevision).toMatch(new RegExp(`^0\\.1\\.0\\+${ours.slice(0, 12)}\\.\\d+$`));
    }, 240_000);

    it('fails at once with the default ChartVersion strategy, saying why', async () => {
      const app = await newApp(
        'flux-chartversion',
        files,
        (a) => release(a, 'ChartVersion'),
        (a) => helmSettings(a, 'charts/web/values-prod.yaml', 'image.tag', { kind: 'HelmRelease', namespace: 'flux-system' }),
      );
      await initiallyDeployed(app);
      const d = await deliver(app);
      expect(d.finished.data).toMatchObject({ status: 'succeeded', result: 'fail' });
      expect(d.finished.data.message).toMatch(
        /reconcileStrategy ChartVersion: a commit that does not change the chart's version never produces a new chart; set spec.chart.spec.reconcileStrategy: Revision/,
      );
      expect(d.ms).toBeLessThan(20_000);
    }, 240_000);
  });
  describe('issue 18 item 1: a HelmRelease with spec.test.enable (a Job test hook: kwok completes Job-owned Pods)', () => {
    /** The chart with a test hook; with `failOn`, that tag's test Job cannot be scheduled, so Helm's test times out. */
    const files = (failOn?: string) =>
      chartFiles({
        'charts/web/templates/tests/job.yaml': `apiVersion: batch/v1
kind: Job
metadata:
  name: web-test
  annotations:
    "helm.sh/hook": test
    "helm.sh/hook-delete-policy": before-hook-creation
spec:
  backoffLimit: 0
  template:
    spec:
      restartPolicy: Never
{{- if eq .Values.image.tag "${failOn ?? 'never'}" }}
      nodeSelector: { no-such-node: "true" }
{{- end }}
      containers:
        - name: test
          image: "{{ .Values.image.repository }}:{{ .Values.image.tag }}"
`,
      });
    const release = (app: TestApp): KubernetesObject[] => [
      keptnSecret(app, env),
      toolObjects('flux', app, env)[0]!,
      gitRepository(app),
      {
        apiVersion: 'helm.toolkit.fluxcd.io/v2',
        kind: 'HelmRelease',
        metadata: { name: app.name, namespace: 'flux-system', annotations: grantAnnotations() },
        spec: {
          interval: '1h',
          targetNamespace: app.namespace,
          test: { enable: true, timeout: '15s' },
          chart: { spec: { chart: './charts/web', reconcileStrategy: 'Revision', sourceRef: { kind: 'GitRepository', name: app.name } } },
        },
      } as KubernetesObject,
    ];
    type Hr = KubernetesObject & { status: { conditions: Array<{ type: string; status: string; reason: string }> } };
    const readHr = (app: TestApp) => env.cluster.read<Hr>('helm.toolkit.fluxcd.io/v2', 'HelmRelease', 'flux-system', app.name);

    it('passes only after the Helm tests of our release succeeded, naming them', async () => {
      const app = await newApp(
        'flux-tests-ok',
        () => files(),
        (a) => release(a),
        (a) => helmSettings(a, 'charts/web/values.yaml', 'image.tag', { kind: 'HelmRelease', namespace: 'flux-system' }),
      );
      await initiallyDeployed(app);
      const d = await deliver(app);
      expect(d.finished.data).toMatchObject({ result: 'pass', deployment: { gitCommit: (await env.git.log(app.repo))[0]!.sha } });
      expect(d.finished.data.message).toMatch(/TestSucceeded: Helm test succeeded for release .* 1 test hook completed successfully/);
      expect((await readHr(app)).status.conditions.find((c) => c.type === 'TestSuccess')).toMatchObject({
        status: 'True',
        reason: 'TestSucceeded',
      });
    }, 240_000);

    it("fails when the Helm tests of our release fail (TestFailed), with helm-controller's reason", async () => {
      const app = await newApp(
        'flux-tests-fail',
        () => files('0.2.0'),
        (a) => release(a),
        (a) => helmSettings(a, 'charts/web/values.yaml', 'image.tag', { kind: 'HelmRelease', namespace: 'flux-system' }),
      );
      await initiallyDeployed(app);
      const d = await deliver(app);
      expect(d.finished.data).toMatchObject({ status: 'succeeded', result: 'fail' });
      expect(d.finished.data.message).toMatch(new RegExp(`HelmRelease flux-system/${app.name}.*TestFailed: Helm test failed`));
      expect((await readHr(app)).status.conditions.find((c) => c.type === 'TestSuccess')).toMatchObject({
        status: 'False',
        reason: 'TestFailed',
      });
    }, 240_000);
  });
});

// Issue 18 item 8 on the real StatefulSet controller (kube-controller-manager 1.36, Pods played by kwok): kstatus
// calls an OnDelete StatefulSet Current at once, while no Pod runs the new template until someone deletes one.
describe('the rollout check counts what runs (issue 18)', () => {
  const statefulSetFiles = (name: string): Record<string, string> => ({
    [`apps/${name}/kustomization.yaml`]: `apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
resources:
  - statefulset.yaml
images:
  - name: ${IMAGE}
    newTag: 0.1.0 # set by Keptn
`,
    [`apps/${name}/statefulset.yaml`]: `apiVersion: apps/v1
kind: StatefulSet
metadata:
  name: web
spec:
  serviceName: web
  replicas: 1
  updateStrategy: { type: OnDelete }
  selector:
    matchLabels: { app: web }
  template:
    metadata:
      labels: { app: web }
    spec:
      containers:
        - name: web
          image: ${IMAGE}:0.1.0
`,
  });
  type StatefulSet = KubernetesObject & {
    spec: { template: { spec: { containers: Array<{ image: string }> } } };
    status?: { readyReplicas?: number; updatedReplicas?: number; currentRevision?: string; updateRevision?: string };
  };
  const readSts = (app: TestApp) => env.cluster.read<StatefulSet>('apps/v1', 'StatefulSet', app.namespace, 'web');

  // spec.wait: true: Flux health-checks the StatefulSet with kstatus (Current at once); the service still applies its
  // own rollout rule to it (src/tools/flux/workloads.ts, laxerInKstatus).
  it.each([false, true])(
    'item 8: an OnDelete StatefulSet passes only once its Pod was deleted and came back on the new template (spec.wait: %s)',
    async (wait) => {
      const app = await newApp(
        wait ? 'flux-ondelete-wait' : 'flux-ondelete',
        statefulSetFiles,
        (a) => fluxObjects(a, { wait }),
        (a) => settingsYaml('flux', a),
      );
      await waitUntil(
        `${app.name} initially running`,
        async () => ((await readSts(app).catch(() => undefined))?.status?.readyReplicas ?? 0) === 1,
        {
          timeoutMs: 120_000,
        },
      );
      const triggered = keptnEvent('sh.keptn.event.deployment.triggered', {
        project: 'podtato',
        stage: 'dev',
        service: app.service,
        configurationChange: { values: { image: `${IMAGE}:0.2.0` } },
        deployment: { deploymentstrategy: 'direct' },
      });
      await env.controlPlane.publish(triggered);
      // Flux applied the new template; the controller replaced no Pod (what kstatus calls Current).
      await waitUntil(
        'the new template applied, no Pod on it',
        async () => {
          const sts = await readSts(app);
          return (
            sts.spec.template.spec.containers[0]!.image === `${IMAGE}:0.2.0` &&
            Boolean(sts.status?.updateRevision) &&
            sts.status?.updateRevision !== sts.status?.currentRevision &&
            (sts.status?.updatedReplicas ?? 0) === 0
          );
        },
        { timeoutMs: 60_000 },
      );
      // Flux calls it Ready at the new commit (with wait: its kstatus health check passed the StatefulSet).
      const kust = fluxObjects(app)[2]!.metadata!;
      await waitUntil(
        'Flux Ready at the new commit',
        async () => {
          const k = await env.cluster.read<
            KubernetesObject & { status?: { lastAppliedRevision?: string; conditions?: Array<{ type: string; status: string }> } }
          >('kustomize.toolkit.fluxcd.io/v1', 'Kustomization', kust.namespace!, kust.name!);
          return (
            !(k.status?.lastAppliedRevision ?? app.initialCommit).includes(app.initialCommit) &&
            k.status?.conditions?.find((c) => c.type === 'Ready')?.status === 'True'
          );
        },
        { timeoutMs: 60_000 },
      );
      expect(events.received.filter((e) => e.triggeredid === triggered.id && e.type.endsWith('.finished'))).toEqual([]);

      // The team's OnDelete procedure: delete the Pod; the controller recreates it on the update revision.
      const deletedAt = Date.now();
      await env.cluster.objects.delete({ apiVersion: 'v1', kind: 'Pod', metadata: { name: 'web-0', namespace: app.namespace } });
      const finished = await events.waitFor(answerTo(triggered.id, 'finished', 'deployment'), { timeoutMs: 120_000, what: '.finished' });
      expect(finished.data).toMatchObject({ status: 'succeeded', result: 'pass' });
      // Not passed on Flux's (kstatus') word before the Pod was replaced.
      expect(Date.parse(String(finished.time))).toBeGreaterThanOrEqual(deletedAt);
      const sts = await readSts(app);
      expect(sts.status).toMatchObject({ updatedReplicas: 1, readyReplicas: 1 });
    },
    300_000,
  );
});
