/**
 * One shared list-then-watch per resource kind, feeding every waiter from one cache.
 * Lists, watches from the list's resourceVersion, resumes from the last seen version after a clean close, relists
 * on 410 Gone and after errors (with the retry policy's capped, jittered backoff), and relists periodically as a
 * safety net. A list or watch the API server refuses (403) or does not serve (404: the CRD is not installed) is
 * surfaced at once through `synced`, so a waiter fails with the reason instead of waiting for its deadline; the watch
 * itself keeps retrying, so it recovers once the permission is granted or the CRD installed.
 * See docs/adr/0004-watch-not-poll.md.
 */
import { CustomObjectsApi, Watch, type KubeConfig } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import { ServiceError, type ErrorCode } from '../../shared/errors.js';
import { backoffDelay, type RetryPolicy } from '../../shared/retry.js';

export interface KubeObject {
  apiVersion?: string;
  kind?: string;
  metadata: { name: string; namespace?: string; resourceVersion?: string; generation?: number; [k: string]: unknown };
  [k: string]: unknown;
}

export interface ResourceKind {
  group: string;
  version: string;
  plural: string;
}

export type Listener<T> = (obj: T | undefined) => void;

export interface WatchOptions {
  /** Safety-net relist, jittered ±20 %. Default 5 minutes. */
  relistIntervalMs?: number;
  /** Delays between a failed list or watch and the next list; a watch never stops retrying. */
  backoff?: Pick<RetryPolicy, 'baseDelayMs' | 'maxDelayMs'>;
  /** Server-side watch timeout; kept below client-node's 30 s inactivity limit. */
  watchTimeoutSeconds?: number;
  /** For tests: the random source of the backoff's jitter. */
  random?: () => number;
  /** Hears every relist after a 410 Gone (`expired`) or a failed list or watch (`error`); not the periodic relist. */
  onRestart?: (resource: string, reason: 'expired' | 'error') => void;
}

/** What a waiter reads of a watched kind: the shared cache, change notifications, and whether it has listed. */
export interface ObjectWatch<T extends KubeObject> {
  readonly resource: string;
  readonly synced: Promise<void>;
  get(namespace: string, name: string): T | undefined;
  subscribe(namespace: string, name: string, listener: Listener<T>): () => void;
  /** Calls `listener` with every cached object now (if synced) and on every later change of any object of the kind. */
  subscribeAll(listener: (key: string, obj: T | undefined) => void): () => void;
  /**
   * Calls `listener` each time the watch is listed and watching again after failed lists or watches (the API server
   * was away): the cache is current again, but the controllers' writes failed meanwhile too, and they back off.
   */
  onResumed(listener: () => void): () => void;
}

export const WATCH_BACKOFF: Pick<RetryPolicy, 'baseDelayMs' | 'maxDelayMs'> = { baseDelayMs: 500, maxDelayMs: 30_000 };

export type WatchState = 'starting' | 'synced' | 'degraded' | 'stopped';

/** A list or watch the API server refused (FORBIDDEN) or does not serve (NOT_FOUND), or a wait for the first list that ran out of time. */
export class WatchError extends ServiceError {}

export class SharedWatch<T extends KubeObject> implements ObjectWatch<T> {
  private readonly cache = new Map<string, T>();
  private readonly listeners = new Map<string, Set<Listener<T>>>();
  /** Listeners of every object of the kind (the observer of changes made in Git); called with the object's key. */
  private readonly kindListeners = new Set<(key: string, obj: T | undefined) => void>();
  private readonly resumedListeners = new Set<() => void>();
  private resourceVersion: string | undefined;
  private abort: AbortController | undefined;
  private stopped = false;
  /** Bumped for every list and every watch connection, so callbacks of a superseded one are ignored. */
  private epoch = 0;
  /** Failed lists and watches since the last success: the backoff's attempt number. */
  private failures = 0;
  private timer: NodeJS.Timeout | undefined;
  /** Set while the latest list or watch was refused (403) or not served (404); cleared by the next success. */
  private refusal: WatchError | undefined;
  private readonly syncWaiters = new Set<{ resolve: () => void; reject: (err: Error) => void }>();
  state: WatchState = 'starting';

