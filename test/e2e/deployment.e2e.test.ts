// The main job end to end, against real peers: Keptn's control plane (played by this test on NATS) triggers a
// deployment; the real distributor hands it to the service; the service commits to the Git server; real Flux or
// Argo CD applies it to a real kube-apiserver with kwok nodes; the service reports back through the distributor.
// The same scenarios run for both tools with the same Keptn events: only the settings' target differs.
// One environment for all cases (deployment/world.ts); the cases run concurrently (jest's maxConcurrency), each on a
// repository, namespace and tool objects of its own.
import { afterAll, beforeAll, expect } from '@jest/globals';
import type { KubernetesObject } from '@kubernetes/client-node';
import { answerTo, answersTo as answersToRun, keptnEvent } from '../env/keptn.js';
import { waitUntil } from '../env/process.js';
import {
  appFiles,
  grantAnnotations,
  helmAppFiles,
  helmSettingsYaml,
  IMAGE,
  keptnSecret,
  settingsYaml,
  toolObjects,
  type TestApp,
} from '../env/sample-app.js';
import { rollbackSequence, rolledOut, roomForOnePod } from '../env/failure-path.js';
import {
  deliver,
  env,
  events,
  expectExactlyOneStartedAndFinished,
  imageInCluster,
  newApp,
  nextId,
  start,
  stop,
  tools,
} from './deployment/world.js';
import { concurrentCases } from './support/concurrent.js';

beforeAll(start, 300_000);
afterAll(stop, 60_000);

for (const tool of tools) {
  const concurrently = concurrentCases(`deployment through ${tool}`);
  concurrently(
    'deploys a new image tag: one commit, applied by the tool, reported with that commit',
    async () => {
      const app = await newApp(tool);
      const d = await deliver(app);
      await expectExactlyOneStartedAndFinished(d);
      const log = await env.git.log(app.repo);
      expect(log).toHaveLength(2);
      expect(d.finished.data).toMatchObject({
        status: 'succeeded',
        result: 'pass',
        deployment: {
          gitCommit: log[0]!.sha,
          deploymentstrategy: 'direct',
          deploymentNames: [app.service],
          deploymentURIsLocal: [`http://web.${app.namespace}.svc.cluster.local:80`],
        },
      });
      expect(log[0]!.body).toContain(`Keptn-Context: ${d.triggered.shkeptncontext}`);
      expect(await env.git.readFile(app.repo, `apps/${app.name}/kustomization.yaml`)).toContain('newTag: 0.2.0 # set by Keptn');
      // Never a pass on the old, healthy state: the cluster already runs the new image when .finished arrives.
      expect(d.imageAtFinish).toBe(`${IMAGE}:0.2.0`);
    },
    240_000,
  );

  concurrently(
    'passes without a commit when the tag is already in place',
    async () => {
      const app = await newApp(tool);
      const d = await deliver(app, { image: `${IMAGE}:0.1.0` });
      await expectExactlyOneStartedAndFinished(d);
      expect(await env.git.log(app.repo)).toHaveLength(1);
      expect(d.finished.data).toMatchObject({ result: 'pass', deployment: { gitCommit: app.initialCommit } });
      expect(d.finished.data.message).toContain('already in Git');
    },
    240_000,
  );

  concurrently(
    "passes when someone else's commit lands on top of ours before the tool looks",
    async () => {
      const app = await newApp(tool);
      let foreign = '';
      env.git.afterNextPush(app.repo, async () => {
        foreign = await env.git.commitAsOther(app.repo, { [`apps/${app.name}/NOTES.md`]: 'unrelated change\n' }, 'docs: notes');
      });
      const d = await deliver(app);
      const log = await env.git.log(app.repo);
      expect(log.map((c) => c.sha)).toEqual([foreign, expect.any(String), app.initialCommit]);
      expect(d.finished.data).toMatchObject({ result: 'pass', deployment: { gitCommit: log[1]!.sha } });
      expect(d.imageAtFinish).toBe(`${IMAGE}:0.2.0`);
    },
    240_000,
  );

  concurrently(
    "fails early with the tool's own message when it cannot apply the manifests",
    async () => {
      const app = await newApp(tool, { timeout: '150s' });
      await env.git.commitAsOther(
        app.repo,
        {
          [`apps/${app.name}/kustomization.yaml`]: `apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n  - deployment.yaml\n  - missing-service.yaml\nimages:\n  - name: ${IMAGE}\n    newTag: 0.1.0\n`,
        },
        'add service',
      );
      const d = await deliver(app);
      await expectExactlyOneStartedAndFinished(d);
      expect(d.finished.data).toMatchObject({ status: 'succeeded', result: 'fail' });
      expect(d.finished.data.message).toMatch(/missing-service\.yaml/);
      expect(d.ms).toBeLessThan(100_000);
    },
    240_000,
  );
}

