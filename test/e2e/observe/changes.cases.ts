// Changes made in Git alone (issue 10): someone else pushes, the tool applies it, the service announces exactly one
// sequence, judged by the tools' own rules, and answers the sequence's deployment task without a commit; an
// unappliable change is announced as a failure; a failed commit of ours is reverted when the settings say so.
import { expect } from '@jest/globals';
import { type KubernetesObject } from '@kubernetes/client-node';
import { answerTo, keptnEvent } from '../../env/keptn.js';
import { waitUntil } from '../../env/process.js';
import { IMAGE, imageInCluster, keptnSecret, PROJECT, toolObjects, type TestApp } from '../../env/sample-app.js';
import {
  announced,
  announcementOf,
  brokenChartApp,
  deploymentTask,
  env,
  events,
  linkedApp,
  nextId,
  notifyTool,
  objectOf,
  pushNewTag,
  records,
} from './world.js';
import { concurrentCases } from '../support/concurrent.js';

export function changeCases(): void {
  for (const tool of ['flux', 'argocd'] as const) {
    const concurrently = concurrentCases(`a change pushed to Git and applied by ${tool}`);
    concurrently(
      'starts exactly one sequence, with the project, stage, service and where the change came from',
      async () => {
        const app = await linkedApp(tool);
        const foreign = await pushNewTag(app, '0.2.0', 'bump web to 0.2.0');
        await notifyTool(tool, app);
        const sequence = await announcementOf(app, foreign);
        expect(sequence).toMatchObject({
          source: 'gitops-service',
          shkeptnspecversion: '0.2.4',
          data: {
            project: PROJECT,
            stage: 'dev',
            service: app.service,
            result: 'pass',
            labels: {
              'gitops.keptn.sh/tool': tool,
              'gitops.keptn.sh/object': objectOf(tool, app),
              'gitops.keptn.sh/revision': foreign,
              'gitops.keptn.sh/author': 'Someone Else <else@example.test>',
              'gitops.keptn.sh/subject': 'bump web to 0.2.0',
              'gitops.keptn.sh/verdict': 'pass',
            },
          },
        });
        expect(sequence.shkeptncontext).toMatch(/^[0-9a-f-]{36}$/);
        expect(await imageInCluster(env.cluster, app)).toBe(`${IMAGE}:0.2.0`);

        // The controller reports the same revision again (a reconcile that finds nothing new), then a later push: the
        // later one is announced once, the first is still announced once (per object the observer takes changes in order).
        await notifyTool(tool, app);
        const later = await pushNewTag(app, '0.3.0');
        await notifyTool(tool, app);
        await announcementOf(app, later);
        expect(announced(app, foreign)).toHaveLength(1);
        expect(announced(app, later)).toHaveLength(1);
        expect(announced(app)).toHaveLength(2);
      },
      400_000,
    );

    concurrently(
      "the sequence's deployment task passes without a commit and reports the observed revision",
      async () => {
        const app = await linkedApp(tool);
        const foreign = await pushNewTag(app, '0.2.0');
        await notifyTool(tool, app);
        const sequence = await announcementOf(app, foreign);
        const finished = await deploymentTask(sequence);
        expect(finished.data).toMatchObject({ status: 'succeeded', result: 'pass', deployment: { gitCommit: foreign } });
        expect(finished.data.message).toContain('made in Git');
        // Nothing written: the history is the team's initial commit and their push.
        expect((await env.git.log(app.repo)).map((c) => c.sha)).toEqual([foreign, app.initialCommit]);
        // And the deployment the service made itself is not announced as a change made in Git.
        expect(announced(app)).toHaveLength(1);
      },
      400_000,
    );
  }

  {
    const concurrently = concurrentCases('a deployment Keptn drove itself');
    concurrently(
      'is not announced again as a change made in Git',
      async () => {
        const app = await linkedApp('flux');
        const triggered = keptnEvent('sh.keptn.event.deployment.triggered', {
          project: PROJECT,
          stage: 'dev',
          service: app.service,
          configurationChange: { values: { image: `${IMAGE}:0.4.0` } },
        });
        await env.controlPlane.publish(triggered);
        const finished = await events.waitFor(answerTo(triggered.id, 'finished', 'deployment'), { timeoutMs: 150_000 });
        expect(finished.data).toMatchObject({ result: 'pass' });
        const ours = finished.data.deployment.gitCommit as string;
        await waitUntil(
          'our commit recorded as own',
          async () => (await records(objectOf('flux', app))).some((r) => r.revision === ours && r.phase === 'own'),
          {
            timeoutMs: 30_000,
          },
        );
        expect(announced(app)).toHaveLength(0);
      },
      300_000,
    );
  }

  {
    const concurrently = concurrentCases('an unappliable change pushed to Git');
    concurrently(
      "is announced as a failure with Flux's own message",
      async () => {
        const app = await linkedApp('flux');
        const broken = await env.git.commitAsOther(
          app.repo,
          {
            [`apps/${app.name}/kustomization.yaml`]: `apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n  - deployment.yaml\n  - missing-service.yaml\n`,
          },
          'add service',
        );
        await notifyTool('flux', app);
        const sequence = await announcementOf(app, broken);
        expect(sequence.data).toMatchObject({
          result: 'fail',
          labels: { 'gitops.keptn.sh/verdict': 'fail', 'gitops.keptn.sh/revision': broken },
        });
        expect(sequence.data.message).toMatch(/missing-service\.yaml/);
      },
      300_000,
    );
  }

  {
    const concurrently = concurrentCases('revert on failure (settings onFailure: revert)');
    concurrently(
      'reverts our failed commit: Git and the cluster are back on the previous image, and .finished names both commits',
      async () => {
        const name = `obs-revert-${nextId()}`;
        const { url, commit } = await env.git.createRepo(name, brokenChartApp(name));
        const app: TestApp = { name, namespace: name, repo: name, repoUrl: url, initialCommit: commit, service: `svc-${name}` };
        await env.cluster.apply([
          { apiVersion: 'v1', kind: 'Namespace', metadata: { name } } as KubernetesObject,
          keptnSecret(app, env),
          ...toolObjects('flux', app, env),
        ]);
        env.resources.put(
          { project: PROJECT, stage: 'dev', service: app.service },
          'gitops/config.yaml',
          `git:\n  url: ${url}\n  branch: main\n  secretRef: { name: ${name}-git }\nimages:\n  - file: apps/${name}/release.yaml\n    yamlPath: spec.values.image.tag\n    part: tag\ntarget:\n  kind: HelmRelease\n  name: ${name}\n  namespace: ${name}\ntimeout: 120s\nonFailure: revert\n`,
        );
        await waitUntil(`${name} initially deployed`, async () => (await imageInCluster(env.cluster, app)) === `${IMAGE}:0.1.0`, {
          timeoutMs: 120_000,
        });
        const triggered = keptnEvent('sh.keptn.event.deployment.triggered', {
          project: PROJECT,
          stage: 'dev',
          service: app.service,
          configurationChange: { values: { image: `${IMAGE}:0.9.9` } },
        });
        await env.controlPlane.publish(triggered);
        const finished = await events.waitFor(answerTo(triggered.id, 'finished', 'deployment'), { timeoutMs: 280_000, what: '.finished' });
        const log = await env.git.log(app.repo);
        const [revert, ours] = log;
        expect(log).toHaveLength(3);
        expect(ours!.body).toContain(`Keptn-Deployment-Id: ${triggered.id}`);
        expect(revert!.subject).toMatch(new RegExp(`^keptn: revert ${ours!.sha.slice(0, 12)}`));
        expect(finished.data).toMatchObject({
          status: 'succeeded',
          result: 'fail',
          deployment: { gitCommit: ours!.sha, revertCommit: revert!.sha },
        });
        expect(finished.data.message).toMatch(/ConfigMap "Bad_Name" is invalid|status: 'Failed'/);
        expect(finished.data.message).toContain(`Reverted with commit ${revert!.sha}, which is deployed`);
        expect(await env.git.readFile(app.repo, `apps/${name}/release.yaml`)).toContain('tag: 0.1.0 # set by Keptn');
        expect(await imageInCluster(env.cluster, app)).toBe(`${IMAGE}:0.1.0`);
        expect(events.received.filter((e) => e.triggeredid === triggered.id && e.type.endsWith('.finished'))).toHaveLength(1);
      },
      320_000,
    );
  }
}
