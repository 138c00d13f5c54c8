/**
 * The observer's records: announces a final revision to Keptn exactly once. A record per object and revision is
 * created before the send (creation is the claim) and marked sent after; a record left unsent by a crash is claimed
 * (compare-and-swap) and sent again, once, with the same event id.
 */
import { createHash, randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import { REVISION_LABEL, sequenceTriggeredEvent } from '../keptn/events.js';
import type { SequenceSink } from '../keptn/sender.js';
import { StoreConflictError } from '../platform/state/record.js';
import { TOOL_OF, type Detection } from './detect.js';
import type { ObserverLease } from './lease.js';
import type { Link, LinkHint, ObservedKind, ObservedObject } from './link.js';
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

export interface AnnouncerOptions {
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
  /**
   * Whether the project lets this object start the sequences of the service its annotations name (link.ts,
   * observationGrant over the project's settings), and which sequence; a throw when the settings cannot be read now.
   */
  authorize(object: ObservedObject, hint: LinkHint): Promise<{ link: Link } | { problem: string }>;
}

const MAX_LABEL = 250;
const MAX_MESSAGE = 4 * 1024;

export class Announcer {
  private readonly inflight = new Set<string>();

  constructor(private readonly opts: AnnouncerOptions) {}

  record(object: string, revision: string, phase: ObservationRecord['phase']): ObservationRecord {
    return { object, revision, phase, owner: this.opts.lease.identity, at: Date.now(), claim: randomUUID() };
  }

  async announce(kind: ObservedKind, name: string, hint: LinkHint, detection: Extract<Detection, { state: 'final' }>): Promise<void> {
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
    const [namespace, objectName] = splitKey(name.slice(kind.length + 1));
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
  async resendUnsent(active: () => boolean): Promise<void> {
    let unsent: ObservationRecord[];
    try {
      unsent = await this.opts.store.unsent();
    } catch (err: unknown) {
      this.opts.log.warn({ err }, 'unsent announcements not listed');
      return;
    }
    for (const record of unsent) {
      if (!active()) return;
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

/** Labels are one line of bounded length: commit authors and subjects come from whoever can push. */
function oneLine(text: string): string {
  return text.replace(/[\x00-\x1f\x7f]+/g, ' ').slice(0, MAX_LABEL);
}

/** `namespace/name` as its two parts. */
function splitKey(key: string): [string, string] {
  const i = key.indexOf('/');
  return [key.slice(0, i), key.slice(i + 1)];
}

/** A UUID (version 4 layout) derived from `text`: the same announcement always gets the same id and context. */
export function uuidFrom(text: string): string {
  const h = createHash('sha256').update(text).digest('hex');
  const variant = ((parseInt(h[16]!, 16) & 0x3) | 0x8).toString(16);
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-4${h.slice(13, 16)}-${variant}${h.slice(17, 20)}-${h.slice(20, 32)}`;
}
