/**
 * The notification face (item 5 of issue 10), on its own port and every interface: `POST /flux`
 * (notification-controller, Provider `generic-hmac`) and `POST /argocd` (an Argo CD notifications webhook with
 * `Authorization: Bearer <secret>`). A notification is a wake-up (ADR 14): it makes the observer look at the object it
 * names now, through the shared watches and by the deployment rules; it decides nothing itself.
 *
 * Cheap for whoever has no key (issue 19 item 6): the rate limit comes first, then the signature against the cached
 * keys (notify-keys.ts), and only then is the body read; nothing in the path reads the API. A sender may name only the
 * objects and projects its Secret grants (item 3).
 */
import Fastify, { type FastifyInstance, type FastifyServerOptions } from 'fastify';
import type { LinkHint, ObservedKind } from './link.js';
import { argoNotification, fluxNotification, verifyBearer, verifyHmac, type NotificationOutcome } from './notifications.js';
import { RateLimiter, senderMayName, type NotifySender } from './notify-keys.js';

export interface NotifyDeps {
  /** The senders as cached; undefined while none could be read yet. */
  senders(): NotifySender[] | undefined;
  /** The link the object carries in the observer's watch cache; undefined when it is not an observed object here. */
  linkOf(kind: ObservedKind, namespace: string, name: string): LinkHint | undefined;
  /** Look at the object now. */
  wake(kind: ObservedKind, namespace: string, name: string): void;
  limiter?: RateLimiter;
}

/** Default limits: a Flux or Argo CD notifier sends a few a second at most (both rate-limit and batch their sends). */
export const NOTIFY_RATE = { perAddress: { ratePerSecond: 5, burst: 20 }, overall: { ratePerSecond: 50, burst: 100 } };

export function buildNotifyApp(deps: NotifyDeps, options: FastifyServerOptions = {}): FastifyInstance {
  // Senders post every event of every watched object: requests are not logged one by one, refusals and failures are.
  const app = Fastify({ bodyLimit: 256 * 1024, disableRequestLogging: true, ...options });
  const limiter = deps.limiter ?? new RateLimiter(NOTIFY_RATE.perAddress, NOTIFY_RATE.overall);
  let refusedLogged = 0;
  // Before the body is read: an address over its rate costs no parsing and no crypto.
  app.addHook('onRequest', async (req, reply) => {
    if (limiter.allow(req.socket.remoteAddress ?? '')) return;
    // One log line a second at most: the log is no amplifier either.
    if (Date.now() - refusedLogged > 1_000) {
      refusedLogged = Date.now();
      req.log.warn({ remoteAddress: req.socket.remoteAddress }, 'notifications over the rate limit refused');
    }
    return reply.status(429).header('retry-after', '1').send({ error: 'too many notifications; send it again later' });
  });
  // The signature is over the bytes as sent: keep them.
  app.removeContentTypeParser('application/json');
  app.removeContentTypeParser('text/plain');
  app.addContentTypeParser('*', { parseAs: 'buffer' }, (_req, body, done) => done(null, body));

  const route = (path: '/flux' | '/argocd', read: (body: unknown) => NotificationOutcome) =>
    app.post(path, async (req, reply) => {
      const raw = Buffer.isBuffer(req.body) ? req.body : Buffer.alloc(0);
      const senders = deps.senders();
      if (!senders) return reply.status(503).send({ error: 'keys not loaded yet' });
      const sender = senders.find((s) =>
        path === '/flux'
          ? verifyHmac(raw, req.headers['x-signature'] as string | undefined, s.flux ?? '')
          : verifyBearer(req.headers.authorization, s.argocd ?? ''),
      );
      if (!sender) {
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
      const { kind, namespace, name } = outcome.object;
      const object = `${kind} ${namespace}/${name}`;
      if (!senderMayName(sender, outcome.object)) {
        req.log.warn({ sender: sender.name, object }, 'notification for an object its key does not name refused');
        return reply.status(403).send({ error: `the notification key ${sender.name} does not name ${object}` });
      }
      const link = deps.linkOf(kind, namespace, name);
      if (!link) return reply.status(202).send({ status: 'ignored', reason: `${object} is not an object observed here` });
      if (!sender.projects.includes(link.project)) {
        req.log.warn(
          { sender: sender.name, object, project: link.project },
          'notification for a project its key is not granted to refused',
        );
        return reply.status(403).send({ error: `the notification key ${sender.name} is not granted to project ${link.project}` });
      }
      deps.wake(kind, namespace, name);
      return reply.status(202).send({ status: 'looking' });
    });
  route('/flux', fluxNotification);
  route('/argocd', argoNotification);
  return app;
}
