// Progressive delivery with Argo Rollouts end to end, against real peers: the real Rollouts controller (v1.10.1)
// runs the Rollout that real Argo CD or Flux applies from Git; kwok makes the Pods ready. This test plays Keptn's control
// plane: deployment (the new version waits as preview or canary), then release (promote) or, after a failed quality
// gate, rollback (abort, and the stable version serves again). Keptn sees the same events as for a direct deployment.
// The cases run concurrently (jest's maxConcurrency), each on an app and Rollout of its own.
import { concurrentCases } from './support/concurrent.js';
import { afterAll, beforeAll, expect } from '@jest/globals';
import type { KubernetesObject } from '@kubernetes/client-node';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { startEnvironment, type Environment } from '../env/environment.js';
import { afterEvaluation, answersTo, runTask as runTaskOf, type EventStream, type TaskRun } from '../env/keptn.js';
import { waitUntil } from '../env/process.js';
import { grantAnnotations, IMAGE, keptnSecret, toolObjects, type TestApp, type Tool, directDeployment } from '../env/sample-app.js';
import { KEPTN_STRATEGY, rolloutFiles, settings, type Strategy } from './support/rollout-apps.js';

let env: Environment;
let events: EventStream;
let counter = 0;

beforeAll(async () => {
  // The chart's RBAC with its Rollouts rules on (rbac.rollouts), as a team using progressive strategies installs it.
  env = await startEnvironment({
    argocd: true,
    flux: true,
    rollouts: true,
    chartIdentity: { release: 'gitops-service', namespace: 'keptn', values: { rbac: { rollouts: true } } },
  });
  events = env.controlPlane.subscribe('sh.keptn.event.>');
}, 400_000);

afterAll(async () => {
  events?.close();
  await env?.stop();
}, 60_000);

interface RolloutState {
  spec: { template: { spec: { containers: Array<{ image: string }> } } };
  status?: { phase?: string; currentPodHash?: string; stableRS?: string; abort?: boolean; blueGreen?: { activeSelector?: string } };
}
async function readRollout(app: TestApp): Promise<RolloutState> {
  return env.cluster.read<KubernetesObject & RolloutState>('argoproj.io/v1alpha1', 'Rollout', app.namespace, 'web');
}

async function newApp(strategy: Strategy, tool: Tool = 'argocd', steps?: string): Promise<TestApp> {
  const name = `ro-${tool}-${strategy.toLowerCase()}-${++counter}`;
  const { url, commit } = await env.git.createRepo(name, rolloutFiles(name, strategy, tool, steps));
  const app: TestApp = { name, namespace: name, repo: name, repoUrl: url, initialCommit: commit, service: `svc-${name}` };
  const [repoSecret] = toolObjects(tool, app, env);
  const objects =
    tool === 'flux'
      ? toolObjects('flux', app, env).map((o) =>
          // Flux's own health check (kstatus) cannot read a Rollout's string observedGeneration
          // (fluxcd/cli-utils pkg/kstatus/status/generic.go); the service follows the Rollout itself.
          o.kind === 'Kustomization' ? ({ ...o, spec: { ...(o as { spec: object }).spec, wait: false } } as KubernetesObject) : o,
        )
      : [
          repoSecret!,
          {
            apiVersion: 'argoproj.io/v1alpha1',
            kind: 'Application',
            metadata: { name, namespace: 'argocd', annotations: grantAnnotations() },
            spec: {
              project: 'default',
              source: { repoURL: url, path: `apps/${name}`, targetRevision: 'main' },
              destination: { server: 'https://kubernetes.default.svc', namespace: name },
            },
          } as KubernetesObject,
        ];
  await env.cluster.apply([
    { apiVersion: 'v1', kind: 'Namespace', metadata: { name } } as KubernetesObject,
    keptnSecret(app, env),
    ...objects,
  ]);
  env.resources.put({ project: 'podtato', stage: 'dev', service: app.service }, 'gitops/config.yaml', settings(app, tool));
  if (tool === 'argocd')
    await env.cluster.mergePatch({
      apiVersion: 'argoproj.io/v1alpha1',
      kind: 'Application',
      metadata: { name, namespace: 'argocd' },
      operation: { sync: { revision: commit } },
    });
  // The first version has nothing to wait beside: it becomes stable at once.
  await waitUntil(
    `${name}: first version stable`,
    async () => {
      const ro = await readRollout(app).catch(() => undefined);
      return ro?.status?.phase === 'Healthy' && ro.status.currentPodHash === ro.status.stableRS;
    },
    { timeoutMs: 120_000 },
  );
  return app;
}

