// Small builders shared by the unit tests.
import { pino } from 'pino';
import type { DeploymentOutcome } from '../../src/keptn/events.js';

export const silentLog = pino({ level: 'silent' });

/** A passed deployment's outcome, for the runner's tests whose task is a stand-in. */
export function passedOutcome(overrides: Partial<DeploymentOutcome> = {}): DeploymentOutcome {
  return {
    status: 'succeeded',
    result: 'pass',
    message: 'ok',
    deploymentstrategy: 'direct',
    deploymentNames: ['svc'],
    deploymentURIsLocal: [],
    deploymentURIsPublic: [],
    ...overrides,
  };
}

export function triggeredCloudEvent(overrides: Record<string, unknown> = {}, data: Record<string, unknown> = {}) {
  return {
    specversion: '1.0',
    id: 'c4f1b6b2-1111-4a5e-9c1b-000000000001',
    source: 'shipyard-controller',
    type: 'sh.keptn.event.deployment.triggered',
    datacontenttype: 'application/json',
    shkeptncontext: 'a1b2c3d4-0000-4000-8000-00000000c0de',
    shkeptnspecversion: '0.2.4',
    gitcommitid: 'f00dbabe',
    ...overrides,
    data: {
      project: 'podtato',
      stage: 'dev',
      service: 'helloservice',
      labels: { team: 'a' },
      configurationChange: { values: { image: 'ghcr.io/podtato/head:0.3.2' } },
      deployment: { deploymentstrategy: 'direct' },
      ...data,
    },
  };
}

/**
 * A cluster's `readObject` (src/tasks/deps.ts) holding the settings' target granted to `project` and deploying the
 * whole of `git().url` at `git().branch`: for tests about everything after the target check.
 */
export function targetReading(git: () => { url: string; branch: string }, project = 'podtato') {
  return async (kind: string, namespace: string, name: string) => {
    const metadata = { name, namespace, annotations: { 'gitops.keptn.sh/projects': project } };
    const { url, branch } = git();
    const source = { kind: 'GitRepository', name };
    if (kind === 'GitRepository') return { metadata, spec: { url, ref: { branch } } };
    if (kind === 'Kustomization') return { metadata, spec: { path: './', sourceRef: source } };
    if (kind === 'HelmRelease') return { metadata, spec: { chart: { spec: { chart: './', sourceRef: source } } } };
    if (kind === 'Application') return { metadata, spec: { source: { repoURL: url, targetRevision: branch, path: '.' } } };
    throw Object.assign(new Error(`${kind} ${namespace}/${name} not found`), { code: 'NOT_FOUND' });
  };
}
