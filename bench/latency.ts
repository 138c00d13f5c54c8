import { randomUUID } from 'node:crypto';
import { type Environment, type ServiceReplica } from '../test/env/environment.js';
import { keptnEvent } from '../test/env/keptn.js';
import { appFiles, requestFluxReconcile, type TestApp, type Tool } from '../test/env/sample-app.js';
import { median, ms, percentile } from './stats.js';
import { SIZES, PROJECT, rows, now } from './common.js';
import {
  observeEvents,
  type Seen,
  observeObjects,
  observeRef,
  every,
  first,
  fluxHealthStart,
  fluxFetched,
  finalFor,
  targetPath,
  triggered,
  makeApp,
  waitFinal,
} from './observe.js';

// ---------------------------------------------------------------------------------------------------------------
// 1. Detection latency and overhead over the controller; 2. against what users do today.

export async function sequential(env: Environment, events: ReturnType<typeof observeEvents>, tool: Tool, floor: number[]) {
  const name = `bench-${tool}`;
  const app = await makeApp(env, tool, name);
  const watch = await observeObjects(env, targetPath(tool));
  const sources =
    tool === 'flux' ? await observeObjects(env, '/apis/source.toolkit.fluxcd.io/v1/namespaces/flux-system/gitrepositories') : undefined;
  const ref = observeRef(env, name);
  try {
    await waitFinal(watch, tool, name, app.initialCommit, 180_000);
    const detection: number[] = [];
    const total: number[] = [];
    const controller: number[] = [];
    const overhead: number[] = [];
    const fetch: number[] = [];
    const apply: number[] = [];
    const health: number[] = [];
    const ourToPush: number[] = [];
    let failed = 0;
    for (let i = 1; i <= SIZES.deployments; i++) {
      const event = triggered(app.service, `0.2.${i}`);
      const t0 = now();
      await env.controlPlane.publish(event);
      const arrival = await events.finished(event.id, 400_000);
      const fin = arrival.finished[0]!;
      const sha = String(arrival.last?.data?.deployment?.gitCommit ?? '');
      if (arrival.last?.data?.result !== 'pass' || !sha) {
        failed++;
        continue;
      }
      const finalAt = await waitFinal(watch, tool, name, sha, 10_000).catch(() => NaN);
      const pushAt = ref.seen.get(sha) ?? NaN;
      detection.push(fin - finalAt);
      total.push(fin - t0);
      controller.push(finalAt - pushAt);
      overhead.push(fin - t0 - (finalAt - pushAt));
      ourToPush.push(pushAt - t0);
      if (tool === 'flux') {
        const fetchedAt = first(sources!.history.get(name), (o) => fluxFetched(o, sha), pushAt) ?? NaN;
        const healthAt = first(watch.history.get(name), (o) => fluxHealthStart(o, sha), pushAt) ?? NaN;
        fetch.push(fetchedAt - pushAt);
        apply.push(healthAt - fetchedAt);
        health.push(finalAt - healthAt);
      }
    }
    const label = tool === 'flux' ? 'Flux' : 'Argo CD';
    const n = detection.length;
    const med = median(detection);
    const p99 = percentile(detection, 99);
    rows.push({
      measure: `${label}: detection latency (final status seen → .finished on NATS), n=${n}${failed ? `, ${failed} not pass` : ''}`,
      value: `p50 ${ms(med)}, p99 ${ms(p99)}, max ${ms(Math.max(...detection))}`,
      baseline: `transport floor (POST to the distributor → NATS): p50 ${ms(median(floor))}, p99 ${ms(percentile(floor, 99))}`,
      target: 'p50 ≤ 15 ms, p99 ≤ 50 ms',
      met: med <= 15 && p99 <= 50 && n >= 50,
      ...(n < 50 ? { note: `only ${n} deployments in this run (BENCH_DEPLOYMENTS)` } : {}),
    });
    rows.push({
      measure: `${label}: overhead over the controller (trigger → .finished − push → final status)`,
      value: `p50 ${ms(median(overhead))}, p99 ${ms(percentile(overhead, 99))} (trigger → push p50 ${ms(median(ourToPush))})`,
      baseline: `controller push → final p50 ${ms(median(controller))}, p99 ${ms(percentile(controller, 99))}; trigger → .finished p50 ${ms(median(total))}`,
      target: 'p50 ≤ 1 s',
      met: median(overhead) <= 1000,
    });
    if (tool === 'flux') {
      rows.push({
        measure: 'Flux: the controller’s time, broken down (from the objects’ status, seen by the watch)',
        value: `fetch p50 ${ms(median(fetch))}, apply p50 ${ms(median(apply))}, health checks p50 ${ms(median(health))}`,
        baseline: `push → final p50 ${ms(median(controller))}`,
        target: '–',
        met: undefined,
      });
    }
    await usersToday(env, tool, app, watch, total);
  } finally {
    watch.stop();
    sources?.stop();
    ref.stop();
  }
}

