// The Argo Rollouts controller (v1.10.1, `build.sh rollouts`) as a local process against the test API server. Its
// CRDs come from the module (`manifests/crds`, copied into `<cacheDir>/crds`). Outside a cluster it takes
// --kubeconfig; its metrics (:8090) and health (:8080) listeners move to free ports, and leader election is off
// (one instance). kwok makes the Pods of its ReplicaSets Ready, as for Deployments.
import { mkdir, readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import * as k8s from '@kubernetes/client-node';
import { installCrds } from './crds.js';
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

export async function startRollouts(opts: StartRolloutsOptions): Promise<Rollouts> {
  const cacheDir = await buildPeers('rollouts');
  const kc = new k8s.KubeConfig();
  kc.loadFromFile(opts.kubeconfigPath);
  const crdDir = join(cacheDir, 'crds');
  const docs: unknown[] = [];
  for (const file of (await readdir(crdDir)).filter((f) => /-crd\.ya?ml$/.test(f)).sort())
    docs.push(...k8s.loadAllYaml(await readFile(join(crdDir, file), 'utf8')));
  await installCrds(kc, docs, ['rollouts.argoproj.io'], crdDir);
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