/** One task through the real distributor: exactly one `.started` and one `.finished`, nothing else. */
async function runTask(task: string, data: Record<string, unknown>, shkeptncontext?: string): Promise<TaskRun> {
  const run = await runTaskOf({ controlPlane: env.controlPlane, events, configVersion: env.resources.version() }, task, data, {
    timeoutMs: 200_000,
    ...(shkeptncontext ? { shkeptncontext } : {}),
  });
  expect(answersTo(events, run)).toEqual([`sh.keptn.event.${task}.finished`, `sh.keptn.event.${task}.started`]);
  return run;
}

async function deployNewVersion(app: TestApp, strategy: Strategy) {
  const stableBefore = (await readRollout(app)).status?.stableRS;
  const input = {
    project: 'podtato',
    stage: 'dev',
    service: app.service,
    configurationChange: { values: { image: `${IMAGE}:0.2.0` } },
    deployment: { deploymentstrategy: KEPTN_STRATEGY[strategy] },
  };
  const deployment = await runTask('deployment', input);
  expect(deployment.finished.data).toMatchObject({ status: 'succeeded', result: 'pass' });
  // Held back: the new version runs beside the stable one, which still serves.
  const ro = await readRollout(app);
  expect(ro.spec.template.spec.containers[0]!.image).toBe(`${IMAGE}:0.2.0`);
  expect(ro.status).toMatchObject({ phase: 'Paused', stableRS: stableBefore });
  expect(ro.status?.currentPodHash).not.toBe(stableBefore);
  if (strategy === 'blueGreen') expect(ro.status?.blueGreen?.activeSelector).toBe(stableBefore);
  expect(deployment.finished.data.message).toMatch(
    strategy === 'blueGreen' ? /as preview, Healthy and paused for promotion/ : /as canary at step \d+, paused/,
  );
  return { input, deployment, stableBefore };
}

const strategiesAndTools: Array<[Strategy, Tool]> = [
  ['blueGreen', 'argocd'],
  ['canary', 'argocd'],
  ['blueGreen', 'flux'],
  ['canary', 'flux'],
];
for (const [strategy, tool] of strategiesAndTools) {
  const concurrently = concurrentCases(`Argo Rollouts ${strategy} through ${tool}`);
  concurrently(
    'deployment leaves the new version paused beside the stable one; release promotes it to stable',
    async () => {
      const app = await newApp(strategy, tool);
      const { input, deployment } = await deployNewVersion(app, strategy);

      const rel = await runTask('release', afterEvaluation(input, deployment, 'pass', 'release'), deployment.triggered.shkeptncontext);
      expect(rel.finished.data).toMatchObject({
        status: 'succeeded',
        result: 'pass',
        release: { gitCommit: deployment.finished.data.deployment.gitCommit },
      });
      expect(rel.finished.data.message).toMatch(/promoted .* to stable and it is Healthy/);
      const ro = await readRollout(app);
      expect(ro.status).toMatchObject({ phase: 'Healthy', stableRS: ro.status?.currentPodHash });
      expect(ro.spec.template.spec.containers[0]!.image).toBe(`${IMAGE}:0.2.0`);
    },
    400_000,
  );

  concurrently(
    'after a failed quality gate, rollback aborts it and the stable version serves again',
    async () => {
      const app = await newApp(strategy, tool);
      const { input, deployment, stableBefore } = await deployNewVersion(app, strategy);

      const rb = await runTask('rollback', afterEvaluation(input, deployment, 'fail', 'rollback'), deployment.triggered.shkeptncontext);
      expect(rb.finished.data).toMatchObject({ status: 'succeeded', result: 'pass' });
      expect(rb.finished.data.message).toMatch(/serves its stable version .* again/);
      const ro = await readRollout(app);
      expect(ro.status).toMatchObject({ phase: 'Healthy', currentPodHash: stableBefore, stableRS: stableBefore });
      expect(ro.spec.template.spec.containers[0]!.image).toBe(`${IMAGE}:0.1.0`);
      expect(await env.git.readFile(app.repo, `apps/${app.name}/rollout.yaml`)).toContain(`image: ${IMAGE}:0.1.0`);
    },
    400_000,
  );
}

