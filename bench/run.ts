// `npm run bench`: the service's speed and scale against the real peers of test/env (issue 11), each figure beside a
// baseline measured in the same run, because the machine is shared and noisy. Prints a table and writes
// docs/benchmarks.md. Sizes come from the environment so that a short run is possible:
//   BENCH_TOOLS=flux,argocd  BENCH_DEPLOYMENTS=50  BENCH_BASELINE_SAMPLES=3  BENCH_BURST=200  BENCH_OBJECTS=1000
//   BENCH_RATES=100,200,500  BENCH_RATE_SECONDS=10  BENCH_STEADY_SECONDS=60  BENCH_OUT=docs/benchmarks.md
//   BENCH_FLUX_WORKERS=4  BENCH_PROFILE_DIR=/tmp/prof (a CPU profile of the service)
// The npm script holds the shared e2e lock (flock /tmp/e2e.lock) so that no test runs beside it.
import { CoreV1Api, Watch, type KubernetesObject } from '@kubernetes/client-node';
import { randomUUID } from 'node:crypto';
import { mkdir, readFile, symlink, writeFile } from 'node:fs/promises';
import { request as httpsRequest } from 'node:https';
import { cpus, totalmem, type } from 'node:os';
import { join } from 'node:path';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import {
  serviceEnvironment,
  startEnvironment,
  startServiceProcess,
  type Environment,
  type ServiceReplica,
} from '../test/env/environment.js';
import { keptnEvent, startDistributor, type KeptnCloudEvent } from '../test/env/keptn.js';
import { NODE_PODS } from '../test/env/kube.js';
import { freePort, spawnPeer, waitUntil } from '../test/env/process.js';
import {
  appFiles,
  grantAnnotations,
  IMAGE,
  keptnSecret,
  requestFluxReconcile,
  settingsYaml,
  toolObjects,
  type TestApp,
  type Tool,
} from '../test/env/sample-app.js';
import { runLoadInWorker, type LoadResult } from './load.js';
import { median, ms, percentile, table, type Row } from './stats.js';

const num = (name: string, fallback: number) => {
  const v = Number(process.env[name]);
  return Number.isFinite(v) && v > 0 ? v : fallback;
};
const SIZES = {
  tools: (process.env['BENCH_TOOLS'] ?? 'flux,argocd').split(',').filter((t): t is Tool => t === 'flux' || t === 'argocd'),
  deployments: num('BENCH_DEPLOYMENTS', 50),
  baselineSamples: num('BENCH_BASELINE_SAMPLES', 3),
  burst: num('BENCH_BURST', 200),
  objects: num('BENCH_OBJECTS', 1000),
  rates: (process.env['BENCH_RATES'] ?? '100,200,500')
    .split(',')
    .map(Number)
    .filter((n) => n > 0),
  rateSeconds: num('BENCH_RATE_SECONDS', 10),
  steadySeconds: num('BENCH_STEADY_SECONDS', 60),
  /** kustomize-controller's workers (`--concurrent`); Flux's default is 4, too few for a burst of 200 Kustomizations. */
  fluxWorkers: num('BENCH_FLUX_WORKERS', 4),
};
/** A commit whose service is measured beside this one in the acknowledgement round (before/after a change). */
const BEFORE = process.env['BENCH_BEFORE'];
const OUT = process.env['BENCH_OUT'] ?? 'docs/benchmarks.md';
/** Where the service writes a V8 CPU profile when it stops (open it in Chrome DevTools or speedscope); none if unset. */
const PROFILE_DIR = process.env['BENCH_PROFILE_DIR'];
const PROJECT = 'podtato';
const rows: Row[] = [];
const details: string[] = [];
const now = () => Date.now();

// ---------------------------------------------------------------------------------------------------------------
// Observers, independent of the service: Keptn's side (NATS), the controllers' objects (a watch), the Git server.

interface Arrival {
  started: number[];
  finished: number[];
  last?: KeptnCloudEvent;
}

/** Every `.started`/`.finished` with the time it arrived on NATS, as Keptn's control plane sees it. */
function observeEvents(env: Environment) {
  const arrivals = new Map<string, Arrival>();
  const stream = env.controlPlane.subscribe('sh.keptn.event.deployment.>');
  const wakers = new Set<() => void>();
  void (async () => {
    for await (const e of stream) {
      const t = now();
      const id = e.triggeredid ?? '';
      const a = arrivals.get(id) ?? { started: [], finished: [] };
      if (e.type.endsWith('.started')) a.started.push(t);
      if (e.type.endsWith('.finished')) {
        a.finished.push(t);
        a.last = e;
      }
      arrivals.set(id, a);
      for (const w of wakers) w();
    }
  })();
  // The arrival time is taken as the event comes in; how often this wait looks does not change it.
  const finished = (id: string, timeoutMs: number): Promise<Arrival> =>
    every(`.finished of ${id}`, 20, timeoutMs, async () => (arrivals.get(id)?.finished.length ? arrivals.get(id) : undefined));
  return { arrivals, finished, close: () => stream.close() };
}

interface Seen {
  t: number;
  obj: KubernetesObject & { status?: Record<string, unknown>; spec?: Record<string, unknown> };
}

