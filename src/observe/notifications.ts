/**
 * Flux notification-controller events (Provider `generic-hmac`) and Argo CD notification webhooks, read as wake-ups:
 * each names the object to look at now, and nothing else of it counts (ADR 14). The verdict comes from the object
 * itself, read through the shared watches by the deployment rules, so a notification can speed a detection up but
 * never decide, pre-empt or repeat one; a stale, repeated, out-of-order or forged one causes at most a look. Pure:
 * signatures are checked over the raw body, then the body is read as hostile JSON.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import { isRecord } from '../shared/json.js';
import type { ObservedKind } from './link.js';

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

/** The object a notification asks the observer to look at. */
export interface NotifiedObject {
  kind: ObservedKind;
  namespace: string;
  name: string;
}

export type NotificationOutcome = { kind: 'look'; object: NotifiedObject } | { kind: 'ignored'; reason: string };

const K8S_NAME = /^[a-z0-9]([a-z0-9.-]{0,251}[a-z0-9])?$/;

function objectRef(kind: ObservedKind, namespace: unknown, name: unknown): NotificationOutcome {
  if (typeof namespace !== 'string' || typeof name !== 'string' || !K8S_NAME.test(namespace) || !K8S_NAME.test(name))
    return { kind: 'ignored', reason: `the notification names no valid ${kind} namespace and name` };
  return { kind: 'look', object: { kind, namespace, name } };
}

/**
 * A Flux event (notification-controller 1.9's JSON of `recorder.Event`): its `involvedObject`. Severity, reason,
 * revision and message are not read: whatever happened, the object's status says it better, and in order.
 */
export function fluxNotification(body: unknown): NotificationOutcome {
  if (!isRecord(body) || !isRecord(body['involvedObject'])) return { kind: 'ignored', reason: 'not a Flux event' };
  const object = body['involvedObject'];
  const kind = object['kind'];
  if (kind !== 'Kustomization' && kind !== 'HelmRelease') return { kind: 'ignored', reason: `events of ${String(kind)} are not observed` };
  return objectRef(kind, object['namespace'], object['name']);
}

/**
 * The body an Argo CD notification template posts (README "Keptn for changes made in Git" gives the template): the
 * Application's namespace and name. Any other field (an older template's sync, phase, health) is not read.
 */
export function argoNotification(body: unknown): NotificationOutcome {
  if (!isRecord(body)) return { kind: 'ignored', reason: 'not a JSON object' };
  return objectRef('Application', body['namespace'], body['name']);
}
