// Keptn's `release` task end to end, against real peers: this test plays Keptn's control plane on NATS through a
// delivery sequence (deployment, then release), building each `.triggered` the way shipyard-controller does; the real
// distributor hands the events to the service; real Flux or Argo CD applied the deployment. A `direct` release writes
// nothing to Git: it confirms that what runs is still the deployed commit, or a later one that contains it.
// The cases run concurrently (jest's maxConcurrency), each on an app of its own.
import { afterAll, beforeAll, expect } from '@jest/globals';
import type { KubernetesObject } from '@kubernetes/client-node';
import { startEnvironment, type Environment } from '../env/environment.js';
import { afterEvaluation, answersTo, nextTriggeredData, runTask as runTaskOf, type EventStream, type TaskRun } from '../env/keptn.js';
import { waitUntil } from '../env/process.js';
import {
  appFiles,
  IMAGE,
  imageInCluster,
  keptnSecret,
  requestFluxReconcile,
  settingsYaml,
  toolObjects,
  type TestApp,
  type Tool,
} from '../env/sample-app.js';
import { concurrentCases } from './support/concurrent.js';

let env: Environment;
let events: EventStream;
let counter = 0;
const tools = (process.env['E2E_TOOLS'] ?? 'flux,argocd').split(',').filter((t): t is Tool => t === 'flux' || t === 'argocd');

beforeAll(async () => {
  env = await startEnvironment({ flux: tools.includes('flux'), argocd: tools.includes('argocd') });
  events = env.controlPlane.subscribe('sh.keptn.event.>');
}, 300_000);

afterAll(async () => {
  events?.close();
  await env?.stop();
}, 60_000);

async function newApp(tool: Tool): Promise<TestApp> {
  const name = `rel-${tool}-${++counter}`;
  const { url, commit } = await env.git.createRepo(name, appFiles(name));
  const app: TestApp = { name, namespace: name, repo: name, repoUrl: url, initialCommit: commit, service: `svc-${name}` };
  await env.cluster.apply([
    { apiVersion: 'v1', kind: 'Namespace', metadata: { name } } as KubernetesObject,
    keptnSecret(app, env),
    ...toolObjects(tool, app, env),
  ]);
  env.resources.put({ project: 'podtato', stage: 'dev', service: app.service }, 'gitops/config.yaml', settingsYaml(tool, app));
  if (tool === 'argocd') {
    await env.cluster.mergePatch({
      apiVersion: 'argoproj.io/v1alpha1',
      kind: 'Application',
      metadata: { name, namespace: 'argocd' },
      operation: { sync: { revision: commit } },
    });
  }
  await waitUntil(`${name} initially deployed`, async () => (await imageInCluster(env.cluster, app)) === `${IMAGE}:0.1.0`, {
    timeoutMs: 120_000,
  });
  return app;
}

type Status = { status?: Record<string, unknown> & { sync?: { revision?: string }; operationState?: { phase?: string } } };

/** The team's tool applies `commit` (a later one on the branch), the way the team would make it, before the release. */
async function toolApplies(tool: Tool, app: TestApp, commit: string): Promise<void> {
  if (tool === 'flux') {
    await requestFluxReconcile(env.cluster, app.name);
  } else {
    await env.cluster.mergePatch({
      apiVersion: 'argoproj.io/v1alpha1',
      kind: 'Application',
      metadata: { name: app.name, namespace: 'argocd' },
      operation: { sync: { revision: commit } },
    });
  }
  await waitUntil(
    `${tool} applied ${commit}`,
    async () => {
      const obj =
        tool === 'flux'
          ? await env.cluster.read<KubernetesObject & Status>('kustomize.toolkit.fluxcd.io/v1', 'Kustomization', 'flux-system', app.name)
          : await env.cluster.read<KubernetesObject & Status>('argoproj.io/v1alpha1', 'Application', 'argocd', app.name);
      return tool === 'flux'
        ? obj.status?.['lastAppliedRevision'] === `main@sha1:${commit}`
        : obj.status?.sync?.revision === commit && obj.status.operationState?.phase === 'Succeeded';
    },
    { timeoutMs: 120_000 },
  );
}

function runTask(task: string, data: Record<string, unknown>, shkeptncontext?: string): Promise<TaskRun> {
  const keptn = { controlPlane: env.controlPlane, events, configVersion: env.resources.version() };
  return runTaskOf(keptn, task, data, shkeptncontext ? { shkeptncontext } : {});
}

/** The delivery sequence's input, as `keptn trigger delivery --image=...` makes it. */
const deliveryInput = (app: TestApp, tag = '0.2.0') => ({
  project: 'podtato',
  stage: 'dev',
  service: app.service,
  configurationChange: { values: { image: `${IMAGE}:${tag}` } },
});

async function deploy(app: TestApp): Promise<{ input: Record<string, unknown>; deployment: TaskRun }> {
  const input = deliveryInput(app);
  const deployment = await runTask('deployment', nextTriggeredData(input, [], 'deployment', { deploymentstrategy: 'direct' }));
  expect(deployment.finished.data).toMatchObject({ status: 'succeeded', result: 'pass' });
  return { input, deployment };
}

