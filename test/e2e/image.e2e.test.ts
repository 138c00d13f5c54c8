// The image users build from the Dockerfile, built with buildah on a stand-in for node's base (test/env/image/build.sh:
// no Docker engine and no pull of node:24-bookworm-slim here), then run as a pod runs it: its own root file system,
// its entrypoint and command, its user, working directory and environment as the image declares them, and the
// chart's ServiceAccount against the test environment's kube-apiserver. What a team relies on when it deploys it: the
// probes answer, an event is accepted, recorded and delivered through Flux by the git inside the image, and SIGTERM
// ends it with exit code 0 within the drain timeout.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { CoreV1Api } from '@kubernetes/client-node';
import { execFile } from 'node:child_process';
import { chmod, chown, copyFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { SERVICE_TOPICS, serviceEnvironment, startEnvironment, type Environment } from '../env/environment.js';
import { answerTo, keptnEvent, startDistributor, type Distributor, type EventStream } from '../env/keptn.js';
import { freePort, spawnPeer, waitUntil, type PeerProcess } from '../env/process.js';
import { deployedApp, IMAGE, imageInCluster, PROJECT } from '../env/sample-app.js';

const exec = promisify(execFile);
const BUILD = join(dirname(fileURLToPath(import.meta.url)), '..', 'env', 'image', 'build.sh');
/** Short, so the test also proves the stop fits in it; the chart's terminationGracePeriodSeconds covers the default. */
const DRAIN_MS = 5_000;

interface ImageConfig {
  Entrypoint?: string[];
  Cmd?: string[];
  User?: string;
  WorkingDir?: string;
  Env?: string[];
}

let env: Environment;
let events: EventStream;
let distributor: Distributor;
let storage: string[];
let container: string | undefined;
let rootfs: string;
let config: ImageConfig;
let service: PeerProcess;
let port: number;
let healthPort: number;
const timings: Record<string, number> = {};

const buildah = async (...args: string[]) => (await exec('buildah', [...storage, ...args], { maxBuffer: 16 << 20 })).stdout.trim();

beforeAll(async () => {
  let t0 = Date.now();
  // Warm: a hash and a lookup. Cold: the stand-in (about 1.5 min) and the image (about 2 min) on 2 cores.
  const built = await exec('bash', [BUILD], { maxBuffer: 16 << 20 });
  const image = built.stdout.trim().split('\n').pop()!;
  timings['build (cache lookup when warm)'] = Date.now() - t0;
  storage = (await exec('bash', [BUILD, '--storage-flags'])).stdout.trim().split(' ');
  config = (JSON.parse(await buildah('inspect', '--type', 'image', image)) as { OCIv1: { config: ImageConfig } }).OCIv1.config;

  t0 = Date.now();
  env = await startEnvironment({ flux: true, service: false });
  events = env.controlPlane.subscribe('sh.keptn.event.deployment.>');
  timings['environment'] = Date.now() - t0;

  t0 = Date.now();
  container = await buildah('from', '--pull-never', image);
  rootfs = await buildah('mount', container);
  // The chart's ServiceAccount, as a kubeconfig inside the container (a pod gets the same identity as a projected
  // token); readable by the image's user only.
  const [uid, gid] = (config.User ?? '').split(':').map(Number);
  // (Not under /var/run: a link to /run that the host, not the container, would resolve.)
  const kubeconfig = '/tmp/gitops-test-kubeconfig';
  await copyFile(env.identity!.kubeconfigPath, join(rootfs, kubeconfig));
  await chmod(join(rootfs, kubeconfig), 0o600);
  await chown(join(rootfs, kubeconfig), uid!, gid!);

  port = await freePort();
  healthPort = await freePort();
  const apiProxyPort = await freePort();
  distributor = await startDistributor({
    natsUrl: env.nats.url,
    recipientPort: port,
    topics: SERVICE_TOPICS,
    resourceServiceUrl: env.resources.url,
    logDir: env.logDir,
    name: 'distributor-image',
    apiProxyPort,
  });
  const apiUrl = `http://127.0.0.1:${apiProxyPort}`;
  const settings = serviceEnvironment(env, port, `${apiUrl}/event`, apiUrl, {
    REPLICA_ID: 'image',
    HEALTH_PORT: String(healthPort),
    DRAIN_TIMEOUT: `${DRAIN_MS / 1000}s`,
    KUBECONFIG: kubeconfig,
  });
  // The image's own work directory (its ENV), not the host path the in-process tests use.
  delete settings['GITOPS_WORK_DIR'];
  // The image's environment first, then the service's settings, and nothing of the host's (env -i).
  const environment = [...(config.Env ?? []), ...Object.entries(settings).map(([k, v]) => `${k}=${v}`)];
  const command = [...(config.Entrypoint ?? []), ...(config.Cmd ?? [])];
  // A mount namespace of its own for /proc and /dev, as a container runtime gives them; they vanish with the
  // process. Every step execs the next, so the pid the test signals is the image's entrypoint (tini).
  const script = [
    'set -e',
    'mount --make-rprivate /',
    'mount -t proc proc "$0/proc"',
    'mount --rbind /dev "$0/dev"',
    'root=$0 user=$1 dir=$2',
    'shift 2',
    // What is left in "$@" is the environment and then the command.
    'exec chroot --userspec="$user" "$root" /usr/bin/env -i -C "$dir" "$@"',
  ].join('\n');
  service = await spawnPeer({
    name: 'service-image',
    command: 'unshare',
    args: ['--mount', 'sh', '-c', script, rootfs, config.User ?? '', config.WorkingDir ?? '/', ...environment, ...command],
    logDir: env.logDir,
  });
  await waitUntil('the image answers its health probe', async () => (await fetch(`http://127.0.0.1:${healthPort}/health`)).ok, {
    timeoutMs: 30_000,
    peer: service,
  });
  timings['image start'] = Date.now() - t0;
}, 900_000);

afterAll(async () => {
  events?.close();
  await service?.stop();
  await distributor?.stop();
  if (container) await buildah('rm', container).catch(() => undefined);
  await env?.stop();
  // How much this file adds to a CI run, for whoever keeps CI under its budget.
  console.log(
    `image.e2e timings: ${Object.entries(timings)
      .map(([k, v]) => `${k} ${(v / 1000).toFixed(1)} s`)
      .join(', ')}`,
  );
}, 60_000);

describe('the image built from the Dockerfile', () => {
  it('runs as a non-root user with tini as its entrypoint, and has neither npm nor apt caches', async () => {
    expect(config.User).toBe('1000:1000');
    expect(config.Entrypoint).toEqual(['/usr/bin/tini', '--']);
    const left = await exec('sh', [
      '-c',
      'cd "$0" && ls -d usr/local/bin/npm usr/local/lib/node_modules/npm var/cache/apt/archives/*.deb var/lib/apt/lists/*_Packages* 2>/dev/null || true',
      rootfs,
    ]);
    expect(left.stdout.trim()).toBe('');
  });

  it('answers its liveness and readiness probes on the health port', async () => {
    const health = await fetch(`http://127.0.0.1:${healthPort}/health`);
    expect(health.status).toBe(200);
    await waitUntil('ready', async () => (await fetch(`http://127.0.0.1:${healthPort}/ready`)).status === 200, {
      timeoutMs: 30_000,
      peer: service,
    });
  });

  it('accepts a deployment.triggered, records it in the state namespace and delivers it through Flux', async () => {
    const app = await deployedApp(env, 'flux', 'image-app', { timeout: '120s' });
    const triggered = keptnEvent('sh.keptn.event.deployment.triggered', {
      project: PROJECT,
      stage: 'dev',
      service: app.service,
      configurationChange: { values: { image: `${IMAGE}:0.2.0` } },
    });
    const res = await fetch(`http://127.0.0.1:${port}/`, {
      method: 'POST',
      headers: { 'content-type': 'application/cloudevents+json' },
      body: JSON.stringify(triggered),
    });
    expect(res.status).toBe(202);
    expect(((await res.json()) as { status: string }).status).not.toBe('ignored');

    const core = env.cluster.kc.makeApiClient(CoreV1Api);
    const recorded = async () =>
      (
        await core.listNamespacedConfigMap({
          namespace: env.identity!.stateNamespace,
          labelSelector: 'keptn-gitops-service/kind=deployment',
        })
      ).items.find((cm) => cm.metadata?.annotations?.['keptn-gitops-service/triggeredid'] === triggered.id);
    await waitUntil('the deployment record', recorded, { timeoutMs: 10_000, peer: service });

    const finished = await events.waitFor(answerTo(triggered.id, 'finished'), { timeoutMs: 150_000, what: '.finished' });
    expect((finished.data as { result?: string }).result).toBe('pass');
    expect(await imageInCluster(env.cluster, app)).toBe(`${IMAGE}:0.2.0`);
  }, 300_000);

  it('stops on SIGTERM with exit code 0 within the drain timeout', async () => {
    const t0 = Date.now();
    process.kill(service.pid, 'SIGTERM');
    const code = await service.exited;
    expect(code).toBe(0);
    expect(Date.now() - t0).toBeLessThan(DRAIN_MS);
  }, 30_000);
});
