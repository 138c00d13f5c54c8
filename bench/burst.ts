import { type KubernetesObject } from '@kubernetes/client-node';
import { readFile } from 'node:fs/promises';
import { type Environment, type ServiceReplica } from '../test/env/environment.js';
import { NODE_PODS } from '../test/env/kube.js';
import { appFiles, grantAnnotations, IMAGE, keptnSecret } from '../test/env/sample-app.js';
import { ms } from './stats.js';
import { SIZES, PROJECT, SERVICE_MEMORY, rows, details, now } from './common.js';
import { observeEvents, observeObjects, every, conditions, targetPath, triggered } from './observe.js';

// ---------------------------------------------------------------------------------------------------------------
// 3. Burst and footprint: B services of one repository, with enough other watched objects to make 1,000.

export async function rssMb(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  return Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? NaN) / 1024;
}

export async function metricValue(replica: ServiceReplica, name: string): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${replica.healthPort}/metrics`)).text();
  return text
    .split('\n')
    .filter((l) => l.startsWith(name))
    .reduce((sum, l) => sum + Number(l.split(' ').pop()), 0);
}

export async function pool<T>(items: T[], width: number, work: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: width }, async () => {
      while (next < items.length) await work(items[next++]!);
    }),
  );
}

/** The settings of a service of the burst repository (set once that repository exists). */
export let burstSettings: (service: string) => string = () => '';

export async function burst(env: Environment, events: ReturnType<typeof observeEvents>, replica: ServiceReplica) {
  const size = SIZES.burst;
  // test/env's one kwok node offers NODE_PODS pods: more sample apps than that never all become ready.
  if (size + 2 * SIZES.tools.length > NODE_PODS - 10)
    throw new Error(
      `a burst of ${size} needs more than the ${NODE_PODS} pods of test/env's kwok node (test/env/kube.ts NODE_PODS); use a smaller BENCH_BURST`,
    );
  const repo = 'burst';
  const idleRss = await rssMb(replica.process.pid);
  const files: Record<string, string> = {};
  for (let i = 0; i < size; i++) Object.assign(files, appFiles(`burst-${i}`));
  const { url } = await env.git.createRepo(repo, files);
  burstSettings = (name) => `git: { url: ${url}, branch: main, secretRef: { name: burst-git } }
images: [{ file: apps/${name}/kustomization.yaml, kustomizeImage: ${IMAGE} }]
target: { kind: Kustomization, name: ${name}, namespace: flux-system }
timeout: 600s
`;
  const secret = (namespace: string, extra: Record<string, unknown> = {}) =>
    ({
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: { name: 'burst-git', namespace, ...extra },
      stringData: { username: env.git.username, password: env.git.password },
    }) as KubernetesObject;
  const keptn = keptnSecret({ name: 'burst', namespace: 'burst', repo, repoUrl: url, initialCommit: '', service: '' }, env);
  await env.cluster.apply([
    keptn,
    secret('flux-system'),
    {
      apiVersion: 'source.toolkit.fluxcd.io/v1',
      kind: 'GitRepository',
      metadata: { name: repo, namespace: 'flux-system' },
      spec: { interval: '1h', url, ref: { branch: 'main' }, secretRef: { name: 'burst-git' } },
    } as KubernetesObject,
  ]);
  const services = Array.from({ length: size }, (_, i) => `burst-${i}`);
  await pool(services, 8, async (name) => {
    await env.cluster.apply([
      { apiVersion: 'v1', kind: 'Namespace', metadata: { name } } as KubernetesObject,
      {
        apiVersion: 'kustomize.toolkit.fluxcd.io/v1',
        kind: 'Kustomization',
        metadata: { name, namespace: 'flux-system', annotations: grantAnnotations() },
        spec: {
          interval: '1h',
          retryInterval: '5s',
          path: `./apps/${name}`,
          prune: true,
          wait: true,
          timeout: '5m',
          targetNamespace: name,
          sourceRef: { kind: 'GitRepository', name: repo },
        },
      } as KubernetesObject,
    ]);
    env.resources.put({ project: PROJECT, stage: 'dev', service: name }, 'gitops/config.yaml', burstSettings(name));
  });
  // Watched objects the service lists and keeps in its cache: suspended Kustomizations no controller acts on.
  const fillers = Math.max(0, SIZES.objects - size - 2 * SIZES.tools.length);
  await pool(
    Array.from({ length: fillers }, (_, i) => `filler-${i}`),
    8,
    (name) =>
      env.cluster.apply([
        {
          apiVersion: 'kustomize.toolkit.fluxcd.io/v1',
          kind: 'Kustomization',
          metadata: { name, namespace: 'flux-system' },
          spec: { suspend: true, interval: '1h', path: './none', prune: false, sourceRef: { kind: 'GitRepository', name: 'none' } },
        } as KubernetesObject,
      ]),
  );
  const kustomizations = await observeObjects(env, targetPath('flux'));
  try {
    await every('burst apps first deployed', 2_000, 900_000, async () =>
      services.every((s) =>
        kustomizations.history.get(s)?.some((v) => conditions(v.obj).some((c) => c.type === 'Ready' && c.status === 'True')),
      ),
    );
    // The baseline: one deployment of one of these services, alone, just before the burst.
    const single = triggered('burst-0', '0.6.0');
    const s0 = now();
    await env.controlPlane.publish(single);
    const singleArrival = await events.finished(single.id, 600_000);
    const singleMs = singleArrival.finished[0]! - s0;

    const retriesBefore = await metricValue(replica, 'keptn_gitops_git_push_retries_total');
    const commitsBefore = (await env.git.log(repo)).length;
    const burstEvents = services.map((s) => triggered(s, '0.7.0'));
    let peakRss = 0;
    const sampler = setInterval(
      () =>
        void rssMb(replica.process.pid)
          .then((v) => (peakRss = Math.max(peakRss, v)))
          .catch(() => undefined),
      250,
    );
    const t0 = now();
    await Promise.all(burstEvents.map((e) => env.controlPlane.publish(e)));
    const published = now() - t0;
    const arrivals = await Promise.all(burstEvents.map((e) => events.finished(e.id, 1_200_000)));
    const totalMs = Math.max(...arrivals.map((a) => a.finished[0]!)) - t0;
    clearInterval(sampler);
    // Late duplicates would arrive after the first .finished: give them a moment to show.
    await new Promise((r) => setTimeout(r, 3_000));
    const log = await env.git.log(repo);
    const newCommits = log.slice(0, log.length - commitsBefore);
    const retries = (await metricValue(replica, 'keptn_gitops_git_push_retries_total')) - retriesBefore;
    const problems: string[] = [];
    for (const e of burstEvents) {
      const a = events.arrivals.get(e.id)!;
      if (a.started.length !== 1 || a.finished.length !== 1)
        problems.push(`${e.data['service']}: ${a.started.length} .started, ${a.finished.length} .finished`);
      if (a.last?.data?.result !== 'pass') problems.push(`${e.data['service']}: ${a.last?.data?.result}: ${a.last?.data?.message}`);
      const carriers = newCommits.filter((c) => c.body.split('\n').includes(`Keptn-Deployment-Id: ${e.id}`));
      if (carriers.length !== 1) problems.push(`${e.data['service']}: carried by ${carriers.length} commits`);
      else if (carriers[0]!.sha !== a.last?.data?.deployment?.gitCommit)
        problems.push(`${e.data['service']}: .finished names another commit`);
      const content = await env.git.readFile(repo, `apps/${e.data['service']}/kustomization.yaml`);
      if (!content.includes('newTag: 0.7.0')) problems.push(`${e.data['service']}: change lost`);
    }
    rows.push({
      measure: `Burst: ${size} deployment.triggered for ${size} services of one repository (published in ${ms(published)})`,
      value: `all finished in ${ms(totalMs)}; ${newCommits.length} pushes (commits), ${retries} push retries; ${problems.length ? `${problems.length} problems: ${problems.slice(0, 5).join('; ')}` : 'exactly one .started/.finished each, all pass, every change in exactly one commit, named by its .finished'}`,
      baseline: `one deployment of the same app alone: ${ms(singleMs)}`,
      target: `all within 3× one deployment (${ms(3 * singleMs)}), exactly once, nothing lost`,
      met: totalMs <= 3 * singleMs && problems.length === 0,
    });
    rows.push({
      measure: `Footprint: resident memory with ${SIZES.objects} watched objects and ${size} deployments in flight (peak; ${SERVICE_MEMORY.described})`,
      value: `${peakRss.toFixed(0)} MB`,
      baseline: `idle, before the objects: ${idleRss.toFixed(0)} MB`,
      target: '≤ 150 MB',
      met: peakRss <= 150,
    });
    details.push(`Burst commits (newest first): ${newCommits.map((c) => `${c.sha.slice(0, 8)} "${c.subject}"`).join(', ')}`);
  } finally {
    kustomizations.stop();
  }
}
