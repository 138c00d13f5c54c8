// The Flagger peer itself, against the real controller (v1.44.0, Kubernetes provider): blue-green of a Deployment
// with two manual gates, a confirm-promotion webhook and a rollback webhook, both served by this test. It asserts
// what the service relies on: the phases and status fields Flagger shows at each step, which Deployment runs which
// image, and the bodies of the webhook calls. No Flux or Argo CD: the test changes the Deployment itself, as a GitOps
// tool would. Flagger's analysis ticks every 10 s at the least, so this test takes about two minutes. Promotion, roll-back
// and a revert after a roll-back (the Canary stays Failed) are proven through the service in flagger.e2e.test.ts.
//
// Everything observed (every status the Canary went through, with times, and every webhook call) is written to
// `<logDir>/flagger-observations.json`.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import * as k8s from '@kubernetes/client-node';
import type { KubernetesObject } from '@kubernetes/client-node';
import { writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import { join } from 'node:path';
import { startEnvironment, type Environment } from '../env/environment.js';
import { freePort, waitUntil } from '../env/process.js';

const NS = 'flagger-peer';
const NAME = 'podinfo';
const IMAGE = 'ghcr.io/stefanprodan/podinfo';

interface Condition {
  type: string;
  status: string;
  reason?: string;
  message?: string;
  lastUpdateTime?: string;
  lastTransitionTime?: string;
}
interface CanaryStatus {
  phase?: string;
  failedChecks?: number;
  canaryWeight?: number;
  iterations?: number;
  trackedConfigs?: Record<string, string>;
  lastAppliedSpec?: string;
  lastPromotedSpec?: string;
  lastTransitionTime?: string;
  conditions?: Condition[];
}
type Canary = KubernetesObject & { status?: CanaryStatus };
type Deployment = KubernetesObject & {
  spec: {
    replicas?: number;
    selector: { matchLabels: Record<string, string> };
    template: { spec: { containers: Array<{ image: string }> } };
  };
  status?: { readyReplicas?: number };
};
type Service = KubernetesObject & { spec: { selector?: Record<string, string>; ports: Array<{ port: number }> } };

interface WebhookCall {
  at: string;
  method: string;
  path: string;
  body: Record<string, unknown>;
  answer: number;
}

let env: Environment;
let gates: { server: Server; port: number; calls: WebhookCall[]; answer: { promote: number; rollback: number } };
const timeline: Array<{ at: string; status: CanaryStatus }> = [];
let stopWatch: (() => void) | undefined;
const snapshots: Record<string, unknown> = {};

/** A tiny webhook server: records every call, answers as the test decides (200 opens a gate, 403 keeps it closed). */
async function startGates(): Promise<typeof gates> {
  const calls: WebhookCall[] = [];
  const answer = { promote: 403, rollback: 403 };
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const text = Buffer.concat(chunks).toString('utf8');
      let body: Record<string, unknown>;
      try {
        body = JSON.parse(text) as Record<string, unknown>;
      } catch {
        body = { unparsed: text };
      }
      const code = req.url === '/gate/promote' ? answer.promote : req.url === '/gate/rollback' ? answer.rollback : 404;
      calls.push({ at: new Date().toISOString(), method: req.method ?? '', path: req.url ?? '', body, answer: code });
      res.writeHead(code, { 'content-type': 'text/plain' }).end(code === 200 ? 'ok' : 'closed');
    });
  });
  const port = await freePort();
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  return { server, port, calls, answer };
}

/** Records every status the Canary goes through (the record only: the test synchronises with waitUntil). */
async function watchCanary(kc: k8s.KubeConfig): Promise<() => void> {
  let stopped = false;
  let controller: AbortController | undefined;
  const start = async () => {
    controller = await new k8s.Watch(kc).watch(
      `/apis/flagger.app/v1beta1/namespaces/${NS}/canaries`,
      { fieldSelector: `metadata.name=${NAME}` },
      (_type, obj: Canary) => {
        const status = obj.status ?? {};
        const last = timeline.at(-1)?.status;
        if (JSON.stringify(last) !== JSON.stringify(status)) timeline.push({ at: new Date().toISOString(), status });
      },
      () => {
        if (!stopped) void start();
      },
    );
  };
  await start();
  return () => {
    stopped = true;
    controller?.abort();
  };
}

