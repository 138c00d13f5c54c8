// Notifications wake the observer up; the watched objects decide (ADR 14): real notification-controller and
// argocd-notifications webhooks, a forged notification refused.
import { createHmac } from 'node:crypto';
import { expect } from '@jest/globals';
import { type KubernetesObject } from '@kubernetes/client-node';
import { waitUntil } from '../../env/process.js';
import { IMAGE, imageInCluster, PROJECT } from '../../env/sample-app.js';
import {
  API,
  announced,
  announcementOf,
  ARGO_TOKEN,
  env,
  linkedApp,
  NOTIFY_KEY,
  notifyPort,
  notifyTool,
  objectOf,
  pushNewTag,
  records,
} from './world.js';
import { concurrentCases } from '../support/concurrent.js';

export function notificationCases(): void {
  {
    const concurrently = concurrentCases('notifications wake the observer up; the objects decide (ADR 14)');
    concurrently(
      'a real notification arrives before health is known: a Kustomization without wait whose workload cannot roll out is no pass; a forged one is refused',
      async () => {
        const app = await linkedApp('flux');
        // Flux does not check health (no spec.wait): it calls the apply Ready at once, and notification-controller sends
        // its ReconciliationSucceeded event then, long before the Deployment could be available.
        await env.cluster.mergePatch({
          apiVersion: API.flux,
          kind: 'Kustomization',
          metadata: { name: app.name, namespace: 'flux-system' },
          spec: { wait: false },
        });
        await env.cluster.apply([
          {
            apiVersion: 'v1',
            kind: 'Secret',
            metadata: { name: `${app.name}-keptn`, namespace: 'flux-system' },
            stringData: { token: NOTIFY_KEY },
          } as KubernetesObject,
          {
            apiVersion: 'notification.toolkit.fluxcd.io/v1beta3',
            kind: 'Provider',
            metadata: { name: `${app.name}-keptn`, namespace: 'flux-system' },
            spec: { type: 'generic-hmac', address: `http://127.0.0.1:${notifyPort}/flux`, secretRef: { name: `${app.name}-keptn` } },
          } as KubernetesObject,
          {
            apiVersion: 'notification.toolkit.fluxcd.io/v1beta3',
            kind: 'Alert',
            metadata: { name: `${app.name}-keptn`, namespace: 'flux-system' },
            spec: {
              providerRef: { name: `${app.name}-keptn` },
              eventSeverity: 'info',
              eventSources: [{ kind: 'Kustomization', name: app.name }],
              // As the README had teams write it before ADR 14, when a ReconciliationSucceeded event with this metadata
              // was announced as a pass at once; the link is the object's own now, and this is ignored.
              eventMetadata: { 'keptn-project': PROJECT, 'keptn-stage': 'dev', 'keptn-service': app.service },
            },
          } as KubernetesObject,
        ]);
        // A push whose Deployment can never be scheduled; its progress deadline makes the rollout's failure final.
        const stuck = await env.git.commitAsOther(
          app.repo,
          {
            [`apps/${app.name}/deployment.yaml`]: (await env.git.readFile(app.repo, `apps/${app.name}/deployment.yaml`))
              .replace('    spec:\n      containers:', '    spec:\n      nodeSelector: { no-such-node: "true" }\n      containers:')
              .replace('progressDeadlineSeconds: 600', 'progressDeadlineSeconds: 10'),
          },
          'schedule web on a node that does not exist',
        );
        await notifyTool('flux', app);
        const sequence = await announcementOf(app, stuck);
        // The deployment rules' verdict: applied, but the Deployment failed to roll out. Never a pass on the notification.
        expect(sequence.data).toMatchObject({
          result: 'fail',
          labels: { 'gitops.keptn.sh/verdict': 'fail', 'gitops.keptn.sh/revision': stuck },
        });
        expect(sequence.data.message).toMatch(/without checking health|failed to roll out/);
        expect(announced(app, stuck)).toHaveLength(1);

        // A forged notification (signed with a guessed key): 401, nothing looked at, nothing announced.
        const forged = JSON.stringify({
          involvedObject: { kind: 'Kustomization', namespace: 'flux-system', name: app.name },
          severity: 'info',
          reason: 'ReconciliationSucceeded',
          message: 'forged',
          metadata: { revision: `main@sha1:${'f'.repeat(40)}` },
        });
        const res = await fetch(`http://127.0.0.1:${notifyPort}/flux`, {
          method: 'POST',
          headers: {
            'content-type': 'application/json',
            'x-signature': `sha256=${createHmac('sha256', 'guessed').update(forged).digest('hex')}`,
          },
          body: forged,
        });
        expect(res.status).toBe(401);
        expect(announced(app, 'f'.repeat(40))).toHaveLength(0);
      },
      300_000,
    );
  }

  {
    const concurrently = concurrentCases('Argo CD notifications');
    concurrently(
      "argocd-notifications' webhook with the shared secret wakes the observer up: one sequence, judged from the Application",
      async () => {
        const app = await linkedApp('argocd', {}, false);
        // The README's webhook service, template and trigger, as a team would put them into argocd-notifications-cm.
        await env.cluster.mergePatch({
          apiVersion: 'v1',
          kind: 'ConfigMap',
          metadata: { name: 'argocd-notifications-cm', namespace: 'argocd' },
          data: {
            'service.webhook.keptn': `url: http://127.0.0.1:${notifyPort}/argocd\nheaders:\n  - { name: Authorization, value: "Bearer $keptn-token" }\n`,
            'template.keptn': `webhook:
  keptn:
    method: POST
    body: |
      {"namespace": "{{.app.metadata.namespace}}", "name": "{{.app.metadata.name}}",
       "annotations": {{toJson .app.metadata.annotations}},
       "revision": "{{.app.status.sync.revision}}", "sync": "{{.app.status.sync.status}}",
       "syncedRevision": "{{.app.status.operationState.syncResult.revision}}",
       "phase": "{{.app.status.operationState.phase}}", "health": "{{.app.status.health.status}}",
       "message": {{toJson .app.status.operationState.message}}}
`,
            'trigger.on-keptn': `- when: app.status.operationState.phase in ['Failed', 'Error'] or (app.status.sync.status == 'Synced' and app.status.health.status in ['Healthy', 'Degraded'])
  oncePer: app.status.sync.revision
  send: [keptn]
`,
          },
        } as KubernetesObject & Record<string, unknown>);
        await env.cluster.mergePatch({
          apiVersion: 'v1',
          kind: 'Secret',
          metadata: { name: 'argocd-notifications-secret', namespace: 'argocd' },
          data: { 'keptn-token': Buffer.from(ARGO_TOKEN).toString('base64') },
        } as KubernetesObject & Record<string, unknown>);
        // Linked like any observed Application; the webhook only makes the observer look at it sooner.
        await env.cluster.mergePatch({
          apiVersion: API.argocd,
          kind: 'Application',
          metadata: {
            name: app.name,
            namespace: 'argocd',
            annotations: {
              'gitops.keptn.sh/observe-project': PROJECT,
              'gitops.keptn.sh/observe-stage': 'dev',
              'gitops.keptn.sh/observe-service': app.service,
              'notifications.argoproj.io/subscribe.on-keptn.keptn': '',
            },
          },
        } as unknown as KubernetesObject & Record<string, unknown>);
        const object = objectOf('argocd', app);
        await waitUntil('the baseline recorded', async () => (await records(object)).some((r) => r.phase === 'baseline'), {
          timeoutMs: 90_000,
        });
        const foreign = await pushNewTag(app, '0.2.0', 'bump web to 0.2.0');
        await notifyTool('argocd', app);
        const sequence = await announcementOf(app, foreign);
        expect(sequence.data).toMatchObject({
          project: PROJECT,
          stage: 'dev',
          service: app.service,
          result: 'pass',
          labels: { 'gitops.keptn.sh/tool': 'argocd', 'gitops.keptn.sh/object': object, 'gitops.keptn.sh/subject': 'bump web to 0.2.0' },
        });
        expect(await imageInCluster(env.cluster, app)).toBe(`${IMAGE}:0.2.0`);
        expect(announced(app)).toHaveLength(1);
      },
      300_000,
    );
  }
}