  constructor(
    private readonly kc: KubeConfig,
    readonly kind: ResourceKind,
    private readonly log: Logger,
    private readonly opts: WatchOptions = {},
    /** Lists and watches this namespace only (namespaced mode); default: the whole cluster. */
    private readonly namespace?: string,
  ) {}

  start(): void {
    void this.relist();
  }

  stop(): void {
    this.stopped = true;
    this.state = 'stopped';
    this.epoch++;
    clearTimeout(this.timer);
    this.abort?.abort();
    this.settleWaiters(new WatchError('API_ERROR', `the watch of ${this.resource} was stopped`));
  }

  /**
   * Resolves once the kind has been listed and is being watched (at once if it was), rejects at once while the API
   * server refuses the list or watch or does not serve the kind; otherwise waits (see `untilSynced` for a deadline).
   */
  get synced(): Promise<void> {
    if (this.refusal) return Promise.reject(this.refusal);
    if (this.state === 'synced' || this.state === 'degraded') return Promise.resolve();
    if (this.state === 'stopped') return Promise.reject(new WatchError('API_ERROR', `the watch of ${this.resource} was stopped`));
    return new Promise<void>((resolve, reject) => this.syncWaiters.add({ resolve, reject }));
  }

  get(namespace: string, name: string): T | undefined {
    return this.cache.get(key(namespace, name));
  }

  /** Calls `listener` now with the cached object (if synced) and on every later change of that object. */
  subscribe(namespace: string, name: string, listener: Listener<T>): () => void {
    const k = key(namespace, name);
    let set = this.listeners.get(k);
    if (!set) this.listeners.set(k, (set = new Set()));
    set.add(listener);
    if (this.state !== 'starting') queueMicrotask(() => listener(this.cache.get(k)));
    return () => {
      set.delete(listener);
      if (set.size === 0) this.listeners.delete(k);
    };
  }

  /**
   * Calls `listener` for every cached object now (if synced) and on every later change of any object of the kind,
   * with its `namespace/name` key (`undefined`: deleted).
   */
  subscribeAll(listener: (key: string, obj: T | undefined) => void): () => void {
    this.kindListeners.add(listener);
    if (this.state !== 'starting') queueMicrotask(() => this.cache.forEach((obj, k) => listener(k, obj)));
    return () => void this.kindListeners.delete(listener);
  }

  onResumed(listener: () => void): () => void {
    this.resumedListeners.add(listener);
    return () => void this.resumedListeners.delete(listener);
  }

  /** `kustomizations.kustomize.toolkit.fluxcd.io`, as RBAC rules and CRDs name it. */
  get resource(): string {
    return `${this.kind.plural}.${this.kind.group}${this.namespace ? ` in namespace ${this.namespace}` : ''}`;
  }

  private get path(): string {
    const { group, version, plural } = this.kind;
    return `/apis/${group}/${version}${this.namespace ? `/namespaces/${this.namespace}` : ''}/${plural}`;
  }

  private async relist(): Promise<void> {
    if (this.stopped) return;
    clearTimeout(this.timer);
    const epoch = ++this.epoch;
    this.abort?.abort();
    this.abort = undefined;
    let list: { items: T[]; metadata?: { resourceVersion?: string } };
    try {
      const api = this.kc.makeApiClient(CustomObjectsApi);
      list = (
        this.namespace
          ? await api.listNamespacedCustomObject({ ...this.kind, namespace: this.namespace })
          : await api.listClusterCustomObject({ ...this.kind })
      ) as typeof list;
    } catch (err: unknown) {
      if (epoch === this.epoch) this.failed('list', err);
      return;
    }
    if (epoch !== this.epoch || this.stopped) return;
    const seen = new Set<string>();
    for (const item of list.items) {
      const k = key(item.metadata.namespace ?? '', item.metadata.name);
      seen.add(k);
      this.update(k, item);
    }
    for (const k of [...this.cache.keys()]) if (!seen.has(k)) this.update(k, undefined);
    this.resourceVersion = list.metadata?.resourceVersion;
    await this.watch(true);
  }