const readCanary = () => env.cluster.read<Canary>('flagger.app/v1beta1', 'Canary', NS, NAME);
const readDeployment = (name: string) => env.cluster.read<Deployment>('apps/v1', 'Deployment', NS, name);
const imageOf = (d: Deployment) => d.spec.template.spec.containers[0]?.image;
const promoted = (c: Canary) => c.status?.conditions?.find((x) => x.type === 'Promoted');

/** The Canary once it shows `phase`, and once the watch has recorded it too (for phasesSince). */
async function waitForPhase(phase: string, timeoutMs = 90_000): Promise<Canary> {
  return waitUntil(
    `Canary phase ${phase}`,
    async () => {
      const c = await readCanary();
      return c.status?.phase === phase && timeline.at(-1)?.status.phase === phase ? c : undefined;
    },
    { timeoutMs, peer: env.flagger!.peer },
  );
}

/**
 * The phases the Canary went through from the status it had when the timeline was `since` long (the last one
 * recorded before), consecutive repeats merged.
 */
function phasesSince(since: number): string[] {
  const phases: string[] = [];
  for (const { status } of timeline.slice(Math.max(0, since - 1))) {
    if (status.phase && phases.at(-1) !== status.phase) phases.push(status.phase);
  }
  return phases;
}

/** What a GitOps tool does to the target: a new image in the pod template, nothing else. */
async function setImage(tag: string): Promise<void> {
  await env.cluster.mergePatch({
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name: NAME, namespace: NS },
    spec: { template: { spec: { containers: [{ name: 'podinfo', image: `${IMAGE}:${tag}` }] } } },
  });
}

beforeAll(async () => {
  env = await startEnvironment({ service: false, chartIdentity: false, flagger: true });
  gates = await startGates();
  stopWatch = await watchCanary(env.cluster.kc);
  await env.cluster.apply([
    { apiVersion: 'v1', kind: 'Namespace', metadata: { name: NS } } as KubernetesObject,
    {
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      metadata: { name: NAME, namespace: NS },
      spec: {
        replicas: 2,
        selector: { matchLabels: { app: NAME } },
        template: {
          metadata: { labels: { app: NAME } },
          spec: { containers: [{ name: 'podinfo', image: `${IMAGE}:6.0.0`, ports: [{ name: 'http', containerPort: 9898 }] }] },
        },
      },
    } as KubernetesObject,
  ]);
  await waitUntil('Deployment podinfo ready', async () => ((await readDeployment(NAME)).status?.readyReplicas ?? 0) === 2, {
    timeoutMs: 60_000,
  });
  await env.cluster.apply([
    {
      apiVersion: 'flagger.app/v1beta1',
      kind: 'Canary',
      metadata: { name: NAME, namespace: NS },
      spec: {
        provider: 'kubernetes',
        targetRef: { apiVersion: 'apps/v1', kind: 'Deployment', name: NAME },
        progressDeadlineSeconds: 60,
        service: { port: 80, targetPort: 9898 },
        analysis: {
          // Flagger raises any interval below 10 s to 10 s.
          interval: '10s',
          threshold: 2,
          iterations: 2,
          webhooks: [
            {
              name: 'gate',
              type: 'confirm-promotion',
              url: `http://127.0.0.1:${gates.port}/gate/promote`,
              metadata: { project: 'podtato', stage: 'dev', service: NAME },
            },
            { name: 'rb', type: 'rollback', url: `http://127.0.0.1:${gates.port}/gate/rollback` },
          ],
        },
      },
    } as KubernetesObject,
  ]);
}, 400_000);

afterAll(async () => {
  stopWatch?.();
  if (env) {
    await writeFile(
      join(env.logDir, 'flagger-observations.json'),
      JSON.stringify({ timeline, calls: gates?.calls ?? [], snapshots }, null, 2),
    ).catch(() => undefined);
  }
  gates?.server.close();
  await env?.stop();
}, 60_000);

