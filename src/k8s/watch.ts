/**
 * One shared list-then-watch per resource kind, feeding every waiter from one cache.
 * Lists, watches from the list's resourceVersion, resumes from the last seen version after a clean close, relists
 * on 410 Gone and after errors (with capped, jittered backoff), and relists periodically as a safety net.
 * See docs/adr/0004-watch-not-poll.md.
 */
import { CustomObjectsApi, Watch, type KubeConfig } from '@kubernetes/client-node';
import type { Logger } from 'pino';

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
  relistIntervalMs?: number;
  maxBackoffMs?: number;
  /** Server-side watch timeout; kept below client-node's 30 s inactivity limit. */
  watchTimeoutSeconds?: number;
}

export type WatchState = 'starting' | 'synced' | 'degraded' | 'stopped';

export class SharedWatch<T extends KubeObject> {
  private readonly cache = new Map<string, T>();
  private readonly listeners = new Map<string, Set<Listener<T>>>();
  private resourceVersion: string | undefined;
  private abort: AbortController | undefined;
  private stopped = false;
  /** Bumped for every new watch, so callbacks of a superseded watch are ignored. */
  private generation = 0;
  private failures = 0;
  private relistTimer: NodeJS.Timeout | undefined;
  private syncedOnce!: () => void;
  /** Resolves after the first successful list. */
  readonly synced = new Promise<void>((resolve) => (this.syncedOnce = resolve));
  state: WatchState = 'starting';

  constructor(
    private readonly kc: KubeConfig,
    readonly kind: ResourceKind,
    private readonly log: Logger,
    private readonly opts: WatchOptions = {},
  ) {}

  start(): void {
    void this.relist();
  }

  stop(): void {
    this.stopped = true;
    this.state = 'stopped';
    clearTimeout(this.relistTimer);
    this.abort?.abort();
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

  private get path(): string {
    const { group, version, plural } = this.kind;
    return `/apis/${group}/${version}/${plural}`;
  }

  private async relist(): Promise<void> {
    if (this.stopped) return;
    clearTimeout(this.relistTimer);
    this.generation++;
    this.abort?.abort();
    try {
      const api = this.kc.makeApiClient(CustomObjectsApi);
      const list = (await api.listClusterCustomObject({ ...this.kind })) as { items: T[]; metadata?: { resourceVersion?: string } };
      const seen = new Set<string>();
      for (const item of list.items) {
        const k = key(item.metadata.namespace ?? '', item.metadata.name);
        seen.add(k);
        this.update(k, item);
      }
      for (const k of [...this.cache.keys()]) if (!seen.has(k)) this.update(k, undefined);
      this.resourceVersion = list.metadata?.resourceVersion;
      this.failures = 0;
      this.state = 'synced';
      this.syncedOnce();
      this.relistTimer = setTimeout(() => void this.relist(), jitter(this.opts.relistIntervalMs ?? 5 * 60_000));
      this.relistTimer.unref();
      await this.watch();
    } catch (err: unknown) {
      this.retryLater('list', err);
    }
  }

  private async watch(): Promise<void> {
    if (this.stopped) return;
    const generation = ++this.generation;
    const current = () => generation === this.generation && !this.stopped;
    let gone = false;
    this.abort = await new Watch(this.kc).watch(
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
        const k = key(obj.metadata.namespace ?? '', obj.metadata.name);
        this.update(k, phase === 'DELETED' ? undefined : obj);
      },
      (err: unknown) => {
        if (!current()) return;
        if (gone) {
          this.log.debug({ kind: this.kind.plural }, 'watch expired, relisting');
          void this.relist();
        } else if (err && !isAbort(err)) {
          this.retryLater('watch', err);
        } else {
          // A clean close (the server-side timeout): resume from where we were.
          void this.watch().catch((e: unknown) => this.retryLater('watch', e));
        }
      },
    );
  }

  private retryLater(what: string, err: unknown): void {
    if (this.stopped) return;
    this.failures++;
    this.state = this.state === 'starting' ? 'starting' : 'degraded';
    const delay = jitter(Math.min(500 * 2 ** Math.min(this.failures - 1, 10), this.opts.maxBackoffMs ?? 30_000));
    this.log.warn({ kind: this.kind.plural, err: errorText(err), retryInMs: Math.round(delay) }, `${what} failed`);
    clearTimeout(this.relistTimer);
    this.relistTimer = setTimeout(() => void this.relist(), delay);
    this.relistTimer.unref();
  }

  private update(k: string, obj: T | undefined): void {
    if (obj) this.cache.set(k, obj);
    else this.cache.delete(k);
    for (const listener of this.listeners.get(k) ?? []) listener(obj);
  }
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

function errorText(err: unknown): string {
  if (err && typeof err === 'object' && 'code' in err && 'body' in err) return `HTTP ${String((err as { code: unknown }).code)}`;
  return err instanceof Error ? err.message : String(err);
}
