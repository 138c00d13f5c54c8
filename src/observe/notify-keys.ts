/**
 * The notification senders and their keys (issue 19 items 3 and 6). Each sender is one Secret in the service's secret
 * namespace (`NOTIFY_SECRET`, a comma-separated list of names): `flux-token` (a Flux Provider's HMAC key) and/or
 * `argocd-token` (an Argo CD webhook's shared secret), the projects it may speak for (`gitops.keptn.sh/projects`,
 * required) and, optionally, the objects (`gitops.keptn.sh/notify-objects`: `<namespace>/<name>` or `<namespace>/*`).
 * A notification signed with a sender's key may wake the observer up only for objects both lists allow; with
 * notifications as wake-ups (ADR 14) a forged or replayed one causes at most a look.
 *
 * The keys are read in the background and cached, never on a request: a request without a valid signature costs no
 * API read (item 6). A rotated Secret takes effect at the next refresh.
 */
import { listOf, PROJECTS_ANNOTATION } from '../platform/grants.js';
import type { ObservedKind } from './link.js';

export const NOTIFY_OBJECTS_ANNOTATION = 'gitops.keptn.sh/notify-objects';

export interface NotifySender {
  /** The Secret's name: names the sender in logs. */
  name: string;
  flux?: string;
  argocd?: string;
  /** The Keptn projects whose objects it may wake the observer up for. */
  projects: string[];
  /** `<namespace>/<name>` or `<namespace>/*`; undefined: any object of those projects. */
  objects?: string[];
}

/** A sender from its Secret's data and annotations. */
export function notifySenderFrom(
  name: string,
  data: Record<string, string>,
  annotations: Record<string, string> | undefined,
): NotifySender {
  const objects = annotations?.[NOTIFY_OBJECTS_ANNOTATION];
  return {
    name,
    ...(data['flux-token'] ? { flux: data['flux-token'] } : {}),
    ...(data['argocd-token'] ? { argocd: data['argocd-token'] } : {}),
    projects: listOf(annotations?.[PROJECTS_ANNOTATION]),
    ...(objects !== undefined ? { objects: listOf(objects) } : {}),
  };
}

/** Whether the sender's object list allows this object (before anything is read about it). */
export function senderMayName(sender: NotifySender, object: { kind: ObservedKind; namespace: string; name: string }): boolean {
  if (!sender.objects) return true;
  return sender.objects.some((pattern) => pattern === `${object.namespace}/${object.name}` || pattern === `${object.namespace}/*`);
}

export interface NotifyKeyCacheOptions {
  secrets: readonly string[];
  read(name: string): Promise<NotifySender>;
  refreshMs: number;
  onError(name: string, err: unknown): void;
}

/** The senders as last read; a Secret that cannot be read keeps its last good reading. */
export class NotifyKeyCache {
  private readonly senders = new Map<string, NotifySender>();
  private loaded = false;
  private timer: NodeJS.Timeout | undefined;

  constructor(private readonly opts: NotifyKeyCacheOptions) {}

  /** Undefined until the first refresh has read at least one Secret: requests are then answered 503. */
  current(): NotifySender[] | undefined {
    return this.loaded ? [...this.senders.values()] : undefined;
  }

  async start(): Promise<void> {
    await this.refresh();
    this.timer = setInterval(() => void this.refresh(), this.opts.refreshMs);
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
  }

  async refresh(): Promise<void> {
    await Promise.all(
      this.opts.secrets.map(async (name) => {
        try {
          this.senders.set(name, await this.opts.read(name));
          this.loaded = true;
        } catch (err: unknown) {
          this.opts.onError(name, err);
        }
      }),
    );
  }
}

/**
 * At most `ratePerSecond` requests a second on average, `burst` at once, counted per key (a remote address) and for
 * all keys together; what is over is refused before anything else is done (item 6). Pure but for the clock passed in.
 */
export class RateLimiter {
  private readonly buckets = new Map<string, { tokens: number; at: number }>();

  constructor(
    private readonly perKey: { ratePerSecond: number; burst: number },
    private readonly overall: { ratePerSecond: number; burst: number },
    private readonly now: () => number = Date.now,
    private readonly maxKeys = 10_000,
  ) {}

  allow(key: string): boolean {
    const t = this.now();
    // Per address first: one address over its share is refused without using up everyone's.
    if (!this.take(key, this.perKey, t, true)) return false;
    return this.take('\0all', this.overall, t, false);
  }

  private take(key: string, limit: { ratePerSecond: number; burst: number }, t: number, bounded: boolean): boolean {
    let bucket = this.buckets.get(key);
    if (!bucket) {
      // Many addresses at once: forget the oldest rather than grow without bound.
      if (bounded && this.buckets.size > this.maxKeys) this.buckets.delete(this.buckets.keys().next().value!);
      bucket = { tokens: limit.burst, at: t };
      this.buckets.set(key, bucket);
    }
    bucket.tokens = Math.min(limit.burst, bucket.tokens + ((t - bucket.at) / 1000) * limit.ratePerSecond);
    bucket.at = t;
    if (bucket.tokens < 1) return false;
    bucket.tokens -= 1;
    return true;
  }
}