for (const tool of tools) {
  const concurrently = concurrentCases(`rollback through ${tool}`);
  concurrently(
    "reverts this sequence's deployment commit, and the tool brings the old image back",
    async () => {
      const app = await newApp(tool);
      const d = await deliver(app);
      expect(d.finished.data).toMatchObject({ result: 'pass' });
      const rollbackEvent = keptnEvent(
        'sh.keptn.event.rollback.triggered',
        { project: 'podtato', stage: 'dev', service: app.service },
        { shkeptncontext: d.triggered.shkeptncontext },
      );
      await env.controlPlane.publish(rollbackEvent);
      const rbStarted = await events.waitFor(answerTo(rollbackEvent.id, 'started', 'rollback'), { timeoutMs: 10_000 });
      const rbFinished = await events.waitFor(answerTo(rollbackEvent.id, 'finished', 'rollback'), { timeoutMs: 120_000 });
      expect(rbStarted.shkeptncontext).toBe(d.triggered.shkeptncontext);
      const log = await env.git.log(app.repo);
      expect(log).toHaveLength(3);
      expect(log[0]!.subject).toBe(
        `keptn: roll back ${app.service} in dev (revert ${String(d.finished.data.deployment.gitCommit).slice(0, 12)})`,
      );
      expect(rbFinished.data).toMatchObject({ status: 'succeeded', result: 'pass', rollback: { gitCommit: log[0]!.sha } });
      expect(await env.git.readFile(app.repo, `apps/${app.name}/kustomization.yaml`)).toContain('newTag: 0.1.0 # set by Keptn');
      expect(await imageInCluster(app)).toBe(`${IMAGE}:0.1.0`);
    },
    240_000,
  );
}

for (const tool of tools) {
  const concurrently = concurrentCases(`Keptn's failure path through ${tool} (issue 24)`);
  concurrently(
    'a delivery that cannot become ready fails saying what was applied; the rollback sequence brings the old image back, healthy',
    async () => {
      const app = await newApp(tool, { timeout: '10s' });
      // Flux: a Kustomization that checks health longer than the rollback may wait (30 s, GetTimeout's least).
      if (tool === 'flux')
        await env.cluster.mergePatch({
          apiVersion: 'kustomize.toolkit.fluxcd.io/v1',
          kind: 'Kustomization',
          metadata: { name: app.name, namespace: 'flux-system' },
          spec: { timeout: '30s' },
        });
      await env.cluster.apply([roomForOnePod(app)]);
      const d = await deliver(app);
      await expectExactlyOneStartedAndFinished(d);
      expect(d.finished.data).toMatchObject({ status: 'succeeded', result: 'fail' });
      expect(d.ms).toBeGreaterThanOrEqual(10_000);
      expect(d.finished.data.message).toMatch(
        tool === 'flux'
          ? /Flux applied commit [0-9a-f]{40}, but it did not become healthy in time: Kustomization \S+ applied [0-9a-f]{12} and kustomize-controller is checking its health until about \S+ \(spec.timeout 30s\): Deployment \S+\/web is not ready: updated 0\/1/
          : /Argo CD applied commit [0-9a-f]{40}, but it did not become healthy in time: .* is Progressing at [0-9a-f]{40}; not Healthy: Deployment \S+\/web: Waiting for rollout to finish: 0 out of 1 new replicas have been updated/,
      );

      const rb = await rollbackSequence({ controlPlane: env.controlPlane, events }, d);
      expect(answersToRun(events, rb)).toEqual(['sh.keptn.event.rollback.finished', 'sh.keptn.event.rollback.started']);
      const log = await env.git.log(app.repo);
      expect(rb.finished.data).toMatchObject({ status: 'succeeded', result: 'pass', rollback: { gitCommit: log[0]!.sha } });
      expect(rb.finished.data.message).toContain(`rolled back with commit ${log[0]!.sha}`);
      expect(await rolledOut(env.cluster, app)).toEqual({ image: `${IMAGE}:0.1.0`, ready: true });
      // Flux applied the revert only once its check of the failed revision ended, after the rollback's 10 s: the
      // deadline counted from then.
      if (tool === 'flux') expect(rb.ms).toBeGreaterThan(10_000);
    },
    240_000,
  );
}

