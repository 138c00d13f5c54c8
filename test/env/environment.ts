// The whole real test environment in one place: Kubernetes (etcd, kube-apiserver, controller-manager, scheduler,
// kwok), Flux and/or Argo CD, a Git server over HTTP with authentication, NATS, the Keptn distributor wired to the
// service under test, and a stand-in resource-service behind the distributor's API proxy.
import { mkdir, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { loadConfig } from '../../src/config.js';
import { startService } from '../../src/main.js';
import { startArgoCD, type ArgoCD } from './argocd.js';
import { installChartIdentity, secretServiceFor, type ChartIdentity, type ChartIdentityOptions } from './chart-rbac.js';
import { TestCluster } from './cluster.js';
import { startFlagger, type Flagger } from './flagger.js';
import { startFlux, type Flux } from './flux.js';
import { startGitServer, type GitServer } from './gitserver.js';
import { setupHelm } from './helm.js';
import {
  connectControlPlane,
  resourceServiceLoopbackUrl,
  startDistributor,
  startNats,
  type ControlPlane,
  type Distributor,
  type Nats,
} from './keptn.js';
import { startKube, type Kube } from './kube.js';
import { insideLimit, type MemoryLimit } from './memory-limit.js';
import { freePort, spawnPeer, waitUntil, type PeerProcess } from './process.js';
import { dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startResourceService, type ResourceService } from './resourceservice.js';
import { startRollouts, type Rollouts } from './rollouts.js';

/** The `.triggered` events the service answers: the chart's `distributor.topics`. */
export const SERVICE_TOPICS = [
  'sh.keptn.event.deployment.triggered',
  'sh.keptn.event.rollback.triggered',
  'sh.keptn.event.release.triggered',
];

export interface EnvironmentOptions {
  flux?: boolean;
  /** kustomize-controller's `--concurrent` (its default is 4 workers); the benchmark's burst of 200 apps needs more. */
  fluxWorkers?: number;
  argocd?: boolean;
  /** With argocd: the applicationset controller too (see StartArgoCDOptions.applicationSets). */
  argocdApplicationSets?: boolean;
  /** The Argo Rollouts controller (built on first use: about 3 minutes cold on 2 cores). */
  rollouts?: boolean;
  /** The Flagger controller, Kubernetes provider (built on first use: about 2.5 minutes cold on 2 cores). */
  flagger?: boolean;
  /** Default: a fresh directory under the OS temp dir. Logs go to `<workDir>/logs`. */
  workDir?: string;
  /** Service settings from the environment, e.g. DEFAULT_TIMEOUT. */
  serviceEnv?: Record<string, string>;
  /** false: no service and no distributor; the test starts its own with startServiceProcess. */
  service?: boolean;
  /**
   * The service (in-process and startServiceProcess) runs as the chart's ServiceAccount, never as admin: the chart's
   * RBAC rendered with helm for these values and installed, a TokenRequest token, and the chart's STATE_NAMESPACE
   * and SECRET_NAMESPACE, so every test proves the chart's permissions suffice. Default: release `gitops-service` in
   * `keptn` with the chart's default values (Keptn's `keptn-default` secret scope). `false`: admin (tests of the
   * test environment itself).
   */
  chartIdentity?: ChartIdentityOptions | false;
}

export interface Environment {
  workDir: string;
  logDir: string;
  kube: Kube;
  cluster: TestCluster;
  git: GitServer;
  flux?: Flux;
  argocd?: ArgoCD;
  rollouts?: Rollouts;
  flagger?: Flagger;
  nats: Nats;
  distributor?: Distributor;
  resources: ResourceService;
  controlPlane: ControlPlane;
  /** Set with the chartIdentity option: the credentials and namespaces the service runs with. */
  identity?: ChartIdentity;
  /** `port` takes events on 127.0.0.1 only; `healthPort` answers the probes on every interface. */
  service?: { port: number; healthPort: number; close(): Promise<void> };
  stop(): Promise<void>;
}

/** What a service needs to talk to the environment, as the environment variables of its process. */
export function serviceEnvironment(
  env: Pick<Environment, 'workDir' | 'kube' | 'identity'>,
  port: number,
  eventUrl: string,
  apiUrl: string,
  extra: Record<string, string> = {},
): Record<string, string> {
  return {
    HOST: '127.0.0.1',
    PORT: String(port),
    KEPTN_EVENT_URL: eventUrl,
    KEPTN_RESOURCE_SERVICE_URL: `${apiUrl}/resource-service`,
    GITOPS_WORK_DIR: join(env.workDir, `service-git-${port}`),
    KUBECONFIG: env.identity?.kubeconfigPath ?? env.kube.kubeconfigPath,
    SECRET_NAMESPACE: env.identity?.secretNamespace ?? 'keptn',
    STATE_NAMESPACE: stateNamespace(env),
    ...(env.identity?.watchNamespaces ? { WATCH_NAMESPACES: env.identity.watchNamespaces } : {}),
    LOG_LEVEL: 'debug',
    // The Git and SSH servers of the environment listen on loopback, which the service refuses unless allowed (the
    // chart's git.allowedHosts sets the same variable).
    ALLOWED_GIT_HOSTS: '127.0.0.1',
    ...extra,
  };
}

/** Where the service under test keeps its records and Leases: the chart's state namespace (ADR 17). */
export function stateNamespace(env: Pick<Environment, 'identity'>): string {
  return env.identity?.stateNamespace ?? 'keptn';
}

/** The chart as the README installs it: in Keptn's namespace, default values. */
const DEFAULT_IDENTITY: ChartIdentityOptions = { release: 'gitops-service', namespace: 'keptn' };

export async function startEnvironment(opts: EnvironmentOptions = {}): Promise<Environment> {
  const workDir = opts.workDir ?? join(tmpdir(), `keptn-gitops-env-${process.pid}-${Date.now()}`);
  const logDir = join(workDir, 'logs');
  await mkdir(logDir, { recursive: true });
  const stops: Array<() => Promise<void>> = [];
  const stop = async () => {
    for (const s of stops.splice(0).reverse()) await s().catch(() => undefined);
    // Keep the logs for whoever debugs a run; the data (etcd, repositories, clones) is only ballast afterwards.
    for (const entry of await readdir(workDir).catch(() => [])) {
      if (entry !== 'logs') await rm(join(workDir, entry), { recursive: true, force: true }).catch(() => undefined);
    }
  };
  try {
    const kube = await startKube({ workDir: join(workDir, 'kube'), logDir });
    stops.push(() => kube.stop());
    const cluster = TestCluster.fromFile(kube.kubeconfigPath);
    const git = await startGitServer({ root: join(workDir, 'git') });
    stops.push(() => git.close());

    const [flux, argocd] = await Promise.all([
      opts.flux
        ? startFlux({
            kubeconfigPath: kube.kubeconfigPath,
            workDir: join(workDir, 'flux'),
            logDir,
            ...(opts.fluxWorkers ? { kustomizeWorkers: opts.fluxWorkers } : {}),
          })
        : undefined,
      opts.argocd
        ? startArgoCD({
            kubeconfigPath: kube.kubeconfigPath,
            workDir: join(workDir, 'argocd'),
            logDir,
            ...(opts.argocdApplicationSets ? { applicationSets: true } : {}),
          })
        : undefined,
    ]);
    if (flux) stops.push(() => flux.stop());
    if (argocd) stops.push(() => argocd.stop());
    const rollouts = opts.rollouts
      ? await startRollouts({ kubeconfigPath: kube.kubeconfigPath, workDir: join(workDir, 'rollouts'), logDir })
      : undefined;
    if (rollouts) stops.push(() => rollouts.stop());
    const flagger = opts.flagger
      ? await startFlagger({ kubeconfigPath: kube.kubeconfigPath, workDir: join(workDir, 'flagger'), logDir })
      : undefined;
    if (flagger) stops.push(() => flagger.stop());

    const nats = await startNats({ workDir: join(workDir, 'nats'), logDir });
    stops.push(() => nats.stop());
    const resources = await startResourceService(await resourceServiceLoopbackUrl());
    stops.push(() => resources.close());

    await cluster.apply([{ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'keptn' } }]);
    const controlPlane = await connectControlPlane(nats.url);
    stops.push(() => controlPlane.close());
    const identity =
      opts.chartIdentity === false
        ? undefined
        : await installChartIdentity(cluster, await setupHelm(workDir), workDir, opts.chartIdentity ?? DEFAULT_IDENTITY);
    if (identity) cluster.afterApply = secretServiceFor(cluster, identity);
    const base = {
      workDir,
      logDir,
      kube,
      cluster,
      git,
      ...(flux ? { flux } : {}),
      ...(argocd ? { argocd } : {}),
      ...(rollouts ? { rollouts } : {}),
      ...(flagger ? { flagger } : {}),
      nats,
      resources,
      controlPlane,
      ...(identity ? { identity } : {}),
      stop,
    };
    if (opts.service === false) return base;

    const servicePort = await freePort();
    const healthPort = await freePort();
    const distributor = await startDistributor({
      natsUrl: nats.url,
      recipientPort: servicePort,
      topics: SERVICE_TOPICS,
      resourceServiceUrl: resources.url,
      logDir,
    });
    stops.push(() => distributor.stop());
    const config = loadConfig(
      serviceEnvironment(base, servicePort, distributor.eventUrl, distributor.apiUrl, {
        REPLICA_ID: 'in-process',
        HEALTH_PORT: String(healthPort),
        ...opts.serviceEnv,
      }),
    );
    const service = await startService(config, pino.destination({ dest: join(logDir, 'service.log'), sync: true }));
    stops.push(() => service.close());
    return { ...base, distributor, service: { port: servicePort, healthPort, close: () => service.close() } };
  } catch (err: unknown) {
    await stop();
    throw err;
  }
}