  /** `afterList`: a fresh list starts the periodic relist's clock; resuming after a clean close does not. */
  private async watch(afterList = false): Promise<void> {
    if (this.stopped) return;
    const epoch = ++this.epoch;
    const current = () => epoch === this.epoch && !this.stopped;
    let gone = false;
    let ended = false;
    let controller: AbortController;
    try {
      controller = await new Watch(this.kc).watch(
        this.path,
        { resourceVersion: this.resourceVersion, allowWatchBookmarks: true, timeoutSeconds: this.opts.watchTimeoutSeconds ?? 20 },
        (phase: string, obj: T & { code?: number }) => {
          if (!current()) return;
          if (phase === 'ERROR') {
            if (obj?.code === 410) gone = true;
            return;
          }
          if (obj?.metadata?.resourceVersion) this.resourceVersion = obj.metadata.resourceVersion;
          if (phase === 'BOOKMARK') return;
          this.update(key(obj.metadata.namespace ?? '', obj.metadata.name), phase === 'DELETED' ? undefined : obj);
        },
        (err: unknown) => {
          ended = true;
          if (!current()) return;
          if (gone) {
            this.log.debug({ kind: this.kind.plural }, 'watch expired, relisting');
            this.opts.onRestart?.(this.resource, 'expired');
            void this.relist();
          } else if (err && !isAbort(err)) {
            this.failed('watch', err);
          } else {
            // A clean close (the server-side timeout): resume from where we were.
            void this.watch();
          }
        },
      );
    } catch (err: unknown) {
      if (current()) this.failed('watch', err);
      return;
    }
    if (!current()) {
      controller.abort();
      return;
    }
    if (ended) return;
    this.abort = controller;
    // Listed and watching: the cache is current.
    const resumed = this.failures > 0;
    this.failures = 0;
    this.refusal = undefined;
    this.state = 'synced';
    this.settleWaiters();
    if (afterList) this.scheduleRelist();
    if (resumed) for (const listener of this.resumedListeners) listener();
  }

  private scheduleRelist(): void {
    clearTimeout(this.timer);
    this.timer = setTimeout(() => void this.relist(), jitter(this.opts.relistIntervalMs ?? 5 * 60_000));
    this.timer.unref();
  }

  private failed(what: 'list' | 'watch', err: unknown): void {
    if (this.stopped) return;
    this.failures++;
    this.refusal = refusalOf(this.kind, this.resource, what, err);
    if (this.refusal) this.settleWaiters(this.refusal);
    if (this.state === 'synced') this.state = 'degraded';
    const delay = backoffDelay(this.opts.backoff ?? WATCH_BACKOFF, this.failures, this.opts.random);
    const log = { kind: this.resource, phase: what, status: statusCodeOf(err), err, retryInMs: delay };
    if (this.refusal) this.log.error(log, 'the Kubernetes API refused the watch');
    else this.log.warn(log, 'watch failed, relisting after a backoff');
    this.opts.onRestart?.(this.resource, 'error');
    clearTimeout(this.timer);
    this.timer = setTimeout(() => void this.relist(), delay);
    this.timer.unref();
  }

  private settleWaiters(err?: Error): void {
    for (const waiter of this.syncWaiters) {
      if (err) waiter.reject(err);
      else waiter.resolve();
    }
    this.syncWaiters.clear();
  }

  private update(k: string, changed: T | undefined): void {
    const obj = changed && slim(changed);
    if (obj) this.cache.set(k, obj);
    else this.cache.delete(k);
    for (const listener of this.listeners.get(k) ?? []) listener(obj);
    for (const listener of this.kindListeners) listener(k, obj);
  }
}

