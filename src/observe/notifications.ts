/**
 * Notifications from clusters the service does not watch (a remote execution plane): Flux notification-controller
 * events (Provider `generic-hmac`) and Argo CD notification webhooks, turned into the same detections the watches
 * give. Pure: signatures are checked over the raw body, then the body is read as hostile JSON.
 *
 * Notifications are never the only source where a watch is possible: they are rate-limited and repeated by their
 * senders, so each one only says "this object finished this revision", and the record per object and revision (the
 * same as for the watches) keeps a repeat from announcing twice.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import { isRecord } from '../json.js';
import { commitOf } from '../readiness.js';
import type { Detection } from './detect.js';
import type { Link, ObservedKind } from './link.js';

/**
 * notification-controller 1.9 internal/notifier/forwarder.go: with an HMAC key (Provider `generic-hmac`, the Secret's
 * `token`), the header is `X-Signature: sha256=<hex HMAC-SHA256 of the body>`.
 */
export function verifyHmac(raw: Buffer, header: string | undefined, key: string): boolean {
  if (!header || !key) return false;
  const match = /^sha256=([0-9a-f]{64})$/i.exec(header.trim());
  if (!match) return false;
  const want = createHmac('sha256', key).update(raw).digest();
  return timingSafeEqual(want, Buffer.from(match[1]!.toLowerCase(), 'hex'));
}

/** An Argo CD webhook's shared secret, sent as `Authorization: Bearer <secret>` (the webhook service's `headers`). */
export function verifyBearer(header: string | undefined, secret: string): boolean {
  if (!header || !secret) return false;
  const given = Buffer.from(header.replace(/^Bearer\s+/i, ''), 'utf8');
  const want = Buffer.from(secret, 'utf8');
  return given.length === want.length && timingSafeEqual(given, want);
}

export interface NotifiedDeployment {
  kind: ObservedKind;
  namespace: string;
  name: string;
  link: Link;
  detection: Extract<Detection, { state: 'final' }>;
}

export type NotificationOutcome = { kind: 'deployment'; deployment: NotifiedDeployment } | { kind: 'ignored'; reason: string };

/**
 * Metadata keys naming the Keptn service: from the Alert's `spec.eventMetadata`, or from annotations
 * `event.toolkit.fluxcd.io/<key>` on the object (notification-controller 1.9 internal/server/event_handlers.go,
 * combineEventMetadata, which also strips the object's API group from `<group>/revision`).
 */
export const FLUX_METADATA = { project: 'keptn-project', stage: 'keptn-stage', service: 'keptn-service', sequence: 'keptn-sequence' };

const NAME = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;
const K8S_NAME = /^[a-z0-9]([a-z0-9.-]{0,251}[a-z0-9])?$/;
/** Reasons that end a reconcile with the revision deployed (kustomize-controller, helm-controller 1.6). */
const FLUX_PASSED = new Set(['ReconciliationSucceeded', 'InstallSucceeded', 'UpgradeSucceeded']);

function linkFrom(values: Record<string, unknown>, keys: typeof FLUX_METADATA): Link | string {
  const link: Record<string, string> = {};
  for (const [field, key] of Object.entries(keys)) {
    const value = values[key] ?? (field === 'sequence' ? 'delivery' : undefined);
    if (typeof value !== 'string' || !NAME.test(value)) return `${key} must be a Keptn name`;
    link[field] = value;
  }
  return link as unknown as Link;
}