describe('Flagger (Kubernetes provider, blue-green with manual gates)', () => {
  let initialized: Canary;

  it('initializes: a primary Deployment with the original image, three Services, the target scaled to 0', async () => {
    initialized = await waitForPhase('Initialized', 120_000);
    snapshots['Initialized'] = initialized.status;
    expect(initialized.status).toMatchObject({ canaryWeight: 0, iterations: 0, failedChecks: 0 });
    expect(initialized.status?.lastAppliedSpec).toBeTruthy();
    expect(initialized.status?.lastPromotedSpec).toBe(initialized.status?.lastAppliedSpec);
    expect(promoted(initialized)).toMatchObject({ status: 'True', reason: 'Initialized' });

    const primary = await readDeployment(`${NAME}-primary`);
    expect(imageOf(primary)).toBe(`${IMAGE}:6.0.0`);
    expect(primary.spec.selector.matchLabels).toEqual({ app: `${NAME}-primary` });
    expect((await readDeployment(NAME)).spec.replicas).toBe(0);
    const selectors: Record<string, Record<string, string> | undefined> = {};
    for (const svc of [NAME, `${NAME}-primary`, `${NAME}-canary`]) {
      const s = await env.cluster.read<Service>('v1', 'Service', NS, svc);
      expect(s.spec.ports[0]?.port).toBe(80);
      selectors[svc] = s.spec.selector;
    }
    // The apex Service serves the primary; `-canary` selects the target's pods.
    expect(selectors).toEqual({
      [NAME]: { app: `${NAME}-primary` },
      [`${NAME}-primary`]: { app: `${NAME}-primary` },
      [`${NAME}-canary`]: { app: NAME },
    });
    expect(gates.calls).toEqual([]);
  }, 150_000);

  let waiting: Canary;

  it('holds a new image in WaitingPromotion while the promotion gate is closed', async () => {
    const from = timeline.length;
    await setImage('6.0.1');
    await waitForPhase('Progressing');
    waiting = await waitForPhase('WaitingPromotion', 120_000);
    snapshots['WaitingPromotion'] = waiting.status;
    expect(phasesSince(from)).toEqual(['Initialized', 'Progressing', 'WaitingPromotion']);
    expect(waiting.status).toMatchObject({ phase: 'WaitingPromotion', canaryWeight: 0, failedChecks: 0 });
    expect(promoted(waiting)).toMatchObject({ status: 'Unknown', reason: 'WaitingPromotion', message: 'Waiting for approval.' });
    // A new pod template: lastAppliedSpec moved on, lastPromotedSpec is still the primary's.
    expect(waiting.status?.lastPromotedSpec).toBe(initialized.status?.lastPromotedSpec);
    expect(waiting.status?.lastAppliedSpec).not.toBe(waiting.status?.lastPromotedSpec);

    const [target, primary] = [await readDeployment(NAME), await readDeployment(`${NAME}-primary`)];
    expect(imageOf(target)).toBe(`${IMAGE}:6.0.1`);
    expect(target.spec.replicas).toBe(2);
    expect(imageOf(primary)).toBe(`${IMAGE}:6.0.0`);

    // The gate is asked again while it stays closed: a second call, same checksum.
    const promoteCalls = await waitUntil(
      'a second confirm-promotion call',
      async () => {
        const calls = gates.calls.filter((c) => c.path === '/gate/promote');
        return calls.length >= 2 ? calls : undefined;
      },
      { timeoutMs: 60_000, peer: env.flagger!.peer },
    );
    for (const call of promoteCalls) {
      expect(call.method).toBe('POST');
      expect(call.body).toEqual({
        name: NAME,
        namespace: NS,
        phase: 'Progressing',
        checksum: promoteCalls[0]!.body['checksum'],
        metadata: { project: 'podtato', stage: 'dev', service: NAME },
      });
    }
    // The rollback hook is asked on every run while Progressing or WaitingPromotion, with the Canary's phase.
    const rollbackCalls = gates.calls.filter((c) => c.path === '/gate/rollback');
    expect(rollbackCalls.length).toBeGreaterThan(0);
    for (const call of rollbackCalls) {
      expect(call.body).toEqual({
        name: NAME,
        namespace: NS,
        phase: expect.stringMatching(/^(Progressing|WaitingPromotion)$/),
        checksum: promoteCalls[0]!.body['checksum'],
      });
    }
  }, 200_000);
});
