// The whole real test environment in one place: Kubernetes (etcd, kube-apiserver, controller-manager, scheduler,
// kwok), Flux and/or Argo CD, a Git server over HTTP with authentication, NATS, the Keptn distributor wired to the
// service under test, and a stand-in resource-service behind the distributor's API proxy.
import { mkdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { loadConfig } from '../../src/config.js';
import { startService } from '../../src/main.js';
import { startArgoCD, type ArgoCD } from './argocd.js';
import { TestCluster } from './cluster.js';
import { startFlux, type Flux } from './flux.js';
import { startGitServer, type GitServer } from './gitserver.js';
import { connectControlPlane, resourceServiceLoopbackUrl, startDistributor, startNats, type ControlPlane, type Distributor, type Nats } from './keptn.js';
import { startKube, type Kube } from './kube.js';
import { freePort } from './process.js';
import { startResourceService, type ResourceService } from './resourceservice.js';

export interface EnvironmentOptions {
  flux?: boolean;
  argocd?: boolean;
  /** Default: a fresh directory under the OS temp dir. Logs go to `<workDir>/logs`. */
  workDir?: string;
  /** Service settings from the environment, e.g. DEFAULT_TIMEOUT. */
  serviceEnv?: Record<string, string>;
}

export interface Environment {
  workDir: string;
  logDir: string;
  kube: Kube;
  cluster: TestCluster;
  git: GitServer;
  flux?: Flux;
  argocd?: ArgoCD;
  nats: Nats;
  distributor: Distributor;
  resources: ResourceService;
  controlPlane: ControlPlane;
  service: { port: number; close(): Promise<void> };
  stop(): Promise<void>;
}

export async function startEnvironment(opts: EnvironmentOptions = {}): Promise<Environment> {
  const workDir = opts.workDir ?? join(tmpdir(), `keptn-gitops-env-${process.pid}-${Date.now()}`);
  const logDir = join(workDir, 'logs');
  await mkdir(logDir, { recursive: true });
  const stops: Array<() => Promise<void>> = [];
  const stop = async () => {
    for (const s of stops.splice(0).reverse()) await s().catch(() => undefined);
  };
  try {
    const kube = await startKube({ workDir: join(workDir, 'kube'), logDir });
    stops.push(() => kube.stop());
    const cluster = TestCluster.fromFile(kube.kubeconfigPath);
    const git = await startGitServer({ root: join(workDir, 'git') });
    stops.push(() => git.close());

    const [flux, argocd] = await Promise.all([
      opts.flux ? startFlux({ kubeconfigPath: kube.kubeconfigPath, workDir: join(workDir, 'flux'), logDir }) : undefined,
      opts.argocd ? startArgoCD({ kubeconfigPath: kube.kubeconfigPath, workDir: join(workDir, 'argocd'), logDir }) : undefined,
    ]);
    if (flux) stops.push(() => flux.stop());
    if (argocd) stops.push(() => argocd.stop());

    const nats = await startNats({ workDir: join(workDir, 'nats'), logDir });
    stops.push(() => nats.stop());
    const resources = await startResourceService(await resourceServiceLoopbackUrl());
    stops.push(() => resources.close());

    const servicePort = await freePort();
    const distributor = await startDistributor({
      natsUrl: nats.url,
      recipientPort: servicePort,
      topics: ['sh.keptn.event.deployment.triggered'],
      resourceServiceUrl: resources.url,
      logDir,
    });
    stops.push(() => distributor.stop());
    await cluster.apply([{ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'keptn' } }]);

    const config = loadConfig({
      HOST: '127.0.0.1',
      PORT: String(servicePort),
      KEPTN_EVENT_URL: distributor.eventUrl,
      KEPTN_RESOURCE_SERVICE_URL: `${distributor.apiUrl}/resource-service`,
      GITOPS_WORK_DIR: join(workDir, 'service-git'),
      KUBECONFIG: kube.kubeconfigPath,
      SECRET_NAMESPACE: 'keptn',
      LOG_LEVEL: 'debug',
      ...opts.serviceEnv,
    });
    const service = await startService(config, pino.destination({ dest: join(logDir, 'service.log'), sync: true }));
    stops.push(() => service.close());

    const controlPlane = await connectControlPlane(nats.url);
    stops.push(() => controlPlane.close());

    return {
      workDir,
      logDir,
      kube,
      cluster,
      git,
      ...(flux ? { flux } : {}),
      ...(argocd ? { argocd } : {}),
      nats,
      distributor,
      resources,
      controlPlane,
      service: { port: servicePort, close: () => service.close() },
      stop,
    };
  } catch (err: unknown) {
    await stop();
    throw err;
  }
}

/** Removes the environment's directory (logs included): only after a passing run. */
export async function removeWorkDir(env: Environment): Promise<void> {
  await rm(env.workDir, { recursive: true, force: true });
}
