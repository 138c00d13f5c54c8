// Flux verdicts for HelmReleases (issue 7, issue 18): charts in the team's repository, valuesFiles, a failed upgrade
// and its roll-back, Helm tests. The cases share one environment and run concurrently, each on its own repository.
import { expect, it } from '@jest/globals';
import type { KubernetesObject } from '@kubernetes/client-node';
import { answerTo, keptnEvent } from '../../env/keptn.js';
import {
  grantAnnotations,
  helmReleaseYaml as helmRelease,
  IMAGE,
  imageInCluster,
  keptnSecret,
  toolObjects,
  type TestApp,
} from '../../env/sample-app.js';
import { chartFiles, deliver, env, events, fluxObjects, gitRepository, helmSettings, initiallyDeployed, newApp } from './world.js';
import { concurrentCases } from '../support/concurrent.js';

export function helmReleaseCases(): void {
  it.concurrent(
    'item 1: a chart in our repository where only values.yaml changes passes once helm-controller upgraded to it',
    async () => {
      // The HelmRelease spec does not change: only a new HelmChart artifact (<version>+<sha12>) can trigger the upgrade.
      const app = await newApp(
        'flux-chart-values',
        (name) => ({ ...chartFiles(), [`apps/${name}/release.yaml`]: helmRelease(name, { reconcileStrategy: 'Revision' }) }),
        (a) => fluxObjects(a),
        (a) => helmSettings(a, 'charts/web/values.yaml', 'image.tag'),
      );
      await initiallyDeployed(app);
      const d = await deliver(app);
      const ours = (await env.git.log(app.repo))[0]!.sha;
      expect(d.finished.data).toMatchObject({ result: 'pass', deployment: { gitCommit: ours } });
      expect(d.finished.data.message).toMatch(/HelmRelease (flux-chart-values-\d+)\/\1 is ready: UpgradeSucceeded/);
      expect(d.imageAtFinish).toBe(`${IMAGE}:0.2.0`);
      const release = await env.cluster.read<KubernetesObject & { status: { lastAttemptedRevision: string } }>(
        'helm.toolkit.fluxcd.io/v2',
        'HelmRelease',
        app.namespace,
        app.name,
      );
      expect(release.status.lastAttemptedRevision).toBe(`0.1.0+${ours.slice(0, 12)}`);
    },
    240_000,
  );

  it.concurrent(
    'item 5: a failed Helm upgrade fails; the roll-back after it passes, not blamed for the old failure',
    async () => {
      const app = await newApp(
        'flux-helm-fail',
        (name) => ({
          ...chartFiles({}, '0.9.9'),
          [`apps/${name}/release.yaml`]: helmRelease(
            name,
            { reconcileStrategy: 'Revision' },
            '  values:\n    image:\n      tag: 0.1.0 # set by Keptn\n',
          ),
        }),
        (a) => fluxObjects(a),
        (a) => helmSettings(a, `apps/${a.name}/release.yaml`, 'spec.values.image.tag'),
      );
      await initiallyDeployed(app);
      const d = await deliver(app, `${IMAGE}:0.9.9`);
      expect(d.finished.data).toMatchObject({ status: 'succeeded', result: 'fail' });
      // helm-controller's own message, or the manager's health check that saw the release fail first.
      expect(d.finished.data.message).toMatch(
        /ConfigMap "Bad_Name" is invalid|HelmRelease\/flux-helm-fail-\d+\/flux-helm-fail-\d+ status: 'Failed'/,
      );
      expect(d.imageAtFinish).toBe(`${IMAGE}:0.1.0`);

      const rollback = keptnEvent(
        'sh.keptn.event.rollback.triggered',
        { project: 'podtato', stage: 'dev', service: app.service },
        { shkeptncontext: d.triggered.shkeptncontext },
      );
      await env.controlPlane.publish(rollback);
      const finished = await events.waitFor(answerTo(rollback.id, 'finished', 'rollback'), {
        timeoutMs: 180_000,
        what: 'rollback .finished',
      });
      const log = await env.git.log(app.repo);
      expect(finished.data).toMatchObject({ status: 'succeeded', result: 'pass', rollback: { gitCommit: log[0]!.sha } });
      expect(await imageInCluster(env.cluster, app)).toBe(`${IMAGE}:0.1.0`);
      const release = await env.cluster.read<KubernetesObject & { status: { history: Array<{ status: string }> } }>(
        'helm.toolkit.fluxcd.io/v2',
        'HelmRelease',
        app.namespace,
        app.name,
      );
      expect(release.status.history[0]!.status).toBe('deployed');
    },
    300_000,
  );

  {
    const concurrently = concurrentCases('item 14: a chart built from Git with valuesFiles');
    const files = () => chartFiles({ 'charts/web/values-prod.yaml': `image:\n  tag: 0.1.0 # set by Keptn\n` });
    const release = (app: TestApp, strategy: string): KubernetesObject[] => [
      keptnSecret(app, env),
      toolObjects('flux', app, env)[0]!,
      gitRepository(app),
      {
        apiVersion: 'helm.toolkit.fluxcd.io/v2',
        kind: 'HelmRelease',
        metadata: { name: app.name, namespace: 'flux-system', annotations: grantAnnotations() },
        spec: {
          interval: '1h',
          targetNamespace: app.namespace,
          chart: {
            spec: {
              chart: './charts/web',
              reconcileStrategy: strategy,
              valuesFiles: ['charts/web/values.yaml', 'charts/web/values-prod.yaml'],
              sourceRef: { kind: 'GitRepository', name: app.name },
            },
          },
        },
      } as KubernetesObject,
    ];

    concurrently(
      'passes once the chart <version>+<sha12>.<generation> built from our commit is released',
      async () => {
        const app = await newApp(
          'flux-valuesfiles',
          files,
          (a) => release(a, 'Revision'),
          (a) => helmSettings(a, 'charts/web/values-prod.yaml', 'image.tag', { kind: 'HelmRelease', namespace: 'flux-system' }),
        );
        await initiallyDeployed(app);
        const d = await deliver(app);
        const ours = (await env.git.log(app.repo))[0]!.sha;
        expect(d.finished.data).toMatchObject({ result: 'pass', deployment: { gitCommit: ours } });
        expect(d.imageAtFinish).toBe(`${IMAGE}:0.2.0`);
        const hr = await env.cluster.read<KubernetesObject & { status: { lastAttemptedRevision: string } }>(
          'helm.toolkit.fluxcd.io/v2',
          'HelmRelease',
          'flux-system',
          app.name,
        );
        expect(hr.status.lastAttemptedRevision).toMatch(new RegExp(`^0\\.1\\.0\\+${ours.slice(0, 12)}\\.\\d+$`));
      },
      240_000,
    );

    concurrently(
      'fails at once with the default ChartVersion strategy, saying why',
      async () => {
        const app = await newApp(
          'flux-chartversion',
          files,
          (a) => release(a, 'ChartVersion'),
          (a) => helmSettings(a, 'charts/web/values-prod.yaml', 'image.tag', { kind: 'HelmRelease', namespace: 'flux-system' }),
        );
        await initiallyDeployed(app);
        const d = await deliver(app);
        expect(d.finished.data).toMatchObject({ status: 'succeeded', result: 'fail' });
        expect(d.finished.data.message).toMatch(
          /reconcileStrategy ChartVersion: a commit that does not change the chart's version never produces a new chart; set spec.chart.spec.reconcileStrategy: Revision/,
        );
        expect(d.ms).toBeLessThan(20_000);
      },
      240_000,
    );
  }

  {
    const concurrently = concurrentCases(
      'issue 18 item 1: a HelmRelease with spec.test.enable (a Job test hook: kwok completes Job-owned Pods)',
    );
    /** The chart with a test hook; with `failOn`, that tag's test Job cannot be scheduled, so Helm's test times out. */
    const files = (failOn?: string) =>
      chartFiles({
        'charts/web/templates/tests/job.yaml': `apiVersion: batch/v1
kind: Job
metadata:
  name: web-test
  annotations:
    "helm.sh/hook": test
    "helm.sh/hook-delete-policy": before-hook-creation
spec:
  backoffLimit: 0
  template:
    spec:
      restartPolicy: Never
{{- if eq .Values.image.tag "${failOn ?? 'never'}" }}
      nodeSelector: { no-such-node: "true" }
{{- end }}
      containers:
        - name: test
          image: "{{ .Values.image.repository }}:{{ .Values.image.tag }}"
`,
      });
    const release = (app: TestApp): KubernetesObject[] => [
      keptnSecret(app, env),
      toolObjects('flux', app, env)[0]!,
      gitRepository(app),
      {
        apiVersion: 'helm.toolkit.fluxcd.io/v2',
        kind: 'HelmRelease',
        metadata: { name: app.name, namespace: 'flux-system', annotations: grantAnnotations() },
        spec: {
          interval: '1h',
          targetNamespace: app.namespace,
          test: { enable: true, timeout: '15s' },
          chart: { spec: { chart: './charts/web', reconcileStrategy: 'Revision', sourceRef: { kind: 'GitRepository', name: app.name } } },
        },
      } as KubernetesObject,
    ];
    type Hr = KubernetesObject & { status: { conditions: Array<{ type: string; status: string; reason: string }> } };
    const readHr = (app: TestApp) => env.cluster.read<Hr>('helm.toolkit.fluxcd.io/v2', 'HelmRelease', 'flux-system', app.name);

    concurrently(
      'passes only after the Helm tests of our release succeeded, naming them',
      async () => {
        const app = await newApp(
          'flux-tests-ok',
          () => files(),
          (a) => release(a),
          (a) => helmSettings(a, 'charts/web/values.yaml', 'image.tag', { kind: 'HelmRelease', namespace: 'flux-system' }),
        );
        await initiallyDeployed(app);
        const d = await deliver(app);
        expect(d.finished.data).toMatchObject({ result: 'pass', deployment: { gitCommit: (await env.git.log(app.repo))[0]!.sha } });
        expect(d.finished.data.message).toMatch(/TestSucceeded: Helm test succeeded for release .* 1 test hook completed successfully/);
        expect((await readHr(app)).status.conditions.find((c) => c.type === 'TestSuccess')).toMatchObject({
          status: 'True',
          reason: 'TestSucceeded',
        });
      },
      240_000,
    );

    concurrently(
      "fails when the Helm tests of our release fail (TestFailed), with helm-controller's reason",
      async () => {
        const app = await newApp(
          'flux-tests-fail',
          () => files('0.2.0'),
          (a) => release(a),
          (a) => helmSettings(a, 'charts/web/values.yaml', 'image.tag', { kind: 'HelmRelease', namespace: 'flux-system' }),
        );
        await initiallyDeployed(app);
        const d = await deliver(app);
        expect(d.finished.data).toMatchObject({ status: 'succeeded', result: 'fail' });
        expect(d.finished.data.message).toMatch(new RegExp(`HelmRelease flux-system/${app.name}.*TestFailed: Helm test failed`));
        expect((await readHr(app)).status.conditions.find((c) => c.type === 'TestSuccess')).toMatchObject({
          status: 'False',
          reason: 'TestFailed',
        });
      },
      240_000,
    );
  }
}
