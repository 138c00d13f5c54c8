/**
 * The loop that owns the I/O of observing: holds the observer Lease, feeds every change of a linked Flux or Argo CD
 * object (from the shared watches, no polling) to the pure `detect`, and announces each final revision to Keptn
 * exactly once: a record per object and revision is created before the send (creation is the claim) and marked sent
 * after; a record left unsent by a crash is claimed (compare-and-swap) and sent again, once, with the same event id.
 */
import { createHash, randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import { DEFAULT_DEGRADED_GRACE_MS } from '../argocd/evaluate.js';
import { APPLICATIONS } from '../argocd/driver.js';
import { HELMCHARTS, HELMRELEASES, KUSTOMIZATIONS, WORKLOADS } from '../flux/driver.js';
import type { Clock, FluxObject, FluxView } from '../flux/evaluate.js';
import type { WorkloadKind } from '../flux/inventory.js';
import type { Cluster } from '../k8s/cluster.js';
import type { KubeObject, ResourceKind } from '../k8s/watch.js';
import { REVISION_LABEL, sequenceTriggeredEvent } from '../keptn/events.js';
import type { SequenceSink } from '../keptn/sender.js';
import { StoreConflictError } from '../state/record.js';
import { detect, TOOL_OF, type Detection, type ObservedTool } from './detect.js';
import type { ObserverLease } from './lease.js';
import { linkOf, type Link, type LinkHint, type ObservedKind, type ObservedObject } from './link.js';
import type { ObservationRecord, ObservationStore } from './records.js';

/** Label keys of the announced sequence: Keptn's Bridge shows them on the sequence. */
export const LABELS = {
  tool: 'gitops.keptn.sh/tool',
  object: 'gitops.keptn.sh/object',
  revision: REVISION_LABEL,
  author: 'gitops.keptn.sh/author',
  subject: 'gitops.keptn.sh/subject',
  verdict: 'gitops.keptn.sh/verdict',
} as const;

/** What the repository says about an observed commit. */
export interface CommitFacts {
  /** The full commit hash (the tool may name it by 12 digits only: a Helm chart built from Git). */
  revision: string;
  /** `Name <email>`. */
  author: string;
  subject: string;
  /** The commit carries this service's deployment trailer: a Keptn sequence made it. */
  ownDeployment: boolean;
}

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
  /**
   * Whether the project lets this object start the sequences of the service its annotations name (link.ts,
   * observationGrant over the project's settings), and which sequence; a throw when the settings cannot be read now.
   */
  authorize(object: ObservedObject, hint: LinkHint): Promise<{ link: Link } | { problem: string }>;
  /** Whether a deployment record of this service made the revision (its own commit for a Keptn sequence). */
  deployedByUs(revision: string): Promise<boolean>;
  /** How often the Lease is renewed (and taken over); a quarter of its duration. */
  renewIntervalMs: number;
}

