// What every measure observes, independently of the service: events on NATS, the controllers' objects, the Git ref;
// the rules that say a tool finished a revision; the sample apps and triggers.
import { Watch, type KubernetesObject } from '@kubernetes/client-node';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { type Environment } from '../test/env/environment.js';
import { keptnEvent, type KeptnCloudEvent } from '../test/env/keptn.js';
import { waitUntil } from '../test/env/process.js';
import { appFiles, IMAGE, keptnSecret, settingsYaml, toolObjects, type TestApp, type Tool } from '../test/env/sample-app.js';
import { PROJECT, now } from './common.js';

// ---------------------------------------------------------------------------------------------------------------
// Observers, independent of the service: Keptn's side (NATS), the controllers' objects (a watch), the Git server.

export interface Arrival {
  started: number[];
  finished: number[];
  last?: KeptnCloudEvent;
}

/** Every `.started`/`.finished` with the time it arrived on NATS, as Keptn's control plane sees it. */
export function observeEvents(env: Environment) {
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

export interface Seen {
  t: number;
  obj: KubernetesObject & { status?: Record<string, unknown>; spec?: Record<string, unknown> };
}

/** A watch of one collection, keeping every version of every object with the time it was seen. */
export async function observeObjects(env: Environment, path: string): Promise<{ history: Map<string, Seen[]>; stop(): void }> {
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
export function observeRef(env: Environment, repo: string) {
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
export async function every<T>(
  what: string,
  intervalMs: number,
  timeoutMs: number,
  probe: () => Promise<T | undefined | false>,
): Promise<T> {
  const deadline = now() + timeoutMs;
  for (;;) {
    const value = await probe().catch(() => undefined);
    if (value !== undefined && value !== false) return value;
    if (now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}

export const first = (seen: Seen[] | undefined, pred: (o: Seen['obj']) => boolean, after = 0) =>
  seen?.find((s) => s.t >= after && pred(s.obj))?.t;

export type Cond = { type?: string; status?: string; message?: string };
export const conditions = (o: Seen['obj']) => ((o.status?.['conditions'] as Cond[] | undefined) ?? []) as Cond[];

/** Flux kustomize-controller 1.9: lastAppliedRevision is written only after apply and health checks succeeded. */
export function fluxFinal(o: Seen['obj'], sha: string): boolean {
  const applied = String(o.status?.['lastAppliedRevision'] ?? '');
  const gen = o.metadata?.generation ?? 0;
  return (
    applied.includes(sha) &&
    Number(o.status?.['observedGeneration'] ?? -1) >= gen &&
    conditions(o).some((c) => c.type === 'Ready' && c.status === 'True')
  );
}
/** kustomize-controller marks Reconciling "Running health checks for revision …" once the apply is done. */
export const fluxHealthStart = (o: Seen['obj'], sha: string) =>
  conditions(o).some((c) => /health/i.test(c.message ?? '') && (c.message ?? '').includes(sha));
/** source-controller 1.9: the artifact's revision is `<branch>@sha1:<sha>` once fetched. */
export const fluxFetched = (o: Seen['obj'], sha: string) =>
  String((o.status?.['artifact'] as { revision?: string } | undefined)?.revision ?? '').includes(sha);
/** Argo CD 3.5: synced to the revision, healthy, and no operation still running on it. */
export function argoFinal(o: Seen['obj'], sha: string): boolean {
  const s = o.status as
    { sync?: { status?: string; revision?: string }; health?: { status?: string }; operationState?: { phase?: string } } | undefined;
  return (
    s?.sync?.revision === sha &&
    s.sync.status === 'Synced' &&
    s.health?.status === 'Healthy' &&
    (s.operationState?.phase ?? 'Succeeded') === 'Succeeded'
  );
}
export const finalFor = (tool: Tool) => (tool === 'flux' ? fluxFinal : argoFinal);
export const targetPath = (tool: Tool) =>
  tool === 'flux'
    ? '/apis/kustomize.toolkit.fluxcd.io/v1/namespaces/flux-system/kustomizations'
    : '/apis/argoproj.io/v1alpha1/namespaces/argocd/applications';

// ---------------------------------------------------------------------------------------------------------------

export function triggered(service: string, tag: string): KeptnCloudEvent {
  return keptnEvent('sh.keptn.event.deployment.triggered', {
    project: PROJECT,
    stage: 'dev',
    service,
    configurationChange: { values: { image: `${IMAGE}:${tag}` } },
    deployment: { deploymentstrategy: 'direct' },
  });
}

export async function makeApp(env: Environment, tool: Tool, name: string): Promise<TestApp> {
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

export async function waitFinal(watch: { history: Map<string, Seen[]> }, tool: Tool, name: string, sha: string, timeoutMs: number) {
  return waitUntil(`${name} at ${sha.slice(0, 8)}`, async () => first(watch.history.get(name), (o) => finalFor(tool)(o, sha)), {
    timeoutMs,
  });
}