/** A watch of one collection, keeping every version of every object with the time it was seen. */
async function observeObjects(env: Environment, path: string): Promise<{ history: Map<string, Seen[]>; stop(): void }> {
  const history = new Map<string, Seen[]>();
  let stopped = false;
  let controller: AbortController | undefined;
  const start = async (): Promise<void> => {
    if (stopped) return;
    controller = await new Watch(env.cluster.kc).watch(
      path,
      { allowWatchBookmarks: false },
      (phase: string, obj: Seen['obj']) => {
        if (phase === 'ERROR' || !obj?.metadata?.name) return;
        const list = history.get(obj.metadata.name) ?? [];
        list.push({ t: now(), obj });
        history.set(obj.metadata.name, list);
      },
      () => void setTimeout(() => void start(), 100),
    );
  };
  await start();
  return {
    history,
    stop() {
      stopped = true;
      controller?.abort();
    },
  };
}

/** When each commit became the head of `main` in the bare repository (polled every 5 ms: the controllers' "push"). */
function observeRef(env: Environment, repo: string) {
  const seen = new Map<string, number>();
  const file = join(env.git.root, 'repos', `${repo}.git`, 'refs', 'heads', 'main');
  const timer = setInterval(() => {
    void readFile(file, 'utf8')
      .then((text) => {
        const sha = text.trim();
        if (sha && !seen.has(sha)) seen.set(sha, now());
      })
      .catch(() => undefined);
  }, 5);
  return { seen, stop: () => clearInterval(timer) };
}

