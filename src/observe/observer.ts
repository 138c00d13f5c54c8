/**
 * The loop that owns the I/O of observing: holds the observer Lease and looks at a linked Flux or Argo CD object
 * whenever it may have changed (a change in the shared watches, a notification, a timer of the rules), judging it by
 * the deployment rules (judging.ts, detect.ts); announcer.ts announces each final revision to Keptn exactly once.
 * Every look reads the object as the watch holds it then, so however the look was caused, and in whatever order, the
 * same state gets the same answer (ADR 14).
 */
import { APPLICATIONS } from '../tools/argocd/driver.js';
import { HELMCHARTS, HELMRELEASES, KUSTOMIZATIONS, WORKLOADS } from '../tools/flux/driver.js';
import type { FluxObject } from '../tools/flux/evaluate.js';
import type { Cluster } from '../platform/k8s/cluster.js';
import type { KubeObject, ResourceKind } from '../platform/k8s/watch.js';
import { Announcer, type AnnouncerOptions } from './announcer.js';
import type { ObservedService, ObservedTool } from './detect.js';
import { Judging } from './judging.js';
import type { LinkHint, ObservedKind } from './link.js';
import { Links } from './linking.js';

export { LABELS, uuidFrom, type CommitFacts } from './announcer.js';

/** What the observer needs: the announcer's parties (announcer.ts) and the cluster it watches. */
export interface ObserverOptions extends AnnouncerOptions {
  cluster: Cluster;
  tools: readonly ObservedTool[];
  /** The linked Keptn service's settings: its repository (which source's revision counts) and `argocd` rules. */
  service?(link: LinkHint): Promise<ObservedService | undefined>;
  /** How often the Lease is renewed (and taken over); a quarter of its duration. */
  renewIntervalMs: number;
}

interface Kind {
  kind: ObservedKind;
  resource: ResourceKind;
}

const OBSERVED: Record<ObservedTool, Kind[]> = {
  flux: [
    { kind: 'Kustomization', resource: KUSTOMIZATIONS },
    { kind: 'HelmRelease', resource: HELMRELEASES },
  ],
  argocd: [{ kind: 'Application', resource: APPLICATIONS }],
};

type Obj = KubeObject & FluxObject;

/** What the observer reads of a shared watch (k8s/watch.ts): the cache, and every change of the kind. */
interface KindWatch<T> {
  get(namespace: string, name: string): T | undefined;
  subscribeAll(listener: (key: string, obj: T | undefined) => void): () => void;
}

export class Observer {
  private active = false;
  private timer: NodeJS.Timeout | undefined;
  private ticking: Promise<void> | undefined;
  private unsubscribe: Array<() => void> = [];
  /** Per object: the chain of its considerations, so one object's changes are handled one after another. */
  private readonly chains = new Map<string, Promise<void>>();
  /** Objects seen linked since this replica started observing (their baseline is known to exist). */
  private readonly baselined = new Set<string>();
  /** The last revision handled per object: a controller reporting it again changes nothing. */
  private readonly handled = new Map<string, string>();
  /** Linked objects whose revision is still pending: looked at again when a workload or chart they read changes. */
  private readonly pending = new Map<string, { kind: ObservedKind; key: string; watch: KindWatch<Obj> }>();
  /** The watch of each observed kind, while observing. */
  private readonly watches = new Map<ObservedKind, KindWatch<Obj>>();
  /** Objects with a look queued that has not started yet. */
  private readonly queued = new Set<string>();

  private readonly announcer: Announcer;
  private readonly links: Links;
  private readonly judging: Judging;

  constructor(private readonly opts: ObserverOptions) {
    this.announcer = new Announcer(opts);
    this.links = new Links(opts.log);
    this.judging = new Judging({
      cluster: opts.cluster,
      log: opts.log,
      ...(opts.service ? { service: (link: LinkHint) => opts.service!(link) } : {}),
      lookAgain: (object) => {
        const space = object.indexOf(' ');
        this.wake(object.slice(0, space) as ObservedKind, ...split(object.slice(space + 1)));
      },
    });
  }

  get observing(): boolean {
    return this.active;
  }

  start(): void {
    const tick = () => {
      this.ticking ??= this.tick().finally(() => (this.ticking = undefined));
    };
    tick();
    this.timer = setInterval(tick, this.opts.renewIntervalMs);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    await this.ticking;
    this.deactivate();
    await Promise.allSettled([...this.chains.values()]);
  }

  private async tick(): Promise<void> {
    let held = false;
    try {
      held = await this.opts.lease.acquire();
    } catch (err: unknown) {
      // Not renewed: another replica may take over once it runs out, so stop before that can happen.
      this.opts.log.warn({ err }, 'observer Lease not renewed; observing paused');
    }
    if (held && !this.active) this.activate();
    else if (!held && this.active) this.deactivate();
    if (this.active) await this.announcer.resendUnsent(() => this.active);
  }

