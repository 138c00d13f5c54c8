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
import { ServiceError } from './shared/errors.js';
import { GATE_PATH, GATES, type Gate } from './tools/flagger/evaluate.js';
import { parseRequest } from './keptn/parse.js';
import type { Acceptance } from './tasks/runner.js';
import type { TriggeredEvent } from './keptn/events.js';

export interface AppDeps {
  /** Records and starts the deployment; rejects when it cannot be recorded. */
  accept(event: TriggeredEvent): Promise<Acceptance>;
}

export interface ProbeDeps {
  ready(): boolean;
  /** The Prometheus exposition (src/platform/metrics.ts); without it there is no `/metrics`. */
  metrics?: { readonly contentType: string; render(): Promise<string> };
  /** Flagger's gates (src/tools/flagger): whether the gate is open for the Canary now. Without it there are no gate routes. */
  gate?(gate: Gate, namespace: string, name: string): Promise<{ open: boolean; reason: string }>;
}

/** Flagger's webhook payload (pkg/apis/flagger/v1beta1 CanaryWebhookPayload): the Canary is all the gate reads. */
const K8S_NAME = /^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$/;

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
  const gate = deps.gate;
  if (gate)
    for (const which of GATES)
      // Read-only: the answer comes from the Canary's annotations, which only Keptn's tasks (or an operator) write, so
      // a caller learns whether a gate is open and can change nothing.
      app.post(GATE_PATH[which], { bodyLimit: 64 * 1024 }, async (req, reply) => {
        const body = req.body as { name?: unknown; namespace?: unknown } | null;
        const { name, namespace } = body ?? {};
        if (typeof name !== 'string' || typeof namespace !== 'string' || !K8S_NAME.test(name) || !K8S_NAME.test(namespace))
          return reply.status(400).send({ error: "the body must be Flagger's webhook payload, with the Canary's name and namespace" });
        try {
          const answer = await gate(which, namespace, name);
          req.log.debug({ gate: which, canary: `${namespace}/${name}`, ...answer }, 'flagger gate asked');
          return reply.status(answer.open ? 200 : 403).send(answer);
        } catch (err: unknown) {
          req.log.warn({ err, gate: which, canary: `${namespace}/${name}` }, 'flagger gate could not be decided');
          return reply.status(503).send({ open: false, reason: `cannot read Canary ${namespace}/${name} now` });
        }
      });
  return app;
}

function handleErrors(app: FastifyInstance): void {
  app.setErrorHandler((err: FastifyError, _req, reply) => {
    const status = err.statusCode && err.statusCode >= 400 && err.statusCode < 500 ? err.statusCode : 500;
    if (status === 500) app.log.error({ err }, 'request failed');
    void reply.status(status).send({ error: status === 500 ? 'internal error' : err.message });
  });
}