/** Asks `probe` every `intervalMs` until it answers (not undefined/false); a fixed interval, as a polling user would. */
async function every<T>(what: string, intervalMs: number, timeoutMs: number, probe: () => Promise<T | undefined | false>): Promise<T> {
  const deadline = now() + timeoutMs;
  for (;;) {
    const value = await probe().catch(() => undefined);
    if (value !== undefined && value !== false) return value;
    if (now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}

const first = (seen: Seen[] | undefined, pred: (o: Seen['obj']) => boolean, after = 0) => seen?.find((s) => s.t >= after && pred(s.obj))?.t;

type Cond = { type?: string; status?: string; message?: string };
const conditions = (o: Seen['obj']) => ((o.status?.['conditions'] as Cond[] | undefined) ?? []) as Cond[];

/** Flux kustomize-controller 1.9: lastAppliedRevision is written only after apply and health checks succeeded. */
function fluxFinal(o: Seen['obj'], sha: string): boolean {
  const applied = String(o.status?.['lastAppliedRevision'] ?? '');
  const gen = o.metadata?.generation ?? 0;
  return (
    applied.includes(sha) &&
    Number(o.status?.['observedGeneration'] ?? -1) >= gen &&
    conditions(o).some((c) => c.type === 'Ready' && c.status === 'True')
  );
}
/** kustomize-controller marks Reconciling "Running health checks for revision …" once the apply is done. */
const fluxHealthStart = (o: Seen['obj'], sha: string) =>
  conditions(o).some((c) => /health/i.test(c.message ?? '') && (c.message ?? '').includes(sha));
/** source-controller 1.9: the artifact's revision is `<branch>@sha1:<sha>` once fetched. */
const fluxFetched = (o: Seen['obj'], sha: string) =>
  String((o.status?.['artifact'] as { revision?: string } | undefined)?.revision ?? '').includes(sha);
/** Argo CD 3.5: synced to the revision, healthy, and no operation still running on it. */
function argoFinal(o: Seen['obj'], sha: string): boolean {
  const s = o.status as
    { sync?: { status?: string; revision?: string }; health?: { status?: string }; operationState?: { phase?: string } } | undefined;
  return (
    s?.sync?.revision === sha &&
    s.sync.status === 'Synced' &&
    s.health?.status === 'Healthy' &&
    (s.operationState?.phase ?? 'Succeeded') === 'Succeeded'
  );
}
const finalFor = (tool: Tool) => (tool === 'flux' ? fluxFinal : argoFinal);
const targetPath = (tool: Tool) =>
  tool === 'flux'
    ? '/apis/kustomize.toolkit.fluxcd.io/v1/namespaces/flux-system/kustomizations'
    : '/apis/argoproj.io/v1alpha1/namespaces/argocd/applications';

// ---------------------------------------------------------------------------------------------------------------

function triggered(service: string, tag: string): KeptnCloudEvent {
  return keptnEvent('sh.keptn.event.deployment.triggered', {
    project: PROJECT,
    stage: 'dev',
    service,
    configurationChange: { values: { image: `${IMAGE}:${tag}` } },
    deployment: { deploymentstrategy: 'direct' },
  });
}

async function makeApp(env: Environment, tool: Tool, name: string): Promise<TestApp> {
  const { url, commit } = await env.git.createRepo(name, appFiles(name));
  const app: TestApp = { name, namespace: name, repo: name, repoUrl: url, initialCommit: commit, service: `svc-${name}` };
  await env.cluster.apply([
    { apiVersion: 'v1', kind: 'Namespace', metadata: { name } } as KubernetesObject,
    keptnSecret(app, env),
    ...toolObjects(tool, app, env, { automated: tool === 'argocd' }),
  ]);
  env.resources.put(
    { project: PROJECT, stage: 'dev', service: app.service },
    'gitops/config.yaml',
    settingsYaml(tool, app, { timeout: '300s' }),
  );
  return app;
}

async function waitFinal(watch: { history: Map<string, Seen[]> }, tool: Tool, name: string, sha: string, timeoutMs: number) {
  return waitUntil(`${name} at ${sha.slice(0, 8)}`, async () => first(watch.history.get(name), (o) => finalFor(tool)(o, sha)), {
    timeoutMs,
  });
}

// ---------------------------------------------------------------------------------------------------------------
// 1. Detection latency and overhead over the controller; 2. against what users do today.

async function sequential(env: Environment, events: ReturnType<typeof observeEvents>, tool: Tool, floor: number[]) {
  const name = `bench-${tool}`;
  const app = await makeApp(env, tool, name);
  const watch = await observeObjects(env, targetPath(tool));
  const sources =
    tool === 'flux' ? await observeObjects(env, '/apis/source.toolkit.fluxcd.io/v1/namespaces/flux-system/gitrepositories') : undefined;
  const ref = observeRef(env, name);
  try {
    await waitFinal(watch, tool, name, app.initialCommit, 180_000);
    const detection: number[] = [];
    const total: number[] = [];
    const controller: number[] = [];
    const overhead: number[] = [];
    const fetch: number[] = [];
    const apply: number[] = [];
    const health: number[] = [];
    const ourToPush: number[] = [];
    let failed = 0;
    for (let i = 1; i <= SIZES.deployments; i++) {
      const event = triggered(app.service, `0.2.${i}`);
      const t0 = now();
      await env.controlPlane.publish(event);
      const arrival = await events.finished(event.id, 400_000);
      const fin = arrival.finished[0]!;
      const sha = String(arrival.last?.data?.deployment?.gitCommit ?? '');
      if (arrival.last?.data?.result !== 'pass' || !sha) {
        failed++;
        continue;
      }
      const finalAt = await waitFinal(watch, tool, name, sha, 10_000).catch(() => NaN);
      const pushAt = ref.seen.get(sha) ?? NaN;
      detection.push(fin - finalAt);
      total.push(fin - t0);
      controller.push(finalAt - pushAt);
      overhead.push(fin - t0 - (finalAt - pushAt));
      ourToPush.push(pushAt - t0);
      if (tool === 'flux') {
        const fetchedAt = first(sources!.history.get(name), (o) => fluxFetched(o, sha), pushAt) ?? NaN;
        const healthAt = first(watch.history.get(name), (o) => fluxHealthStart(o, sha), pushAt) ?? NaN;
        fetch.push(fetchedAt - pushAt);
        apply.push(healthAt - fetchedAt);
        health.push(finalAt - healthAt);
      }
    }
    const label = tool === 'flux' ? 'Flux' : 'Argo CD';
    const n = detection.length;
    const med = median(detection);
    const p99 = percentile(detection, 99);
    rows.push({
      measure: `${label}: detection latency (final status seen → .finished on NATS), n=${n}${failed ? `, ${failed} not pass` : ''}`,
      value: `p50 ${ms(med)}, p99 ${ms(p99)}, max ${ms(Math.max(...detection))}`,
      baseline: `transport floor (POST to the distributor → NATS): p50 ${ms(median(floor))}, p99 ${ms(percentile(floor, 99))}`,
      target: 'p50 ≤ 15 ms, p99 ≤ 50 ms',
      met: med <= 15 && p99 <= 50 && n >= 50,
      ...(n < 50 ? { note: `only ${n} deployments in this run (BENCH_DEPLOYMENTS)` } : {}),
    });
    rows.push({
      measure: `${label}: overhead over the controller (trigger → .finished − push → final status)`,
      value: `p50 ${ms(median(overhead))}, p99 ${ms(percentile(overhead, 99))} (trigger → push p50 ${ms(median(ourToPush))})`,
      baseline: `controller push → final p50 ${ms(median(controller))}, p99 ${ms(percentile(controller, 99))}; trigger → .finished p50 ${ms(median(total))}`,
      target: 'p50 ≤ 1 s',
      met: median(overhead) <= 1000,
    });
    if (tool === 'flux') {
      rows.push({
        measure: 'Flux: the controller’s time, broken down (from the objects’ status, seen by the watch)',
        value: `fetch p50 ${ms(median(fetch))}, apply p50 ${ms(median(apply))}, health checks p50 ${ms(median(health))}`,
        baseline: `push → final p50 ${ms(median(controller))}`,
        target: '–',
        met: undefined,
      });
    }
    await usersToday(env, tool, app, watch, total);
  } finally {
    watch.stop();
    sources?.stop();
    ref.stop();
  }
}

/** Commit by hand, then either wait for the tool's own poll or request a reconcile and poll every 2 s (flux reconcile / argocd app wait). */
async function usersToday(env: Environment, tool: Tool, app: TestApp, watch: { history: Map<string, Seen[]> }, ours: number[]) {
  const label = tool === 'flux' ? 'Flux' : 'Argo CD';
  const polling: number[] = [];
  const poll: number[] = [];
  const file = `apps/${app.name}/kustomization.yaml`;
  const commitTag = (tag: string) =>
    env.git.commitAsOther(app.repo, { [file]: appFiles(app.name)[file]!.replace('newTag: 0.1.0', `newTag: ${tag}`) }, `by hand: ${tag}`);
  const annotate = async () => {
    if (tool === 'flux') {
      await requestFluxReconcile(env.cluster, app.name);
    } else {
      await env.cluster.mergePatch({
        apiVersion: 'argoproj.io/v1alpha1',
        kind: 'Application',
        metadata: { name: app.name, namespace: 'argocd', annotations: { 'argocd.argoproj.io/refresh': 'normal' } },
      });
    }
  };
  const read = () =>
    env.cluster.read<Seen['obj']>(
      tool === 'flux' ? 'kustomize.toolkit.fluxcd.io/v1' : 'argoproj.io/v1alpha1',
      tool === 'flux' ? 'Kustomization' : 'Application',
      tool === 'flux' ? 'flux-system' : 'argocd',
      app.name,
    );
  for (let i = 1; i <= SIZES.baselineSamples; i++) {
    const t0 = now();
    const sha = await commitTag(`0.4.${i}`);
    await annotate();
    await every('polled final status', 2_000, 300_000, async () => finalFor(tool)(await read(), sha));
    polling.push(now() - t0);
  }
  if (tool === 'flux') {
    for (const kind of ['GitRepository', 'Kustomization'] as const)
      await env.cluster.mergePatch({
        apiVersion: kind === 'GitRepository' ? 'source.toolkit.fluxcd.io/v1' : 'kustomize.toolkit.fluxcd.io/v1',
        kind,
        metadata: { name: app.name, namespace: 'flux-system' },
        spec: { interval: '1m' },
      });
  }
  for (let i = 1; i <= SIZES.baselineSamples; i++) {
    const t0 = now();
    const sha = await commitTag(`0.5.${i}`);
    const at = await waitFinal(watch, tool, app.name, sha, 600_000);
    poll.push(at - t0);
  }
  const oursMed = median(ours);
  rows.push({
    measure: `${label}: against what users do today (same app; ours = trigger → .finished)`,
    value: `ours p50 ${ms(oursMed)}`,
    baseline: `commit + next poll (${tool === 'flux' ? '1-minute interval' : 'default reconciliation period'}) p50 ${ms(median(poll))}, n=${poll.length}; commit + reconcile request + 2-s polling p50 ${ms(median(polling))}, n=${polling.length}`,
    target: '≥ 20× faster than the poll; never slower than the 2-s polling wait',
    met: oursMed * 20 <= median(poll) && oursMed <= median(polling),
  });
}

/** The floor of detection: an event posted to the distributor's event API until it arrives on NATS. */
async function transportFloor(env: Environment, replica: ServiceReplica, samples: number): Promise<number[]> {
  const stream = env.controlPlane.subscribe('sh.keptn.event.benchping.>');
  const out: number[] = [];
  try {
    const arrived = new Map<string, number>();
    void (async () => {
      for await (const e of stream) arrived.set(e.id, now());
    })();
    for (let i = 0; i < samples; i++) {
      const e = keptnEvent(
        'sh.keptn.event.benchping.finished',
        { project: PROJECT, stage: 'dev', service: 'ping', status: 'succeeded', result: 'pass' },
        { triggeredid: randomUUID() },
      );
      const t0 = now();
      const res = await fetch(`http://127.0.0.1:${replica.apiProxyPort}/event`, {
        method: 'POST',
        headers: { 'content-type': 'application/cloudevents+json' },
        body: JSON.stringify(e),
      });
      if (!res.ok) break;
      await every('ping on NATS', 5, 10_000, async () => arrived.has(e.id));
      out.push(arrived.get(e.id)! - t0);
    }
  } finally {
    stream.close();
  }
  return out;
}

// ---------------------------------------------------------------------------------------------------------------
// 3. Burst and footprint: B services of one repository, with enough other watched objects to make 1,000.

async function rssMb(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  return Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? NaN) / 1024;
}

async function metricValue(replica: ServiceReplica, name: string): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${replica.healthPort}/metrics`)).text();
  return text
    .split('\n')
    .filter((l) => l.startsWith(name))
    .reduce((sum, l) => sum + Number(l.split(' ').pop()), 0);
}

async function pool<T>(items: T[], width: number, work: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: width }, async () => {
      while (next < items.length) await work(items[next++]!);
    }),
  );
}

/** The settings of a service of the burst repository (set once that repository exists). */
let burstSettings: (service: string) => string = () => '';

async function burst(env: Environment, events: ReturnType<typeof observeEvents>, replica: ServiceReplica) {
  const size = SIZES.burst;
  // test/env's one kwok node offers NODE_PODS pods: more sample apps than that never all become ready.
  if (size + 2 * SIZES.tools.length > NODE_PODS - 10)
    throw new Error(
      `a burst of ${size} needs more than the ${NODE_PODS} pods of test/env's kwok node (test/env/kube.ts NODE_PODS); use a smaller BENCH_BURST`,
    );
  const repo = 'burst';
  const idleRss = await rssMb(replica.process.pid);
  const files: Record<string, string> = {};
  for (let i = 0; i < size; i++) Object.assign(files, appFiles(`burst-${i}`));
  const { url } = await env.git.createRepo(repo, files);
  burstSettings = (name) => `git: { url: ${url}, branch: main, secretRef: { name: burst-git } }
images: [{ file: apps/${name}/kustomization.yaml, kustomizeImage: ${IMAGE} }]
target: { kind: Kustomization, name: ${name}, namespace: flux-system }
timeout: 600s
`;
  const secret = (namespace: string, extra: Record<string, unknown> = {}) =>
    ({
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: { name: 'burst-git', namespace, ...extra },
      stringData: { username: env.git.username, password: env.git.password },
    }) as KubernetesObject;
  const keptn = keptnSecret({ name: 'burst', namespace: 'burst', repo, repoUrl: url, initialCommit: '', service: '' }, env);
  await env.cluster.apply([
    keptn,
    secret('flux-system'),
    {
      apiVersion: 'source.toolkit.fluxcd.io/v1',
      kind: 'GitRepository',
      metadata: { name: repo, namespace: 'flux-system' },
      spec: { interval: '1h', url, ref: { branch: 'main' }, secretRef: { name: 'burst-git' } },
    } as KubernetesObject,
  ]);
  const services = Array.from({ length: size }, (_, i) => `burst-${i}`);
  await pool(services, 8, async (name) => {
    await env.cluster.apply([
      { apiVersion: 'v1', kind: 'Namespace', metadata: { name } } as KubernetesObject,
      {
        apiVersion: 'kustomize.toolkit.fluxcd.io/v1',
        kind: 'Kustomization',
        metadata: { name, namespace: 'flux-system', annotations: grantAnnotations() },
        spec: {
          interval: '1h',
          retryInterval: '5s',
          path: `./apps/${name}`,
          prune: true,
          wait: true,
          timeout: '5m',
          targetNamespace: name,
          sourceRef: { kind: 'GitRepository', name: repo },
        },
      } as KubernetesObject,
    ]);
    env.resources.put({ project: PROJECT, stage: 'dev', service: name }, 'gitops/config.yaml', burstSettings(name));
  });
  // Watched objects the service lists and keeps in its cache: suspended Kustomizations no controller acts on.
  const fillers = Math.max(0, SIZES.objects - size - 2 * SIZES.tools.length);
  await pool(
    Array.from({ length: fillers }, (_, i) => `filler-${i}`),
    8,
    (name) =>
      env.cluster.apply([
        {
          apiVersion: 'kustomize.toolkit.fluxcd.io/v1',
          kind: 'Kustomization',
          metadata: { name, namespace: 'flux-system' },
          spec: { suspend: true, interval: '1h', path: './none', prune: false, sourceRef: { kind: 'GitRepository', name: 'none' } },
        } as KubernetesObject,
      ]),
  );
  const kustomizations = await observeObjects(env, targetPath('flux'));
  try {
    await every('burst apps first deployed', 2_000, 900_000, async () =>
      services.every((s) =>
        kustomizations.history.get(s)?.some((v) => conditions(v.obj).some((c) => c.type === 'Ready' && c.status === 'True')),
      ),
    );
    // The baseline: one deployment of one of these services, alone, just before the burst.
    const single = triggered('burst-0', '0.6.0');
    const s0 = now();
    await env.controlPlane.publish(single);
    const singleArrival = await events.finished(single.id, 600_000);
    const singleMs = singleArrival.finished[0]! - s0;

    const retriesBefore = await metricValue(replica, 'keptn_gitops_git_push_retries_total');
    const commitsBefore = (await env.git.log(repo)).length;
    const burstEvents = services.map((s) => triggered(s, '0.7.0'));
    let peakRss = 0;
    const sampler = setInterval(
      () =>
        void rssMb(replica.process.pid)
          .then((v) => (peakRss = Math.max(peakRss, v)))
          .catch(() => undefined),
      250,
    );
    const t0 = now();
    await Promise.all(burstEvents.map((e) => env.controlPlane.publish(e)));
    const published = now() - t0;
    const arrivals = await Promise.all(burstEvents.map((e) => events.finished(e.id, 1_200_000)));
    const totalMs = Math.max(...arrivals.map((a) => a.finished[0]!)) - t0;
    clearInterval(sampler);
    // Late duplicates would arrive after the first .finished: give them a moment to show.
    await new Promise((r) => setTimeout(r, 3_000));
    const log = await env.git.log(repo);
    const newCommits = log.slice(0, log.length - commitsBefore);
    const retries = (await metricValue(replica, 'keptn_gitops_git_push_retries_total')) - retriesBefore;
    const problems: string[] = [];
    for (const e of burstEvents) {
      const a = events.arrivals.get(e.id)!;
      if (a.started.length !== 1 || a.finished.length !== 1)
        problems.push(`${e.data['service']}: ${a.started.length} .started, ${a.finished.length} .finished`);
      if (a.last?.data?.result !== 'pass') problems.push(`${e.data['service']}: ${a.last?.data?.result}: ${a.last?.data?.message}`);
      const carriers = newCommits.filter((c) => c.body.split('\n').includes(`Keptn-Deployment-Id: ${e.id}`));
      if (carriers.length !== 1) problems.push(`${e.data['service']}: carried by ${carriers.length} commits`);
      else if (carriers[0]!.sha !== a.last?.data?.deployment?.gitCommit)
        problems.push(`${e.data['service']}: .finished names another commit`);
      const content = await env.git.readFile(repo, `apps/${e.data['service']}/kustomization.yaml`);
      if (!content.includes('newTag: 0.7.0')) problems.push(`${e.data['service']}: change lost`);
    }
    rows.push({
      measure: `Burst: ${size} deployment.triggered for ${size} services of one repository (published in ${ms(published)})`,
      value: `all finished in ${ms(totalMs)}; ${newCommits.length} pushes (commits), ${retries} push retries; ${problems.length ? `${problems.length} problems: ${problems.slice(0, 5).join('; ')}` : 'exactly one .started/.finished each, all pass, every change in exactly one commit, named by its .finished'}`,
      baseline: `one deployment of the same app alone: ${ms(singleMs)}`,
      target: `all within 3× one deployment (${ms(3 * singleMs)}), exactly once, nothing lost`,
      met: totalMs <= 3 * singleMs && problems.length === 0,
    });
    rows.push({
      measure: `Footprint: resident memory with ${SIZES.objects} watched objects and ${size} deployments in flight (peak)`,
      value: `${peakRss.toFixed(0)} MB`,
      baseline: `idle, before the objects: ${idleRss.toFixed(0)} MB`,
      target: '≤ 150 MB',
      met: peakRss <= 150,
    });
    details.push(`Burst commits (newest first): ${newCommits.map((c) => `${c.sha.slice(0, 8)} "${c.subject}"`).join(', ')}`);
  } finally {
    kustomizations.stop();
  }
}

