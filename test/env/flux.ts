// Flux v2.9 as local processes against the test API server: source-controller, kustomize-controller and
// notification-controller from `build.sh flux-source`, helm-controller from `build.sh flux-helm` (two tool modules,
// because the controllers pin different go-digest forks). Each build copies the controllers' CRDs into
// `<cacheDir>/crds/<controller>`.
//
// Outside a cluster the controllers read KUBECONFIG from the environment (their --kubeconfig flag is not parsed),
// and every listener (metrics, health, artifact storage, events, webhook receiver) must be moved off its default
// port (:8080/:9440/:9090/:9292) to a free port on 127.0.0.1. source-controller advertises artifact URLs as
// http://127.0.0.1:<storage port>/..., which kustomize-controller and helm-controller download from.
// The three reconcilers send their events to notification-controller's event endpoint, so Provider/Alert objects
// work as in a cluster.
import { access, mkdir, readdir, readFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import * as k8s from '@kubernetes/client-node';
import { buildPeers, freePort, spawnPeer, waitUntil, type PeerProcess } from './process.js';

export const FLUX_NAMESPACE = 'flux-system';
/** What the tool modules pin (see test/env/peers/flux-source|flux-helm go.mod and /work/notes/flux.md). */
export const FLUX_VERSIONS = {
  'source-controller': 'v1.9.3',
  'kustomize-controller': 'v1.9.5',
  'notification-controller': 'v1.9.3',
  'helm-controller': 'v1.6.4',
} as const;

const FIELD_MANAGER = 'keptn-gitops-test-env';

export interface Flux {
  namespace: string;
  stop(): Promise<void>;
  peers: PeerProcess[];
  /** http://127.0.0.1:<port> of source-controller's artifact server. */
  storageUrl: string;
  /** http://127.0.0.1:<port>/ of notification-controller's event endpoint (what --events-addr points at). */
  eventsUrl: string;
  /** http://127.0.0.1:<port> of notification-controller's webhook receiver (Receiver objects). */
  receiverUrl: string;
}

export interface StartFluxOptions {
  kubeconfigPath: string;
  /** Scratch directory: artifact storage, Helm cache/config dirs. */
  workDir: string;
  logDir: string;
  /**
   * Cache directories of the builds, keyed by family ('flux-source', 'flux-helm'); either the directory build.sh
   * printed or its bin/ subdirectory. Missing families are built (or found in the cache) with buildPeers().
   */
  binDirs?: Record<string, string>;
  /** kustomize-controller's `--concurrent`: Kustomizations reconciled at once (its default: 4). */
  kustomizeWorkers?: number;
  /** Per-controller readiness timeout (default 60 s). */
  timeoutMs?: number;
}

const FAMILIES = { 'flux-source': 'source-controller', 'flux-helm': 'helm-controller' } as const;

async function exists(path: string): Promise<boolean> {
  return access(path).then(
    () => true,
    () => false,
  );
}

/** Resolves a family's cache directory (holding bin/ and crds/). */
async function resolveCacheDir(family: keyof typeof FAMILIES, given: string | undefined): Promise<string> {
  const dir = given ?? (await buildPeers(family));
  const probe = FAMILIES[family];
  if (await exists(join(dir, 'bin', probe))) return dir;
  if (await exists(join(dir, probe))) return dirname(dir);
  throw new Error(`no ${probe} under ${dir} (expected the cache dir of build.sh ${family} or its bin/)`);
}

/** Server-side applies every CRD under `<cacheDir>/crds/*` and waits until each is Established. */
async function installCrds(kc: k8s.KubeConfig, cacheDirs: string[]): Promise<void> {
  const objects = k8s.KubernetesObjectApi.makeApiClient(kc);
  const apply = (obj: k8s.KubernetesObject) =>
    objects.patch(obj, undefined, undefined, FIELD_MANAGER, true, k8s.PatchStrategy.ServerSideApply);
  const names: string[] = [];
  for (const cacheDir of cacheDirs) {
    const crdRoot = join(cacheDir, 'crds');
    for (const sub of (await readdir(crdRoot)).sort()) {
      for (const file of (await readdir(join(crdRoot, sub))).filter((f) => /\.ya?ml$/.test(f)).sort()) {
        // loadAllYaml deserialises into client-node's typed model. Plain parsed YAML would be serialised through that
        // model on the way out, which drops unknown-to-it keys such as `x-kubernetes-preserve-unknown-fields` and
        // makes the API server reject the HelmRelease CRD (`values` loses its only schema keyword).
        for (const doc of k8s.loadAllYaml(await readFile(join(crdRoot, sub, file), 'utf8'))) {
          const crd = doc as k8s.V1CustomResourceDefinition | null;
          if (crd?.kind !== 'CustomResourceDefinition' || !crd.metadata?.name) continue;
          await apply(crd);
          names.push(crd.metadata.name);
        }
      }
    }
  }
  if (names.length === 0) throw new Error(`no CRDs found under ${cacheDirs.map((d) => join(d, 'crds')).join(', ')}`);
  const ext = kc.makeApiClient(k8s.ApiextensionsV1Api);
  await Promise.all(
    names.map((name) =>
      waitUntil(
        `CRD ${name} established`,
        async () => {
          const crd = await ext.readCustomResourceDefinition({ name });
          return crd.status?.conditions?.some((c) => c.type === 'Established' && c.status === 'True');
        },
        { timeoutMs: 30_000 },
      ),
    ),
  );
  await apply({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: FLUX_NAMESPACE } });
}