export interface ServiceReplica {
  replicaId: string;
  port: number;
  /** The probe port (HEALTH_PORT), on every interface. */
  healthPort: number;
  apiProxyPort: number;
  process: PeerProcess;
  distributor: Distributor;
  /** Starts the service process again, same identity and port (after a crash). */
  restart(): Promise<void>;
  /** Starts the distributor again on the same ports (after an outage). */
  restartDistributor(): Promise<void>;
  stop(): Promise<void>;
}

/**
 * The service as its own process (`npm start`'s entry point), with its own distributor in a NATS queue group, as a
 * replica runs in a pod: for tests that crash it, restart it, or run several.
 */
export async function startServiceProcess(
  env: Environment,
  opts: {
    replicaId: string;
    extraEnv?: Record<string, string>;
    /**
     * Run the built service (`node dist/src/main.js`, as the image does; `npm run build` first) instead of the
     * sources through tsx, whose compiler would live in the process and count in its memory.
     */
    built?: boolean;
    /** Flags for node itself (e.g. `--cpu-prof`), which NODE_OPTIONS does not allow. */
    nodeArgs?: string[];
    /** Run inside this memory limit, as the pod's `resources.limits.memory` does (memory-limit.ts). */
    memoryLimit?: MemoryLimit;
  },
): Promise<ServiceReplica> {
  const port = await freePort();
  const healthPort = await freePort();
  const apiProxyPort = await freePort();
  const apiUrl = `http://127.0.0.1:${apiProxyPort}`;
  const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
  // node itself with tsx as a loader, not the tsx CLI: the CLI runs node as a child that a SIGKILL would orphan.
  const nodeArgs = [
    ...(opts.nodeArgs ?? []),
    ...(opts.built ? [join(root, 'dist', 'src', 'main.js')] : ['--import', 'tsx', join(root, 'src', 'main.ts')]),
  ];
  const [command, args] = opts.memoryLimit ? insideLimit(opts.memoryLimit, process.execPath, nodeArgs) : [process.execPath, nodeArgs];
  const spawnService = async () => {
    const child = await spawnPeer({
      name: `service-${opts.replicaId}`,
      command,
      args,
      cwd: root,
      env: serviceEnvironment(env, port, `${apiUrl}/event`, apiUrl, {
        REPLICA_ID: opts.replicaId,
        HEALTH_PORT: String(healthPort),
        ...opts.extraEnv,
      }),
      logDir: env.logDir,
    });
    await waitUntil(`service ${opts.replicaId} healthy`, async () => (await fetch(`http://127.0.0.1:${port}/health`)).ok, {
      timeoutMs: 30_000,
      peer: child,
    });
    return child;
  };
  const spawnDistributor = () =>
    startDistributor({
      natsUrl: env.nats.url,
      recipientPort: port,
      topics: SERVICE_TOPICS,
      resourceServiceUrl: env.resources.url,
      logDir: env.logDir,
      name: `distributor-${opts.replicaId}`,
      apiProxyPort,
      // Replicas share the events, as the chart's distributors do.
      env: { PUBSUB_GROUP: 'gitops-service' },
    });
  const replica: ServiceReplica = {
    replicaId: opts.replicaId,
    port,
    healthPort,
    apiProxyPort,
    process: await spawnService(),
    distributor: await spawnDistributor(),
    async restart() {
      await replica.process.kill();
      replica.process = await spawnService();
    },
    async restartDistributor() {
      await replica.distributor.stop();
      replica.distributor = await spawnDistributor();
    },
    async stop() {
      await replica.distributor.stop();
      await replica.process.stop();
    },
  };
  return replica;
}