// ---------------------------------------------------------------------------------------------------------------
// 4. Acknowledgement: POST / answer times at fixed rates while the accepted deployments run.

function summarise(r: LoadResult): string {
  const codes = Object.entries(r.statuses)
    .map(([k, v]) => `${k}×${v}`)
    .join(' ');
  return `p50 ${ms(median(r.latencies))}, p99 ${ms(percentile(r.latencies, 99))}, max ${ms(Math.max(...r.latencies))} (${codes}${r.errors ? `, ${r.errors} errors` : ''})`;
}

interface AckTarget {
  label: string;
  port: number;
  stop(): Promise<void>;
}

/**
 * The service as it was at `commit` (git archive of src/ and package.json, this checkout's node_modules), in its own
 * process with its own distributor, which forwards no topic: it only takes the POSTs of the acknowledgement round.
 */
async function serviceAt(env: Environment, commit: string): Promise<AckTarget> {
  const dir = join(env.workDir, `service-at-${commit.slice(0, 12)}`);
  await mkdir(dir, { recursive: true });
  await promisify(execFile)('sh', ['-c', `git archive "$1" src package.json | tar -x -C "$2"`, 'sh', commit, dir]);
  await symlink(join(process.cwd(), 'node_modules'), join(dir, 'node_modules'));
  const port = await freePort();
  const healthPort = await freePort();
  const apiProxyPort = await freePort();
  const distributor = await startDistributor({
    natsUrl: env.nats.url,
    recipientPort: port,
    topics: ['sh.keptn.event.benchnone.triggered'],
    resourceServiceUrl: env.resources.url,
    logDir: env.logDir,
    name: 'distributor-before',
    apiProxyPort,
  });
  const apiUrl = `http://127.0.0.1:${apiProxyPort}`;
  const child = await spawnPeer({
    name: 'service-before',
    command: process.execPath,
    args: ['--import', 'tsx', join(dir, 'src', 'main.ts')],
    cwd: dir,
    env: serviceEnvironment(env, port, `${apiUrl}/event`, apiUrl, {
      REPLICA_ID: 'before',
      HEALTH_PORT: String(healthPort),
      LOG_LEVEL: 'info',
    }),
    logDir: env.logDir,
  });
  await waitUntil('service before healthy', async () => (await fetch(`http://127.0.0.1:${port}/health`)).ok, {
    timeoutMs: 60_000,
    peer: child,
  });
  return {
    label: `at ${commit.slice(0, 8)} (before)`,
    port,
    async stop() {
      await distributor.stop();
      await child.stop();
    },
  };
}

