/**
 * The HTTP faces of the service, two servers on two ports:
 * - the event app: CloudEvents in on `POST /` from the distributor in the same pod (listening on loopback only, and
 *   refusing any peer that is not loopback), answered at once (the distributor gives 5 s) with the work left to the
 *   runner; `GET /health` for a loopback caller;
 * - the probe app, on every interface for the kubelet: `GET /health` (liveness) and `GET /ready` (readiness), not logged;
 *   and `GET /metrics` for Prometheus, here and never on the event port, which only the distributor may reach.
 */
import Fastify, { LogController, type FastifyError, type FastifyInstance, type FastifyServerOptions } from 'fastify';
import { isLoopbackAddress } from './config.js';
import { ServiceError } from './errors.js';
import { parseRequest } from './keptn/parse.js';
import type { Acceptance } from './runner.js';
import type { TriggeredEvent } from './keptn/events.js';

export interface AppDeps {
  /** Records and starts the deployment; rejects when it cannot be recorded. */
  accept(event: TriggeredEvent): Promise<Acceptance>;
}

export interface ProbeDeps {
  ready(): boolean;
  /** The Prometheus exposition (src/metrics.ts); without it there is no `/metrics`. */
  metrics?: { readonly contentType: string; render(): Promise<string> };
}

/** CloudEvents bodies are small; a megabyte is generous and keeps a hostile client from costing memory. */
export const BODY_LIMIT = 1024 * 1024;

export function buildApp(deps: AppDeps, options: FastifyServerOptions = {}): FastifyInstance {
  const app = Fastify({ bodyLimit: BODY_LIMIT, ...options });

  // CloudEvents are JSON; anything else is 415, not a confusing parse error.
  app.removeContentTypeParser('text/plain');
  // Keep the body as text: the cloudevents SDK decodes it according to the headers.
  for (const type of ['application/json', 'application/cloudevents+json', 'application/cloudevents-batch+json']) {
    app.removeContentTypeParser(type);
    app.addContentTypeParser(type, { parseAs: 'string' }, (_req, body, done) => done(null, body));
  }
  handleErrors(app);

  // Bound to loopback already (config.ts); checked again here, before the body is read, so that a listener opened
  // wider by mistake still takes events only from inside the pod.
  app.addHook('onRequest', async (req, reply) => {
    if (!isLoopbackAddress(req.socket.remoteAddress ?? '')) {
      req.log.warn({ remoteAddress: req.socket.remoteAddress }, 'request from outside the pod refused');
      return reply.status(403).send({ error: 'events are accepted only from the distributor in the same pod (loopback)' });
    }
  });

  app.get('/health', { logLevel: 'warn' }, async () => ({ status: 'ok' }));

  app.post('/', async (req, reply) => {
    const outcome = parseRequest(req.headers, req.body);
    switch (outcome.kind) {
      case 'invalid':
        req.log.warn({ problems: outcome.problems }, 'invalid event rejected');
        return reply.status(400).send({ error: 'invalid event', problems: outcome.problems });
      case 'too-large':
        req.log.warn({ reason: outcome.reason }, 'oversized event rejected');
        return reply.status(413).send({ error: 'event too large', reason: outcome.reason });
      case 'ignored':
        return reply.status(202).send({ status: 'ignored', reason: outcome.reason });
      case 'accepted': {
        try {
          const acceptance = await deps.accept(outcome.event);
          return reply.status(202).send({ status: acceptance, id: outcome.event.id });
        } catch (err: unknown) {
          const reason = err instanceof Error ? err.message : String(err);
          if (err instanceof ServiceError && err.code === 'RECORD_TOO_LARGE') {
            // It can never be recorded, so asking again cannot help: refuse it for good.
            req.log.warn({ err }, 'event too large to record');
            return reply.status(413).send({ error: 'event too large to record', reason });
          }
          // Not recorded, so not acknowledged: the distributor delivers it again.
          req.log.error({ err }, 'event not recorded');
          return reply.status(503).send({ error: 'cannot record the deployment now; retry', reason });
        }
      }
    }
  });

  return app;
}

/** Liveness, readiness and metrics: asked every few seconds, so their requests are not logged. */
export function buildProbeApp(deps: ProbeDeps, options: FastifyServerOptions = {}): FastifyInstance {
  const app = Fastify({ ...options, logController: new LogController({ disableRequestLogging: true }) });
  handleErrors(app);
  app.get('/health', async () => ({ status: 'ok' }));
  app.get('/ready', async (_req, reply) => (deps.ready() ? { status: 'ready' } : reply.status(503).send({ status: 'not ready' })));
  const metrics = deps.metrics;
  if (metrics) app.get('/metrics', async (_req, reply) => reply.type(metrics.contentType).send(await metrics.render()));
  return app;
}

function handleErrors(app: FastifyInstance): void {
  app.setErrorHandler((err: FastifyError, _req, reply) => {
    const status = err.statusCode && err.statusCode >= 400 && err.statusCode < 500 ? err.statusCode : 500;
    if (status === 500) app.log.error({ err }, 'request failed');
    void reply.status(status).send({ error: status === 500 ? 'internal error' : err.message });
  });
}
