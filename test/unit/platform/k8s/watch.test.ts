// The shared watch's state machine against an in-process HTTP server that speaks the Kubernetes list/watch protocol
// (a list answers `{items, metadata.resourceVersion}`; `?watch=true` streams one JSON event a line; a 410 comes as an
// ERROR event, a refusal as a Status with its HTTP code), as client-node tests its own cache.
import { afterEach, beforeEach, describe, expect, it } from '@jest/globals';
import { KubeConfig } from '@kubernetes/client-node';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { NamespacedWatches } from '../../../../src/platform/k8s/namespaced.js';
import { SharedWatch, untilSynced, WatchError, type KubeObject, type WatchOptions } from '../../../../src/platform/k8s/watch.js';
import { silentLog } from '../../helpers.js';

const KIND = { group: 'kustomize.toolkit.fluxcd.io', version: 'v1', plural: 'kustomizations' };
const PATH = '/apis/kustomize.toolkit.fluxcd.io/v1/kustomizations';
const NAMESPACED_PATH = '/apis/kustomize.toolkit.fluxcd.io/v1/namespaces/ns/kustomizations';

interface Obj extends KubeObject {
  spec?: { n: number };
}

/** What the server was asked, in order: `list`, or `watch@<resourceVersion>`. */
type Request = string;

class FakeApiServer {
  private server!: Server;
  url = '';
  /** The paths asked for: cluster-wide or namespaced. */
  paths = new Set<string>();
  private rv = 100;
  readonly objects = new Map<string, Obj>();
  readonly requests: Request[] = [];
  readonly requestTimes: number[] = [];
  /** Open watch streams. */
  readonly streams = new Set<ServerResponse>();
  /** Status codes the next lists (and watches) answer with, in order; empty: answer normally. */
  listFailures: number[] = [];
  watchFailures: number[] = [];

