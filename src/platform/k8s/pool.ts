/**
 * Kubernetes API clients that keep their connections. client-node (2.0) makes a new undici Agent, so a new TLS
 * connection, for every request; every client of the service is built here instead, with one pool each.
 */
import {
  createConfiguration,
  ServerConfiguration,
  type Configuration,
  type KubeConfig,
  type RequestContext,
  type SecurityAuthentication,
} from '@kubernetes/client-node';

type Dispatcher = NonNullable<ReturnType<RequestContext['getDispatcher']>>;

/** How long one pool of connections serves before a new one is made (so rotated TLS material is picked up). */
export const POOL_LIFETIME_MS = 5 * 60_000;

/**
 * The kubeconfig's authentication, with ONE keep-alive connection pool for every request of a client.
 *
 * client-node (2.0, config.js applySecurityAuthentication → createDispatcher) makes a new undici Agent for every
 * request, so each request opens a new TLS connection: a handshake on both ends per record write, which under a burst
 * of events costs more CPU than the writes and makes `POST /` wait. Headers (tokens) are still applied per request by
 * the kubeconfig; only the connection pool is kept, and renewed every `lifetimeMs` (the old one closes once idle).
 */
export function pooledAuthentication(kc: KubeConfig, lifetimeMs = POOL_LIFETIME_MS, now = Date.now): SecurityAuthentication {
  let shared: { dispatcher: Dispatcher; since: number } | undefined;
  return {
    getName: () => 'kubeconfig authentication, pooled connections',
    async applySecurityAuthentication(context: RequestContext) {
      await kc.applySecurityAuthentication(context);
      const fresh = context.getDispatcher();
      // No dispatcher (plain HTTP without TLS material): the global pool, which keeps connections alive already.
      if (!fresh) return;
      if (!shared || now() - shared.since >= lifetimeMs) {
        const old = shared;
        shared = { dispatcher: fresh, since: now() };
        void old?.dispatcher.close().catch(() => undefined);
        return;
      }
      // The fresh agent never opened a connection: dropping it costs nothing.
      context.setDispatcher(shared.dispatcher);
    },
  };
}

/** An API client with its own connection pool: what `kc.makeApiClient(type)` builds, with pooledAuthentication. */
export function pooledApiClient<T>(kc: KubeConfig, type: new (configuration: Configuration) => T): T {
  const cluster = kc.getCurrentCluster();
  if (!cluster) throw new Error('the kubeconfig names no current cluster');
  return new type(
    createConfiguration({ baseServer: new ServerConfiguration(cluster.server, {}), authMethods: { default: pooledAuthentication(kc) } }),
  );
}