const MAX_LABEL = 250;
const MAX_MESSAGE = 4 * 1024;

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
  private readonly inflight = new Set<string>();
  private readonly problems = new Map<string, string>();
  private readonly firstSeen = new Map<string, number>();
  private readonly degraded = new Map<string, { revision: string; since: number; timer: NodeJS.Timeout }>();

  constructor(private readonly opts: ObserverOptions) {}

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
    if (this.active) await this.resendUnsent();
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
    const linked = linkOf(kind, namespace, objectName, obj.metadata.annotations as Record<string, string> | undefined);
    if (!linked) return;
    if ('problem' in linked) {
      if (this.problems.get(name) !== linked.problem) this.opts.log.warn({ object: name, problem: linked.problem }, 'object not observed');
      this.problems.set(name, linked.problem);
      return;
    }
    this.problems.delete(name);
    const detection = this.detect(kind, key, obj, watch);
    if (detection.state === 'none') return;
    if (await this.baseline(name, detection.revision)) return;
    if (detection.state === 'pending') {
      this.pending.set(name, { kind, key, watch });
      return;
    }
    this.pending.delete(name);
    if (this.handled.get(name) === detection.revision) return;
    await this.announce(kind, name, linked.link, detection);
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
      await this.announce(kind, object, link, detection);
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
    await this.opts.store.create(this.record(name, revision, 'baseline'));
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

  private record(object: string, revision: string, phase: ObservationRecord['phase']): ObservationRecord {
    return { object, revision, phase, owner: this.opts.lease.identity, at: Date.now(), claim: randomUUID() };
  }

  private async announce(
    kind: ObservedKind,
    name: string,
    hint: LinkHint,
    detection: Extract<Detection, { state: 'final' }>,
  ): Promise<void> {
    const log = this.opts.log.child({
      object: name,
      revision: detection.revision,
      project: hint.project,
      stage: hint.stage,
      service: hint.service,
    });
    const existing = await this.opts.store.get(name, detection.revision);
    if (existing) {
      if (existing.phase === 'announcing') await this.claimAndSend(existing);
      // ADR 16 (issue 19 item 7): back at a recorded revision: its record becomes the object's newest for the retention.
      else
        await this.opts.store
          .update({ ...existing, at: Date.now() })
          .catch((err: unknown) => log.warn({ err }, 'record not moved forward'));
      return;
    }
    // ADR 16 (issue 19 item 2): the project's settings, not the object's annotations, let the object start its sequences.
    const [namespace, objectName] = split(name.slice(kind.length + 1));
    const allowed = await this.opts.authorize({ kind, namespace, name: objectName }, hint);
    if ('problem' in allowed) {
      await this.opts.store.create(this.record(name, detection.revision, 'refused'));
      log.warn({ problem: allowed.problem }, 'revision not announced: the project does not observe this object');
      return;
    }
    const link = allowed.link;
    const facts = await this.opts.commit(link, detection.revision).catch((err: unknown) => {
      log.warn({ err }, 'observed commit not readable from the repository; announced without its author and subject');
      return undefined;
    });
    const revision = facts?.revision ?? detection.revision;
    if (facts?.ownDeployment || (await this.opts.deployedByUs(revision))) {
      await this.opts.store.create(this.record(name, detection.revision, 'own'));
      log.info('revision deployed by this service for a Keptn sequence; not announced');
      return;
    }
    const labels: Record<string, string> = {
      [LABELS.tool]: TOOL_OF[kind],
      [LABELS.object]: name,
      [LABELS.revision]: revision,
      [LABELS.verdict]: detection.result,
      ...(facts ? { [LABELS.author]: oneLine(facts.author), [LABELS.subject]: oneLine(facts.subject) } : {}),
    };
    const key = `${name}@${detection.revision}`;
    const event = sequenceTriggeredEvent(
      {
        id: uuidFrom(`event ${key}`),
        shkeptncontext: uuidFrom(`context ${key}`),
        stage: link.stage,
        sequence: link.sequence,
        data: {
          project: link.project,
          stage: link.stage,
          service: link.service,
          labels,
          status: 'succeeded',
          result: detection.result,
          message: detection.message.slice(0, MAX_MESSAGE),
        },
      },
      { source: this.opts.source },
    );
    this.inflight.add(key);
    try {
      const created = await this.opts.store.create({ ...this.record(name, detection.revision, 'announcing'), event });
      // Another replica (a Lease handover in flight) recorded it first: it is theirs to send.
      if (!created) return;
      await this.send(created, log);
    } finally {
      this.inflight.delete(key);
    }
  }

  /** Re-sends what a crash left unsent: each claimed first, so only one replica sends it. */
  private async resendUnsent(): Promise<void> {
    let unsent: ObservationRecord[];
    try {
      unsent = await this.opts.store.unsent();
    } catch (err: unknown) {
      this.opts.log.warn({ err }, 'unsent announcements not listed');
      return;
    }
    for (const record of unsent) {
      if (!this.active) return;
      await this.claimAndSend(record).catch((err: unknown) =>
        this.opts.log.warn({ err, object: record.object, revision: record.revision }, 'unsent announcement not re-sent'),
      );
    }
  }

  private async claimAndSend(record: ObservationRecord): Promise<void> {
    const key = `${record.object}@${record.revision}`;
    if (this.inflight.has(key) || !record.event) return;
    this.inflight.add(key);
    try {
      let claimed: ObservationRecord;
      try {
        claimed = await this.opts.store.update({ ...record, owner: this.opts.lease.identity, claim: randomUUID() });
      } catch (err: unknown) {
        if (err instanceof StoreConflictError) return;
        throw err;
      }
      const log = this.opts.log.child({ object: record.object, revision: record.revision });
      log.info({ from: record.owner }, 're-sending an announcement a crash left unsent');
      await this.send(claimed, log);
    } finally {
      this.inflight.delete(key);
    }
  }

  private async send(record: ObservationRecord, log: Logger): Promise<void> {
    const event = record.event!;
    try {
      await this.opts.sink.send(event);
    } catch (err: unknown) {
      log.error({ err, type: event.type }, 'sequence not announced; re-sent later');
      return;
    }
    log.info({ type: event.type, id: event.id, result: event.data.result }, 'change made in Git announced to Keptn');
    try {
      await this.opts.store.update({ ...record, phase: 'sent' });
    } catch (err: unknown) {
      log.warn({ err }, 'announcement sent but not marked sent');
    }
  }
}

function split(key: string): [string, string] {
  const i = key.indexOf('/');
  return [key.slice(0, i), key.slice(i + 1)];
}

/** Labels are one line of bounded length: commit authors and subjects come from whoever can push. */
function oneLine(text: string): string {
  return text.replace(/[\x00-\x1f\x7f]+/g, ' ').slice(0, MAX_LABEL);
}

/** A UUID (version 4 layout) derived from `text`: the same announcement always gets the same id and context. */
export function uuidFrom(text: string): string {
  const h = createHash('sha256').update(text).digest('hex');
  const variant = ((parseInt(h[16]!, 16) & 0x3) | 0x8).toString(16);
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-4${h.slice(13, 16)}-${variant}${h.slice(17, 20)}-${h.slice(20, 32)}`;
}