  async start(): Promise<void> {
    this.server = createServer((req, res) => this.handle(req, res));
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  async stop(): Promise<void> {
    for (const s of this.streams) s.destroy();
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  kubeConfig(): KubeConfig {
    const kc = new KubeConfig();
    kc.loadFromOptions({
      clusters: [{ name: 'fake', server: this.url, skipTLSVerify: true }],
      users: [{ name: 'fake' }],
      contexts: [{ name: 'fake', cluster: 'fake', user: 'fake' }],
      currentContext: 'fake',
    });
    return kc;
  }

  /** Creates or changes an object and tells the open watches. */
  put(name: string, n: number): void {
    const type = this.objects.has(name) ? 'MODIFIED' : 'ADDED';
    const obj: Obj = {
      apiVersion: 'kustomize.toolkit.fluxcd.io/v1',
      kind: 'Kustomization',
      metadata: { name, namespace: 'ns', resourceVersion: String(++this.rv) },
      spec: { n },
    };
    this.objects.set(name, obj);
    this.send({ type, object: obj });
  }

  remove(name: string): void {
    const obj = this.objects.get(name)!;
    this.objects.delete(name);
    this.send({ type: 'DELETED', object: { ...obj, metadata: { ...obj.metadata, resourceVersion: String(++this.rv) } } });
  }

  /** Changes the store without telling the watches (what a client misses while it is away). */
  putSilently(name: string, n: number): void {
    this.objects.set(name, { metadata: { name, namespace: 'ns', resourceVersion: String(++this.rv) }, spec: { n } });
  }

  removeSilently(name: string): void {
    this.objects.delete(name);
    this.rv++;
  }

  /** The watch's resourceVersion is too old: an ERROR event with a 410 Status, then the server closes. */
  expire(): void {
    this.send({
      type: 'ERROR',
      object: { kind: 'Status', apiVersion: 'v1', status: 'Failure', reason: 'Expired', code: 410, message: 'too old resource version' },
    });
    this.closeWatches();
  }

  /** The server-side watch timeout: a clean end of the stream. */
  closeWatches(): void {
    for (const s of this.streams) s.end();
    this.streams.clear();
  }

  send(event: unknown): void {
    for (const s of this.streams) s.write(`${JSON.stringify(event)}\n`);
  }

  private handle(req: IncomingMessage, res: ServerResponse): void {
    const url = new URL(req.url ?? '/', this.url);
    this.paths.add(url.pathname);
    // Every object lives in namespace `ns`: the namespaced path serves the same store.
    if (url.pathname !== PATH && url.pathname !== NAMESPACED_PATH)
      return void status(res, 404, 'NotFound', 'the server could not find the requested resource');
    this.requestTimes.push(Date.now());
    if (url.searchParams.get('watch') === 'true') {
      this.requests.push(`watch@${url.searchParams.get('resourceVersion')}`);
      const failure = this.watchFailures.shift();
      if (failure) return void status(res, failure, 'Failure', 'watch refused');
      res.writeHead(200, { 'content-type': 'application/json' });
      res.flushHeaders();
      this.streams.add(res);
      req.on('close', () => this.streams.delete(res));
      return;
    }
    this.requests.push('list');
    const failure = this.listFailures.shift();
    if (failure === 403) {
      return void status(
        res,
        403,
        'Forbidden',
        `kustomizations.kustomize.toolkit.fluxcd.io is forbidden: User "system:serviceaccount:keptn:gitops" cannot list resource "kustomizations" in API group "kustomize.toolkit.fluxcd.io" at the cluster scope`,
      );
    }
    if (failure) return void status(res, failure, 'Failure', 'not now');
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(
      JSON.stringify({
        apiVersion: 'kustomize.toolkit.fluxcd.io/v1',
        kind: 'KustomizationList',
        metadata: { resourceVersion: String(this.rv) },
        items: [...this.objects.values()],
      }),
    );
  }
}

function status(res: ServerResponse, code: number, reason: string, message: string): void {
  res.writeHead(code, { 'content-type': 'application/json' });
  res.end(JSON.stringify({ kind: 'Status', apiVersion: 'v1', status: 'Failure', reason, message, code }));
}

/** Waits for a condition (not for time): polls it until it holds or `timeoutMs` passes. */
async function until(what: string, condition: () => boolean, timeoutMs = 5_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > end) throw new Error(`timed out waiting until ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

let api: FakeApiServer;
let watch: SharedWatch<Obj> | undefined;

beforeEach(async () => {
  api = new FakeApiServer();
  await api.start();
});

afterEach(async () => {
  watch?.stop();
  watch = undefined;
  await api.stop();
});

function startWatch(opts: WatchOptions = {}): SharedWatch<Obj> {
  watch = new SharedWatch<Obj>(api.kubeConfig(), KIND, silentLog, { backoff: { baseDelayMs: 20, maxDelayMs: 50 }, ...opts });
  watch.start();
  return watch;
}

describe('list then watch', () => {
  it('lists, watches from the list resourceVersion, and follows every change', async () => {
    api.put('a', 1);
    const w = startWatch();
    await w.synced;
    expect(w.state).toBe('synced');
    expect(api.requests).toEqual(['list', 'watch@101']);
    expect(w.get('ns', 'a')?.spec).toEqual({ n: 1 });

    const seen: Array<number | undefined> = [];
    w.subscribe('ns', 'a', (o) => seen.push(o?.spec?.n));
    await until('the subscriber got the cached object', () => seen.length === 1);
    api.put('a', 2);
    api.put('b', 1);
    api.remove('a');
    await until('the deletion arrived', () => seen.length === 3);
    expect(seen).toEqual([1, 2, undefined]);
    expect(w.get('ns', 'b')?.spec).toEqual({ n: 1 });
  });

  it('resumes from the last seen resourceVersion after a clean close, without a relist', async () => {
    const w = startWatch();
    await w.synced;
    api.put('a', 1);
    await until('a arrived', () => w.get('ns', 'a') !== undefined);
    api.closeWatches();
    await until('the watch reconnected', () => api.requests.length === 3);
    expect(api.requests).toEqual(['list', 'watch@100', 'watch@101']);
    api.put('a', 2);
    await until('the change after the reconnect arrived', () => w.get('ns', 'a')?.spec?.n === 2);
  });

  it('relists on 410 Gone and drops what was deleted while it was away', async () => {
    api.put('a', 1);
    api.put('b', 1);
    const w = startWatch();
    await w.synced;
    const seen: Array<number | undefined> = [];
    w.subscribe('ns', 'a', (o) => seen.push(o?.spec?.n));
    api.removeSilently('a');
    api.putSilently('b', 2);
    api.expire();
    await until('the relist happened', () => api.requests.filter((r) => r === 'list').length === 2);
    await until('the cache follows the relist', () => w.get('ns', 'a') === undefined && w.get('ns', 'b')?.spec?.n === 2);
    expect(seen.at(-1)).toBeUndefined();
    await until('watching again', () => api.requests.length === 4);
    expect(api.requests.slice(2)).toEqual(['list', 'watch@104']);
  });

  it('relists periodically, replacing the open watch: one watch at a time, callbacks of the old one ignored', async () => {
    api.put('a', 1);
    const w = startWatch({ relistIntervalMs: 100 });
    await w.synced;
    api.removeSilently('a');
    await until('a periodic relist happened', () => api.requests.filter((r) => r === 'list').length >= 2);
    await until('the deletion was noticed by the relist', () => w.get('ns', 'a') === undefined);
    await until('the old watch was closed', () => api.streams.size === 1);
    // Events still written to a superseded stream (none open now) cannot reach the cache; the current one does.
    api.put('c', 7);
    await until('c arrived through the new watch', () => w.get('ns', 'c')?.spec?.n === 7);
    expect(api.streams.size).toBe(1);
  });

  it('backs off after failures: the retry policy delays each relist, and a success resets the count', async () => {
    api.listFailures = [500, 500, 500];
    // random = 1: every delay is its ceiling, 40 ms, then 80, then 160 (the cap).
    const w = startWatch({ backoff: { baseDelayMs: 40, maxDelayMs: 160 }, random: () => 1 });
    await w.synced;
    expect(api.requests).toEqual(['list', 'list', 'list', 'list', 'watch@100']);
    const gaps = api.requestTimes.slice(1, 4).map((t, i) => t - api.requestTimes[i]!);
    // Timers fire no earlier than asked (the 1 ms slack is for millisecond rounding of Date.now()).
    expect(gaps[0]).toBeGreaterThanOrEqual(39);
    expect(gaps[1]).toBeGreaterThanOrEqual(79);
    expect(gaps[2]).toBeGreaterThanOrEqual(159);
    expect(w.state).toBe('synced');

    // A failing watch after a success starts again from the first delay, and the cache stays usable meanwhile.
    api.watchFailures = [500];
    api.closeWatches();
    await until('the watch failed and the watch relisted', () => api.requests.length === 8);
    expect(api.requests.slice(5)).toEqual(['watch@100', 'list', 'watch@100']);
    expect(api.requestTimes[6]! - api.requestTimes[5]!).toBeGreaterThanOrEqual(39);
    expect(api.requestTimes[6]! - api.requestTimes[5]!).toBeLessThan(159);
  });

  it('goes on serving the cache while degraded and is synced again after recovering, telling who asked to hear it', async () => {
    api.put('a', 1);
    const w = startWatch();
    let resumed = 0;
    w.onResumed(() => resumed++);
    await w.synced;
    // A clean close (the server-side timeout) is no recovery: nothing failed.
    api.closeWatches();
    await until('watching again', () => api.requests.length === 3);
    expect(resumed).toBe(0);
    api.watchFailures = [503, 503];
    api.closeWatches();
    await until('degraded', () => w.state === 'degraded');
    await expect(w.synced).resolves.toBeUndefined();
    expect(w.get('ns', 'a')?.spec?.n).toBe(1);
    await until('synced again', () => w.state === 'synced');
    expect(resumed).toBe(1);
  });
});

describe('refusals are surfaced at once', () => {
  it('a 403 on the first list rejects synced with the permission to grant, and the watch recovers once granted', async () => {
    api.listFailures = [403, 403];
    const w = startWatch({ backoff: { baseDelayMs: 200, maxDelayMs: 200 }, random: () => 1 });
    const err = await w.synced.catch((e: unknown) => e);
    // Told after the first answer, not after retries.
    expect(api.requests).toEqual(['list']);
    expect(err).toBeInstanceOf(WatchError);
    expect(err).toMatchObject({ code: 'FORBIDDEN', retryable: false });
    expect((err as Error).message).toMatch(
      /^cannot list kustomizations\.kustomize\.toolkit\.fluxcd\.io: forbidden; grant the service account list and watch on kustomizations in API group kustomize\.toolkit\.fluxcd\.io/,
    );
    expect((err as Error).message).toContain('cannot list resource "kustomizations"');
    // Still refused on the next attempt; then granted.
    await until('the second list', () => api.requests.length >= 2);
    await expect(w.synced).rejects.toMatchObject({ code: 'FORBIDDEN' });
    await until('recovered', () => w.state === 'synced', 3_000);
    await expect(w.synced).resolves.toBeUndefined();
  });

  it('a 404 on the first list says the CRD is not installed', async () => {
    api.listFailures = [404];
    const w = startWatch({ backoff: { baseDelayMs: 10_000, maxDelayMs: 10_000 } });
    await expect(w.synced).rejects.toMatchObject({
      code: 'NOT_FOUND',
      message:
        'cannot list kustomizations.kustomize.toolkit.fluxcd.io: the API server does not serve kustomize.toolkit.fluxcd.io/v1 kustomizations; the CRD is not installed (or not at version v1)',
    });
  });

  it('a list that is allowed but a watch that is not (list without watch in the Role) fails too', async () => {
    api.watchFailures = [403];
    const w = startWatch({ backoff: { baseDelayMs: 10_000, maxDelayMs: 10_000 } });
    await expect(w.synced).rejects.toMatchObject({
      code: 'FORBIDDEN',
      message: expect.stringMatching(/^cannot watch kustomizations\.kustomize\.toolkit\.fluxcd\.io: forbidden/),
    });
    expect(w.state).toBe('starting');
  });

  it('a waiter already waiting is told when the refusal arrives', async () => {
    api.listFailures = [500, 403];
    const w = startWatch({ backoff: { baseDelayMs: 30, maxDelayMs: 30 }, random: () => 1 });
    const pending = w.synced;
    await expect(pending).rejects.toMatchObject({ code: 'FORBIDDEN' });
    expect(api.requests).toEqual(['list', 'list']);
  });

  it('transient failures keep a waiter waiting until untilSynced ends it at the deadline', async () => {
    api.listFailures = Array(1000).fill(500);
    const w = startWatch();
    const t0 = Date.now();
    const err = await untilSynced(w.synced, Date.now() + 300, 'Flux Kustomizations', 0).catch((e: unknown) => e);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(290);
    expect(err).toMatchObject({
      code: 'API_ERROR',
      message: 'could not list Flux Kustomizations from the Kubernetes API before the deadline',
    });
    expect(api.requests.length).toBeGreaterThan(2);
  });

  it('a deadline already passed (a wait resumed late) still gives the first list its minimum time', async () => {
    api.listFailures = Array(1000).fill(500);
    const w = startWatch();
    const t0 = Date.now();
    const err = await untilSynced(w.synced, Date.now() - 60_000, 'Flux Kustomizations', 300).catch((e: unknown) => e);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(290);
    expect(err).toMatchObject({ code: 'API_ERROR' });
  });

  it('untilSynced rejects at once on a refusal, long before the deadline', async () => {
    api.listFailures = [403];
    const w = startWatch({ backoff: { baseDelayMs: 10_000, maxDelayMs: 10_000 } });
    await expect(untilSynced(Promise.all([w.synced]), Date.now() + 60_000, 'Flux objects')).rejects.toMatchObject({ code: 'FORBIDDEN' });
    expect(api.requests).toEqual(['list']);
  });

  it('a stopped watch rejects its waiters', async () => {
    api.listFailures = Array(1000).fill(500);
    const w = startWatch();
    const pending = w.synced;
    w.stop();
    await expect(pending).rejects.toThrow(/stopped/);
  });
});

describe('namespaced mode', () => {
  it('lists and watches the namespace only, and refuses an object of any other namespace at once, naming the setting', async () => {
    api.put('a', 1);
    watch = new SharedWatch<Obj>(api.kubeConfig(), KIND, silentLog, { backoff: { baseDelayMs: 20, maxDelayMs: 50 } }, 'ns');
    watch.start();
    const scoped = new NamespacedWatches(new Map([['ns', watch]]), 'kustomizations.kustomize.toolkit.fluxcd.io');
    await scoped.synced;
    expect([...api.paths]).toEqual([NAMESPACED_PATH]);
    expect(scoped.get('ns', 'a')?.spec).toEqual({ n: 1 });
    expect(() => scoped.get('flux-system', 'a')).toThrow(
      expect.objectContaining({
        code: 'FORBIDDEN',
        message: expect.stringMatching(/namespace flux-system: the service watches only ns \(WATCH_NAMESPACES/),
      }),
    );
    expect(() => scoped.subscribe('other', 'a', () => {})).toThrow(WatchError);
  });
});

describe('what the cache keeps', () => {
  it('drops managedFields and kubectl’s last-applied copy, and keeps every other field and annotation', async () => {
    api.objects.set('a', {
      metadata: {
        name: 'a',
        namespace: 'ns',
        resourceVersion: '5',
        managedFields: [{ manager: 'kustomize-controller', fieldsV1: { 'f:spec': {} } }],
        annotations: { 'kubectl.kubernetes.io/last-applied-configuration': '{"big":true}', 'gitops.keptn.sh/projects': 'podtato' },
        labels: { app: 'a' },
      },
      spec: { n: 1 },
    });
    const w = startWatch();
    await w.synced;
    expect(w.get('ns', 'a')).toEqual({
      metadata: {
        name: 'a',
        namespace: 'ns',
        resourceVersion: '5',
        annotations: { 'gitops.keptn.sh/projects': 'podtato' },
        labels: { app: 'a' },
      },
      spec: { n: 1 },
    });
    const seen: unknown[] = [];
    w.subscribe('ns', 'a', (o) => seen.push(o?.metadata['managedFields']));
    await until('the subscriber got the cached object', () => seen.length === 1);
    expect(seen).toEqual([undefined]);
  });
});
