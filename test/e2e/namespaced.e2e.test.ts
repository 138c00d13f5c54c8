// The chart's namespaced mode end to end: RBAC rendered by helm with `rbac.namespaces` (Roles in those namespaces,
// no ClusterRole), the service run with that ServiceAccount's token and WATCH_NAMESPACES as the chart sets it. A real
// Flux deployment into a listed namespace passes; one whose workloads live in a namespace outside the list ends at
// at once with a failed `.finished` that names the setting, instead of waiting for the deadline.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { startEnvironment, type Environment } from '../env/environment.js';
import { answerTo, keptnEvent, type EventStream } from '../env/keptn.js';
import { deployedApp, IMAGE, imageInCluster, type TestApp } from '../env/sample-app.js';

const WATCHED = ['flux-system', 'ns-listed'];

let env: Environment;
let events: EventStream;

beforeAll(async () => {
  env = await startEnvironment({
    flux: true,
    chartIdentity: { release: 'gitops-service', namespace: 'keptn', values: { rbac: { namespaces: WATCHED } } },
  });
  events = env.controlPlane.subscribe('sh.keptn.event.>');
}, 300_000);

afterAll(async () => {
  events?.close();
  await env?.stop();
}, 60_000);

async function deploy(app: TestApp, tag: string) {
  const triggered = keptnEvent(
    'sh.keptn.event.deployment.triggered',
    { project: 'podtato', stage: 'dev', service: app.service, configurationChange: { values: { image: `${IMAGE}:${tag}` } } },
    { gitcommitid: env.resources.version()! },
  );
  await env.controlPlane.publish(triggered);
  return events.waitFor(answerTo(triggered.id, 'finished', 'deployment'), { timeoutMs: 120_000, what: '.finished' });
}

describe('namespaced mode (rbac.namespaces)', () => {
  it('the chart gives no cluster-wide permission', async () => {
    expect(env.identity!.objects.filter((o) => o.kind?.startsWith('Cluster'))).toEqual([]);
  });

  it('deploys through Flux when the target and its workloads are in listed namespaces', async () => {
    const app = await deployedApp(env, 'flux', 'ns-listed');
    const finished = await deploy(app, '0.2.0');
    expect(finished.data).toMatchObject({ status: 'succeeded', result: 'pass' });
    expect(await imageInCluster(env.cluster, app)).toBe(`${IMAGE}:0.2.0`);
  }, 300_000);

  it('ends at once, naming the setting, when the workloads are in a namespace it does not watch', async () => {
    // A deadline far beyond the 120 s this test waits for `.finished`: only a refusal at once can answer in time.
    const app = await deployedApp(env, 'flux', 'ns-unlisted', { timeout: '30m' });
    const finished = await deploy(app, '0.2.0');
    expect(finished.data.result).toBe('fail');
    expect(String(finished.data.message)).toMatch(
      /namespace ns-unlisted: the service watches only flux-system, ns-listed \(WATCH_NAMESPACES/,
    );
  }, 300_000);
});
