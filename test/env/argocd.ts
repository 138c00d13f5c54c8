// Argo CD as real peer processes: redis-server, argocd-repo-server, argocd-application-controller and
// argocd-notifications, all from the multicall binary built by test/env/peers/build.sh argocd (Argo CD v3.5.3),
// talking to the test API server through a kubeconfig, and on request the applicationset controller (same binary).
// No argocd-server or dex: the service under test drives Applications through the Kubernetes API (operation.sync,
// refresh annotation).
import { execFile } from 'node:child_process';
import { access, chmod, mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { createConnection } from 'node:net';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';
import * as k8s from '@kubernetes/client-node';
import { buildPeers, freePort, spawnPeer, waitUntil, type PeerProcess } from './process.js';

export interface ArgoCD {
  namespace: string;
  stop(): Promise<void>;
  peers: PeerProcess[];
}

export interface StartArgoCDOptions {
  kubeconfigPath: string;
  /** Scratch directory for this instance (repo-server clones, GnuPG/TLS/SSH dirs, askpass socket). */
  workDir: string;
  logDir: string;
  /** Cache directory printed by `build.sh argocd` (or its `bin` subdirectory). Default: buildPeers('argocd'). */
  binDir?: string;
  /** Start argocd-notifications too (default true). */
  notifications?: boolean;
  /**
   * Start argocd-applicationset-controller too (default false), with progressive syncs (RollingSync) on and Git
   * generators polling every 5 s instead of 3 minutes, so a regenerated Application shows within a test.
   */
  applicationSets?: boolean;
}

const execFileAsync = promisify(execFile);
const NAMESPACE = 'argocd';
const FIELD_MANAGER = 'keptn-gitops-e2e';
const PART_OF = { 'app.kubernetes.io/part-of': 'argocd' };

export async function startArgoCD(opts: StartArgoCDOptions): Promise<ArgoCD> {
  const cacheDir = opts.binDir ?? (await buildPeers('argocd'));
  const binDir = (await exists(join(cacheDir, 'bin', 'argocd'))) ? join(cacheDir, 'bin') : cacheDir;
  const argocd = join(binDir, 'argocd');
  const crdDir = join(dirname(binDir), 'crds');
  const verifyWrapper = join(dirname(binDir), 'hack', 'git-verify-wrapper.sh');
  await access(argocd);
  await access(verifyWrapper);

  const kc = new k8s.KubeConfig();
  kc.loadFromFile(opts.kubeconfigPath);
  await installClusterObjects(kc, crdDir);

  const work = opts.workDir;
  const dirs = {
    redis: join(work, 'redis'),
    tmp: join(work, 'tmp'),
    home: join(work, 'home'),
    tls: join(work, 'tls'),
    ssh: join(work, 'ssh'),
    gnupg: join(work, 'gnupg'),
    gpgData: join(work, 'gpg-data'),
    plugins: join(work, 'plugins'),
    appConf: join(work, 'app-config'),
    bin: join(work, 'bin'),
  };
  // Stale clones of an earlier run. Argo CD chmods idle repo clones to 0000, so make them removable first.
  await execFileAsync('chmod', ['-R', 'u+rwx', dirs.tmp]).catch(() => undefined);
  await rm(dirs.tmp, { recursive: true, force: true });
  for (const d of Object.values(dirs)) await mkdir(d, { recursive: true, mode: 0o700 });
  // Argo CD 3.5's repo-server calls `git-verify-wrapper.sh <rev>` (from PATH) on every manifest generation, even with
  // ARGOCD_GPG_ENABLED=false, and fails with "permission denied" without it. Run upstream's script (a build asset;
  // module files are not executable) through sh.
  await writeFile(join(dirs.bin, 'git-verify-wrapper.sh'), `#!/bin/sh\nexec /bin/sh '${verifyWrapper}' "$@"\n`);
  await chmod(join(dirs.bin, 'git-verify-wrapper.sh'), 0o755);
  // Kustomize-type sources need the kustomize CLI on the repo-server's PATH, as in Argo CD's own image.
  const kustomizeBin = join(await buildPeers('kustomize'), 'bin');

  // A unix socket path must stay under 108 bytes; fall back to a short private path for deep work dirs.
  let askPassSocket = join(work, 'askpass.sock');
  if (Buffer.byteLength(askPassSocket) > 100) {
    askPassSocket = join(await mkdtemp(join(tmpdir(), 'argocd-')), 'askpass.sock');
  }

  const peers: PeerProcess[] = [];
  const stop = async (): Promise<void> => {
    // Reverse start order: controllers first, redis last.
    for (const p of [...peers].reverse()) await p.stop();
  };

  try {
    // --- redis (cache shared by repo-server and controller) ---
    const redisPort = await freePort();
    const redis = await spawnPeer({
      name: 'argocd-redis',
      command: '/usr/bin/redis-server',
      args: [
        '--bind',
        '127.0.0.1',
        '--port',
        String(redisPort),
        '--save',
        '',
        '--appendonly',
        'no',
        '--dir',
        dirs.redis,
        '--protected-mode',
        'yes',
        '--loglevel',
        'warning',
      ],
      logDir: opts.logDir,
    });
    peers.push(redis);
    await waitUntil('argocd redis PING', () => redisPing(redisPort), { timeoutMs: 20_000, peer: redis });
    const redisAddr = `127.0.0.1:${redisPort}`;

    // Environment shared by the Argo CD components.
    const common: Record<string, string> = {
      KUBECONFIG: opts.kubeconfigPath,
      ARGOCD_FAKE_IN_CLUSTER: 'true', // https://kubernetes.default.svc => $KUBECONFIG
      ARGOCD_APP_CONF_PATH: dirs.appConf,
      ARGOCD_GPG_ENABLED: 'false',
      TMPDIR: dirs.tmp,
    };

    // --- repo-server (plaintext gRPC; 8081 is the Keptn distributor's, so a free port) ---
    const repoPort = await freePort();
    const repoMetricsPort = await freePort();
    const repoServer = await spawnPeer({
      name: 'argocd-repo-server',
      command: argocd,
      args: [
        '--address',
        '127.0.0.1',
        '--port',
        String(repoPort),
        '--metrics-address',
        '127.0.0.1',
        '--metrics-port',
        String(repoMetricsPort),
        '--redis',
        redisAddr,
        '--disable-tls',
        '--client-ca-path',
        '', // default /app/config/... conflicts with --disable-tls
        '--logformat',
        'text',
        '--loglevel',
        'info',
      ],
      env: {
        ...common,
        ARGOCD_BINARY_NAME: 'argocd-repo-server',
        // git must be on PATH; `argocd` too, as git's askpass helper for HTTPS credentials; and git-verify-wrapper.sh.
        PATH: `${dirs.bin}:${binDir}:${kustomizeBin}:${process.env.PATH ?? '/usr/bin:/bin'}`,
        HOME: dirs.home, // keep the user's ~/.gitconfig out
        ARGOCD_TLS_DATA_PATH: dirs.tls,
        ARGOCD_SSH_DATA_PATH: dirs.ssh,
        ARGOCD_GNUPGHOME: dirs.gnupg,
        ARGOCD_GPG_DATA_PATH: dirs.gpgData,
        ARGOCD_PLUGINSOCKFILEPATH: dirs.plugins,
        ARGOCD_ASK_PASS_SOCK: askPassSocket, // default /tmp/reposerver-ask-pass.sock would be shared
      },
      logDir: opts.logDir,
    });
    peers.push(repoServer);
    await waitUntil('argocd-repo-server /healthz?full=true', () => httpOk(`http://127.0.0.1:${repoMetricsPort}/healthz?full=true`), {
      timeoutMs: 60_000,
      peer: repoServer,
    });
    const repoAddr = `127.0.0.1:${repoPort}`;

    // --- application-controller ---
    const controllerMetricsPort = await freePort();
    const controller = await spawnPeer({
      name: 'argocd-application-controller',
      command: argocd,
      args: [
        '--namespace',
        NAMESPACE,
        '--redis',
        redisAddr,
        '--repo-server',
        repoAddr,
        '--repo-server-plaintext',
        '--metrics-port',
        String(controllerMetricsPort),
        '--status-processors',
        '4',
        '--operation-processors',
        '4',
        '--logformat',
        'text',
        '--loglevel',
        'info',
      ],
      env: { ...common, ARGOCD_BINARY_NAME: 'argocd-application-controller', ARGOCD_CONTROLLER_REPLICAS: '1' },
      logDir: opts.logDir,
    });
    peers.push(controller);
    await waitUntil('argocd-application-controller /healthz', () => httpOk(`http://127.0.0.1:${controllerMetricsPort}/healthz`), {
      timeoutMs: 60_000,
      peer: controller,
    });

    // --- notifications (optional; reads argocd-notifications-cm / -secret, which tests may fill in) ---
    if (opts.notifications ?? true) {
      const notifMetricsPort = await freePort();
      const notifications = await spawnPeer({
        name: 'argocd-notifications',
        command: argocd,
        args: [
          '--namespace',
          NAMESPACE,
          '--argocd-repo-server',
          repoAddr,
          '--argocd-repo-server-plaintext',
          '--metrics-port',
          String(notifMetricsPort),
          '--logformat',
          'text',
          '--loglevel',
          'info',
        ],
        env: { ...common, ARGOCD_BINARY_NAME: 'argocd-notifications' },
        logDir: opts.logDir,
      });
      peers.push(notifications);
      await waitUntil('argocd-notifications /metrics', () => httpOk(`http://127.0.0.1:${notifMetricsPort}/metrics`), {
        timeoutMs: 60_000,
        peer: notifications,
      });
    }

    if (opts.applicationSets) {
      const [metrics, probe, webhook] = [await freePort(), await freePort(), await freePort()];
      const appSets = await spawnPeer({
        name: 'argocd-applicationset-controller',
        command: argocd,
        args: [
          '--namespace',
          NAMESPACE,
          '--argocd-repo-server',
          repoAddr,
          '--repo-server-plaintext',
          '--enable-progressive-syncs',
          '--metrics-addr',
          `127.0.0.1:${metrics}`,
          '--probe-addr',
          `127.0.0.1:${probe}`,
          '--webhook-addr',
          `127.0.0.1:${webhook}`,
          '--logformat',
          'text',
          '--loglevel',
          'info',
        ],
        env: { ...common, ARGOCD_BINARY_NAME: 'argocd-applicationset-controller', ARGOCD_APPLICATIONSET_CONTROLLER_REQUEUE_AFTER: '5s' },
        logDir: opts.logDir,
      });
      peers.push(appSets);
      // It registers no health checks on its probe port (cmd/argocd-applicationset-controller): its metrics serve once
      // the manager runs.
      await waitUntil('argocd-applicationset-controller /metrics', () => httpOk(`http://127.0.0.1:${metrics}/metrics`), {
        timeoutMs: 60_000,
        peer: appSets,
      });
    }
  } catch (err) {
    await stop();
    throw err;
  }

  return { namespace: NAMESPACE, stop, peers };
}

/** CRDs, namespace, settings ConfigMaps/Secrets and the `default` AppProject (normally made by argocd-server). */
async function installClusterObjects(kc: k8s.KubeConfig, crdDir: string): Promise<void> {
  const objects = k8s.KubernetesObjectApi.makeApiClient(kc);
  const apply = (obj: k8s.KubernetesObject) =>
    objects.patch(obj, undefined, undefined, FIELD_MANAGER, true, k8s.PatchStrategy.ServerSideApply);

  const crdNames: string[] = [];
  for (const file of (await readdir(crdDir)).filter((f) => f.endsWith('-crd.yaml')).sort()) {
    // loadAllYaml gives client-node's typed model; plain parsed YAML would lose every x-kubernetes-* key on the way.
    for (const doc of k8s.loadAllYaml(await readFile(join(crdDir, file), 'utf8'))) {
      const crd = doc as k8s.V1CustomResourceDefinition | null;
      if (!crd?.metadata?.name) continue;
      await apply(crd);
      crdNames.push(crd.metadata.name);
    }
  }
  const ext = kc.makeApiClient(k8s.ApiextensionsV1Api);
  for (const name of crdNames) {
    await waitUntil(
      `CRD ${name} established`,
      async () => {
        const crd = await ext.readCustomResourceDefinition({ name });
        return crd.status?.conditions?.some((c) => c.type === 'Established' && c.status === 'True');
      },
      { timeoutMs: 30_000 },
    );
  }

  await apply({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: NAMESPACE } });
  const cm = (name: string, data: Record<string, string>) =>
    apply({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name, namespace: NAMESPACE, labels: PART_OF }, data } as k8s.KubernetesObject);
  // Upstream defaults throughout (Git polled every 120 s + up to 60 s jitter; annotation resource tracking): the
  // service under test asks for refreshes itself. Tests may patch these ConfigMaps.
  await cm('argocd-cm', {});
  await cm('argocd-rbac-cm', {});
  await cm('argocd-cmd-params-cm', {});
  await cm('argocd-notifications-cm', {});
  await cm('argocd-gpg-keys-cm', {});
  await cm('argocd-ssh-known-hosts-cm', {});
  await cm('argocd-tls-certs-cm', {});

  let secretKey = randomBytes(32).toString('base64');
  try {
    // keep an existing key across restarts against the same API server
    const existing = (await objects.read({
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: { name: 'argocd-secret', namespace: NAMESPACE },
    })) as k8s.V1Secret;
    const key = existing.data?.['server.secretkey'];
    if (key) secretKey = Buffer.from(key, 'base64').toString();
  } catch {
    /* not there yet */
  }
  await apply({
    apiVersion: 'v1',
    kind: 'Secret',
    type: 'Opaque',
    metadata: { name: 'argocd-secret', namespace: NAMESPACE, labels: PART_OF },
    stringData: { 'server.secretkey': secretKey },
  } as k8s.KubernetesObject);
  await apply({
    apiVersion: 'v1',
    kind: 'Secret',
    type: 'Opaque',
    metadata: { name: 'argocd-notifications-secret', namespace: NAMESPACE, labels: PART_OF },
  } as k8s.KubernetesObject);

  await apply({
    apiVersion: 'argoproj.io/v1alpha1',
    kind: 'AppProject',
    metadata: { name: 'default', namespace: NAMESPACE },
    spec: {
      sourceRepos: ['*'],
      destinations: [{ server: '*', namespace: '*' }],
      clusterResourceWhitelist: [{ group: '*', kind: '*' }],
    },
  } as k8s.KubernetesObject);
}

async function exists(path: string): Promise<boolean> {
  return access(path).then(
    () => true,
    () => false,
  );
}

async function httpOk(url: string): Promise<boolean> {
  const res = await fetch(url, { signal: AbortSignal.timeout(5_000) });
  await res.arrayBuffer();
  if (!res.ok) throw new Error(`${url}: HTTP ${res.status}`);
  return true;
}

function redisPing(port: number): Promise<boolean> {
  return new Promise((resolve, reject) => {
    const socket = createConnection({ host: '127.0.0.1', port });
    let reply = '';
    socket.setTimeout(2_000, () => socket.destroy(new Error('redis PING timed out')));
    socket.once('error', reject);
    socket.once('connect', () => socket.write('PING\r\n'));
    socket.on('data', (chunk) => {
      reply += chunk.toString();
      if (reply.includes('\r\n')) {
        socket.end();
        if (reply.startsWith('+PONG')) resolve(true);
        else reject(new Error(`redis replied ${reply.trim()}`));
      }
    });
  });
}
