// Smoke tests: each peer of the test environment is the real program and does its real job.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import type { KubernetesObject } from '@kubernetes/client-node';
import { createServer, type Server } from 'node:http';
import { startEnvironment, type Environment } from '../env/environment.js';
import { keptnEvent, startDistributor, type KeptnCloudEvent } from '../env/keptn.js';
import { freePort, waitUntil } from '../env/process.js';
import { appFiles, IMAGE, toolObjects, type TestApp } from '../env/sample-app.js';

let env: Environment;

beforeAll(async () => {
  env = await startEnvironment({ flux: true, argocd: true });
}, 300_000);
afterAll(async () => {
  await env?.stop();
}, 60_000);

type Status = { status?: Record<string, unknown> & { conditions?: Array<{ type: string; status: string }> } };

async function newApp(tool: 'flux' | 'argocd'): Promise<TestApp> {
  const name = `smoke-${tool}`;
  const { url, commit } = await env.git.createRepo(name, appFiles(name));
  const app: TestApp = { name, namespace: name, repo: name, repoUrl: url, initialCommit: commit, service: name };
  await env.cluster.apply([
    { apiVersion: 'v1', kind: 'Namespace', metadata: { name } } as KubernetesObject,
    ...toolObjects(tool, app, env, { automated: true }),
  ]);
  return app;
}

describe('Kubernetes (kube-apiserver, controller-manager, scheduler, kwok)', () => {
  it('runs a Deployment until it is Available with Ready pods', async () => {
    await env.cluster.apply([
      { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'smoke-kube' } } as KubernetesObject,
      {
        apiVersion: 'apps/v1',
        kind: 'Deployment',
        metadata: { name: 'nginx', namespace: 'smoke-kube' },
        spec: {
          replicas: 2,
          selector: { matchLabels: { app: 'nginx' } },
          template: { metadata: { labels: { app: 'nginx' } }, spec: { containers: [{ name: 'nginx', image: 'nginx:1.27' }] } },
        },
      } as KubernetesObject,
    ]);
    const d = await waitUntil(
      'Deployment Available',
      async () => {
        const obj = await env.cluster.read<KubernetesObject & Status>('apps/v1', 'Deployment', 'smoke-kube', 'nginx');
        return obj.status?.conditions?.some((c) => c.type === 'Available' && c.status === 'True') && obj.status['readyReplicas'] === 2
          ? obj
          : undefined;
      },
      { timeoutMs: 60_000 },
    );
    expect(d.status?.['readyReplicas']).toBe(2);
  }, 90_000);
});

describe('Flux', () => {
  it('applies a pushed commit and reports it in lastAppliedRevision', async () => {
    const app = await newApp('flux');
    const k = await waitUntil(
      'Kustomization applied',
      async () => {
        const obj = await env.cluster.read<KubernetesObject & Status>(
          'kustomize.toolkit.fluxcd.io/v1',
          'Kustomization',
          'flux-system',
          app.name,
        );
        return obj.status?.['lastAppliedRevision'] === `main@sha1:${app.initialCommit}` ? obj : undefined;
      },
      { timeoutMs: 120_000 },
    );
    expect(k.status?.conditions).toEqual(expect.arrayContaining([expect.objectContaining({ type: 'Ready', status: 'True' })]));
    const d = await env.cluster.read<KubernetesObject & { spec: { template: { spec: { containers: Array<{ image: string }> } } } }>(
      'apps/v1',
      'Deployment',
      app.namespace,
      'web',
    );
    expect(d.spec.template.spec.containers[0]?.image).toBe(`${IMAGE}:0.1.0`);
  }, 150_000);
});

describe('Argo CD', () => {
  it('syncs a commit and reports Synced and Healthy at that revision', async () => {
    const app = await newApp('argocd');
    const a = await waitUntil(
      'Application Synced/Healthy',
      async () => {
        const obj = await env.cluster.read<
          KubernetesObject & { status?: { sync?: { status?: string; revision?: string }; health?: { status?: string } } }
        >('argoproj.io/v1alpha1', 'Application', 'argocd', app.name);
        return obj.status?.sync?.status === 'Synced' && obj.status.health?.status === 'Healthy' ? obj : undefined;
      },
      { timeoutMs: 180_000 },
    );
    expect(a.status?.sync?.revision).toBe(app.initialCommit);
  }, 200_000);
});

describe('NATS and the Keptn distributor', () => {
  let receiver: Server;
  const received: Array<{ headers: Record<string, unknown>; body: KeptnCloudEvent }> = [];
  let port: number;

  beforeAll(async () => {
    port = await freePort();
    receiver = createServer((req, res) => {
      let body = '';
      req.on('data', (c: Buffer) => (body += c.toString()));
      req.on('end', () => {
        received.push({ headers: req.headers, body: JSON.parse(body) as KeptnCloudEvent });
        res.writeHead(200).end();
      });
    });
    await new Promise<void>((r) => receiver.listen(port, '127.0.0.1', r));
  });
  afterAll(() => new Promise<void>((r) => receiver.close(() => r())));

  it('forwards an event from NATS to the HTTP receiver, and an event POSTed to /event onto NATS', async () => {
    const distributor = await startDistributor({
      natsUrl: env.nats.url,
      recipientPort: port,
      topics: ['sh.keptn.event.smoke.triggered'],
      logDir: env.logDir,
      name: 'distributor-smoke',
    });
    try {
      const down = keptnEvent('sh.keptn.event.smoke.triggered', { project: 'p', stage: 's', service: 'x' });
      await env.controlPlane.publish(down);
      const got = await waitUntil('event at the receiver', async () => received.find((r) => r.body.id === down.id), { timeoutMs: 10_000 });
      expect(got.headers['content-type']).toContain('application/cloudevents+json');
      expect(got.body).toMatchObject({ type: down.type, shkeptncontext: down.shkeptncontext, data: down.data });

      const up = env.controlPlane.subscribe('sh.keptn.event.smoke.finished');
      const event = keptnEvent(
        'sh.keptn.event.smoke.finished',
        { project: 'p', stage: 's', service: 'x', status: 'succeeded', result: 'pass' },
        { triggeredid: down.id },
      );
      const res = await fetch(distributor.eventUrl, {
        method: 'POST',
        headers: { 'content-type': 'application/cloudevents+json' },
        body: JSON.stringify(event),
      });
      expect(res.status).toBe(200);
      expect(await up.waitFor((e) => e.id === event.id, { timeoutMs: 10_000 })).toMatchObject({
        triggeredid: down.id,
        data: { result: 'pass' },
      });
      up.close();
    } finally {
      await distributor.stop();
    }
  }, 60_000);
});
