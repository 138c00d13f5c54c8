// Progressive delivery with Flagger end to end, against real peers: real Flux applies a Deployment and its Canary from
// Git, the real Flagger controller (v1.44, Kubernetes provider, blue-green) runs the analysis and asks the service's
// gates (its confirm-promotion and rollback webhooks point at the probe port); kwok makes the Pods ready. This test
// plays Keptn's control plane: deployment (the new version waits at the promotion gate), then release (the gate
// opens, Flagger promotes) or, after a failed quality gate, rollback (the rollback gate opens, Flagger rolls back,
// the commit is reverted). Keptn sees the same events as for a direct deployment or an Argo Rollout. The cases run
// concurrently (jest's maxConcurrency), each on an app, namespace and Canary of its own.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import type { KubernetesObject } from '@kubernetes/client-node';
import { startEnvironment, type Environment } from '../env/environment.js';
import { afterEvaluation, answersTo, runTask as runTaskOf, type EventStream, type TaskRun } from '../env/keptn.js';
import { waitUntil } from '../env/process.js';
import { IMAGE, keptnSecret, PROJECT, toolObjects, type TestApp } from '../env/sample-app.js';

let env: Environment;
let events: EventStream;
let counter = 0;

beforeAll(async () => {
  // The chart's RBAC with its Flagger rules on (rbac.flagger), as a team using Flagger installs it.
  env = await startEnvironment({
    flux: true,
    flagger: true,
    chartIdentity: { release: 'gitops-service', namespace: 'keptn', values: { rbac: { flagger: true } } },
  });
  events = env.controlPlane.subscribe('sh.keptn.event.>');
}, 400_000);

afterAll(async () => {
  events?.close();
  await env?.stop();
}, 60_000);

interface CanaryState {
  metadata: { annotations?: Record<string, string> };
  status?: { phase?: string; lastAppliedSpec?: string; lastPromotedSpec?: string };
}

function appFiles(name: string): Record<string, string> {
  // The gates the Canary asks: the service's probe port (here on loopback, in a cluster its probe Service).
  const gates = `http://127.0.0.1:${env.service!.healthPort}/flagger/gates`;
  return {
    // No `replicas`: Flagger scales the target, and Flux must not take that back (Flagger's docs for GitOps).
    [`apps/${name}/deployment.yaml`]: `apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  selector:
    matchLabels: { app: web }
  template:
    metadata:
      labels: { app: web }
    spec:
      containers:
        - name: web
          image: ${IMAGE}:0.1.0
          ports: [{ containerPort: 8080 }]
`,
    [`apps/${name}/canary.yaml`]: `apiVersion: flagger.app/v1beta1
kind: Canary
metadata:
  name: web
  annotations:
    gitops.keptn.sh/projects: ${PROJECT}
spec:
  provider: kubernetes
  targetRef: { apiVersion: apps/v1, kind: Deployment, name: web }
  progressDeadlineSeconds: 120
  service: { port: 80, targetPort: 8080 }
  analysis:
    interval: 10s
    threshold: 2
    iterations: 1
    webhooks:
      - { name: keptn-promote, type: confirm-promotion, url: ${gates}/promote }
      - { name: keptn-rollback, type: rollback, url: ${gates}/rollback }
`,
  };
}

function settings(app: TestApp): string {
  return `git:
  url: ${app.repoUrl}
  branch: main
  secretRef: { name: ${app.name}-git }
images:
  - file: apps/${app.name}/deployment.yaml
    yamlPath: spec.template.spec.containers[0].image
target: { kind: Kustomization, name: ${app.name}, namespace: flux-system }
progressive:
  canary: { name: web, namespace: ${app.namespace} }
timeout: 180s
`;
}

function readCanary(app: TestApp): Promise<CanaryState> {
  return env.cluster.read<KubernetesObject & CanaryState>('flagger.app/v1beta1', 'Canary', app.namespace, 'web');
}

async function imageOf(app: TestApp, deployment: string): Promise<string | undefined> {
  const d = await env.cluster.read<KubernetesObject & { spec: { template: { spec: { containers: Array<{ image: string }> } } } }>(
    'apps/v1',
    'Deployment',
    app.namespace,
    deployment,
  );
  return d.spec.template.spec.containers[0]?.image;
}

async function newApp(): Promise<TestApp> {
  const name = `fg-${++counter}`;
  const { url, commit } = await env.git.createRepo(name, appFiles(name));
  const app: TestApp = { name, namespace: name, repo: name, repoUrl: url, initialCommit: commit, service: `svc-${name}` };
  await env.cluster.apply([
    { apiVersion: 'v1', kind: 'Namespace', metadata: { name } } as KubernetesObject,
    keptnSecret(app, env),
    ...toolObjects('flux', app, env),
  ]);
  env.resources.put({ project: PROJECT, stage: 'dev', service: app.service }, 'gitops/config.yaml', settings(app));
  // Flagger's initialisation: the primary takes the first version, with nothing held back.
  await waitUntil(
    `${name}: Canary initialised`,
    async () => {
      const canary = await readCanary(app).catch(() => undefined);
      return canary?.status?.phase === 'Initialized' && (await imageOf(app, 'web-primary').catch(() => undefined)) === `${IMAGE}:0.1.0`;
    },
    { timeoutMs: 180_000 },
  );
  return app;
}