/**
 * The image the burst left in burst-0: the acknowledgement round's deployments find it in Git already, so each one
 * fetches, checks, waits for the tool and reports, without thousands of commits to one file (they would be serial).
 */
const ACK_TAG = '0.7.0';

async function acknowledgement(env: Environment, events: ReturnType<typeof observeEvents>, targets: AckTarget[]) {
  // A service with settings that point at the burst repository's first app: the deployments do real work (settings,
  // Secret, Git, the tool) under the load.
  env.resources.put({ project: PROJECT, stage: 'dev', service: 'ack' }, 'gitops/config.yaml', burstSettings('burst-0'));
  for (const rate of SIZES.rates) {
    for (const target of targets) {
      const triggers = Array.from({ length: Math.round(rate * SIZES.rateSeconds) }, () => triggered('ack', ACK_TAG));
      const ids = triggers.map((e) => e.id);
      const bodies = triggers.map((e) => ({ headers: { 'content-type': 'application/cloudevents+json' }, text: JSON.stringify(e) }));
      // Each load in a thread of its own, so that the bench's observers cannot delay it.
      const [post, health] = await Promise.all([
        runLoadInWorker({
          url: `http://127.0.0.1:${target.port}/`,
          method: 'POST',
          ratePerSecond: rate,
          seconds: SIZES.rateSeconds,
          bodies,
        }),
        runLoadInWorker({ url: `http://127.0.0.1:${target.port}/health`, method: 'GET', ratePerSecond: 20, seconds: SIZES.rateSeconds }),
      ]);
      const p99 = percentile(post.latencies, 99);
      const max = Math.max(...post.latencies);
      rows.push({
        measure: `Acknowledgement${targets.length > 1 ? `, service ${target.label}` : ''}: POST / at ${rate} events/s for ${SIZES.rateSeconds} s (record written before the answer)`,
        value: summarise(post),
        baseline: `GET /health on the same port meanwhile: ${summarise(health)}`,
        target: rate === 200 ? 'p99 ≤ 50 ms' : rate >= 500 ? 'no answer > 1 s' : '–',
        met: rate === 200 ? p99 <= 50 : rate >= 500 ? max <= 1000 && post.errors === 0 : undefined,
      });
      // Let this round's deployments end before the next one, so each is measured on its own.
      const accepted = ids.length;
      const started = now();
      await every(`the ${accepted} deployments at ${rate}/s finished`, 1_000, 90_000, async () =>
        ids.every((id) => events.arrivals.get(id)?.finished.length),
      )
        .then(() =>
          details.push(
            `${target.label}: the ${accepted} deployments posted at ${rate}/s all finished ${ms(now() - started)} after the load ended`,
          ),
        )
        .catch(() =>
          details.push(
            `${target.label}: at ${rate}/s, ${ids.filter((id) => events.arrivals.get(id)?.finished.length).length} of ${accepted} deployments finished within 90 s after the load`,
          ),
        );
    }
  }
}

