// An upgrade that moves the service's state (ADR 17), end to end on the real peers: a replica of the earlier release
// keeps its records and Lease in Keptn's namespace (the chart's default before ADR 17) and dies mid-deployment; a
// replica of the upgraded release, told PREVIOUS_STATE_NAMESPACE as the chart tells it, moves the record into the
// release's own state namespace once the old Lease has run out, adopts the deployment and sends its one .finished.
// Both run as the chart's ServiceAccount with the RBAC the chart renders for that upgrade (state.moveFrom: the state
// Role in the old namespace as well as in the new one).
import { afterAll, beforeAll, expect, it } from '@jest/globals';
import { CoordinationV1Api, CoreV1Api, type KubernetesObject } from '@kubernetes/client-node';
import { startEnvironment, startServiceProcess, stateNamespace, type Environment } from '../env/environment.js';
import { answerTo, keptnEvent, type EventStream } from '../env/keptn.js';
import { waitUntil } from '../env/process.js';
import { appFiles, IMAGE, imageInCluster, keptnSecret, PROJECT, settingsYaml, toolObjects, type TestApp } from '../env/sample-app.js';

const OLD = 'keptn';
const MANAGED = 'app.kubernetes.io/managed-by=keptn-gitops-service';
/** Short Leases and resume rounds, so that the stopped replica is taken for stopped within seconds. */
const FAST = { LEASE_SECONDS: '4', RESUME_INTERVAL: '1s' };

let env: Environment;
let events: EventStream;

beforeAll(async () => {
  env = await startEnvironment({
    flux: true,
    service: false,
    chartIdentity: { release: 'gitops-service', namespace: 'keptn', values: { state: { moveFrom: OLD } } },
  });
  events = env.controlPlane.subscribe('sh.keptn.event.>');
}, 300_000);

afterAll(async () => {
  events?.close();
  await env?.stop();
}, 60_000);

async function records(namespace: string): Promise<Array<{ triggeredid: string; phase: string }>> {
  const list = await env.cluster.kc
    .makeApiClient(CoreV1Api)
    .listNamespacedConfigMap({ namespace, labelSelector: 'keptn-gitops-service/kind=deployment' });
  return list.items.map((cm) => ({
    triggeredid: cm.metadata?.annotations?.['keptn-gitops-service/triggeredid'] ?? '',
    phase: cm.metadata?.labels?.['keptn-gitops-service/phase'] ?? '',
  }));
}

async function newApp(): Promise<TestApp> {
  const name = 'moved-app';
  const { url, commit } = await env.git.createRepo(name, appFiles(name));
  const app: TestApp = { name, namespace: name, repo: name, repoUrl: url, initialCommit: commit, service: `svc-${name}` };
  await env.cluster.apply([
    { apiVersion: 'v1', kind: 'Namespace', metadata: { name } } as KubernetesObject,
    keptnSecret(app, env),
    ...toolObjects('flux', app, env),
  ]);
  env.resources.put({ project: PROJECT, stage: 'dev', service: app.service }, 'gitops/config.yaml', settingsYaml('flux', app));
  await waitUntil(`${name} initially deployed`, async () => (await imageInCluster(env.cluster, app)) === `${IMAGE}:0.1.0`, {
    timeoutMs: 120_000,
  });
  return app;
}

it('a deployment in flight when the state moves is adopted from the new namespace and finishes once; nothing is left behind', async () => {
  expect(stateNamespace(env)).toBe('keptn-gitops-service-state');
  const app = await newApp();
  const old = await startServiceProcess(env, { replicaId: 'old-0', extraEnv: { ...FAST, STATE_NAMESPACE: OLD } });
  const triggered = keptnEvent('sh.keptn.event.deployment.triggered', {
    project: PROJECT,
    stage: 'dev',
    service: app.service,
    configurationChange: { values: { image: `${IMAGE}:0.2.0` } },
  });
  await env.controlPlane.publish(triggered);
  await events.waitFor(answerTo(triggered.id, 'started', 'deployment'), { timeoutMs: 15_000, what: '.started' });
  expect((await records(OLD)).map((r) => r.triggeredid)).toEqual([triggered.id]);
  // The earlier release's pod goes: killed, so its record stays unfinished and its Lease runs out.
  await old.process.kill();
  await old.distributor.stop();

  const upgraded = await startServiceProcess(env, { replicaId: 'new-0', extraEnv: { ...FAST, PREVIOUS_STATE_NAMESPACE: OLD } });
  try {
    const finished = await events.waitFor(answerTo(triggered.id, 'finished', 'deployment'), { timeoutMs: 180_000, what: '.finished' });
    expect(finished.data).toMatchObject({ status: 'succeeded', result: 'pass' });
    expect(
      events.received
        .filter((e) => e.triggeredid === triggered.id)
        .map((e) => e.type)
        .sort(),
    ).toEqual(['sh.keptn.event.deployment.finished', 'sh.keptn.event.deployment.started']);
    expect(await imageInCluster(env.cluster, app)).toBe(`${IMAGE}:0.2.0`);
    expect(await records(stateNamespace(env))).toEqual([{ triggeredid: triggered.id, phase: 'done' }]);
    // Nothing of the service is left in Keptn's namespace: no record, no Lease.
    expect(await records(OLD)).toEqual([]);
    const leases = env.cluster.kc.makeApiClient(CoordinationV1Api);
    await waitUntil(
      'no Lease of the service left in the old namespace',
      async () => ((await leases.listNamespacedLease({ namespace: OLD, labelSelector: MANAGED })).items.length === 0 ? true : undefined),
      { timeoutMs: 20_000 },
    );
  } finally {
    await upgraded.stop();
  }
}, 300_000);