if (tools.includes('flux')) {
  const concurrently = concurrentCases('deployment through a Flux HelmRelease');
  concurrently(
    'writes the values key, follows Kustomization then HelmRelease, and passes once helm-controller upgraded',
    async () => {
      const name = `flux-helm-${nextId()}`;
      const { url, commit } = await env.git.createRepo(name, helmAppFiles(name));
      const app: TestApp = { name, namespace: name, repo: name, repoUrl: url, initialCommit: commit, service: `svc-${name}` };
      await env.cluster.apply([
        { apiVersion: 'v1', kind: 'Namespace', metadata: { name } } as KubernetesObject,
        keptnSecret(app, env),
        ...toolObjects('flux', app, env),
      ]);
      env.resources.put({ project: 'podtato', stage: 'dev', service: app.service }, 'gitops/config.yaml', helmSettingsYaml(app));
      await waitUntil(`${name} installed by helm-controller`, async () => (await imageInCluster(app)) === `${IMAGE}:0.1.0`, {
        timeoutMs: 120_000,
      });

      const d = await deliver(app);
      await expectExactlyOneStartedAndFinished(d);
      const log = await env.git.log(app.repo);
      expect(d.finished.data).toMatchObject({ result: 'pass', deployment: { gitCommit: log[0]!.sha } });
      expect(d.finished.data.message).toMatch(/HelmRelease (flux-helm-\d+)\/\1 is ready: UpgradeSucceeded/);
      expect(await env.git.readFile(app.repo, `apps/${name}/release.yaml`)).toContain('tag: 0.2.0 # set by Keptn');
      expect(d.imageAtFinish).toBe(`${IMAGE}:0.2.0`);
    },
    240_000,
  );
}

if (tools.includes('argocd')) {
  const concurrently = concurrentCases('deployment through a multi-source Argo CD Application');
  concurrently(
    'finds our repository among the sources, syncs it at our commit, and passes',
    async () => {
      const name = `argocd-multi-${nextId()}`;
      const { url, commit } = await env.git.createRepo(name, appFiles(name));
      const extra = await env.git.createRepo(`${name}-extra`, {
        'extra/cm.yaml': 'apiVersion: v1\nkind: ConfigMap\nmetadata: { name: extra }\ndata: { a: "1" }\n',
      });
      const app: TestApp = { name, namespace: name, repo: name, repoUrl: url, initialCommit: commit, service: `svc-${name}` };
      const [repoSecret] = toolObjects('argocd', app, env);
      const extraSecret = toolObjects('argocd', { ...app, name: `${name}-extra`, repoUrl: extra.url }, env)[0]!;
      const sources = [
        { repoURL: extra.url, path: 'extra', targetRevision: 'main' },
        { repoURL: url, path: `apps/${name}`, targetRevision: 'main' },
      ];
      await env.cluster.apply([
        { apiVersion: 'v1', kind: 'Namespace', metadata: { name } } as KubernetesObject,
        keptnSecret(app, env),
        repoSecret!,
        extraSecret,
        {
          apiVersion: 'argoproj.io/v1alpha1',
          kind: 'Application',
          metadata: { name, namespace: 'argocd', annotations: grantAnnotations() },
          spec: { project: 'default', sources, destination: { server: 'https://kubernetes.default.svc', namespace: name } },
        } as KubernetesObject,
      ]);
      env.resources.put({ project: 'podtato', stage: 'dev', service: app.service }, 'gitops/config.yaml', settingsYaml('argocd', app));
      await env.cluster.mergePatch({
        apiVersion: 'argoproj.io/v1alpha1',
        kind: 'Application',
        metadata: { name, namespace: 'argocd' },
        operation: { sync: { revisions: [extra.commit, commit], sourcePositions: [1, 2] } },
      });
      await waitUntil(`${name} initially deployed`, async () => (await imageInCluster(app)) === `${IMAGE}:0.1.0`, { timeoutMs: 120_000 });

      const d = await deliver(app);
      await expectExactlyOneStartedAndFinished(d);
      const ours = (await env.git.log(app.repo))[0]!.sha;
      expect(d.finished.data).toMatchObject({ result: 'pass', deployment: { gitCommit: ours } });
      expect(d.imageAtFinish).toBe(`${IMAGE}:0.2.0`);
      const synced = await env.cluster.read<KubernetesObject & { status: { sync: { revisions: string[] } } }>(
        'argoproj.io/v1alpha1',
        'Application',
        'argocd',
        name,
      );
      expect(synced.status.sync.revisions).toEqual([extra.commit, ours]);
    },
    240_000,
  );
}

