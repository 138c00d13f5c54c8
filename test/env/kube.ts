// A real Kubernetes control plane as local processes: etcd, kube-apiserver, kube-controller-manager, kube-scheduler
// and kwok playing the kubelet of one fake Node. Binaries come from test/env/peers/build.sh kube (etcd 3.6.16,
// Kubernetes v1.36.4, kwok v0.8.0); kwok's node/pod stages are copied by the same build into `<cache>/stages`.
//
// PKI is made fresh per start with openssl (a CA, the API server's serving cert for 127.0.0.1/localhost and an admin
// client cert in system:masters) plus a service-account key pair from node:crypto. The admin kubeconfig, written to
// `<workDir>/kubeconfig`, is what every controller and every test uses. Everything binds 127.0.0.1 on free ports.
import { execFile } from 'node:child_process';
import { generateKeyPair } from 'node:crypto';
import { access, mkdir, rm, writeFile, readFile } from 'node:fs/promises';
import { request } from 'node:https';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';
import * as k8s from '@kubernetes/client-node';
import { buildPeers, freePort, spawnPeer, waitUntil, type PeerProcess } from './process.js';

const execFileAsync = promisify(execFile);

export interface Kube {
  /** Admin kubeconfig (client cert in system:masters), usable by client-node, controllers and kubectl. */
  kubeconfigPath: string;
  /** https://127.0.0.1:<port> */
  server: string;
  /** Stops kwok, scheduler and controller-manager, then the API server, then etcd. Idempotent. */
  stop(): Promise<void>;
  peers: PeerProcess[];
  /** Stops kube-apiserver, waits `downMs` (an outage), starts it again on the same port and etcd. */
  restartApiServer(downMs?: number): Promise<void>;
}

export interface StartKubeOptions {
  /** Cache directory printed by `build.sh kube` (or its `bin` subdirectory). Default: buildPeers('kube'). */
  binDir?: string;
  /** Scratch directory: PKI, kubeconfig, etcd data (wiped at start), kwok work dir. */
  workDir: string;
  logDir: string;
  /** Name of the fake Node kwok manages (default kwok-node-0). */
  nodeName?: string;
}

export const KUBE_VERSION = 'v1.36.4';
const SERVICE_CIDR = '10.96.0.0/16';
const POD_CIDR = '10.244.0.0/16';
const SA_ISSUER = 'https://kubernetes.default.svc.cluster.local';

/**
 * Pods the one kwok node takes. A real node's default is 110 (the kubelet's --max-pods); kwok runs no containers, so
 * the fake node offers room for the benchmark's burst of 200 sample apps (bench/run.ts) besides the tests' own.
 */
export const NODE_PODS = 512;

/** The kwok stages: node initialisation + lease heartbeat, pods ready/complete/delete (kwok's "fast" set). */
const STAGE_FILES = [
  'node/fast/node-initialize.yaml',
  'node/heartbeat-with-lease/node-heartbeat-with-lease.yaml',
  'pod/fast/pod-ready.yaml',
  'pod/fast/pod-complete.yaml',
  'pod/fast/pod-delete.yaml',
];

async function exists(path: string): Promise<boolean> {
  return access(path).then(
    () => true,
    () => false,
  );
}

/** Resolves the build's cache directory (holding bin/ and stages/) from what the caller passed. */
async function resolveCacheDir(binDir: string | undefined): Promise<string> {
  const dir = binDir ?? (await buildPeers('kube'));
  if (await exists(join(dir, 'bin', 'kube-apiserver'))) return dir;
  if (await exists(join(dir, 'kube-apiserver'))) return dirname(dir);
  throw new Error(`no kube-apiserver under ${dir} (expected the cache dir of build.sh kube or its bin/)`);
}

interface Pki {
  dir: string;
  caCrt: string;
  serverCrt: string;
  serverKey: string;
  adminCrt: string;
  adminKey: string;
  saKey: string;
  saPub: string;
}

async function openssl(cwd: string, ...args: string[]): Promise<void> {
  await execFileAsync('openssl', args, { cwd });
}