/** A Flux event (notification-controller's JSON, `recorder.Event`) as a finished deployment, or why it is not one. */
export function fluxNotification(body: unknown): NotificationOutcome {
  if (!isRecord(body) || !isRecord(body['involvedObject'])) return { kind: 'ignored', reason: 'not a Flux event' };
  const object = body['involvedObject'];
  const kind = object['kind'];
  if (kind !== 'Kustomization' && kind !== 'HelmRelease')
    return { kind: 'ignored', reason: `events of ${String(kind)} are not deployments` };
  const namespace = object['namespace'];
  const name = object['name'];
  if (typeof namespace !== 'string' || typeof name !== 'string' || !K8S_NAME.test(namespace) || !K8S_NAME.test(name))
    return { kind: 'ignored', reason: 'the involved object has no valid namespace and name' };
  const metadata = isRecord(body['metadata']) ? body['metadata'] : {};
  const link = linkFrom(metadata, FLUX_METADATA);
  if (typeof link === 'string') return { kind: 'ignored', reason: `the Alert's eventMetadata: ${link}` };
  const revision = commitOf(typeof metadata['revision'] === 'string' ? metadata['revision'] : undefined);
  if (!revision) return { kind: 'ignored', reason: 'the event names no Git revision' };
  const message = typeof body['message'] === 'string' ? body['message'].slice(0, 4096) : '';
  const reason = typeof body['reason'] === 'string' ? body['reason'] : '';
  let result: 'pass' | 'fail';
  if (body['severity'] === 'error') result = 'fail';
  else if (body['severity'] === 'info' && FLUX_PASSED.has(reason)) result = 'pass';
  else return { kind: 'ignored', reason: `${reason || 'an event'} does not end a deployment` };
  const what = `${kind} ${namespace}/${name}`;
  return {
    kind: 'deployment',
    deployment: {
      kind,
      namespace,
      name,
      link,
      detection: {
        state: 'final',
        revision,
        result,
        message:
          result === 'pass'
            ? `Flux applied ${what} at ${revision}: ${reason}: ${message}`
            : `Flux failed at ${what} ${revision}: ${reason}: ${message}`,
      },
    },
  };
}

/**
 * The body an Argo CD notification template posts (README "Keptn for changes made in Git" gives the template):
 * the Application's name, namespace, annotations (for the link), compared revision and sync status, the last
 * operation's phase, revision and message, and the health.
 */
export function argoNotification(body: unknown): NotificationOutcome {
  if (!isRecord(body)) return { kind: 'ignored', reason: 'not a JSON object' };
  const { namespace, name } = body;
  if (typeof namespace !== 'string' || typeof name !== 'string' || !K8S_NAME.test(namespace) || !K8S_NAME.test(name))
    return { kind: 'ignored', reason: 'no valid Application namespace and name' };
  const annotations = isRecord(body['annotations']) ? body['annotations'] : {};
  const link = linkFrom(annotations, {
    project: 'gitops.keptn.sh/observe-project',
    stage: 'gitops.keptn.sh/observe-stage',
    service: 'gitops.keptn.sh/observe-service',
    sequence: 'gitops.keptn.sh/observe-sequence',
  });
  if (typeof link === 'string') return { kind: 'ignored', reason: `the Application's annotations: ${link}` };
  const revision = commitOf(typeof body['revision'] === 'string' ? body['revision'] : undefined);
  if (!revision) return { kind: 'ignored', reason: 'the notification names no Git revision' };
  const phase = body['phase'];
  const health = body['health'];
  // Right after a refresh the compared revision moves on while the last operation (of the previous revision) still
  // says Succeeded: only Synced, with the operation's revision the compared one, is that revision deployed.
  const synced =
    body['sync'] === 'Synced' && (body['syncedRevision'] === undefined || commitOf(String(body['syncedRevision'])) === revision);
  const message = typeof body['message'] === 'string' ? body['message'].slice(0, 4096) : '';
  const what = `Application ${namespace}/${name}`;
  let detection: NotifiedDeployment['detection'];
  if (phase === 'Failed' || phase === 'Error')
    detection = {
      state: 'final',
      revision,
      result: 'fail',
      message: `Argo CD sync of ${what} at ${revision} ${phase === 'Error' ? 'errored' : 'failed'}: ${message}`,
    };
  else if (health === 'Degraded' && synced)
    detection = { state: 'final', revision, result: 'fail', message: `${what} is Degraded at ${revision}${message ? `: ${message}` : ''}` };
  else if (phase === 'Succeeded' && health === 'Healthy' && synced)
    detection = { state: 'final', revision, result: 'pass', message: `Argo CD synced ${what} to ${revision} and it is Healthy` };
  else return { kind: 'ignored', reason: `sync ${String(phase)} and health ${String(health)} do not end a deployment` };
  return { kind: 'deployment', deployment: { kind: 'Application', namespace, name, link, detection } };
}
