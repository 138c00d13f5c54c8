// The Argo Rollouts controller (v1.10.1, `build.sh rollouts`) as a local process against the test API server. Its
// CRDs come from the module (`manifests/crds`, copied into `<cacheDir>/crds`). Outside a cluster it takes
// --kubeconfig; its metrics (:8090) and health (:8080) listeners move to free ports, and leader election is off
// (one instance). kwok makes the Pods of its ReplicaSets Ready, as for Deployments.
import { mkdir, readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import * as k8s from '@kubernetes/client-node';
import { buildPeers, freePort, spawnPeer, waitUntil, type PeerProcess } from './process.js';

export const ROLLOUTS_VERSION = 'v1.10.1';

export interface Rollouts {
  stop(): Promise<void>;
  peer: PeerProcess;
}

export interface StartRolloutsOptions {
  kubeconfigPath: string;
  workDir: string;
  logDir: string;
  timeoutMs?: number;
}

async function installCrds(kc: k8s.KubeConfig, cacheDir: string): Promise<void> {
  const objects = k8s.KubernetesObjectApi.makeApiClient(kc);
  const names: string[] = [];
  const dir = join(cacheDir, 'crds');
  for (const file of (await readdir(dir)).filter((f) => /-crd\.ya?ml$/.test(f)).sort()) {
    for (const doc of k8s.loadAllYaml(await readFile(join(dir, file), 'utf8'))) {
      const crd = doc as k8s.V1CustomResourceDefinition | null;
      if (crd?.kind !== 'CustomResourceDefinition' || !crd.metadata?.name) continue;
      await objects.patch(crd, undefined, undefined, 'keptn-gitops-test-env', true, k8s.PatchStrategy.ServerSideApply);
      names.push(crd.metadata.name);
    }
  }
  if (!names.includes('rollouts.argoproj.io')) throw new Error(`no Rollout CRD under ${dir}`);
  const ext = kc.makeApiClient(k8s.ApiextensionsV1Api);
  await Promise.all(
    names.map((name) =>
      waitUntil(
        `CRD ${name} established`,
        async () =>
          (await ext.readCustomResourceDefinition({ name })).status?.conditions?.some(
            (c) => c.type === 'Established' && c.status === 'True',
          ),
        { timeoutMs: 30_000 },
      ),
    ),
  );
}

export async function startRollouts(opts: StartRolloutsOptions): Promise<Rollouts> {
  const cacheDir = await buildPeers('rollouts');
  const kc = new k8s.KubeConfig();
  kc.loadFromFile(opts.kubeconfigPath);
  await installCrds(kc, cacheDir);
  await mkdir(opts.workDir, { recursive: true });
  const [metricsPort, healthzPort] = [await freePort(), await freePort()];
  const peer = await spawnPeer({
    name: 'rollouts-controller',
    command: join(cacheDir, 'bin', 'rollouts-controller'),
    args: [
      `--kubeconfig=${opts.kubeconfigPath}`,
      `--metricsPort=${metricsPort}`,
      `--healthzPort=${healthzPort}`,
      '--leader-elect=false',
      '--logformat=json',
      // Seconds; the default (15 min) is far beyond any test, and resyncs only add load.
      '--rollout-resync=60',
    ],
    env: { KUBECONFIG: opts.kubeconfigPath },
    cwd: opts.workDir,
    logDir: opts.logDir,
  });
  try {
    await waitUntil(
      'rollouts-controller /healthz',
      async () => (await fetch(`http://127.0.0.1:${healthzPort}/healthz`, { signal: AbortSignal.timeout(2_000) })).ok,
      { timeoutMs: opts.timeoutMs ?? 60_000, peer },
    );
  } catch (err) {
    await peer.stop();
    throw err;
  }
  return { peer, stop: () => peer.stop() };
}
