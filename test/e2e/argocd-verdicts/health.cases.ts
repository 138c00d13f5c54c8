// How Argo CD's health becomes a verdict (issue 18): Degraded after the grace period, Suspended, and a workload that
// runs no Pods by design. Concurrent, one repository each.
import { expect, it } from '@jest/globals';
import type { KubernetesObject } from '@kubernetes/client-node';
import { appFiles, IMAGE, imageInCluster } from '../../env/sample-app.js';
import { application, capture, deliver, env, initiallyDeployed, newRepo, settingsWith, deployedApplication } from './world.js';

export function healthCases(): void {
  it.concurrent(
    'fails once Degraded outlasts the grace period, naming the workload that runs our image',
    async () => {
      const app = await newRepo();
      // Pods that never schedule, and a short progress deadline: the Deployment turns Degraded (ProgressDeadlineExceeded).
      const files = appFiles(app.name, { unschedulable: true });
      await env.git.commitAsOther(
        app.repo,
        {
          [`apps/${app.name}/deployment.yaml`]: files[`apps/${app.name}/deployment.yaml`]!.replace(
            'progressDeadlineSeconds: 600',
            'progressDeadlineSeconds: 5',
          ),
        },
        'unschedulable, short deadline',
      );
      await env.cluster.apply([
        { apiVersion: 'v1', kind: 'Namespace', metadata: { name: app.namespace } } as KubernetesObject,
        application(app, {}),
      ]);
      env.resources.put(
        { project: 'podtato', stage: 'dev', service: app.service },
        'gitops/config.yaml',
        settingsWith(app, 'argocd:\n  degradedGrace: 5s\n'),
      );
      await initiallyDeployed(app, 'main');

      const d = await deliver(app);
      expect(d.finished.data).toMatchObject({ status: 'succeeded', result: 'fail' });
      expect(d.finished.data.message).toMatch(
        new RegExp(
          `Application argocd/${app.name} has been Degraded at [0-9a-f]{40} for \\d+ s: .*our image runs in Deployment ${app.namespace}/web`,
        ),
      );
      expect(d.ms).toBeLessThan(90_000);
    },
    240_000,
  );

  it.concurrent(
    'fails at once on a Suspended app (a paused Deployment), saying which setting lets it pass',
    async () => {
      const app = await newRepo();
      const deployment = appFiles(app.name)[`apps/${app.name}/deployment.yaml`]!.replace(
        '  replicas: 1\n',
        '  replicas: 1\n  paused: true\n',
      );
      await env.git.commitAsOther(app.repo, { [`apps/${app.name}/deployment.yaml`]: deployment }, 'paused');
      await deployedApplication(app, {}, '', 'main');

      const d = await deliver(app);
      await capture(app, 'suspended-deployment-paused');
      expect(d.finished.data).toMatchObject({ status: 'succeeded', result: 'fail' });
      expect(d.finished.data.message).toMatch(
        new RegExp(`Application argocd/${app.name} is Suspended at [0-9a-f]{40}.*set argocd.suspended to pass or wait`),
      );
      expect(d.ms).toBeLessThan(30_000);
    },
    240_000,
  );

  it.concurrent(
    'passes a Deployment scaled to 0 on the template our sync applied (no Pods run by design)',
    async () => {
      const app = await newRepo();
      const deployment = appFiles(app.name)[`apps/${app.name}/deployment.yaml`]!.replace('  replicas: 1\n', '  replicas: 0\n');
      await env.git.commitAsOther(app.repo, { [`apps/${app.name}/deployment.yaml`]: deployment }, 'scaled to 0');
      await deployedApplication(app, {}, '', 'main');

      const d = await deliver(app);
      await capture(app, 'synced-healthy-scaled-to-zero');
      expect(d.finished.data).toMatchObject({ status: 'succeeded', result: 'pass' });
      expect(d.finished.data.message).toContain(
        `Deployment ${app.namespace}/web runs no Pods by design, scaled to 0 replicas: judged by the template our sync applied`,
      );
      expect(await imageInCluster(env.cluster, app)).toBe(`${IMAGE}:0.2.0`);
    },
    240_000,
  );
}