// Issue 18 items 17 and 18 on the real Rollouts controller and Argo CD.
{
  const concurrently = concurrentCases('Argo Rollouts: the exact version, and a roll-back after promotion');
  concurrently(
    'release promotes only the version the deployment tested: a newer template with the same image is refused, nothing promoted',
    async () => {
      const app = await newApp('blueGreen');
      const { input, deployment, stableBefore } = await deployNewVersion(app, 'blueGreen');
      const tested = (await readRollout(app)).status?.currentPodHash;
      expect(deployment.finished.data.deployment).toMatchObject({ progressiveVersion: tested });

      // A teammate changes the template after the tests ran, keeping the image: a new version Keptn never tested.
      const file = `apps/${app.name}/rollout.yaml`;
      const changed = (await env.git.readFile(app.repo, file)).replace(
        `          image: ${IMAGE}:0.2.0\n`,
        `          image: ${IMAGE}:0.2.0\n          env: [{ name: LOG_LEVEL, value: debug }]\n`,
      );
      expect(changed).toContain('LOG_LEVEL');
      const newer = await env.git.commitAsOther(app.repo, { [file]: changed }, 'more logging');
      await env.cluster.mergePatch({
        apiVersion: 'argoproj.io/v1alpha1',
        kind: 'Application',
        metadata: { name: app.name, namespace: 'argocd' },
        operation: { sync: { revision: newer } },
      });
      await waitUntil(
        'the newer template reaches the Rollout',
        async () => {
          const ro = await readRollout(app);
          return Boolean(ro.status?.currentPodHash) && ro.status?.currentPodHash !== tested;
        },
        { timeoutMs: 120_000 },
      );
      const held = (await readRollout(app)).status?.currentPodHash;

      const rel = await runTask('release', afterEvaluation(input, deployment, 'pass', 'release'), deployment.triggered.shkeptncontext);
      expect(rel.finished.data).toMatchObject({ status: 'succeeded', result: 'fail' });
      expect(rel.finished.data.message).toMatch(
        new RegExp(
          `not released: Rollout ${app.namespace}/web holds version ${held}, not ${tested} that this sequence deployed and tested`,
        ),
      );
      const ro = await readRollout(app);
      expect(ro.status?.stableRS).toBe(stableBefore);
      expect(ro.status).not.toMatchObject({ promoteFull: true });
    },
    400_000,
  );

  concurrently(
    'a roll-back after the version was promoted promotes the revert, and the old version serves again',
    async () => {
      const app = await newApp('blueGreen');
      const { input, deployment, stableBefore } = await deployNewVersion(app, 'blueGreen');
      const rel = await runTask('release', afterEvaluation(input, deployment, 'pass', 'release'), deployment.triggered.shkeptncontext);
      expect(rel.finished.data).toMatchObject({ result: 'pass' });

      // A later task of the sequence fails: Keptn rolls the service back after its release.
      const started = Date.now();
      const rb = await runTask('rollback', afterEvaluation(input, deployment, 'fail', 'rollback'), deployment.triggered.shkeptncontext);
      expect(rb.finished.data).toMatchObject({ status: 'succeeded', result: 'pass' });
      expect(rb.finished.data.message).toMatch(/serves its stable version .* again/);
      // Well before the settings' 120 s timeout: the revert was promoted, not waited for.
      expect(Date.now() - started).toBeLessThan(100_000);
      const ro = await readRollout(app);
      expect(ro.status).toMatchObject({ phase: 'Healthy', stableRS: ro.status?.currentPodHash });
      expect(ro.status?.currentPodHash).toBe(stableBefore);
      expect(ro.spec.template.spec.containers[0]!.image).toBe(`${IMAGE}:0.1.0`);
    },
    400_000,
  );
}