async function healthy(port: number): Promise<boolean> {
  const res = await fetch(`http://127.0.0.1:${port}/readyz`, { signal: AbortSignal.timeout(2_000) });
  return res.status === 200;
}

export async function startFlux(opts: StartFluxOptions): Promise<Flux> {
  const [sourceDir, helmDir] = await Promise.all([
    resolveCacheDir('flux-source', opts.binDirs?.['flux-source']),
    resolveCacheDir('flux-helm', opts.binDirs?.['flux-helm']),
  ]);
  const timeoutMs = opts.timeoutMs ?? 60_000;

  const kc = new k8s.KubeConfig();
  kc.loadFromFile(opts.kubeconfigPath);
  await installCrds(kc, [sourceDir, helmDir]);

  const storagePath = join(opts.workDir, 'source-storage');
  const helmHome = join(opts.workDir, 'helm');
  await mkdir(storagePath, { recursive: true });
  await mkdir(helmHome, { recursive: true });

  const [storagePort, eventsPort, receiverPort] = [await freePort(), await freePort(), await freePort()];
  const storageUrl = `http://127.0.0.1:${storagePort}`;
  const eventsUrl = `http://127.0.0.1:${eventsPort}/`;
  const receiverUrl = `http://127.0.0.1:${receiverPort}`;

  const env = {
    KUBECONFIG: opts.kubeconfigPath,
    RUNTIME_NAMESPACE: FLUX_NAMESPACE,
    // helm-controller: keep Helm's cache/config/data out of $HOME.
    HELM_CACHE_HOME: join(helmHome, 'cache'),
    HELM_CONFIG_HOME: join(helmHome, 'config'),
    HELM_DATA_HOME: join(helmHome, 'data'),
  };
  const common = ['--watch-all-namespaces=true', '--log-level=info', '--log-encoding=json'];

  const specs: { name: string; bin: string; args: string[] }[] = [
    {
      name: 'notification-controller',
      bin: join(sourceDir, 'bin', 'notification-controller'),
      args: [`--events-addr=127.0.0.1:${eventsPort}`, `--receiverAddr=127.0.0.1:${receiverPort}`],
    },
    {
      name: 'source-controller',
      bin: join(sourceDir, 'bin', 'source-controller'),
      args: [
        `--storage-path=${storagePath}`,
        `--storage-addr=127.0.0.1:${storagePort}`,
        `--storage-adv-addr=127.0.0.1:${storagePort}`,
        `--events-addr=${eventsUrl}`,
      ],
    },
    {
      name: 'kustomize-controller',
      bin: join(sourceDir, 'bin', 'kustomize-controller'),
      // --requeue-dependency (default 30 s, main.go): how soon an object held by a dependency that is not ready looks
      // again. Tests open such gates on purpose; 5 s keeps them from idling, and the rules read the dependency's own
      // state anyway (tools/flux/dependencies.ts), so the verdicts do not depend on it.
      args: [
        `--events-addr=${eventsUrl}`,
        '--requeue-dependency=5s',
        ...(opts.kustomizeWorkers ? [`--concurrent=${opts.kustomizeWorkers}`] : []),
      ],
    },
    {
      name: 'helm-controller',
      bin: join(helmDir, 'bin', 'helm-controller'),
      // Default 600 s: on SIGTERM it would wait for in-flight Helm actions far longer than a test run allows.
      args: [`--events-addr=${eventsUrl}`, '--graceful-shutdown-timeout=5s', '--requeue-dependency=5s'],
    },
  ];

  const peers: PeerProcess[] = [];
  let stopping: Promise<void> | undefined;
  const stop = (): Promise<void> => {
    stopping ??= Promise.all(peers.map((p) => p.stop())).then(() => undefined);
    return stopping;
  };

  try {
    const started = await Promise.all(
      specs.map(async (spec) => {
        const [metricsPort, healthPort] = [await freePort(), await freePort()];
        const peer = await spawnPeer({
          name: spec.name,
          command: spec.bin,
          args: [...spec.args, ...common, `--metrics-addr=127.0.0.1:${metricsPort}`, `--health-addr=127.0.0.1:${healthPort}`],
          env,
          cwd: opts.workDir,
          logDir: opts.logDir,
        });
        peers.push(peer);
        return { peer, healthPort };
      }),
    );
    await Promise.all(
      started.map(({ peer, healthPort }) => waitUntil(`${peer.name} /readyz`, () => healthy(healthPort), { timeoutMs, peer })),
    );
    // The artifact server starts with the manager; make sure it answers before anyone needs an artifact.
    await waitUntil(
      'source-controller artifact server',
      async () => {
        await fetch(`${storageUrl}/`, { signal: AbortSignal.timeout(2_000) });
        return true;
      },
      { timeoutMs, peer: started.find((s) => s.peer.name === 'source-controller')?.peer },
    );
    return { namespace: FLUX_NAMESPACE, stop, peers, storageUrl, eventsUrl, receiverUrl };
  } catch (err) {
    await stop();
    throw err;
  }
}