// ---------------------------------------------------------------------------------------------------------------
// 5. API requests per minute in steady state, from kube-apiserver's own counter: with the service running, and with
// it paused (SIGSTOP), the difference being the service's.

async function apiserverCounts(env: Environment): Promise<Map<string, number>> {
  const opts: Parameters<typeof httpsRequest>[1] = {};
  await env.cluster.kc.applyToHTTPSOptions(opts);
  const text = await new Promise<string>((resolve, reject) => {
    const req = httpsRequest(`${env.kube.server}/metrics`, { ...opts, method: 'GET' }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve(body));
    });
    req.on('error', reject);
    req.end();
  });
  const counts = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (!line.startsWith('apiserver_request_total{')) continue;
    const verb = /verb="([^"]*)"/.exec(line)?.[1] ?? '';
    const resource = /resource="([^"]*)"/.exec(line)?.[1] ?? '';
    const key = `${verb} ${resource}`;
    counts.set(key, (counts.get(key) ?? 0) + Number(line.split(' ').pop()));
  }
  return counts;
}

/** The service's deployment records (ConfigMaps in its state namespace), finished ones included. */
async function recordCount(env: Environment): Promise<number> {
  const list = await env.cluster.kc.makeApiClient(CoreV1Api).listNamespacedConfigMap({
    namespace: env.identity?.stateNamespace ?? 'keptn',
    labelSelector: 'app.kubernetes.io/managed-by=keptn-gitops-service',
  });
  return list.items.length;
}