function expectExactlyOneStartedAndFinished(run: TaskRun, task: string): void {
  expect(answersTo(events, run)).toEqual([`sh.keptn.event.${task}.finished`, `sh.keptn.event.${task}.started`]);
  for (const e of [run.started, run.finished]) {
    expect(e).toMatchObject({ shkeptncontext: run.triggered.shkeptncontext, triggeredid: run.triggered.id, source: 'gitops-service' });
    expect(e.data).toMatchObject({ project: 'podtato', stage: 'dev', service: run.triggered.data.service });
  }
}

for (const tool of tools) {
  const concurrently = concurrentCases(`release through ${tool}`);
  concurrently(
    'deployment then release: the release confirms the deployed commit runs, writes nothing, one .started/.finished each',
    async () => {
      const app = await newApp(tool);
      const { input, deployment } = await deploy(app);
      const deployed = String(deployment.finished.data.deployment.gitCommit);
      const commitsBefore = await env.git.log(app.repo);

      const rel = await runTask('release', afterEvaluation(input, deployment, 'pass', 'release'), deployment.triggered.shkeptncontext);
      expect(rel.triggered.data).toMatchObject({ deployment: { gitCommit: deployed, deploymentstrategy: 'direct' }, result: 'pass' });
      expectExactlyOneStartedAndFinished(deployment, 'deployment');
      expectExactlyOneStartedAndFinished(rel, 'release');
      expect(rel.finished.data).toMatchObject({
        status: 'succeeded',
        result: 'pass',
        release: { gitCommit: deployed, deploymentstrategy: 'direct', deploymentNames: [app.service] },
      });
      expect(rel.finished.data.message).toMatch(new RegExp(`^released: commit ${deployed}, deployed by this sequence, still runs`));
      expect(await env.git.log(app.repo)).toEqual(commitsBefore);
      expect(await imageInCluster(env.cluster, app)).toBe(`${IMAGE}:0.2.0`);
    },
    300_000,
  );

  concurrently(
    "passes after someone else's unrelated later commit: it contains the deployed one",
    async () => {
      const app = await newApp(tool);
      const { input, deployment } = await deploy(app);
      const foreign = await env.git.commitAsOther(app.repo, { 'docs/NOTES.md': 'unrelated change\n' }, 'docs: notes');
      await toolApplies(tool, app, foreign);

      const rel = await runTask('release', afterEvaluation(input, deployment, 'pass', 'release'), deployment.triggered.shkeptncontext);
      expectExactlyOneStartedAndFinished(rel, 'release');
      expect(rel.finished.data).toMatchObject({ status: 'succeeded', result: 'pass' });
      expect((await env.git.log(app.repo))[0]!.sha).toBe(foreign);
      // The tool's own words name the later commit it applied, which contains the deployed one.
      expect(rel.finished.data.message).toContain(foreign);
      expect(await imageInCluster(env.cluster, app)).toBe(`${IMAGE}:0.2.0`);
    },
    300_000,
  );

  concurrently(
    'fails, saying why, when the deployed commit is no longer on the branch',
    async () => {
      const app = await newApp(tool);
      const { input, deployment } = await deploy(app);
      const deployed = String(deployment.finished.data.deployment.gitCommit);
      await env.git.rewriteAsOther(app.repo, app.initialCommit, { 'docs/NOTES.md': 'history rewritten\n' }, 'rewrite');

      const rel = await runTask('release', afterEvaluation(input, deployment, 'pass', 'release'), deployment.triggered.shkeptncontext);
      expectExactlyOneStartedAndFinished(rel, 'release');
      expect(rel.finished.data).toMatchObject({ status: 'succeeded', result: 'fail', release: { gitCommit: deployed } });
      expect(rel.finished.data.message).toMatch(
        new RegExp(`the deployed commit ${deployed} is no longer on branch main: its history was rewritten after the deployment`),
      );
    },
    300_000,
  );
}

{
  const concurrently = concurrentCases('a release that cannot be done ends in .started then an errored .finished that says what to fix');
  concurrently(
    'without a deployed revision (no deployment task answered by this service before release)',
    async () => {
      const app = await newApp(tools[0]!);
      const rel = await runTask('release', nextTriggeredData(deliveryInput(app), [], 'release', {}));
      expectExactlyOneStartedAndFinished(rel, 'release');
      expect(rel.finished.data).toMatchObject({ status: 'errored', result: 'fail' });
      expect(rel.finished.data.message).toMatch(/carries no deployment.gitCommit.*deployment task answered by keptn-gitops-service/);
    },
    300_000,
  );

  concurrently(
    'with a strategy the target cannot promote',
    async () => {
      const app = await newApp(tools[0]!);
      const { input, deployment } = await deploy(app);
      const data = afterEvaluation(input, deployment, 'pass', 'release');
      const rel = await runTask('release', {
        ...data,
        deployment: { ...(data['deployment'] as object), deploymentstrategy: 'blue_green_service' },
      });
      expectExactlyOneStartedAndFinished(rel, 'release');
      expect(rel.finished.data).toMatchObject({ status: 'errored', result: 'fail' });
      expect(rel.finished.data.message).toMatch(/"blue_green_service" needs a progressive workload.*alone cannot do/);
    },
    300_000,
  );
}
