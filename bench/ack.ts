import { mkdir, symlink } from 'node:fs/promises';
import { join } from 'node:path';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { serviceEnvironment, type Environment } from '../test/env/environment.js';
import { startDistributor } from '../test/env/keptn.js';
import { freePort, spawnPeer, waitUntil } from '../test/env/process.js';
import { runLoadInWorker, type LoadResult } from './load.js';
import { median, ms, percentile } from './stats.js';
import { SIZES, PROJECT, rows, details, now } from './common.js';
import { observeEvents, every, triggered } from './observe.js';
import { burstSettings, pool } from './burst.js';
import { CoreV1Api } from '@kubernetes/client-node';
import { pooledApiClient } from '../src/platform/k8s/pool.js';

// ---------------------------------------------------------------------------------------------------------------
// 4. Acknowledgement: POST / answer times at fixed rates while the accepted deployments run.

export function summarise(r: LoadResult): string {
  const codes = Object.entries(r.statuses)
    .map(([k, v]) => `${k}×${v}`)
    .join(' ');
  return `p50 ${ms(median(r.latencies))}, p99 ${ms(percentile(r.latencies, 99))}, max ${ms(Math.max(...r.latencies))} (${codes}${r.errors ? `, ${r.errors} errors` : ''})`;
}

/** What the API server alone takes: writes per second, and the time of one write, at a given number in flight. */
export interface ApiLimit {
  perSecond: number;
  inFlight: number;
  latencies: number[];
}

/** Writes in flight while the limit is measured: as many as the service before kept at once (one per request). */
const LIMIT_IN_FLIGHT = 32;
const LIMIT_SECONDS = 5;

/**
 * The physical limit: this API server taking the writes the acknowledgement needed before the intake (one ConfigMap
 * the size of one deployment record per event), from a pooled client as the service's, with nothing else in the way
 * (the service idle, between rounds). Closed loop, LIMIT_IN_FLIGHT at once, for LIMIT_SECONDS.
 */
export async function apiServerLimit(env: Environment): Promise<ApiLimit> {
  const core = pooledApiClient(env.cluster.kc, CoreV1Api);
  const namespace = 'bench-limit';
  await core.createNamespace({ body: { metadata: { name: namespace } } }).catch(() => undefined);
  const record = JSON.stringify({
    event: triggered('ack', ACK_TAG),
    phase: 'accepted',
    owner: 'bench',
    acceptedAt: Date.now(),
    claim: 'x',
  });
  const latencies: number[] = [];
  const until = now() + LIMIT_SECONDS * 1000;
  let n = 0;
  const began = now();
  await pool(
    Array.from({ length: LIMIT_IN_FLIGHT }, (_, i) => i),
    LIMIT_IN_FLIGHT,
    async () => {
      while (now() < until) {
        const t = performance.now();
        await core.createNamespacedConfigMap({ namespace, body: { metadata: { name: `limit-${n++}` }, data: { record } } });
        latencies.push(performance.now() - t);
      }
    },
  );
  const perSecond = latencies.length / ((now() - began) / 1000);
  await core.deleteNamespace({ name: namespace }).catch(() => undefined);
  rows.push({
    measure: `Acknowledgement: the physical limit, this API server alone taking one record write per event (a ConfigMap of ${record.length} bytes, ${LIMIT_IN_FLIGHT} in flight, ${LIMIT_SECONDS} s, the service idle)`,
    value: `${Math.round(perSecond)} writes/s; one write p50 ${ms(median(latencies))}, p99 ${ms(percentile(latencies, 99))}`,
    baseline: '–',
    target: '–',
    met: undefined,
  });
  return { perSecond, inFlight: LIMIT_IN_FLIGHT, latencies };
}

export interface AckTarget {
  label: string;
  port: number;
  stop(): Promise<void>;
}

/**
 * The service as it was at `commit` (git archive of src/ and package.json, this checkout's node_modules), in its own
 * process with its own distributor, which forwards no topic: it only takes the POSTs of the acknowledgement round.
 */