/** `when` says what the service has behind it: the scan must not grow with the records of finished deployments. */
async function steadyState(env: Environment, replica: ServiceReplica, when: string) {
  const window = async () => {
    const before = await apiserverCounts(env);
    await new Promise((r) => setTimeout(r, SIZES.steadySeconds * 1000));
    const after = await apiserverCounts(env);
    const diff = new Map<string, number>();
    for (const [k, v] of after) diff.set(k, v - (before.get(k) ?? 0));
    return diff;
  };
  const running = await window();
  process.kill(replica.process.pid, 'SIGSTOP');
  let paused: Map<string, number>;
  try {
    paused = await window();
  } finally {
    process.kill(replica.process.pid, 'SIGCONT');
  }
  const perMinute = (n: number) => (n * 60) / SIZES.steadySeconds;
  const total = (m: Map<string, number>) => [...m.values()].reduce((a, b) => a + b, 0);
  const ours = new Map<string, number>();
  for (const [k, v] of running) {
    const d = v - (paused.get(k) ?? 0);
    if (Math.abs(d) >= 1) ours.set(k, d);
  }
  const parts = [...ours]
    .filter(([, v]) => v > 0)
    .map(([k, v]) => `${k}: ${perMinute(v).toFixed(0)}`)
    .join(', ');
  const mine = perMinute(total(running) - total(paused));
  rows.push({
    measure: `Footprint: API requests per minute in steady state, ${when} (kube-apiserver's apiserver_request_total, ${SIZES.steadySeconds} s running vs ${SIZES.steadySeconds} s with the service paused)`,
    value: `${mine.toFixed(0)}/min attributable to the service (${parts || 'no difference by verb/resource'})`,
    baseline: `the rest of the cluster: ${perMinute(total(paused)).toFixed(0)}/min`,
    target: 'watches only; the record scan must not grow with history',
    met: undefined,
  });
}