/** One task through the real distributor: exactly one `.started` and one `.finished`, nothing else. */
async function runTask(task: string, data: Record<string, unknown>, shkeptncontext?: string): Promise<TaskRun> {
  const run = await runTaskOf({ controlPlane: env.controlPlane, events, configVersion: env.resources.version() }, task, data, {
    timeoutMs: 240_000,
    ...(shkeptncontext ? { shkeptncontext } : {}),
  });
  expect(answersTo(events, run)).toEqual([`sh.keptn.event.${task}.finished`, `sh.keptn.event.${task}.started`]);
  return run;
}

async function deployNewVersion(app: TestApp) {
  const input = {
    project: PROJECT,
    stage: 'dev',
    service: app.service,
    configurationChange: { values: { image: `${IMAGE}:0.2.0` } },
    deployment: { deploymentstrategy: 'blue_green_service' },
  };
  const deployment = await runTask('deployment', input);
  expect(deployment.finished.data).toMatchObject({
    status: 'succeeded',
    result: 'pass',
    deployment: {
      // Keptn's tests go to the preview: Flagger's canary Service.
      deploymentURIsLocal: [`http://web-canary.${app.namespace}:80`],
      progressive: {
        workload: `Canary ${app.namespace}/web`,
        previewURIsLocal: [`http://web-canary.${app.namespace}:80`],
        stableURIsLocal: [`http://web-primary.${app.namespace}:80`],
      },
    },
  });
  expect(deployment.finished.data.message).toMatch(/holds .*0\.2\.0 as canary, analysed and waiting at the confirm-promotion gate/);
  // Held back: the new version runs as the canary, the primary still serves the old one.
  const held = await readCanary(app);
  expect(held.status?.phase).toBe('WaitingPromotion');
  // The exact version Keptn's tests see, which the release promotes and nothing newer (issue 18 item 17).
  expect(deployment.finished.data.deployment.progressiveVersion).toBe(held.status?.lastAppliedSpec);
  expect(await imageOf(app, 'web')).toBe(`${IMAGE}:0.2.0`);
  expect(await imageOf(app, 'web-primary')).toBe(`${IMAGE}:0.1.0`);
  return { input, deployment };
}

describe('Flagger blue-green through Flux', () => {
  it.concurrent(
    'deployment leaves the new version at the promotion gate; release opens it and Flagger promotes',
    async () => {
      const app = await newApp();
      const { input, deployment } = await deployNewVersion(app);

      const rel = await runTask('release', afterEvaluation(input, deployment, 'pass', 'release'), deployment.triggered.shkeptncontext);
      expect(rel.finished.data).toMatchObject({
        status: 'succeeded',
        result: 'pass',
        release: {
          gitCommit: deployment.finished.data.deployment.gitCommit,
          deploymentURIsLocal: [`http://web-primary.${app.namespace}:80`],
        },
      });
      expect(rel.finished.data.message).toMatch(/promoted .*0\.2\.0: web-primary runs it/);
      const canary = await readCanary(app);
      expect(canary.status).toMatchObject({ phase: 'Succeeded', lastPromotedSpec: canary.status?.lastAppliedSpec });
      // The approval names the version Flagger promoted, nothing newer.
      expect(canary.metadata.annotations?.['gitops.keptn.sh/promote']).toBe(canary.status?.lastAppliedSpec);
      expect(await imageOf(app, 'web-primary')).toBe(`${IMAGE}:0.2.0`);
    },
    600_000,
  );

  it.concurrent(
    'after a failed quality gate, rollback opens the rollback gate, Flagger rolls back and Git is reverted',
    async () => {
      const app = await newApp();
      const { input, deployment } = await deployNewVersion(app);
      const held = (await readCanary(app)).status?.lastAppliedSpec;

      const rb = await runTask('rollback', afterEvaluation(input, deployment, 'fail', 'rollback'), deployment.triggered.shkeptncontext);
      expect(rb.finished.data).toMatchObject({ status: 'succeeded', result: 'pass' });
      expect(rb.finished.data.message).toMatch(/web-primary serves .*0\.1\.0 again/);
      const canary = await readCanary(app);
      expect(canary.status?.phase).toBe('Failed');
      expect(canary.metadata.annotations?.['gitops.keptn.sh/rollback']).toBe(held);
      expect(await imageOf(app, 'web-primary')).toBe(`${IMAGE}:0.1.0`);
      expect(await imageOf(app, 'web')).toBe(`${IMAGE}:0.1.0`);
      expect(await env.git.readFile(app.repo, `apps/${app.name}/deployment.yaml`)).toContain(`image: ${IMAGE}:0.1.0`);
    },
    600_000,
  );

  it.concurrent(
    'a Canary that would promote without asking Keptn is refused before anything is written',
    async () => {
      const app = await newApp();
      // The team removes the promotion gate from the Canary (as if it were never there).
      await env.cluster.mergePatch({
        apiVersion: 'flagger.app/v1beta1',
        kind: 'Canary',
        metadata: { name: 'web', namespace: app.namespace },
        spec: { analysis: { webhooks: [{ name: 'keptn-rollback', type: 'rollback', url: 'http://127.0.0.1:1/flagger/gates/rollback' }] } },
      });
      const run = await runTask('deployment', {
        project: PROJECT,
        stage: 'dev',
        service: app.service,
        configurationChange: { values: { image: `${IMAGE}:0.2.0` } },
        deployment: { deploymentstrategy: 'blue_green_service' },
      });
      expect(run.finished.data).toMatchObject({ status: 'errored', result: 'fail' });
      expect(run.finished.data.message).toMatch(/no confirm-promotion webhook, so Flagger would promote without Keptn.s quality gate/);
      expect(await env.git.log(app.repo)).toHaveLength(1);
    },
    400_000,
  );
});
