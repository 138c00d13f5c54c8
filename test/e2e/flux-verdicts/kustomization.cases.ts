// Flux verdicts for Kustomizations (issue 7, issue 18): each case is a repository, Flux objects and settings a team
// would have, a Keptn deployment through the real distributor, and the verdict (docs/verdicts.md, Flux). The cases
// share one environment and run concurrently: each builds its own repository, namespace and objects.
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { expect, it } from '@jest/globals';
import type { KubernetesObject } from '@kubernetes/client-node';
import { answerTo, keptnEvent } from '../../env/keptn.js';
import { waitUntil } from '../../env/process.js';
import { appFiles, IMAGE, settingsYaml, toolObjects, type TestApp, directDeployment } from '../../env/sample-app.js';
import { deliver, env, events, fluxObjects, gitRepository, initiallyDeployed, newApp } from './world.js';
import { concurrentCases } from '../support/concurrent.js';

export function kustomizationCases(): void {
  it.concurrent(
    'item 2: a Kustomization without spec.wait whose workload never becomes available fails, saying Flux did not check health',
    async () => {
      const app = await newApp(
        'flux-nowait',
        (name) => appFiles(name, { unschedulable: true }),
        (a) => fluxObjects(a, { wait: false }),
        (a) => settingsYaml('flux', a, { timeout: '25s' }),
      );
      await initiallyDeployed(app);
      const d = await deliver(app);
      expect(d.finished.data).toMatchObject({ status: 'succeeded', result: 'fail' });
      expect(d.finished.data.message).toMatch(
        new RegExp(
          `Flux applied commit [0-9a-f]{40}, but it did not become healthy in time: Kustomization flux-system/${app.name} applied [0-9a-f]{12} without checking health \\(spec.wait is off\\); Deployment ${app.namespace}/web is rolling out: `,
        ),
      );
      // Flux itself calls it applied and Ready: only the service's own rollout check stands between that and a pass.
      const k = await env.cluster.read<
        KubernetesObject & { status: { lastAppliedRevision: string; conditions: Array<{ type: string; status: string }> } }
      >('kustomize.toolkit.fluxcd.io/v1', 'Kustomization', 'flux-system', app.name);
      expect(k.status.lastAppliedRevision).toContain(String(d.finished.data.deployment.gitCommit));
      expect(k.status.conditions.find((c) => c.type === 'Ready')?.status).toBe('True');
    },
    240_000,
  );

  it.concurrent(
    'issue 18 item 7: spec.healthChecks that list only a ConfigMap leave the Deployment unchecked; it never becomes available, so the deployment fails',
    async () => {
      const app = await newApp(
        'flux-hc-other',
        (name) => {
          const files = appFiles(name, { unschedulable: true });
          const dir = `apps/${name}`;
          files[`${dir}/kustomization.yaml`] = files[`${dir}/kustomization.yaml`]!.replace(
            '  - deployment.yaml\n',
            '  - deployment.yaml\n  - configmap.yaml\n',
          );
          files[`${dir}/configmap.yaml`] = 'apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\ndata:\n  mode: demo\n';
          return files;
        },
        (a) =>
          fluxObjects(a, {
            wait: false,
            healthChecks: [{ apiVersion: 'v1', kind: 'ConfigMap', name: 'settings', namespace: a.namespace }],
          }),
        (a) => settingsYaml('flux', a, { timeout: '25s' }),
      );
      await initiallyDeployed(app);
      const d = await deliver(app);
      expect(d.finished.data).toMatchObject({ status: 'succeeded', result: 'fail' });
      expect(d.finished.data.message).toMatch(
        new RegExp(
          `Kustomization flux-system/${app.name} applied [0-9a-f]{12} without checking health \\(spec.wait is off and spec.healthChecks does not list it\\); Deployment ${app.namespace}/web is rolling out: `,
        ),
      );
      // kustomize-controller checked the ConfigMap it was told to check and called the revision applied and Ready.
      const k = await env.cluster.read<
        KubernetesObject & { status: { lastAppliedRevision: string; conditions: Array<{ type: string; status: string; reason: string }> } }
      >('kustomize.toolkit.fluxcd.io/v1', 'Kustomization', 'flux-system', app.name);
      expect(k.status.lastAppliedRevision).toContain(String(d.finished.data.deployment.gitCommit));
      expect(k.status.conditions.find((c) => c.type === 'Ready')).toMatchObject({ status: 'True', reason: 'ReconciliationSucceeded' });
      expect(k.status.conditions.find((c) => c.type === 'Healthy')).toMatchObject({ status: 'True' });
    },
    240_000,
  );

  it.concurrent(
    'issue 18 item 15: a dependsOn Kustomization that failed at our commit and is not retried fails the deployment, naming it',
    async () => {
      const app = await newApp(
        'flux-depends',
        (name) => ({
          ...appFiles(name),
          // The dependency's path, broken from the start: kustomize cannot build it at any commit.
          [`infra/${name}/kustomization.yaml`]:
            'apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n  - missing.yaml\n',
        }),
        (a) => fluxObjects(a),
        (a) => settingsYaml('flux', a, { timeout: '90s' }),
      );
      await initiallyDeployed(app);
      const dependency = `${app.name}-infra`;
      const [, , target] = fluxObjects(app, { dependsOn: [{ name: dependency }] });
      await env.cluster.apply([
        {
          apiVersion: 'kustomize.toolkit.fluxcd.io/v1',
          kind: 'Kustomization',
          metadata: { name: dependency, namespace: 'flux-system' },
          spec: {
            interval: '1h',
            retryInterval: '1h',
            path: `./infra/${app.name}`,
            prune: true,
            sourceRef: { kind: 'GitRepository', name: app.name },
          },
        } as KubernetesObject,
        target!,
      ]);
      const d = await deliver(app);
      expect(d.finished.data).toMatchObject({ status: 'succeeded', result: 'fail' });
      expect(d.finished.data.message).toMatch(
        new RegExp(
          `Kustomization flux-system/${app.name} waits for its dependency Kustomization flux-system/${dependency}, which failed at main@sha1:${String(d.finished.data.deployment.gitCommit)} and cannot become ready until it is fixed: BuildFailed: `,
        ),
      );
      expect(d.ms).toBeLessThan(60_000);
    },
    240_000,
  );

  it.concurrent(
    'item 2: a Kustomization without spec.wait passes once its Deployment rolled out the image we wrote',
    async () => {
      const app = await newApp(
        'flux-nowait-ok',
        (name) => appFiles(name),
        (a) => fluxObjects(a, { wait: false }),
        (a) => settingsYaml('flux', a),
      );
      await initiallyDeployed(app);
      const d = await deliver(app);
      expect(d.finished.data).toMatchObject({ result: 'pass', deployment: { gitCommit: (await env.git.log(app.repo))[0]!.sha } });
      expect(d.finished.data.message).toContain('its workloads rolled out');
      const web = await env.cluster.read<KubernetesObject & { status: { availableReplicas?: number; updatedReplicas?: number } }>(
        'apps/v1',
        'Deployment',
        app.namespace,
        'web',
      );
      expect(web.status).toMatchObject({ availableReplicas: 1, updatedReplicas: 1 });
      expect(d.imageAtFinish).toBe(`${IMAGE}:0.2.0`);
    },
    240_000,
  );

  it.concurrent(
    'item 3: settings that point at a file the Kustomization does not deploy are refused before any write, naming the target and its path',
    async () => {
      const app = await newApp(
        'flux-otherfile',
        (name) => ({ ...appFiles(name), [`overlays/old-${name}/kustomization.yaml`]: appFiles(name)[`apps/${name}/kustomization.yaml`]! }),
        (a) => fluxObjects(a),
        (a) =>
          settingsYaml('flux', a).replace(`file: apps/${a.name}/kustomization.yaml`, `file: overlays/old-${a.name}/kustomization.yaml`),
      );
      await initiallyDeployed(app);
      const d = await deliver(app);
      // Issue 19: decided from the Kustomization and its GitRepository before any Git access (src/tasks/target-source.ts).
      expect(d.finished.data).toMatchObject({ status: 'errored', result: 'fail' });
      expect(d.finished.data.message).toMatch(
        new RegExp(
          `images\\[\\]\\.file overlays/old-${app.name}/kustomization\\.yaml is not in what Kustomization flux-system/${app.name} deploys from .*: directory apps/${app.name}\\)`,
        ),
      );
      expect(await env.git.log(app.repo)).toHaveLength(1);
      expect(d.imageAtFinish).toBe(`${IMAGE}:0.1.0`);
      expect(d.ms).toBeLessThan(20_000);
    },
    240_000,
  );

  it.concurrent(
    'item 13: a GitRepository that follows another branch is refused before any write, saying which',
    async () => {
      const app = await newApp(
        'flux-branch',
        (name) => appFiles(name),
        () => [],
        () => '',
      );
      await promisify(execFile)('git', ['--git-dir', join(env.git.root, 'repos', `${app.name}.git`), 'branch', 'dev', 'main']);
      const [secret, , kustomization] = toolObjects('flux', app, env);
      await env.cluster.apply([secret!, gitRepository(app, { branch: 'dev' }), kustomization!]);
      env.resources.put({ project: 'podtato', stage: 'dev', service: app.service }, 'gitops/config.yaml', settingsYaml('flux', app));
      await initiallyDeployed(app);
      const d = await deliver(app);
      expect(d.finished.data).toMatchObject({ status: 'errored', result: 'fail' });
      expect(d.finished.data.message).toContain(
        `Kustomization flux-system/${app.name} reads ${app.repoUrl} at branch dev, not branch main: point the target's source at branch main`,
      );
      expect(await env.git.log(app.repo)).toHaveLength(1);
      expect(d.ms).toBeLessThan(20_000);
    },
    240_000,
  );
}

