/**
 * The notification face (item 5 of issue 10), on its own port and every interface, for senders outside the pod:
 * `POST /flux` (notification-controller, Provider `generic-hmac`) and `POST /argocd` (an Argo CD notifications
 * webhook with `Authorization: Bearer <secret>`). A missing or wrong signature is a 401 and a log line; nothing is
 * triggered. The keys come from one Secret whose `gitops.keptn.sh/projects` annotation lists the Keptn projects its
 * senders may start sequences in (the grant model of docs/security.md).
 */
import Fastify, { type FastifyInstance, type FastifyServerOptions } from 'fastify';
import { listOf, PROJECTS_ANNOTATION } from '../grants.js';
import type { Link, ObservedKind } from './link.js';
import { argoNotification, fluxNotification, verifyBearer, verifyHmac, type NotificationOutcome } from './notifications.js';
import type { Detection } from './detect.js';

export interface NotifyKeys {
  /** The HMAC key of the Flux Provider (`token`). */
  flux?: string;
  /** The Argo CD webhook's shared secret. */
  argocd?: string;
  /** The projects these senders may start sequences in. */
  projects: string[];
}

export interface NotifyDeps {
  /** Read at every request, so a rotated Secret takes effect at once. */
  keys(): Promise<NotifyKeys>;
  notified(
    kind: ObservedKind,
    namespace: string,
    name: string,
    link: Link,
    detection: Extract<Detection, { state: 'final' }>,
  ): Promise<void>;
}

/** Reads the keys from a Secret's data (`flux-token`, `argocd-token`) and its grant annotation. */
export function notifyKeysFrom(data: Record<string, string>, annotations: Record<string, string>): NotifyKeys {
  return {
    ...(data['flux-token'] ? { flux: data['flux-token'] } : {}),
    ...(data['argocd-token'] ? { argocd: data['argocd-token'] } : {}),
    projects: listOf(annotations[PROJECTS_ANNOTATION]),
  };
}

export function buildNotifyApp(deps: NotifyDeps, options: FastifyServerOptions = {}): FastifyInstance {
  // Senders post every event of every watched object: requests are not logged one by one, refusals and failures are.
  const app = Fastify({ bodyLimit: 256 * 1024, disableRequestLogging: true, ...options });
  // The signature is over the bytes as sent: keep them.
  app.removeContentTypeParser('application/json');
  app.removeContentTypeParser('text/plain');
  app.addContentTypeParser('*', { parseAs: 'buffer' }, (_req, body, done) => done(null, body));

  const route = (path: '/flux' | '/argocd', read: (body: unknown) => NotificationOutcome) =>
    app.post(path, async (req, reply) => {
      const raw = Buffer.isBuffer(req.body) ? req.body : Buffer.alloc(0);
      let keys: NotifyKeys;
      try {
        keys = await deps.keys();
      } catch (err: unknown) {
        req.log.error({ err }, 'notification keys not readable');
        return reply.status(503).send({ error: 'keys unavailable' });
      }
      const ok =
        path === '/flux'
          ? verifyHmac(raw, req.headers['x-signature'] as string | undefined, keys.flux ?? '')
          : verifyBearer(req.headers.authorization, keys.argocd ?? '');
      if (!ok) {
        req.log.warn({ path, remoteAddress: req.socket.remoteAddress }, 'notification with a missing or wrong signature refused');
        return reply.status(401).send({ error: 'missing or wrong signature' });
      }
      let body: unknown;
      try {
        body = JSON.parse(raw.toString('utf8'));
      } catch {
        return reply.status(400).send({ error: 'the body is not JSON' });
      }
      const outcome = read(body);
      if (outcome.kind === 'ignored') return reply.status(202).send({ status: 'ignored', reason: outcome.reason });
      const { kind, namespace, name, link, detection } = outcome.deployment;
      if (!keys.projects.includes(link.project)) {
        req.log.warn({ project: link.project }, 'notification for a project its key is not granted to refused');
        return reply.status(403).send({ error: `the notification key is not granted to project ${link.project}` });
      }
      try {
        await deps.notified(kind, namespace, name, link, detection);
      } catch (err: unknown) {
        req.log.error({ err }, 'notified deployment not recorded');
        // The sender tries again; the record keeps a repeat from announcing twice.
        return reply.status(503).send({ error: 'not recorded; send it again' });
      }
      return reply.status(202).send({ status: 'accepted' });
    });
  route('/flux', fluxNotification);
  route('/argocd', argoNotification);
  return app;
}
