// Changes made in Git alone (issue 10), against the real peers: someone else pushes to the GitOps repository, real
// Flux or Argo CD applies it, and the service announces exactly one Keptn sequence for it; the sequence's deployment
// task is then answered without a commit. The service runs as replicas in their own processes (as in a pod), so the
// observing replica can be killed. One environment for all cases (observe/world.ts); the cases in observe/ run
// concurrently, each on repositories and objects of its own; the two-replica case runs alone, last, since it kills the
// observing replica.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { CoordinationV1Api, type KubernetesObject } from '@kubernetes/client-node';
import { startServiceProcess, stateNamespace } from '../env/environment.js';
import { waitUntil } from '../env/process.js';
import { changeCases } from './observe/changes.cases.js';
import { notificationCases } from './observe/notifications.cases.js';
import { tenantCases } from './observe/tenants.cases.js';
import {
  API,
  announced,
  announcementOf,
  linkedApp,
  notifyTool,
  objectOf,
  OBSERVING,
  pushNewTag,
  records,
  replicas,
  start,
  stop,
  env,
} from './observe/world.js';

beforeAll(start, 300_000);
afterAll(stop, 60_000);

changeCases();
tenantCases();
notificationCases();

describe('two replicas', () => {
  it('the observing replica is killed mid-way: the other takes over and announces the change exactly once', async () => {
    replicas.push(await startServiceProcess(env, { replicaId: 'obs-2', extraEnv: OBSERVING }));
    // Held back by a gate: Flux cannot apply the push until the test opens it, after the kill.
    const app = await linkedApp('flux', {
      'gates/open/gate.yaml': 'apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: gate\ndata: { open: "true" }\n',
    });
    // The closed gate reads a GitRepository that does not exist: Ready=False ArtifactFailed, retried, a dependency that
    // may still become ready (a gate failed at the pushed revision would rightly fail the change: faults.e2e gatedApp).
    const gate = (source: string) =>
      ({
        apiVersion: API.flux,
        kind: 'Kustomization',
        metadata: { name: `gate-${app.name}`, namespace: 'flux-system' },
        spec: {
          interval: '1h',
          retryInterval: '2s',
          path: './gates/open',
          prune: true,
          targetNamespace: app.name,
          sourceRef: { kind: 'GitRepository', name: source },
        },
      }) as KubernetesObject;
    await env.cluster.apply([gate(`${app.name}-gate-never-created`)]);
    await env.cluster.mergePatch({
      apiVersion: API.flux,
      kind: 'Kustomization',
      metadata: { name: app.name, namespace: 'flux-system' },
      spec: { dependsOn: [{ name: `gate-${app.name}` }] },
    });
    const foreign = await pushNewTag(app, '0.2.0');
    await notifyTool('flux', app);

    const leases = env.cluster.kc.makeApiClient(CoordinationV1Api);
    const holder = async () =>
      (await leases.readNamespacedLease({ namespace: stateNamespace(env), name: 'keptn-gitops-observer' })).spec?.holderIdentity;
    const observing = await holder();
    const dead = replicas.find((r) => r.replicaId === observing)!;
    const survivor = replicas.find((r) => r.replicaId !== observing)!;
    await dead.process.kill();
    await waitUntil('the other replica holds the observer Lease', async () => (await holder()) === survivor.replicaId, {
      timeoutMs: 30_000,
    });
    await env.cluster.apply([gate(app.name)]);
    await notifyTool('flux', app);
    const sequence = await announcementOf(app, foreign);
    expect(sequence.data).toMatchObject({ result: 'pass', labels: { 'gitops.keptn.sh/revision': foreign } });
    // Exactly once: a later push is announced by the survivor, and the first is still announced once.
    const later = await pushNewTag(app, '0.3.0');
    await notifyTool('flux', app);
    await announcementOf(app, later);
    expect(announced(app, foreign)).toHaveLength(1);
    expect(await records(objectOf('flux', app))).toEqual(
      expect.arrayContaining([expect.objectContaining({ revision: foreign, phase: 'sent' })]),
    );
  }, 400_000);
});
