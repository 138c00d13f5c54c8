// Smoke check of test/env/kube.ts: start the control plane, roll out a 2-replica Deployment, see it Available with
// Ready pods (kwok plays the kubelet), stop.
// Usage: npx tsx test/env/kube-smoke.ts [rootDir] [holdSeconds]
//   holdSeconds: afterwards keep the cluster up that long and check the Node stays Ready (kwok's lease heartbeat).
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as k8s from '@kubernetes/client-node';
import { startKube } from './kube.js';
import { waitUntil } from './process.js';

const root = process.argv[2] ?? (await mkdtemp(join(tmpdir(), 'kube-smoke-')));
const t0 = Date.now();
const kube = await startKube({ workDir: join(root, 'work'), logDir: join(root, 'logs') });
console.log(`startKube: ${Date.now() - t0} ms, server ${kube.server}, kubeconfig ${kube.kubeconfigPath}`);
try {
  const kc = new k8s.KubeConfig();
  kc.loadFromFile(kube.kubeconfigPath);
  const apps = kc.makeApiClient(k8s.AppsV1Api);
  const core = kc.makeApiClient(k8s.CoreV1Api);
  const version = await kc.makeApiClient(k8s.VersionApi).getCode();
  console.log(`server version ${version.gitVersion}`);

  const t1 = Date.now();
  await apps.createNamespacedDeployment({
    namespace: 'default',
    body: {
      metadata: { name: 'smoke', labels: { app: 'smoke' } },
      spec: {
        replicas: 2,
        selector: { matchLabels: { app: 'smoke' } },
        template: {
          metadata: { labels: { app: 'smoke' } },
          spec: { containers: [{ name: 'nginx', image: 'nginx:1.27' }] },
        },
      },
    },
  });
  const dep = await waitUntil('Deployment smoke Available with 2 ready replicas', async () => {
    const d = await apps.readNamespacedDeployment({ name: 'smoke', namespace: 'default' });
    const available = d.status?.conditions?.some((c) => c.type === 'Available' && c.status === 'True');
    return available && d.status?.readyReplicas === 2 && d.status.availableReplicas === 2 ? d : undefined;
  }, { timeoutMs: 60_000 });
  console.log(`deployment available after ${Date.now() - t1} ms: ready=${dep.status?.readyReplicas}`);
  const pods = await core.listNamespacedPod({ namespace: 'default', labelSelector: 'app=smoke' });
  for (const p of pods.items) {
    const ready = p.status?.conditions?.find((c) => c.type === 'Ready')?.status;
    console.log(`pod ${p.metadata?.name} node=${p.spec?.nodeName} phase=${p.status?.phase} ready=${ready} ip=${p.status?.podIP}`);
  }
  if (pods.items.length !== 2 || pods.items.some((p) => p.status?.phase !== 'Running')) throw new Error('pods not running');

  // Scale down: pod deletion must complete (kwok's pod-delete stage finalises terminating pods).
  await apps.patchNamespacedDeploymentScale({
    name: 'smoke', namespace: 'default', body: [{ op: 'replace', path: '/spec/replicas', value: 1 }],
  });
  await waitUntil('scale down to 1 pod', async () =>
    (await core.listNamespacedPod({ namespace: 'default', labelSelector: 'app=smoke' })).items.length === 1,
  { timeoutMs: 60_000 });
  console.log('scaled down to 1 pod: OK');

  const holdSeconds = Number(process.argv[3] ?? 0);
  for (let waited = 0; waited < holdSeconds; waited += 10) {
    await new Promise((r) => setTimeout(r, 10_000));
    const node = await core.readNode({ name: 'kwok-node-0' });
    const ready = node.status?.conditions?.find((c) => c.type === 'Ready');
    const taints = (node.spec?.taints ?? []).map((t) => `${t.key}:${t.effect}`).join(',');
    console.log(`t+${waited + 10}s node Ready=${ready?.status} heartbeat=${ready?.lastHeartbeatTime?.toISOString()} taints=[${taints}]`);
    if (ready?.status !== 'True' || taints) throw new Error('node lost Ready or got tainted');
  }
} finally {
  const t2 = Date.now();
  await kube.stop();
  console.log(`stop: ${Date.now() - t2} ms`);
}