// ---------------------------------------------------------------------------------------------------------------

const started = new Date();
console.log(`bench: sizes ${JSON.stringify(SIZES)}`);
const env = await startEnvironment({
  flux: true,
  fluxWorkers: SIZES.fluxWorkers,
  argocd: SIZES.tools.includes('argocd'),
  service: false,
});
console.log(`bench: environment up, logs in ${env.logDir}`);
let replica: ServiceReplica | undefined;
let failure: unknown;
const events = observeEvents(env);
try {
  // The built service, as the image runs it (`npm run bench` builds it first).
  replica = await startServiceProcess(env, {
    replicaId: 'bench',
    built: true,
    // A profile is written when the process exits, so it must stop within the 5 s before test/env's SIGKILL.
    extraEnv: { LOG_LEVEL: 'info', ...(PROFILE_DIR ? { DRAIN_TIMEOUT: '1s' } : {}) },
    ...(PROFILE_DIR ? { nodeArgs: ['--cpu-prof', `--cpu-prof-dir=${PROFILE_DIR}`] } : {}),
  });
  const floor = await transportFloor(env, replica, Math.max(20, SIZES.deployments));
  for (const tool of SIZES.tools) {
    console.log(`bench: ${tool}: ${SIZES.deployments} deployments, then ${SIZES.baselineSamples} of each baseline`);
    await sequential(env, events, tool, floor);
  }
  console.log(`bench: burst of ${SIZES.burst} with ${SIZES.objects} watched objects`);
  // A burst that cannot run is a missed target in the table; the rounds after it still run.
  await burst(env, events, replica).catch((err: unknown) =>
    rows.push({
      measure: `Burst: ${SIZES.burst} services of one repository`,
      value: `not measured: ${err instanceof Error ? err.message.split('\n')[0] : String(err)}`,
      baseline: '–',
      target: 'all within 3× one deployment, exactly once, nothing lost',
      met: false,
    }),
  );
  console.log(`bench: steady state after the burst, 2 × ${SIZES.steadySeconds} s`);
  await steadyState(env, replica, `after the burst (${await recordCount(env)} deployment records kept)`);
  console.log(`bench: acknowledgement at ${SIZES.rates.join(', ')} events/s`);
  const before = BEFORE ? await serviceAt(env, BEFORE) : undefined;
  try {
    await acknowledgement(env, events, [{ label: 'now', port: replica.port, stop: async () => undefined }, ...(before ? [before] : [])]);
  } finally {
    await before?.stop();
  }
  console.log(`bench: steady state after the acknowledgement rounds, 2 × ${SIZES.steadySeconds} s`);
  await steadyState(env, replica, `after the acknowledgement rounds (${await recordCount(env)} deployment records kept)`);
} catch (err: unknown) {
  failure = err;
  console.error('bench failed:', err);
} finally {
  events.close();
  await replica?.stop().catch(() => undefined);
  await env.stop();
}

const cpuModel = cpus()[0]?.model ?? 'unknown';
const report = `# Benchmarks

Measured by \`npm run bench\` (bench/run.ts) against the real peers of test/env: kube-apiserver with kwok, Flux,
Argo CD, the Git server, NATS and the Keptn distributor, with the service as its own process. Every figure has a
baseline measured in the same run, because the machine is shared and noisy.

- Command: \`${[
  'BENCH_TOOLS',
  'BENCH_BEFORE',
  'BENCH_DEPLOYMENTS',
  'BENCH_BASELINE_SAMPLES',
  'BENCH_BURST',
  'BENCH_OBJECTS',
  'BENCH_RATES',
  'BENCH_RATE_SECONDS',
  'BENCH_STEADY_SECONDS',
  'BENCH_FLUX_WORKERS',
]
  .filter((k) => process.env[k])
  .map((k) => `${k}=${process.env[k]}`)
  .concat('npm run bench')
  .join(' ')}\`
- Machine: ${cpus().length} cores (${cpuModel}), ${(totalmem() / 2 ** 30).toFixed(1)} GiB memory, ${type()}, Node ${process.version}; shared with other work
- Date: ${started.toISOString()} (took ${((Date.now() - started.getTime()) / 60_000).toFixed(1)} min)
- Sizes: ${JSON.stringify(SIZES)}${BEFORE ? `; acknowledgement also measured for the service at ${BEFORE}` : ''}
${failure ? `- **The run failed before it ended**: ${failure instanceof Error ? failure.message.split('\n')[0] : String(failure)}\n` : ''}
${table(rows)}

${details.map((d) => `- ${d}`).join('\n')}
`;
console.log(`\n${table(rows)}\n`);
// The analysis below the marker is written by hand from a run's figures; a new run keeps it for the next edit.
const MARKER = '## Why targets are missed, and what would close them';
const previous = await readFile(OUT, 'utf8').catch(() => '');
const kept = previous.includes(MARKER) ? previous.slice(previous.indexOf(MARKER)) : `${MARKER}\n\n(not written yet)\n`;
await writeFile(OUT, `${report}\n${kept}`, 'utf8');
console.log(`bench: wrote ${OUT}`);
process.exit(failure ? 1 : 0);