/** With ROLLOUTS_CAPTURE=<dir>, keeps the Rollout and its Application as the controllers left them, for test/fixtures/argocd. */
async function capture(app: TestApp, file: string): Promise<void> {
  const dir = process.env['ROLLOUTS_CAPTURE'];
  if (!dir) return;
  const objects = {
    application: await env.cluster.read<KubernetesObject>('argoproj.io/v1alpha1', 'Application', 'argocd', app.name),
    rollout: await env.cluster.read<KubernetesObject>('argoproj.io/v1alpha1', 'Rollout', app.namespace, 'web'),
  };
  for (const o of Object.values(objects)) delete (o.metadata as { managedFields?: unknown }).managedFields;
  await writeFile(join(dir, `${file}.json`), `${JSON.stringify(objects, null, 2)}\n`);
}

// Issue 18 item 18: under `direct` a Rollout's timed pause (Argo CD: Suspended) resumes on its own, so it is waited out.
{
  const concurrently = concurrentCases('Argo Rollouts through Argo CD under the direct strategy');
  concurrently(
    'a timed canary pause is waited out and the deployment passes once the Rollout is Healthy',
    async () => {
      const app = await newApp('canary', 'argocd', `        - setWeight: 50\n        - pause: { duration: 5s }`);
      const input = directDeployment(app.service);
      let finished = false;
      const running = runTask('deployment', input).finally(() => (finished = true));
      // Argo CD calls the paused Rollout Suspended; the deployment is still waiting then.
      await waitUntil(
        'the Application Suspended at the timed pause',
        async () => {
          const a = await env.cluster.read<KubernetesObject & { status?: { health?: { status?: string } } }>(
            'argoproj.io/v1alpha1',
            'Application',
            'argocd',
            app.name,
          );
          return a.status?.health?.status === 'Suspended';
        },
        { timeoutMs: 120_000 },
      );
      expect(finished).toBe(false);
      await capture(app, 'suspended-rollout-timed-pause');
      const deployment = await running;
      expect(deployment.finished.data).toMatchObject({ status: 'succeeded', result: 'pass' });
      expect(deployment.finished.data.message).toMatch(/and it is Healthy/);
      const ro = await readRollout(app);
      expect(ro.spec.template.spec.containers[0]!.image).toBe(`${IMAGE}:0.2.0`);
      expect(ro.status).toMatchObject({ phase: 'Healthy', stableRS: ro.status?.currentPodHash });

      // A teammate makes the pause indefinite: under `direct` nothing promotes the next version, so it fails at once.
      const file = `apps/${app.name}/rollout.yaml`;
      await env.git.commitAsOther(
        app.repo,
        { [file]: (await env.git.readFile(app.repo, file)).replace('pause: { duration: 5s }', 'pause: {}') },
        'hold every version for promotion',
      );
      const started = Date.now();
      const held = await runTask('deployment', { ...input, configurationChange: { values: { image: `${IMAGE}:0.3.0` } } });
      expect(held.finished.data).toMatchObject({ status: 'succeeded', result: 'fail' });
      expect(held.finished.data.message).toMatch(
        new RegExp(
          `Rollout ${app.namespace}/web is at an indefinite pause step \\(step 1: pause: \\{\\}\\), which nothing resumes under this strategy: promote it`,
        ),
      );
      expect(Date.now() - started).toBeLessThan(100_000);
      await capture(app, 'suspended-rollout-indefinite-pause');
    },
    400_000,
  );
}

{
  const concurrently = concurrentCases('a progressive strategy the settings do not map');
  concurrently(
    'ends errored, saying so, and writes nothing',
    async () => {
      const app = await newApp('blueGreen');
      const run = await runTask('deployment', {
        project: 'podtato',
        stage: 'dev',
        service: app.service,
        configurationChange: { values: { image: `${IMAGE}:0.2.0` } },
        deployment: { deploymentstrategy: 'ab_test' },
      });
      expect(run.finished.data).toMatchObject({ status: 'errored', result: 'fail' });
      expect(run.finished.data.message).toMatch(/"ab_test" is not one the settings deploy progressively/);
      expect(await env.git.log(app.repo)).toHaveLength(1);
    },
    400_000,
  );
}