// Issue 18 item 8 on the real StatefulSet controller (kube-controller-manager 1.36, Pods played by kwok): kstatus
// calls an OnDelete StatefulSet Current at once, while no Pod runs the new template until someone deletes one.
export function rolloutCheckCases(): void {
  const concurrently = concurrentCases('the rollout check counts what runs (issue 18)');
  const statefulSetFiles = (name: string): Record<string, string> => ({
    [`apps/${name}/kustomization.yaml`]: `apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
resources:
  - statefulset.yaml
images:
  - name: ${IMAGE}
    newTag: 0.1.0 # set by Keptn
`,
    [`apps/${name}/statefulset.yaml`]: `apiVersion: apps/v1
kind: StatefulSet
metadata:
  name: web
spec:
  serviceName: web
  replicas: 1
  updateStrategy: { type: OnDelete }
  selector:
    matchLabels: { app: web }
  template:
    metadata:
      labels: { app: web }
    spec:
      containers:
        - name: web
          image: ${IMAGE}:0.1.0
`,
  });
  type StatefulSet = KubernetesObject & {
    spec: { template: { spec: { containers: Array<{ image: string }> } } };
    status?: { readyReplicas?: number; updatedReplicas?: number; currentRevision?: string; updateRevision?: string };
  };
  const readSts = (app: TestApp) => env.cluster.read<StatefulSet>('apps/v1', 'StatefulSet', app.namespace, 'web');

  // spec.wait: true: Flux health-checks the StatefulSet with kstatus (Current at once); the service still applies its
  // own rollout rule to it (src/tools/flux/workloads.ts, laxerInKstatus).
  concurrently.each([[false], [true]])(
    'item 8: an OnDelete StatefulSet passes only once its Pod was deleted and came back on the new template (spec.wait: %s)',
    async (wait) => {
      const app = await newApp(
        wait ? 'flux-ondelete-wait' : 'flux-ondelete',
        statefulSetFiles,
        (a) => fluxObjects(a, { wait }),
        (a) => settingsYaml('flux', a),
      );
      await waitUntil(
        `${app.name} initially running`,
        async () => ((await readSts(app).catch(() => undefined))?.status?.readyReplicas ?? 0) === 1,
        {
          timeoutMs: 120_000,
        },
      );
      const triggered = keptnEvent('sh.keptn.event.deployment.triggered', directDeployment(app.service));
      await env.controlPlane.publish(triggered);
      // Flux applied the new template; the controller replaced no Pod (what kstatus calls Current).
      await waitUntil(
        'the new template applied, no Pod on it',
        async () => {
          const sts = await readSts(app);
          return (
            sts.spec.template.spec.containers[0]!.image === `${IMAGE}:0.2.0` &&
            Boolean(sts.status?.updateRevision) &&
            sts.status?.updateRevision !== sts.status?.currentRevision &&
            (sts.status?.updatedReplicas ?? 0) === 0
          );
        },
        { timeoutMs: 60_000 },
      );
      // Flux calls it Ready at the new commit (with wait: its kstatus health check passed the StatefulSet).
      const kust = fluxObjects(app)[2]!.metadata!;
      await waitUntil(
        'Flux Ready at the new commit',
        async () => {
          const k = await env.cluster.read<
            KubernetesObject & { status?: { lastAppliedRevision?: string; conditions?: Array<{ type: string; status: string }> } }
          >('kustomize.toolkit.fluxcd.io/v1', 'Kustomization', kust.namespace!, kust.name!);
          return (
            !(k.status?.lastAppliedRevision ?? app.initialCommit).includes(app.initialCommit) &&
            k.status?.conditions?.find((c) => c.type === 'Ready')?.status === 'True'
          );
        },
        { timeoutMs: 60_000 },
      );
      expect(events.received.filter((e) => e.triggeredid === triggered.id && e.type.endsWith('.finished'))).toEqual([]);

      // The team's OnDelete procedure: delete the Pod; the controller recreates it on the update revision.
      const deletedAt = Date.now();
      await env.cluster.objects.delete({ apiVersion: 'v1', kind: 'Pod', metadata: { name: 'web-0', namespace: app.namespace } });
      const finished = await events.waitFor(answerTo(triggered.id, 'finished', 'deployment'), { timeoutMs: 120_000, what: '.finished' });
      expect(finished.data).toMatchObject({ status: 'succeeded', result: 'pass' });
      // Not passed on Flux's (kstatus') word before the Pod was replaced.
      expect(Date.parse(String(finished.time))).toBeGreaterThanOrEqual(deletedAt);
      const sts = await readSts(app);
      expect(sts.status).toMatchObject({ updatedReplicas: 1, readyReplicas: 1 });
    },
    300_000,
  );
}