  private activate(): void {
    this.active = true;
    this.opts.log.info({ replica: this.opts.lease.identity, tools: this.opts.tools }, 'observing changes made in Git');
    const { cluster } = this.opts;
    for (const tool of this.opts.tools) {
      for (const { kind, resource } of OBSERVED[tool]) {
        const watch = cluster.watch<Obj>(resource);
        this.watches.set(kind, watch);
        this.unsubscribe.push(watch.subscribeAll((key) => this.enqueue(kind, key, watch)));
      }
    }
    // What the Flux rules read besides the object: a change there may decide a pending revision.
    if (this.opts.tools.includes('flux')) {
      const related = [KUSTOMIZATIONS, HELMCHARTS, ...Object.values(WORKLOADS)];
      for (const resource of related) this.unsubscribe.push(cluster.watch(resource).subscribeAll(() => this.reconsiderPending()));
    }
  }

  private deactivate(): void {
    if (this.active) this.opts.log.info({ replica: this.opts.lease.identity }, 'observing stopped');
    this.active = false;
    for (const off of this.unsubscribe.splice(0)) off();
    this.watches.clear();
    this.judging.forget();
    this.pending.clear();
  }

  /**
   * The link an observed object carries, as this replica's watch holds it; undefined when this replica does not
   * observe (another holds the Lease) or the object is not linked. Reads no API.
   */
  linkOf(kind: ObservedKind, namespace: string, name: string): LinkHint | undefined {
    const obj = this.watches.get(kind)?.get(namespace, name);
    return obj && this.links.of(kind, namespace, name, obj.metadata.annotations as Record<string, string> | undefined);
  }

  /**
   * A wake-up (a notification, a timer of the rules): look at the object now, as the watch holds it. It decides
   * nothing by itself, so a repeated, stale or forged one costs a look and changes no verdict (ADR 14).
   */
  wake(kind: ObservedKind, namespace: string, name: string): void {
    const watch = this.watches.get(kind);
    if (watch) this.enqueue(kind, `${namespace}/${name}`, watch);
  }

  private reconsiderPending(): void {
    for (const { kind, key, watch } of this.pending.values()) this.enqueue(kind, key, watch);
  }

  private enqueue(kind: ObservedKind, key: string, watch: KindWatch<Obj>): void {
    if (!this.active) return;
    const name = `${kind} ${key}`;
    // Looks already queued behind a running one would read the same cache: one is enough.
    if (this.queued.has(name)) return;
    this.queued.add(name);
    const next = (this.chains.get(name) ?? Promise.resolve())
      .then(() => {
        this.queued.delete(name);
        return this.consider(kind, key, watch);
      })
      .catch((err: unknown) => this.opts.log.warn({ err, object: name }, 'observed object not handled; retried at its next change'))
      .finally(() => {
        if (this.chains.get(name) === next) this.chains.delete(name);
      });
    this.chains.set(name, next);
  }

  private async consider(kind: ObservedKind, key: string, watch: KindWatch<Obj>): Promise<void> {
    const name = `${kind} ${key}`;
    if (!this.active) return;
    const [namespace, objectName] = split(key);
    // The object as it is now, not as it was when the look was asked for: looks never go back in time.
    const obj = watch.get(namespace, objectName);
    if (!obj) {
      this.pending.delete(name);
      this.judging.forget(name);
      return;
    }
    const link = this.links.of(kind, namespace, objectName, obj.metadata.annotations as Record<string, string> | undefined);
    if (!link) return;
    const detection = await this.judging.judge(kind, name, obj, link);
    if (!this.active) return;
    if (detection.state === 'none') return;
    if (await this.baseline(name, detection.revision)) return;
    if (detection.state === 'pending') {
      this.pending.set(name, { kind, key, watch });
      return;
    }
    this.pending.delete(name);
    if (this.handled.get(name) === detection.revision) return;
    await this.announcer.announce(kind, name, link, detection);
    this.handled.set(name, detection.revision);
  }

  /**
   * True when the object has never been seen (no record at all): its revision becomes the baseline, not announced,
   * as it was deployed before anyone asked for a sequence (the object was linked, or its Alert made, just now).
   */
  private async baseline(name: string, revision: string): Promise<boolean> {
    if (this.baselined.has(name)) return false;
    const fresh = !(await this.opts.store.seen(name));
    this.baselined.add(name);
    if (!fresh) return false;
    await this.opts.store.create(this.announcer.record(name, revision, 'baseline'));
    this.handled.set(name, revision);
    this.opts.log.info({ object: name, revision }, 'observed object seen for the first time; its current revision is the baseline');
    return true;
  }
}

function split(key: string): [string, string] {
  const i = key.indexOf('/');
  return [key.slice(0, i), key.slice(i + 1)];
}
