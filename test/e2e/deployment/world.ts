// The deployment cases' one environment (kube-apiserver, Flux and/or Argo CD, Git, NATS, the distributor and the
// service as the chart's ServiceAccount) and the team setups they build. `env` and `events` are live bindings set by
// start() in deployment.e2e.test.ts's beforeAll.
import { expect } from '@jest/globals';
import type { KubernetesObject } from '@kubernetes/client-node';
import { startEnvironment, type Environment } from '../../env/environment.js';
import { answerTo, keptnEvent, type EventStream, type KeptnCloudEvent } from '../../env/keptn.js';
import { waitUntil } from '../../env/process.js';
import {
  appFiles,
  IMAGE,
  keptnSecret,
  settingsYaml,
  toolObjects,
  type AppOptions,
  type TestApp,
  type Tool,
  directDeployment,
} from '../../env/sample-app.js';
import { imageInCluster as imageOf } from '../../env/sample-app.js';

export let env: Environment;
export let events: EventStream;
let counter = 0;
/** A fresh number for names: the cases run concurrently, each on repositories and namespaces of its own. */
export const nextId = (): number => ++counter;
/** E2E_TOOLS=argocd (or flux) runs one tool's scenarios only, for quicker iterations. */
export const tools = (process.env['E2E_TOOLS'] ?? 'flux,argocd').split(',').filter((t): t is Tool => t === 'flux' || t === 'argocd');

export async function start(): Promise<void> {
  env = await startEnvironment({ flux: tools.includes('flux'), argocd: tools.includes('argocd') });
  events = env.controlPlane.subscribe('sh.keptn.event.>');
}

export async function stop(): Promise<void> {
  events?.close();
  await env?.stop();
}

/** A fresh repository, namespace, tool objects and Keptn settings; resolves once the tool has applied the first commit. */
export async function newApp(tool: Tool, opts: AppOptions = {}, settings?: string): Promise<TestApp> {
  const name = `${tool}-app-${nextId()}`;
  const { url, commit } = await env.git.createRepo(name, appFiles(name, opts));
  const app: TestApp = { name, namespace: name, repo: name, repoUrl: url, initialCommit: commit, service: `svc-${name}` };
  await env.cluster.apply([
    { apiVersion: 'v1', kind: 'Namespace', metadata: { name } } as KubernetesObject,
    keptnSecret(app, env),
    ...toolObjects(tool, app, env, opts),
  ]);
  env.resources.put(
    { project: 'podtato', stage: 'dev', service: app.service },
    'gitops/config.yaml',
    settings ?? settingsYaml(tool, app, opts),
  );
  if (tool === 'argocd') {
    // The team's first sync, done the way they would: an operation on the Application.
    await env.cluster.mergePatch({
      apiVersion: 'argoproj.io/v1alpha1',
      kind: 'Application',
      metadata: { name, namespace: 'argocd' },
      operation: { sync: { revision: commit } },
    });
  }
  if (!opts.unschedulable)
    await waitUntil(`${name} initially deployed`, async () => (await imageInCluster(app)) === `${IMAGE}:0.1.0`, { timeoutMs: 120_000 });
  return app;
}

export const imageInCluster = (app: TestApp) => imageOf(env.cluster, app);

export interface Delivery {
  triggered: KeptnCloudEvent;
  started: KeptnCloudEvent;
  finished: KeptnCloudEvent;
  /** What the cluster ran when `.finished` arrived. */
  imageAtFinish: string | undefined;
  ms: number;
}

/** `version`: the configuration version the sequence runs with (`gitcommitid`); Keptn sends the latest by default. */
export async function deliver(
  app: TestApp,
  values: Record<string, unknown> = { image: `${IMAGE}:0.2.0` },
  version = env.resources.version()!,
): Promise<Delivery> {
  const triggered = keptnEvent('sh.keptn.event.deployment.triggered', directDeployment(app.service, values), { gitcommitid: version });
  const t0 = Date.now();
  await env.controlPlane.publish(triggered);
  const started = await events.waitFor(answerTo(triggered.id, 'started', 'deployment'), { timeoutMs: 10_000, what: '.started' });
  const finished = await events.waitFor(answerTo(triggered.id, 'finished', 'deployment'), { timeoutMs: 180_000, what: '.finished' });
  return { triggered, started, finished, imageAtFinish: await imageInCluster(app), ms: Date.now() - t0 };
}

export function answersTo(triggered: KeptnCloudEvent): KeptnCloudEvent[] {
  return events.received.filter((e) => e.triggeredid === triggered.id);
}

export async function expectExactlyOneStartedAndFinished(d: Delivery): Promise<void> {
  expect(
    answersTo(d.triggered)
      .map((e) => e.type)
      .sort(),
  ).toEqual(['sh.keptn.event.deployment.finished', 'sh.keptn.event.deployment.started']);
  for (const e of [d.started, d.finished]) {
    expect(e).toMatchObject({
      shkeptncontext: d.triggered.shkeptncontext,
      triggeredid: d.triggered.id,
      gitcommitid: d.triggered.gitcommitid,
      shkeptnspecversion: '0.2.4',
      source: 'gitops-service',
    });
    expect(e.data).toMatchObject({ project: 'podtato', stage: 'dev', service: d.triggered.data.service });
  }
}
