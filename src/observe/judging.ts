/**
 * What the observer hands the pure `detect` besides the object (the one judge, ADR 14): read-only views of the shared
 * watches, the rules' clock, the Argo CD Degraded count (the driver's own DegradedClock, so a Degraded right after a
 * sync gets the deployment's settle window), and the linked service's settings. It also looks again when the rules
 * said their answer may change with time alone (a settle window ending), as the deployment wait does.
 */
import type { Logger } from 'pino';
import { degradedSpell, DegradedClock } from '../tools/argocd/driver.js';
import { DEFAULT_DEGRADED_GRACE_MS, type Application } from '../tools/argocd/evaluate.js';
import { HELMCHARTS, KUSTOMIZATIONS, WORKLOADS } from '../tools/flux/driver.js';
import type { Clock, FluxObject, FluxView } from '../tools/flux/evaluate.js';
import type { WorkloadKind } from '../tools/flux/inventory.js';
import type { Cluster } from '../platform/k8s/cluster.js';
import type { KubeObject } from '../platform/k8s/watch.js';
import { detect, type Detection, type ObservedService } from './detect.js';
import type { LinkHint, ObservedKind } from './link.js';

export interface JudgingOptions {
  cluster: Cluster;
  log: Logger;
  /** The linked Keptn service's settings (undefined or a throw when they cannot be read: judged without them). */
  service?(link: LinkHint): Promise<ObservedService | undefined>;
  /** Look at the object again (a timer of the rules ran out). */
  lookAgain(object: string): void;
}

/** Settings are read once a minute per Keptn service at most: every change of an object asks for them. */
const SERVICE_TTL_MS = 60_000;

type Obj = KubeObject & FluxObject;

export class Judging {
  private readonly firstSeen = new Map<string, number>();
  private readonly degraded = new Map<string, DegradedClock>();
  private readonly rechecks = new Map<string, NodeJS.Timeout>();
  private readonly services = new Map<string, { at: number; facts: Promise<ObservedService | undefined> }>();

  constructor(private readonly opts: JudgingOptions) {}

  async judge(kind: ObservedKind, object: string, obj: Obj, link: LinkHint): Promise<Detection> {
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
    const service = await this.serviceOf(link);
    let degradedForMs: number | undefined;
    if (kind === 'Application') {
      let count = this.degraded.get(object);
      if (!count) {
        count = new DegradedClock(service?.degradedGraceMs ?? DEFAULT_DEGRADED_GRACE_MS, Date.now);
        // Nothing else may change on the Application when the grace period ends: look again then.
        count.onElapsed = () => this.opts.lookAgain(object);
        this.degraded.set(object, count);
      }
      const app = obj as unknown as Application & KubeObject;
      degradedForMs = count.observe(app.status?.health?.status === 'Degraded', degradedSpell(app));
    }
    const detection = detect({
      kind,
      object: obj,
      view,
      clock,
      ...(degradedForMs !== undefined ? { degradedForMs } : {}),
      ...(service ? { service } : {}),
    });
    clearTimeout(this.rechecks.get(object));
    this.rechecks.delete(object);
    if (detection.state === 'pending' && detection.recheckAt !== undefined) {
      const timer = setTimeout(() => this.opts.lookAgain(object), Math.max(0, detection.recheckAt - Date.now()) + 10);
      timer.unref();
      this.rechecks.set(object, timer);
    }
    return detection;
  }

  /** Forgets an object's timers (it was deleted, or observing stopped). */
  forget(object?: string): void {
    const objects = object ? [object] : [...new Set([...this.degraded.keys(), ...this.rechecks.keys()])];
    for (const o of objects) {
      this.degraded.get(o)?.stop();
      this.degraded.delete(o);
      clearTimeout(this.rechecks.get(o));
      this.rechecks.delete(o);
    }
  }

  private serviceOf(link: LinkHint): Promise<ObservedService | undefined> {
    const read = this.opts.service;
    if (!read) return Promise.resolve(undefined);
    const key = `${link.project}/${link.stage}/${link.service}`;
    const cached = this.services.get(key);
    if (cached && Date.now() - cached.at < SERVICE_TTL_MS) return cached.facts;
    const facts = read(link).catch((err: unknown) => {
      this.opts.log.warn({ err, ...link }, "the linked service's settings are not readable; judged without them");
      return undefined;
    });
    this.services.set(key, { at: Date.now(), facts });
    return facts;
  }
}