/** The time a first list gets however late it is asked for (wait.ts FIRST_LOOK_MS is the same). */
export const FIRST_LIST_MS = 30_000;
/**
 * Waits for watches' first list (`synced`, or several joined with Promise.all), bounded by the deployment's deadline,
 * but never by less than `minimumMs`: a wait resumed after its deadline (the service was away) still gets its first
 * look at what the tool did meanwhile (ADR 14). A refused list rejects at once with its reason.
 */
export async function untilSynced(synced: Promise<unknown>, deadline: number, what: string, minimumMs = FIRST_LIST_MS): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new WatchError('API_ERROR', `could not list ${what} from the Kubernetes API before the deadline`, { retryable: true })),
      Math.max(minimumMs, deadline - Date.now()),
    );
  });
  try {
    await Promise.race([synced, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** The HTTP status of a failed Kubernetes call: client-node's ApiException (`code`) or Watch error (`statusCode`). */
export function statusCodeOf(err: unknown): number | undefined {
  const e = err as { code?: unknown; statusCode?: unknown } | null | undefined;
  if (typeof e?.statusCode === 'number') return e.statusCode;
  if (typeof e?.code === 'number') return e.code;
  return undefined;
}

/**
 * The API server's own words from a failed call's Status body (e.g. `... cannot patch resource "applications" in API
 * group "argoproj.io" ...`), looked up through `cause`s; they name the missing permission exactly.
 */
export function kubeStatusMessage(err: unknown): string | undefined {
  for (let e = err, depth = 0; e && typeof e === 'object' && depth < 5; e = (e as { cause?: unknown }).cause, depth++) {
    let body = (e as { body?: unknown }).body;
    if (typeof body === 'string') {
      try {
        body = JSON.parse(body);
      } catch {
        continue;
      }
    }
    const message = (body as { message?: unknown } | null | undefined)?.message;
    if (typeof message === 'string' && message) return message.slice(0, 500);
  }
  return undefined;
}

function refusalOf(kind: ResourceKind, resource: string, what: 'list' | 'watch', err: unknown): WatchError | undefined {
  const status = statusCodeOf(err);
  const said = kubeStatusMessage(err);
  const code: ErrorCode | undefined = status === 403 ? 'FORBIDDEN' : status === 404 ? 'NOT_FOUND' : undefined;
  if (!code) return undefined;
  const message =
    code === 'FORBIDDEN'
      ? `cannot ${what} ${resource}: forbidden; grant the service account list and watch on ${kind.plural} ` +
        `in API group ${kind.group}, cluster-wide${said ? ` (${said})` : ''}`
      : `cannot ${what} ${resource}: the API server does not serve ${kind.group}/${kind.version} ${kind.plural}; ` +
        `the CRD is not installed (or not at version ${kind.version})`;
  return new WatchError(code, message, { cause: err });
}

/** Written by `kubectl apply` (client-side): the whole object again, as JSON. */
const LAST_APPLIED = 'kubectl.kubernetes.io/last-applied-configuration';

/**
 * What the cache keeps of an object: everything but `metadata.managedFields` and kubectl's last-applied copy, which no
 * rule reads and which are often the larger part of an object (as controller-runtime's TransformStripManagedFields
 * drops them from its informers' caches): the cache holds every object of a watched kind, so they would be kept for
 * each of them.
 */
export function slim<T extends KubeObject>(obj: T): T {
  const metadata: Record<string, unknown> = { ...obj.metadata };
  delete metadata['managedFields'];
  const annotations = metadata['annotations'] as Record<string, string> | undefined;
  if (annotations && LAST_APPLIED in annotations) {
    const rest = { ...annotations };
    delete rest[LAST_APPLIED];
    metadata['annotations'] = rest;
  }
  return { ...obj, metadata } as T;
}

function key(namespace: string, name: string): string {
  return `${namespace}/${name}`;
}

function jitter(ms: number): number {
  return ms * (0.8 + Math.random() * 0.4);
}

function isAbort(err: unknown): boolean {
  return err instanceof Error && err.name === 'AbortError';
}