export async function serviceAt(env: Environment, commit: string): Promise<AckTarget> {
  const dir = join(env.workDir, `service-at-${commit.slice(0, 12)}`);
  await mkdir(dir, { recursive: true });
  await promisify(execFile)('sh', ['-c', `git archive "$1" src package.json | tar -x -C "$2"`, 'sh', commit, dir]);
  await symlink(join(process.cwd(), 'node_modules'), join(dir, 'node_modules'));
  const port = await freePort();
  const healthPort = await freePort();
  const apiProxyPort = await freePort();
  const distributor = await startDistributor({
    natsUrl: env.nats.url,
    recipientPort: port,
    topics: ['sh.keptn.event.benchnone.triggered'],
    resourceServiceUrl: env.resources.url,
    logDir: env.logDir,
    name: 'distributor-before',
    apiProxyPort,
  });
  const apiUrl = `http://127.0.0.1:${apiProxyPort}`;
  const child = await spawnPeer({
    name: 'service-before',
    command: process.execPath,
    args: ['--import', 'tsx', join(dir, 'src', 'main.ts')],
    cwd: dir,
    env: serviceEnvironment(env, port, `${apiUrl}/event`, apiUrl, {
      REPLICA_ID: 'before',
      HEALTH_PORT: String(healthPort),
      LOG_LEVEL: 'info',
    }),
    logDir: env.logDir,
  });
  await waitUntil('service before healthy', async () => (await fetch(`http://127.0.0.1:${port}/health`)).ok, {
    timeoutMs: 60_000,
    peer: child,
  });
  return {
    label: `at ${commit.slice(0, 8)} (before)`,
    port,
    async stop() {
      await distributor.stop();
      await child.stop();
    },
  };
}

/**
 * The image the burst left in burst-0: the acknowledgement round's deployments find it in Git already, so each one
 * fetches, checks, waits for the tool and reports, without thousands of commits to one file (they would be serial).
 */
export const ACK_TAG = '0.7.0';

export async function acknowledgement(env: Environment, events: ReturnType<typeof observeEvents>, targets: AckTarget[], limit?: ApiLimit) {
  // A service with settings that point at the burst repository's first app: the deployments do real work (settings,
  // Secret, Git, the tool) under the load.
  env.resources.put({ project: PROJECT, stage: 'dev', service: 'ack' }, 'gitops/config.yaml', burstSettings('burst-0'));
  for (const rate of SIZES.rates) {
    for (const target of targets) {
      const triggers = Array.from({ length: Math.round(rate * SIZES.rateSeconds) }, () => triggered('ack', ACK_TAG));
      const ids = triggers.map((e) => e.id);
      const bodies = triggers.map((e) => ({ headers: { 'content-type': 'application/cloudevents+json' }, text: JSON.stringify(e) }));
      // Each load in a thread of its own, so that the bench's observers cannot delay it.
      const [post, health] = await Promise.all([
        runLoadInWorker({
          url: `http://127.0.0.1:${target.port}/`,
          method: 'POST',
          ratePerSecond: rate,
          seconds: SIZES.rateSeconds,
          bodies,
        }),
        runLoadInWorker({ url: `http://127.0.0.1:${target.port}/health`, method: 'GET', ratePerSecond: 20, seconds: SIZES.rateSeconds }),
      ]);
      const p99 = percentile(post.latencies, 99);
      const max = Math.max(...post.latencies);
      const refused = (post.statuses['503'] ?? 0) > 0;
      rows.push({
        measure: `Acknowledgement${targets.length > 1 ? `, service ${target.label}` : ''}: POST / at ${rate} events/s for ${SIZES.rateSeconds} s (recorded before the answer)${limit ? `, ${Math.round((100 * rate) / limit.perSecond)} % of the physical limit` : ''}`,
        value: summarise(post),
        baseline: `GET /health on the same port meanwhile: ${summarise(health)}`,
        target: rate === 200 ? 'p99 ≤ 50 ms, no 503' : rate >= 500 ? 'no answer > 1 s, no 503' : '–',
        met: rate === 200 ? p99 <= 50 && !refused : rate >= 500 ? max <= 1000 && post.errors === 0 && !refused : undefined,
      });
      // Let this round's deployments end before the next one, so each is measured on its own.
      const accepted = ids.length;
      const started = now();
      await every(`the ${accepted} deployments at ${rate}/s finished`, 1_000, 90_000, async () =>
        ids.every((id) => events.arrivals.get(id)?.finished.length),
      )
        .then(() =>
          details.push(
            `${target.label}: the ${accepted} deployments posted at ${rate}/s all finished ${ms(now() - started)} after the load ended`,
          ),
        )
        .catch(() =>
          details.push(
            `${target.label}: at ${rate}/s, ${ids.filter((id) => events.arrivals.get(id)?.finished.length).length} of ${accepted} deployments finished within 90 s after the load`,
          ),
        );
    }
  }
}
