// What the service syncs, and what it refuses before writing (issues 7, 18): the source that tracks our branch, the
// Application's own sync options, sync windows, prune, and never a sync backwards. Concurrent, one repository each.
import { join } from 'node:path';
import { expect, it } from '@jest/globals';
import type { KubernetesObject } from '@kubernetes/client-node';
import { answerTo, type KeptnCloudEvent } from '../../env/keptn.js';
import { waitUntil } from '../../env/process.js';
import { IMAGE, imageInCluster, settingsYaml } from '../../env/sample-app.js';
import {
  APP,
  application,
  capture,
  deliver,
  env,
  events,
  execFileAsync,
  initiallyDeployed,
  newRepo,
  ourOperation,
  readApplication,
  settingsWith,
  trigger,
  type ApplicationObject,
  deployedApplication,
} from './world.js';

export function syncCases(): void {
  it.concurrent(
    'refuses at once, writing and syncing nothing, when the Application tracks a tag instead of our branch',
    async () => {
      const app = await newRepo();
      await execFileAsync('git', ['-C', join(env.git.root, 'repos', `${app.repo}.git`), 'tag', 'v1.4.0', app.initialCommit]);
      await env.cluster.apply([
        { apiVersion: 'v1', kind: 'Namespace', metadata: { name: app.namespace } } as KubernetesObject,
        application(app, { source: { repoURL: app.repoUrl, path: `apps/${app.name}`, targetRevision: 'v1.4.0' } }),
      ]);
      env.resources.put({ project: 'podtato', stage: 'dev', service: app.service }, 'gitops/config.yaml', settingsYaml('argocd', app));
      await initiallyDeployed(app, 'v1.4.0');

      const d = await deliver(app);
      // Issue 19: refused from the Application's spec before any Git access (src/tasks/target-source.ts).
      expect(d.finished.data).toMatchObject({ status: 'errored', result: 'fail' });
      expect(d.finished.data.message).toContain(
        `Application argocd/${app.name} reads ${app.repoUrl} at targetRevision v1.4.0, not branch main`,
      );
      expect(await env.git.log(app.repo)).toHaveLength(1);
      expect(d.ms).toBeLessThan(20_000);
      // The team's app stays on its tag: no operation of ours, the old image still runs.
      expect(ourOperation(await readApplication(app), d.triggered.id)).toBe(false);
      expect(await imageInCluster(env.cluster, app)).toBe(`${IMAGE}:0.1.0`);
    },
    240_000,
  );

  it.concurrent(
    'in a multi-source Application, syncs the source that tracks our branch, not the first one with our URL',
    async () => {
      const app = await newRepo({ 'extra/cm.yaml': 'apiVersion: v1\nkind: ConfigMap\nmetadata: { name: extra }\ndata: { a: "1" }\n' });
      await execFileAsync('git', ['-C', join(env.git.root, 'repos', `${app.repo}.git`), 'tag', 'v1.4.0', app.initialCommit]);
      const sources = [
        { repoURL: app.repoUrl, path: 'extra', targetRevision: 'v1.4.0' },
        { repoURL: app.repoUrl, path: `apps/${app.name}`, targetRevision: 'main' },
      ];
      await env.cluster.apply([
        { apiVersion: 'v1', kind: 'Namespace', metadata: { name: app.namespace } } as KubernetesObject,
        application(app, { source: undefined, sources }),
      ]);
      env.resources.put({ project: 'podtato', stage: 'dev', service: app.service }, 'gitops/config.yaml', settingsYaml('argocd', app));
      await env.cluster.mergePatch({
        ...APP,
        metadata: { name: app.name, namespace: 'argocd' },
        operation: { sync: { revisions: ['v1.4.0', app.initialCommit], sourcePositions: [1, 2] } },
      });
      await waitUntil(`${app.name} initially deployed`, async () => (await imageInCluster(env.cluster, app)) === `${IMAGE}:0.1.0`, {
        timeoutMs: 120_000,
      });

      const d = await deliver(app);
      const ours = (await env.git.log(app.repo))[0]!.sha;
      expect(d.finished.data).toMatchObject({ result: 'pass', deployment: { gitCommit: ours } });
      expect(await imageInCluster(env.cluster, app)).toBe(`${IMAGE}:0.2.0`);
      const synced = await env.cluster.read<KubernetesObject & { status: { sync: { revisions: string[] } } }>(
        APP.apiVersion,
        APP.kind,
        'argocd',
        app.name,
      );
      expect(synced.status.sync.revisions).toEqual([app.initialCommit, ours]);
    },
    240_000,
  );

  it.concurrent(
    "carries the Application's syncOptions, retry and prune into our sync: CreateNamespace=true makes the namespace",
    async () => {
      const app = await newRepo();
      // Automated sync switched off (Argo CD 3.x `enabled: false`), but its prune setting is the team's choice for syncs.
      const syncPolicy = {
        automated: { enabled: false, prune: true },
        syncOptions: ['CreateNamespace=true'],
        retry: { limit: 2, backoff: { duration: '2s', factor: 2, maxDuration: '10s' } },
      };
      // No namespace and no earlier sync: only a sync that carries CreateNamespace=true can deploy this app.
      await env.cluster.apply([application(app, { syncPolicy })]);
      env.resources.put({ project: 'podtato', stage: 'dev', service: app.service }, 'gitops/config.yaml', settingsYaml('argocd', app));

      const d = await deliver(app);
      expect(d.finished.data).toMatchObject({
        status: 'succeeded',
        result: 'pass',
        deployment: { gitCommit: (await env.git.log(app.repo))[0]!.sha },
      });
      expect(await imageInCluster(env.cluster, app)).toBe(`${IMAGE}:0.2.0`);
      const written = await readApplication(app);
      expect(ourOperation(written, d.triggered.id)).toBe(true);
      expect(written.status?.operationState?.operation).toMatchObject({
        retry: syncPolicy.retry,
        sync: { syncOptions: ['CreateNamespace=true'], prune: true },
      });
    },
    240_000,
  );

  it.concurrent(
    'refuses, naming the file and the Application, settings that edit a file the Application does not deploy',
    async () => {
      const elsewhere = 'apps/unused/kustomization.yaml';
      const app = await newRepo({
        [elsewhere]: `apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nimages:\n  - name: ${IMAGE}\n    newTag: 0.1.0\n`,
      });
      await env.cluster.apply([
        { apiVersion: 'v1', kind: 'Namespace', metadata: { name: app.namespace } } as KubernetesObject,
        application(app, {}),
      ]);
      env.resources.put(
        { project: 'podtato', stage: 'dev', service: app.service },
        'gitops/config.yaml',
        settingsYaml('argocd', app).replace(`file: apps/${app.name}/kustomization.yaml`, `file: ${elsewhere}`),
      );
      await initiallyDeployed(app, app.initialCommit);

      const d = await deliver(app);
      // Issue 19: refused from the Application's spec before any Git access (src/tasks/target-source.ts).
      expect(d.finished.data).toMatchObject({ status: 'errored', result: 'fail' });
      expect(d.finished.data.message).toContain(
        `images[].file ${elsewhere} is not in what Application argocd/${app.name} deploys from ${app.repoUrl} on branch main (Application argocd/${app.name}: directory apps/${app.name})`,
      );
      expect(await env.git.readFile(app.repo, elsewhere)).toContain('newTag: 0.1.0');
      expect(await env.git.log(app.repo)).toHaveLength(1);
      expect(d.ms).toBeLessThan(20_000);
    },
    240_000,
  );

  it.concurrent(
    'fails at once when a deny sync window of its project blocks our sync until after the deadline',
    async () => {
      const app = await newRepo();
      const project = `${app.name}-frozen`;
      await env.cluster.apply([
        { apiVersion: 'v1', kind: 'Namespace', metadata: { name: app.namespace } } as KubernetesObject,
        {
          apiVersion: 'argoproj.io/v1alpha1',
          kind: 'AppProject',
          metadata: { name: project, namespace: 'argocd' },
          spec: {
            sourceRepos: ['*'],
            destinations: [{ server: '*', namespace: '*' }],
            syncWindows: [{ kind: 'deny', schedule: '0 0 * * *', duration: '24h', applications: [app.name] }],
          },
        } as KubernetesObject,
        application(app, { project }),
      ]);
      env.resources.put({ project: 'podtato', stage: 'dev', service: app.service }, 'gitops/config.yaml', settingsWith(app, ''));

      const d = await deliver(app);
      expect(d.finished.data).toMatchObject({ status: 'succeeded', result: 'fail' });
      expect(d.finished.data.message).toContain(
        `Argo CD cannot sync Application argocd/${app.name} before the deadline: sync window deny "0 0 * * *" for 24h in AppProject ${project} blocks manual syncs until after the deadline`,
      );
      expect(d.ms).toBeLessThan(30_000);
      await capture(app, 'sync-blocked-by-window');
    },
    240_000,
  );

  it.concurrent(
    'fails at once when automated sync leaves it OutOfSync because it does not prune, naming what waits to be pruned',
    async () => {
      const app = await newRepo();
      const kustomization = (resources: string[]) =>
        `apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n${resources.map((r) => `  - ${r}\n`).join('')}images:\n  - name: ${IMAGE}\n    newTag: 0.1.0 # set by Keptn\n`;
      await env.git.commitAsOther(
        app.repo,
        {
          [`apps/${app.name}/legacy.yaml`]: 'apiVersion: v1\nkind: ConfigMap\nmetadata: { name: legacy }\ndata: { a: "1" }\n',
          [`apps/${app.name}/kustomization.yaml`]: kustomization(['deployment.yaml', 'legacy.yaml']),
        },
        'legacy config',
      );
      await env.cluster.apply([
        { apiVersion: 'v1', kind: 'Namespace', metadata: { name: app.namespace } } as KubernetesObject,
        application(app, { syncPolicy: { automated: { prune: false } } }),
      ]);
      env.resources.put({ project: 'podtato', stage: 'dev', service: app.service }, 'gitops/config.yaml', settingsWith(app, ''));
      await waitUntil(`${app.name} initially deployed`, async () => (await imageInCluster(env.cluster, app)) === `${IMAGE}:0.1.0`, {
        timeoutMs: 120_000,
      });
      await env.git.commitAsOther(
        app.repo,
        { [`apps/${app.name}/kustomization.yaml`]: kustomization(['deployment.yaml']) },
        'drop the legacy config',
      );

      const d = await deliver(app);
      expect(d.finished.data).toMatchObject({ status: 'succeeded', result: 'fail' });
      expect(d.finished.data.message).toContain(
        `until ConfigMap ${app.namespace}/legacy is pruned, and its sync policy does not prune (syncPolicy.automated.prune is off)`,
      );
      expect(d.ms).toBeLessThan(60_000);
      await capture(app, 'outofsync-prune-only-automated');
    },
    240_000,
  );

  it.concurrent(
    'never syncs backwards: with the later of two deployments synced first, the earlier starts no sync and passes on the later commit',
    async () => {
      const app = await newRepo();
      await deployedApplication(app, {}, '', app.initialCommit);

      // The order of the two syncs is the test's: the application controller is paused (SIGSTOP) with an operation of
      // someone else's queued, so neither deployment can start its sync; then the second deployment's sync, exactly as
      // the service writes it, replaces that operation and the controller resumes. The first deployment then finds its
      // commit already synced inside the later one.
      const controller = env.argocd!.peers.find((p) => p.name === 'argocd-application-controller')!;
      const meta = { name: app.name, namespace: 'argocd' };
      process.kill(controller.pid, 'SIGSTOP');
      let first: { triggered: KeptnCloudEvent; t0: number };
      let second: { triggered: KeptnCloudEvent; t0: number };
      let c1: string;
      let c2: string;
      try {
        await env.cluster.mergePatch({ ...APP, metadata: meta, operation: { sync: { revision: app.initialCommit } } });
        first = await trigger(app, `${IMAGE}:0.2.0`);
        await waitUntil('the first commit', async () => (await env.git.log(app.repo))[0]!.sha !== app.initialCommit, { timeoutMs: 30_000 });
        c1 = (await env.git.log(app.repo))[0]!.sha;
        second = await trigger(app, `${IMAGE}:0.3.0`);
        await waitUntil('the second commit', async () => (await env.git.log(app.repo))[0]!.sha !== c1, { timeoutMs: 30_000 });
        c2 = (await env.git.log(app.repo))[0]!.sha;
        const source = { repoURL: app.repoUrl, path: `apps/${app.name}`, targetRevision: 'main' };
        await env.cluster.mergePatch({
          ...APP,
          metadata: meta,
          operation: {
            initiatedBy: { username: 'keptn-gitops-service' },
            info: [{ name: 'keptn-triggeredid', value: second.triggered.id }],
            sync: { source, revision: c2, prune: false },
          },
        });
      } finally {
        process.kill(controller.pid, 'SIGCONT');
      }

      const [a, b] = await Promise.all(
        [first, second].map((d) =>
          events.waitFor(answerTo(d.triggered.id, 'finished', 'deployment'), { timeoutMs: 180_000, what: '.finished' }),
        ),
      );
      expect(b!.data).toMatchObject({ result: 'pass', deployment: { gitCommit: c2 } });
      expect(a!.data).toMatchObject({ result: 'pass', deployment: { gitCommit: c1 } });
      expect(a!.data.message).toContain(`Argo CD synced Application argocd/${app.name} to ${c2}`);
      // The later commit still runs, and Argo CD never synced the earlier one after it (once no operation is left, so a
      // sync of the earlier commit written at the end could not hide).
      await waitUntil(`${app.name} without an operation`, async () => !(await readApplication(app)).operation, { timeoutMs: 30_000 });
      expect(await imageInCluster(env.cluster, app)).toBe(`${IMAGE}:0.3.0`);
      const after = await env.cluster.read<ApplicationObject & { status: { history?: Array<{ revision?: string }> } }>(
        APP.apiVersion,
        APP.kind,
        'argocd',
        app.name,
      );
      expect((after.status.history ?? []).map((h) => h.revision)).not.toContain(c1);
      expect(ourOperation(after, first.triggered.id)).toBe(false);
    },
    300_000,
  );
}
