import { CoreV1Api } from '@kubernetes/client-node';
import { request as httpsRequest } from 'node:https';
import { stateNamespace, type Environment, type ServiceReplica } from '../test/env/environment.js';
import { SIZES, rows } from './common.js';

// ---------------------------------------------------------------------------------------------------------------
// 5. API requests per minute in steady state, from kube-apiserver's own counter: with the service running, and with
// it paused (SIGSTOP), the difference being the service's.

export async function apiserverCounts(env: Environment): Promise<Map<string, number>> {
  const opts: Parameters<typeof httpsRequest>[1] = {};
  await env.cluster.kc.applyToHTTPSOptions(opts);
  const text = await new Promise<string>((resolve, reject) => {
    const req = httpsRequest(`${env.kube.server}/metrics`, { ...opts, method: 'GET' }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve(body));
    });
    req.on('error', reject);
    req.end();
  });
  const counts = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (!line.startsWith('apiserver_request_total{')) continue;
    const verb = /verb="([^"]*)"/.exec(line)?.[1] ?? '';
    const resource = /resource="([^"]*)"/.exec(line)?.[1] ?? '';
    const key = `${verb} ${resource}`;
    counts.set(key, (counts.get(key) ?? 0) + Number(line.split(' ').pop()));
  }
  return counts;
}

/** The service's deployment records (ConfigMaps in its state namespace), finished ones included. */
export async function recordCount(env: Environment): Promise<number> {
  const list = await env.cluster.kc.makeApiClient(CoreV1Api).listNamespacedConfigMap({
    namespace: stateNamespace(env),
    labelSelector: 'app.kubernetes.io/managed-by=keptn-gitops-service',
  });
  return list.items.length;
}

/** `when` says what the service has behind it: the scan must not grow with the records of finished deployments. */
export async function steadyState(env: Environment, replica: ServiceReplica, when: string) {
  const window = async () => {
    const before = await apiserverCounts(env);
    await new Promise((r) => setTimeout(r, SIZES.steadySeconds * 1000));
    const after = await apiserverCounts(env);
    const diff = new Map<string, number>();
    for (const [k, v] of after) diff.set(k, v - (before.get(k) ?? 0));
    return diff;
  };
  const running = await window();
  process.kill(replica.process.pid, 'SIGSTOP');
  let paused: Map<string, number>;
  try {
    paused = await window();
  } finally {
    process.kill(replica.process.pid, 'SIGCONT');
  }
  const perMinute = (n: number) => (n * 60) / SIZES.steadySeconds;
  const total = (m: Map<string, number>) => [...m.values()].reduce((a, b) => a + b, 0);
  const ours = new Map<string, number>();
  for (const [k, v] of running) {
    const d = v - (paused.get(k) ?? 0);
    if (Math.abs(d) >= 1) ours.set(k, d);
  }
  const parts = [...ours]
    .filter(([, v]) => v > 0)
    .map(([k, v]) => `${k}: ${perMinute(v).toFixed(0)}`)
    .join(', ');
  const mine = perMinute(total(running) - total(paused));
  rows.push({
    measure: `Footprint: API requests per minute in steady state, ${when} (kube-apiserver's apiserver_request_total, ${SIZES.steadySeconds} s running vs ${SIZES.steadySeconds} s with the service paused)`,
    value: `${mine.toFixed(0)}/min attributable to the service (${parts || 'no difference by verb/resource'})`,
    baseline: `the rest of the cluster: ${perMinute(total(paused)).toFixed(0)}/min`,
    target: 'watches only; the record scan must not grow with history',
    met: undefined,
  });
}
