/**
 * The HTTP face of the service: CloudEvents in on `POST /`, health on `GET /health`, readiness on `GET /ready`.
 * Answers at once (the distributor gives 5 s) and leaves the work to the runner.
 */
import Fastify, { type FastifyInstance, type FastifyServerOptions } from 'fastify';
import { parseRequest } from './keptn/parse.js';
import type { Acceptance } from './runner.js';
import type { TriggeredEvent } from './keptn/events.js';

export interface AppDeps {
  /** Records and starts the deployment; rejects when it cannot be recorded. */
  accept(event: TriggeredEvent): Promise<Acceptance>;
  ready(): boolean;
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

  app.setErrorHandler((err: { statusCode?: number; message: string }, _req, reply) => {
    const status = err.statusCode && err.statusCode >= 400 && err.statusCode < 500 ? err.statusCode : 500;
    if (status === 500) app.log.error({ err: err.message }, 'request failed');
    void reply.status(status).send({ error: status === 500 ? 'internal error' : err.message });
  });

  app.get('/health', async () => ({ status: 'ok' }));
  app.get('/ready', async (_req, reply) => (deps.ready() ? { status: 'ready' } : reply.status(503).send({ status: 'not ready' })));

  app.post('/', async (req, reply) => {
    const outcome = parseRequest(req.headers, req.body);
    switch (outcome.kind) {
      case 'invalid':
        req.log.warn({ problems: outcome.problems }, 'invalid event rejected');
        return reply.status(400).send({ error: 'invalid event', problems: outcome.problems });
      case 'ignored':
        return reply.status(202).send({ status: 'ignored', reason: outcome.reason });
      case 'accepted': {
        try {
          const acceptance = await deps.accept(outcome.event);
          return reply.status(202).send({ status: acceptance, id: outcome.event.id });
        } catch (err: unknown) {
          // Not recorded, so not acknowledged: the distributor delivers it again.
          req.log.error({ err: (err as Error).message }, 'event not recorded');
          return reply.status(503).send({ error: 'cannot record the deployment now; retry', reason: (err as Error).message });
        }
      }
    }
  });

  return app;
}
