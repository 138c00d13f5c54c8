// pooledAuthentication: one connection pool per client instead of a new one (a new TLS connection) per request.
import { describe, expect, it } from '@jest/globals';
import { RequestContext, type KubeConfig } from '@kubernetes/client-node';
import { pooledAuthentication } from '../../../../src/platform/k8s/pool.js';

/** What client-node's KubeConfig does per request: headers, and a new dispatcher every time (config.js createDispatcher). */
function kubeConfigMakingAgents() {
  const made: Array<{ id: number; closed: boolean; close(): Promise<void> }> = [];
  const kc = {
    async applySecurityAuthentication(context: RequestContext) {
      context.setHeaderParam('Authorization', `Bearer token-${made.length}`);
      const agent = {
        id: made.length,
        closed: false,
        async close() {
          agent.closed = true;
        },
      };
      made.push(agent);
      context.setDispatcher(agent as never);
    },
  } as unknown as KubeConfig;
  return { kc, made };
}

const request = () => new RequestContext('https://api.example.test/api/v1/namespaces/keptn/configmaps', 'POST' as never);
const dispatcherOf = (c: RequestContext) => (c.getDispatcher() as unknown as { id: number }).id;

describe('pooledAuthentication', () => {
  it('keeps the first pool for every later request, with the headers of each request', async () => {
    const { kc } = kubeConfigMakingAgents();
    const auth = pooledAuthentication(kc, 60_000, () => 0);
    const contexts = [request(), request(), request()];
    for (const c of contexts) await auth.applySecurityAuthentication(c);
    expect(contexts.map(dispatcherOf)).toEqual([0, 0, 0]);
    expect(contexts.map((c) => c.getHeaders()['Authorization'])).toEqual(['Bearer token-0', 'Bearer token-1', 'Bearer token-2']);
  });

  it('renews the pool after its lifetime and closes the old one', async () => {
    const { kc, made } = kubeConfigMakingAgents();
    let t = 0;
    const auth = pooledAuthentication(kc, 1_000, () => t);
    const a = request();
    await auth.applySecurityAuthentication(a);
    t = 999;
    const b = request();
    await auth.applySecurityAuthentication(b);
    t = 1_000;
    const c = request();
    await auth.applySecurityAuthentication(c);
    expect([a, b, c].map(dispatcherOf)).toEqual([0, 0, 2]);
    expect(made[0]!.closed).toBe(true);
    expect(made[2]!.closed).toBe(false);
  });
});
