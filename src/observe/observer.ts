/**
 * The loop that owns the I/O of observing: holds the observer Lease, feeds every change of a linked Flux or Argo CD
 * object (from the shared watches, no polling) to the pure `detect`, and announces each final revision to Keptn
 * exactly once: a record per object and revision is created before the send (creation is the claim) and marked sent
 * after; a record left unsent by a crash is claimed (compare-and-swap) and sent again, once, with the same event id.
 */
import type { Logger } from 'pino';
import { DEFAULT_DEGRADED_GRACE_MS } from '../argocd/evaluate.js';
import { APPLICATIONS } from '../argocd/driver.js';
import { HELMCHARTS, HELMRELEASES, KUSTOMIZATIONS, WORKLOADS } from '../flux/driver.js';
import type { Clock, FluxObject, FluxView } from '../flux/evaluate.js';
import type { WorkloadKind } from '../flux/inventory.js';
import type { Cluster } from '../k8s/cluster.js';
import type { KubeObject, ResourceKind } from '../k8s/watch.js';
import type { SequenceSink } from '../keptn/sender.js';
import { Announcer, type CommitFacts } from './announcer.js';
import { detect, type Detection, type ObservedTool } from './detect.js';
import type { ObserverLease } from './lease.js';
import type { Link, ObservedKind } from './link.js';
import { Links } from './linking.js';
import type { ObservationStore } from './records.js';

export { LABELS, uuidFrom, type CommitFacts } from './announcer.js';

export interface ObserverOptions {
  cluster: Cluster;
  tools: readonly ObservedTool[];
  store: ObservationStore;
  lease: ObserverLease;
  sink: SequenceSink;
  /** CloudEvent `source`. */
  source: string;
  log: Logger;
  /** Author, subject and trailers of a commit; undefined (or a throw) when the repository cannot be read. */
  commit(link: Link, revision: string): Promise<CommitFacts | undefined>;
  /** Whether a deployment record of this service made the revision (its own commit for a Keptn sequence). */
  deployedByUs(revision: string): Promise<boolean>;
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
  private readonly firstSeen = new Map<string, number>();
  private readonly degraded = new Map<string, { revision: string; since: number; timer: NodeJS.Timeout }>();

  private readonly announcer: Announcer;
  private readonly links: Links;

  constructor(private readonly opts: ObserverOptions) {
    this.announcer = new Announcer(opts);
    this.links = new Links(opts.log);
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
        this.unsubscribe.push(watch.subscribeAll((key, obj) => this.enqueue(kind, key, obj, watch)));
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
    for (const d of this.degraded.values()) clearTimeout(d.timer);
    this.degraded.clear();
    this.pending.clear();
  }

  private reconsiderPending(): void {
    for (const { kind, key, watch } of this.pending.values()) this.enqueue(kind, key, watch.get(...split(key)), watch);
  }

  private enqueue(kind: ObservedKind, key: string, obj: Obj | undefined, watch: KindWatch<Obj>): void {
    if (!this.active) return;
    const name = `${kind} ${key}`;
    const next = (this.chains.get(name) ?? Promise.resolve())
      .then(() => this.consider(kind, key, obj, watch))
      .catch((err: unknown) => this.opts.log.warn({ err, object: name }, 'observed object not handled; retried at its next change'))
      .finally(() => {
        if (this.chains.get(name) === next) this.chains.delete(name);
      });
    this.chains.set(name, next);
  }

  private async consider(kind: ObservedKind, key: string, obj: Obj | undefined, watch: KindWatch<Obj>): Promise<void> {
    const name = `${kind} ${key}`;
    if (!this.active) return;
    if (!obj) {
      this.pending.delete(name);
      return;
    }
    const [namespace, objectName] = split(key);
    const link = this.links.of(kind, namespace, objectName, obj.metadata.annotations as Record<string, string> | undefined);
    if (!link) return;
    const detection = this.detect(kind, key, obj, watch);
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
   * A deployment a notification reported (notifications.ts): announced like a watched one, under the same record, so
   * a repeat of the notification, or the watch of the same object, announces nothing more; the first report of an
   * object never seen is its baseline, as for the watches. Any replica may take it: the record's creation decides
   * who sends.
   */
  notified(
    kind: ObservedKind,
    namespace: string,
    name: string,
    link: Link,
    detection: Extract<Detection, { state: 'final' }>,
  ): Promise<void> {
    const object = `${kind} ${namespace}/${name}`;
    const run = (this.chains.get(object) ?? Promise.resolve()).then(async () => {
      if (this.handled.get(object) === detection.revision) return;
      if (await this.baseline(object, detection.revision)) return;
      await this.announcer.announce(kind, object, link, detection);
      this.handled.set(object, detection.revision);
    });
    const settled = run.catch(() => undefined);
    this.chains.set(object, settled);
    void settled.finally(() => {
      if (this.chains.get(object) === settled) this.chains.delete(object);
    });
    return run;
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

  private detect(kind: ObservedKind, key: string, obj: Obj, watch: KindWatch<Obj>): Detection {
    const name = `${kind} ${key}`;
    const { cluster } = this.opts;
    const view: FluxView = {
      kustomization: (ns, n) => cluster.watch<Obj>(KUSTOMIZATIONS).get(ns, n),
      helmChart: (ns, n) => cluster.watch<Obj>(HELMCHARTS).get(ns, n),
      workload: (ref) => {
        const resource = WORKLOADS[ref.kind as WorkloadKind];
        return resource ? cluster.watch<KubeObject & Record<string, unknown>>(resource).get(ref.namespace, ref.name) : undefined;
      },
    };
    const now = Date.now();
    const clock: Clock = { now, since: (k) => this.firstSeen.get(k) ?? (this.firstSeen.set(k, now), now) };
    const status = (obj as { status?: { health?: { status?: string }; sync?: { revision?: string } } }).status;
    let degradedForMs: number | undefined;
    if (kind === 'Application') {
      // The sync status names the revision: a new one starts the count again.
      const spell = JSON.stringify(status?.sync ?? null);
      const current = this.degraded.get(name);
      if (status?.health?.status === 'Degraded') {
        if (current?.revision === spell) degradedForMs = now - current.since;
        else {
          if (current) clearTimeout(current.timer);
          // Nothing else may change on the Application when the grace period ends: look again then.
          const timer = setTimeout(() => this.enqueue(kind, key, watch.get(...split(key)), watch), DEFAULT_DEGRADED_GRACE_MS + 50);
          timer.unref();
          this.degraded.set(name, { revision: spell, since: now, timer });
          degradedForMs = 0;
        }
      } else if (current) {
        clearTimeout(current.timer);
        this.degraded.delete(name);
      }
    }
    return detect({ kind, object: obj, view, clock, ...(degradedForMs !== undefined ? { degradedForMs } : {}) });
  }
}

function split(key: string): [string, string] {
  const i = key.indexOf('/');
  return [key.slice(0, i), key.slice(i + 1)];
}