/** Generates the CA, serving and admin certs (EC P-256, openssl) and the service-account key pair (node:crypto). */
async function makePki(dir: string): Promise<Pki> {
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes'];
  const saKeys = promisify(generateKeyPair)('rsa', {
    modulusLength: 2048,
    publicKeyEncoding: { type: 'spki', format: 'pem' },
    privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
  });
  await openssl(dir, 'req', '-x509', ...ec, '-keyout', 'ca.key', '-out', 'ca.crt', '-days', '3650', '-subj', '/CN=keptn-gitops-test-ca');
  await writeFile(
    join(dir, 'server.ext'),
    [
      'subjectAltName=IP:127.0.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,' +
        'DNS:kubernetes.default.svc.cluster.local',
      'extendedKeyUsage=serverAuth',
      'keyUsage=critical,digitalSignature,keyEncipherment',
      '',
    ].join('\n'),
  );
  await writeFile(join(dir, 'client.ext'), 'extendedKeyUsage=clientAuth\nkeyUsage=critical,digitalSignature,keyEncipherment\n');
  const leaf = async (name: string, subject: string, ext: string): Promise<void> => {
    await openssl(dir, 'req', ...ec, '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', subject);
    await openssl(
      dir,
      'x509',
      '-req',
      '-in',
      `${name}.csr`,
      '-CA',
      'ca.crt',
      '-CAkey',
      'ca.key',
      '-set_serial',
      String(Date.now()) + String(Math.floor(Math.random() * 1000)),
      '-days',
      '3650',
      '-extfile',
      ext,
      '-out',
      `${name}.crt`,
    );
  };
  await Promise.all([leaf('server', '/CN=kube-apiserver', 'server.ext'), leaf('admin', '/O=system:masters/CN=kube-admin', 'client.ext')]);
  const { publicKey, privateKey } = await saKeys;
  await writeFile(join(dir, 'sa.key'), privateKey, { mode: 0o600 });
  await writeFile(join(dir, 'sa.pub'), publicKey);
  const p = (f: string): string => join(dir, f);
  return {
    dir,
    caCrt: p('ca.crt'),
    serverCrt: p('server.crt'),
    serverKey: p('server.key'),
    adminCrt: p('admin.crt'),
    adminKey: p('admin.key'),
    saKey: p('sa.key'),
    saPub: p('sa.pub'),
  };
}

async function writeKubeconfig(path: string, server: string, pki: Pki): Promise<void> {
  const b64 = async (f: string): Promise<string> => (await readFile(f)).toString('base64');
  const kubeconfig = {
    apiVersion: 'v1',
    kind: 'Config',
    clusters: [{ name: 'test', cluster: { server, 'certificate-authority-data': await b64(pki.caCrt) } }],
    users: [
      {
        name: 'admin',
        user: {
          'client-certificate-data': await b64(pki.adminCrt),
          'client-key-data': await b64(pki.adminKey),
        },
      },
    ],
    contexts: [{ name: 'test', context: { cluster: 'test', user: 'admin', namespace: 'default' } }],
    'current-context': 'test',
  };
  // JSON is valid YAML: every kubeconfig reader accepts it.
  await writeFile(path, JSON.stringify(kubeconfig, null, 2) + '\n', { mode: 0o600 });
}

/** GET over HTTPS with the test CA (and optionally the admin client cert); resolves to status code and body. */
function httpsGet(url: string, tls: { ca: Buffer; cert?: Buffer; key?: Buffer }): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method: 'GET', ...tls, timeout: 5_000 }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`timeout GET ${url}`)));
    req.on('error', reject);
    req.end();
  });
}

async function httpGet(url: string): Promise<{ status: number; body: string }> {
  const res = await fetch(url, { signal: AbortSignal.timeout(5_000) });
  return { status: res.status, body: await res.text() };
}