/** Commit by hand, then either wait for the tool's own poll or request a reconcile and poll every 2 s (flux reconcile / argocd app wait). */
export async function usersToday(env: Environment, tool: Tool, app: TestApp, watch: { history: Map<string, Seen[]> }, ours: number[]) {
  const label = tool === 'flux' ? 'Flux' : 'Argo CD';
  const polling: number[] = [];
  const poll: number[] = [];
  const file = `apps/${app.name}/kustomization.yaml`;
  const commitTag = (tag: string) =>
    env.git.commitAsOther(app.repo, { [file]: appFiles(app.name)[file]!.replace('newTag: 0.1.0', `newTag: ${tag}`) }, `by hand: ${tag}`);
  const annotate = async () => {
    if (tool === 'flux') {
      await requestFluxReconcile(env.cluster, app.name);
    } else {
      await env.cluster.mergePatch({
        apiVersion: 'argoproj.io/v1alpha1',
        kind: 'Application',
        metadata: { name: app.name, namespace: 'argocd', annotations: { 'argocd.argoproj.io/refresh': 'normal' } },
      });
    }
  };
  const read = () =>
    env.cluster.read<Seen['obj']>(
      tool === 'flux' ? 'kustomize.toolkit.fluxcd.io/v1' : 'argoproj.io/v1alpha1',
      tool === 'flux' ? 'Kustomization' : 'Application',
      tool === 'flux' ? 'flux-system' : 'argocd',
      app.name,
    );
  for (let i = 1; i <= SIZES.baselineSamples; i++) {
    const t0 = now();
    const sha = await commitTag(`0.4.${i}`);
    await annotate();
    await every('polled final status', 2_000, 300_000, async () => finalFor(tool)(await read(), sha));
    polling.push(now() - t0);
  }
  if (tool === 'flux') {
    for (const kind of ['GitRepository', 'Kustomization'] as const)
      await env.cluster.mergePatch({
        apiVersion: kind === 'GitRepository' ? 'source.toolkit.fluxcd.io/v1' : 'kustomize.toolkit.fluxcd.io/v1',
        kind,
        metadata: { name: app.name, namespace: 'flux-system' },
        spec: { interval: '1m' },
      });
  }
  for (let i = 1; i <= SIZES.baselineSamples; i++) {
    const t0 = now();
    const sha = await commitTag(`0.5.${i}`);
    const at = await waitFinal(watch, tool, app.name, sha, 600_000);
    poll.push(at - t0);
  }
  const oursMed = median(ours);
  rows.push({
    measure: `${label}: against what users do today (same app; ours = trigger → .finished)`,
    value: `ours p50 ${ms(oursMed)}`,
    baseline: `commit + next poll (${tool === 'flux' ? '1-minute interval' : 'default reconciliation period'}) p50 ${ms(median(poll))}, n=${poll.length}; commit + reconcile request + 2-s polling p50 ${ms(median(polling))}, n=${polling.length}`,
    target: '≥ 20× faster than the poll; never slower than the 2-s polling wait',
    met: oursMed * 20 <= median(poll) && oursMed <= median(polling),
  });
}

/** The floor of detection: an event posted to the distributor's event API until it arrives on NATS. */
export async function transportFloor(env: Environment, replica: ServiceReplica, samples: number): Promise<number[]> {
  const stream = env.controlPlane.subscribe('sh.keptn.event.benchping.>');
  const out: number[] = [];
  try {
    const arrived = new Map<string, number>();
    void (async () => {
      for await (const e of stream) arrived.set(e.id, now());
    })();
    for (let i = 0; i < samples; i++) {
      const e = keptnEvent(
        'sh.keptn.event.benchping.finished',
        { project: PROJECT, stage: 'dev', service: 'ping', status: 'succeeded', result: 'pass' },
        { triggeredid: randomUUID() },
      );
      const t0 = now();
      const res = await fetch(`http://127.0.0.1:${replica.apiProxyPort}/event`, {
        method: 'POST',
        headers: { 'content-type': 'application/cloudevents+json' },
        body: JSON.stringify(e),
      });
      if (!res.ok) break;
      await every('ping on NATS', 5, 10_000, async () => arrived.has(e.id));
      out.push(arrived.get(e.id)! - t0);
    }
  } finally {
    stream.close();
  }
  return out;
}