if (tools.includes('argocd')) {
  const concurrently = concurrentCases('deployment through Argo CD with automated sync');
  concurrently(
    'refreshes, lets Argo CD sync, and passes on our commit',
    async () => {
      const app = await newApp('argocd', { automated: true });
      const d = await deliver(app);
      expect(d.finished.data).toMatchObject({ result: 'pass', deployment: { gitCommit: (await env.git.log(app.repo))[0]!.sha } });
      expect(d.imageAtFinish).toBe(`${IMAGE}:0.2.0`);
    },
    240_000,
  );
}

{
  const concurrently = concurrentCases("the sequence's configuration version");
  concurrently(
    'reads the settings at the gitcommitid of the event, through the distributor, not a change made since',
    async () => {
      const app = await newApp(tools[0]!);
      const pinned = env.resources.version()!;
      env.resources.put(
        { project: 'podtato', stage: 'dev', service: app.service },
        'gitops/config.yaml',
        settingsYaml(tools[0]!, app).replace(/kind: \w+/, 'kind: Flagger'),
      );
      const d = await deliver(app, { image: `${IMAGE}:0.2.0` }, pinned);
      expect(d.finished.data).toMatchObject({ status: 'succeeded', result: 'pass' });
      expect(d.imageAtFinish).toBe(`${IMAGE}:0.2.0`);
      expect(env.resources.requests.some((r) => r.endsWith(`?gitCommitID=${pinned}`))).toBe(true);
    },
    240_000,
  );
}

{
  const concurrently = concurrentCases('deployments that cannot be done end in .started then an errored .finished that says what to fix');
  concurrently.each([
    [
      'no settings for the service',
      (app: TestApp): void => {
        app.service = `${app.service}-unconfigured`;
      },
      {},
      /no gitops\/config.yaml at service, stage or project level; add one, e.g. keptn add-resource/,
    ],
    [
      'settings that are not valid',
      (app: TestApp): void =>
        env.resources.put(
          { project: 'podtato', stage: 'dev', service: app.service },
          'gitops/config.yaml',
          'git: {url: file:///etc, branch: main}\nimages: []\ntarget: {kind: Kustomization, name: x, namespace: y}\n',
        ),
      {},
      /resource gitops\/config.yaml of service .* is not valid: images: must NOT have fewer than 1 items/,
    ],
    [
      'no image in the event',
      () => undefined,
      { other: 'x' },
      /configurationChange.values.image is missing.*keptn trigger delivery --image/,
    ],
    [
      'an image with a newline',
      () => undefined,
      { image: `${IMAGE}:1\nkind: Secret` },
      /not a valid image reference: it contains white space/,
    ],
    [
      'an unknown tool',
      (app: TestApp): void =>
        env.resources.put(
          { project: 'podtato', stage: 'dev', service: app.service },
          'gitops/config.yaml',
          settingsYaml(tools[0]!, app).replace(/kind: \w+/, 'kind: Flagger'),
        ),
      {},
      /target.kind: must be one of Kustomization, HelmRelease, Application/,
    ],
  ] as Array<[string, (app: TestApp) => void, Record<string, unknown>, RegExp]>)(
    '%s',
    async (_name, breakIt, values, message) => {
      const app = await newApp(tools[0]!);
      breakIt(app);
      const d = await deliver(app, Object.keys(values).length ? values : { image: `${IMAGE}:0.2.0` });
      await expectExactlyOneStartedAndFinished(d);
      expect(d.finished.data).toMatchObject({ status: 'errored', result: 'fail' });
      expect(d.finished.data.message).toMatch(message);
      expect(await env.git.log(app.repo)).toHaveLength(1);
    },
    240_000,
  );
}