export async function startKube(opts: StartKubeOptions): Promise<Kube> {
  const cacheDir = await resolveCacheDir(opts.binDir);
  const bin = (name: string): string => join(cacheDir, 'bin', name);
  const stagesDir = join(cacheDir, 'stages');
  const nodeName = opts.nodeName ?? 'kwok-node-0';

  const work = opts.workDir;
  const etcdDir = join(work, 'etcd');
  const kwokDir = join(work, 'kwok');
  await rm(etcdDir, { recursive: true, force: true }); // every start is a fresh cluster
  await mkdir(work, { recursive: true });
  await mkdir(kwokDir, { recursive: true });
  const pki = await makePki(join(work, 'pki'));
  const tls = {
    ca: await readFile(pki.caCrt),
    cert: await readFile(pki.adminCrt),
    key: await readFile(pki.adminKey),
  };

  const peers: PeerProcess[] = [];
  let stopping: Promise<void> | undefined;
  const stop = (): Promise<void> => {
    stopping ??= (async () => {
      // Reverse start order; the three API clients (kwok, scheduler, controller-manager) in parallel.
      const clients = peers.filter((p) => !['etcd', 'kube-apiserver'].includes(p.name));
      await Promise.all(clients.map((p) => p.stop()));
      for (const name of ['kube-apiserver', 'etcd']) await peers.find((p) => p.name === name)?.stop();
    })();
    return stopping;
  };

  try {
    // --- etcd ---
    const etcdPort = await freePort();
    const etcdPeerPort = await freePort();
    const etcdUrl = `http://127.0.0.1:${etcdPort}`;
    const etcd = await spawnPeer({
      name: 'etcd',
      command: bin('etcd'),
      args: [
        '--name=kube-test',
        `--data-dir=${etcdDir}`,
        `--listen-client-urls=${etcdUrl}`,
        `--advertise-client-urls=${etcdUrl}`,
        `--listen-peer-urls=http://127.0.0.1:${etcdPeerPort}`,
        `--initial-advertise-peer-urls=http://127.0.0.1:${etcdPeerPort}`,
        `--initial-cluster=kube-test=http://127.0.0.1:${etcdPeerPort}`,
        '--unsafe-no-fsync',
        '--log-level=warn',
      ],
      logDir: opts.logDir,
    });
    peers.push(etcd);
    await waitUntil(
      'etcd /health',
      async () => {
        const res = await httpGet(`${etcdUrl}/health`);
        return res.status === 200 && (JSON.parse(res.body) as { health?: string }).health === 'true';
      },
      { timeoutMs: 30_000, peer: etcd },
    );

    // --- kube-apiserver ---
    const apiPort = await freePort();
    const server = `https://127.0.0.1:${apiPort}`;
    const kubeconfigPath = join(work, 'kubeconfig');
    await writeKubeconfig(kubeconfigPath, server, pki);
    const spawnApiServer = async () => {
      const apiserver = await spawnPeer({
        name: 'kube-apiserver',
        command: bin('kube-apiserver'),
        args: [
          `--etcd-servers=${etcdUrl}`,
          '--bind-address=127.0.0.1',
          '--advertise-address=127.0.0.1',
          `--secure-port=${apiPort}`,
          `--tls-cert-file=${pki.serverCrt}`,
          `--tls-private-key-file=${pki.serverKey}`,
          `--client-ca-file=${pki.caCrt}`,
          `--cert-dir=${join(pki.dir, 'apiserver')}`,
          `--service-account-issuer=${SA_ISSUER}`,
          `--service-account-key-file=${pki.saPub}`,
          `--service-account-signing-key-file=${pki.saKey}`,
          `--service-cluster-ip-range=${SERVICE_CIDR}`,
          '--authorization-mode=RBAC',
          '--allow-privileged=true',
          '--enable-priority-and-fairness=false',
          '--profiling=false',
          '--endpoint-reconciler-type=none',
          '--v=1',
        ],
        logDir: opts.logDir,
      });
      await waitUntil(
        'kube-apiserver /readyz',
        async () => {
          const res = await httpsGet(`${server}/readyz`, tls);
          return res.status === 200;
        },
        { timeoutMs: 90_000, peer: apiserver },
      );
      return apiserver;
    };
    peers.push(await spawnApiServer());
    /** Stops the API server (watches break, requests fail) and starts it again on the same port and data. */
    const restartApiServer = async (downMs = 0) => {
      const index = peers.findIndex((p) => p.name === 'kube-apiserver');
      await peers[index]!.stop();
      if (downMs) await new Promise((r) => setTimeout(r, downMs));
      peers[index] = await spawnApiServer();
    };

    // --- controller-manager, scheduler (serving /healthz on free ports with the test serving cert) and kwok ---
    const kcmPort = await freePort();
    const schedPort = await freePort();
    const servingFlags = (port: number): string[] => [
      '--bind-address=127.0.0.1',
      `--secure-port=${port}`,
      `--tls-cert-file=${pki.serverCrt}`,
      `--tls-private-key-file=${pki.serverKey}`,
      `--authentication-kubeconfig=${kubeconfigPath}`,
      `--authorization-kubeconfig=${kubeconfigPath}`,
      // No front-proxy CA in this cluster: don't look up the requestheader CA (it would log errors forever).
      '--authentication-skip-lookup=true',
      `--client-ca-file=${pki.caCrt}`,
    ];
    const kcm = await spawnPeer({
      name: 'kube-controller-manager',
      command: bin('kube-controller-manager'),
      args: [
        `--kubeconfig=${kubeconfigPath}`,
        ...servingFlags(kcmPort),
        '--leader-elect=false',
        `--service-account-private-key-file=${pki.saKey}`,
        `--root-ca-file=${pki.caCrt}`,
        `--service-cluster-ip-range=${SERVICE_CIDR}`,
        `--cluster-cidr=${POD_CIDR}`,
        '--allocate-node-cidrs=false',
        '--use-service-account-credentials=false',
        // The kwok node's heartbeats go through kube-apiserver too, so a test that stops it for 60 s (faults.e2e) would
        // otherwise outlast the grace period (50 s by default): the node lifecycle controller then marks the node and
        // its Pods not ready when the server returns, and kustomize-controller checks the health of the revision it
        // runs for its whole spec.timeout before it takes our commit (seen in CI). Longer than any outage a test makes.
        '--node-monitor-grace-period=120s',
        '--profiling=false',
        '--v=1',
      ],
      logDir: opts.logDir,
    });
    peers.push(kcm);
    const scheduler = await spawnPeer({
      name: 'kube-scheduler',
      command: bin('kube-scheduler'),
      args: [`--kubeconfig=${kubeconfigPath}`, ...servingFlags(schedPort), '--leader-elect=false', '--profiling=false', '--v=1'],
      logDir: opts.logDir,
    });
    peers.push(scheduler);
    const kwok = await spawnPeer({
      name: 'kwok',
      command: bin('kwok'),
      args: [
        `--kubeconfig=${kubeconfigPath}`,
        ...STAGE_FILES.map((f) => `--config=${join(stagesDir, f)}`),
        '--manage-all-nodes=true',
        '--node-ip=127.0.0.1',
        `--cidr=${POD_CIDR}`,
        '--node-lease-duration-seconds=40',
      ],
      env: { KWOK_WORKDIR: kwokDir }, // keep ~/.kwok (and a stray ~/.kwok/kwok.yaml) out
      logDir: opts.logDir,
    });
    peers.push(kwok);

    const kc = new k8s.KubeConfig();
    kc.loadFromFile(kubeconfigPath);
    const core = kc.makeApiClient(k8s.CoreV1Api);
    await core.createNode({
      body: {
        apiVersion: 'v1',
        kind: 'Node',
        metadata: {
          name: nodeName,
          labels: {
            'kubernetes.io/hostname': nodeName,
            'kubernetes.io/os': 'linux',
            'kubernetes.io/arch': 'amd64',
            'node-role.kubernetes.io/agent': '',
            type: 'kwok',
          },
          annotations: { 'kwok.x-k8s.io/node': 'fake', 'node.alpha.kubernetes.io/ttl': '0' },
        },
        spec: {},
        status: {
          allocatable: { cpu: '32', memory: '256Gi', pods: String(NODE_PODS) },
          capacity: { cpu: '32', memory: '256Gi', pods: String(NODE_PODS) },
        },
      },
    });

    await Promise.all([
      waitUntil(
        'kube-controller-manager /healthz',
        async () => (await httpsGet(`https://127.0.0.1:${kcmPort}/healthz`, { ca: tls.ca })).status === 200,
        { timeoutMs: 60_000, peer: kcm },
      ),
      waitUntil(
        'kube-scheduler /healthz',
        async () => (await httpsGet(`https://127.0.0.1:${schedPort}/healthz`, { ca: tls.ca })).status === 200,
        { timeoutMs: 60_000, peer: scheduler },
      ),
      waitUntil(
        `Node ${nodeName} Ready without NoSchedule taints (kwok)`,
        async () => {
          const node = await core.readNode({ name: nodeName });
          const ready = node.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True');
          const blocked = node.spec?.taints?.some((t) => t.effect === 'NoSchedule' || t.effect === 'NoExecute');
          return ready === true && !blocked;
        },
        { timeoutMs: 60_000, peer: kwok },
      ),
      // The ServiceAccount admission plugin rejects pods until the controller-manager made `default`.
      waitUntil(
        'ServiceAccount default/default',
        async () => (await core.readNamespacedServiceAccount({ name: 'default', namespace: 'default' })).metadata?.name,
        { timeoutMs: 60_000, peer: kcm },
      ),
    ]);

    return { kubeconfigPath, server, stop, peers, restartApiServer };
  } catch (err) {
    await stop();
    throw err;
  }
}
