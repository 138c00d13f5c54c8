import { describe, expect, it } from '@jest/globals';
import type { Logger } from 'pino';
import type { DeploymentDeps } from '../../../src/tasks/deployment.js';
import { finishedEvent, type ReleaseTriggeredData, type TriggeredEvent } from '../../../src/keptn/events.js';
import { classify } from '../../../src/keptn/parse.js';
import { strategyPlan, type ProgressiveDriver } from '../../../src/judge/progressive.js';
import { release, releaseRevision, releaseVersion } from '../../../src/tasks/release.js';
import type { GitOpsSettings } from '../../../src/platform/settings/schema.js';
import type { DeliveryRequest } from '../../../src/judge/tool.js';
import { silentLog, targetReading, triggeredCloudEvent } from '../helpers.js';

const SHA = '86eb1df762d6aa0c1c0b4a1fd6e1b8a4d3c2b1a0';
const scope = { project: 'podtato', stage: 'dev', service: 'helloservice' };

describe('release.triggered is a task this service answers', () => {
  it('is accepted with what Keptn merged into it from deployment.finished', () => {
    const outcome = classify(
      triggeredCloudEvent(
        { type: 'sh.keptn.event.release.triggered' },
        { deployment: { deploymentstrategy: 'direct', gitCommit: SHA, deploymentNames: ['helloservice'] }, result: 'pass' },
      ) as never,
    );
    expect(outcome).toMatchObject({ kind: 'accepted', event: { task: 'release', data: { deployment: { gitCommit: SHA } } } });
  });
});

describe('releaseRevision: the commit the sequence deployed', () => {
  it.each<[string, unknown, RegExp | string]>([
    ['the full SHA of deployment.finished', { gitCommit: SHA }, SHA],
    ['no deployment block', undefined, /carries no deployment.gitCommit.*deployment task answered by keptn-gitops-service before release/],
    ['no gitCommit', { deploymentstrategy: 'direct' }, /carries no deployment.gitCommit/],
    ['an empty gitCommit', { gitCommit: '' }, /carries no deployment.gitCommit/],
    ['an abbreviated SHA', { gitCommit: SHA.slice(0, 12) }, /must be the full 40-hex commit SHA.*"86eb1df762d6"/],
    ['an option for git', { gitCommit: '--upload-pack=touch /tmp/x' }, /must be the full 40-hex commit SHA/],
    ['upper case (Keptn passes our lower-case SHA through)', { gitCommit: SHA.toUpperCase() }, /must be the full 40-hex/],
    ['a number', { gitCommit: 42 }, /must be the full 40-hex commit SHA.*got number/],
  ])('%s', (_name, deployment, expected) => {
    const got = releaseRevision({ ...scope, ...(deployment === undefined ? {} : { deployment }) } as ReleaseTriggeredData);
    if (typeof expected === 'string') expect(got).toEqual({ commit: expected });
    else expect('problem' in got && got.problem).toMatch(expected);
  });
});

describe('strategyPlan: which way a strategy goes for a service', () => {
  const target = { kind: 'Kustomization' as const, namespace: 'flux-system', name: 'web' };
  const rollout = { name: 'web', namespace: 'podtato-dev' };
  it.each<[string, string, object | undefined, object | RegExp]>([
    ['direct goes as written', 'direct', undefined, { kind: 'direct' }],
    ['user_managed goes as written (helm-service promoted nothing for it)', 'user_managed', undefined, { kind: 'direct' }],
    ['direct stays direct beside a Rollout', 'direct', { rollout }, { kind: 'direct' }],
    [
      'blue_green_service through the Rollout by default',
      'blue_green_service',
      { rollout },
      { kind: 'progressive', workload: { kind: 'Rollout', ...rollout } },
    ],
    [
      'a canary strategy the settings map',
      'canary',
      { rollout, strategies: ['canary'] },
      { kind: 'progressive', workload: { kind: 'Rollout', ...rollout } },
    ],
    [
      'blue_green_service through a Flagger Canary',
      'blue_green_service',
      { canary: rollout },
      { kind: 'progressive', workload: { kind: 'Canary', ...rollout } },
    ],
    [
      'blue_green_service without a progressive workload',
      'blue_green_service',
      undefined,
      /"blue_green_service" needs a progressive workload.*Kustomization flux-system\/web alone cannot do.*progressive.rollout.*progressive.canary.*direct or user_managed/,
    ],
    [
      'a strategy the settings do not map',
      'canary',
      { rollout },
      /"canary" is not one the settings deploy progressively \(progressive.strategies: blue_green_service\); add it there/,
    ],
  ])('%s', (_name, strategy, progressive, expected) => {
    const got = strategyPlan(strategy, { target, ...(progressive ? { progressive } : {}) } as never);
    if (expected instanceof RegExp) expect('problem' in got && got.problem).toMatch(expected);
    else expect(got).toEqual(expected);
  });
});

describe('release: confirms with the driver, never writes to Git', () => {
  const settings: GitOpsSettings = {
    git: { url: 'https://git.example.com/fleet.git', branch: 'main' },
    images: [{ file: 'apps/web/kustomization.yaml', kustomizeImage: 'ghcr.io/podtato/head' }],
    target: { kind: 'Application', namespace: 'argocd', name: 'web' },
  };
  const event = (data: Partial<ReleaseTriggeredData> = {}): TriggeredEvent<ReleaseTriggeredData> => ({
    id: 'c4f1b6b2-1111-4a5e-9c1b-000000000002',
    type: 'sh.keptn.event.release.triggered',
    source: 'shipyard-controller',
    task: 'release',
    shkeptncontext: 'a1b2c3d4-0000-4000-8000-00000000c0de',
    data: {
      ...scope,
      configurationChange: { values: { image: 'ghcr.io/podtato/head:0.2.0' } },
      deployment: { deploymentstrategy: 'direct', gitCommit: SHA },
      ...data,
    },
  });
  const depsWith = (onBranch: boolean, verdict: 'passed' | 'failed') => {
    const requests: DeliveryRequest[] = [];
    const writes: string[] = [];
    const deps = {
      settings: { load: () => Promise.resolve({ settings, where: 'service helloservice' }) },
      git: {
        onBranch: () => Promise.resolve(onBranch),
        relation: () => Promise.resolve('descendant'),
        commitImage: () => (writes.push('commit'), Promise.reject(new Error('no writes'))),
        revertDeployment: () => (writes.push('revert'), Promise.reject(new Error('no writes'))),
      },
      tools: [
        {
          kinds: ['Application'],
          deliver: (req: DeliveryRequest) => {
            requests.push(req);
            return Promise.resolve(
              verdict === 'passed'
                ? { state: 'passed' as const, message: 'Argo CD synced Application argocd/web to abc and it is Healthy', revision: 'abc' }
                : { state: 'failed' as const, message: 'Application argocd/web is Degraded' },
            );
          },
        },
      ],
      objectMetadata: () => Promise.resolve({ annotations: { 'gitops.keptn.sh/projects': 'podtato' }, labels: {} }),
      readObject: targetReading(() => settings.git),
      secretNamespace: 'keptn',
      defaultTimeoutMs: 60_000,
      author: { name: 'k', email: 'k@example.test' },
    } as unknown as DeploymentDeps;
    return { deps, requests, writes };
  };

  it('passes when the driver confirms our commit (or a later one containing it) runs, asking it to verify only', async () => {
    const { deps, requests, writes } = depsWith(true, 'passed');
    const outcome = await release(event(), deps, silentLog as Logger, { acceptedAt: Date.now() });
    expect(outcome).toMatchObject({ status: 'succeeded', result: 'pass', gitCommit: SHA, deploymentstrategy: 'direct' });
    expect(outcome.message).toMatch(new RegExp(`^released: commit ${SHA}, deployed by this sequence, still runs`));
    expect(requests).toHaveLength(1);
    expect(requests[0]).toMatchObject({
      commit: SHA,
      verifyOnly: true,
      images: ['ghcr.io/podtato/head:0.2.0'],
      files: ['apps/web/kustomization.yaml'],
    });
    expect(writes).toEqual([]);
    expect(finishedEvent(event(), outcome, { source: 'gitops-service' }).data).toMatchObject({
      status: 'succeeded',
      result: 'pass',
      release: { gitCommit: SHA, deploymentstrategy: 'direct' },
    });
  });

  it("fails with the driver's reason when what runs is not our commit, healthy", async () => {
    const { deps } = depsWith(true, 'failed');
    const outcome = await release(event(), deps, silentLog as Logger);
    expect(outcome).toMatchObject({ status: 'succeeded', result: 'fail' });
    expect(outcome.message).toMatch(/^not released: .*is not what runs healthy now: Application argocd\/web is Degraded/);
  });

  it('fails at once, without asking the tool, when the commit is no longer on the branch', async () => {
    const { deps, requests } = depsWith(false, 'passed');
    const outcome = await release(event(), deps, silentLog as Logger);
    expect(outcome).toMatchObject({ status: 'succeeded', result: 'fail', gitCommit: SHA });
    expect(outcome.message).toMatch(/no longer on branch main: its history was rewritten after the deployment/);
    expect(requests).toEqual([]);
  });

  it('still confirms the revision and health when the event names no image', async () => {
    const { deps, requests } = depsWith(true, 'passed');
    await release(event({ configurationChange: {} }), deps, silentLog as Logger);
    expect(requests[0]).toMatchObject({ images: [], files: ['apps/web/kustomization.yaml'] });
  });

  it.each<[string, Partial<ReleaseTriggeredData>, RegExp]>([
    ['no deployed revision', { deployment: { deploymentstrategy: 'direct' } }, /carries no deployment.gitCommit/],
    [
      'a strategy the target cannot promote',
      { deployment: { deploymentstrategy: 'blue_green_service', gitCommit: SHA } },
      /needs a progressive workload.*cannot do/,
    ],
  ])('errors (the runner reports errored) on %s, before anything is asked of Git or the tool', async (_name, data, message) => {
    const { deps, requests } = depsWith(true, 'passed');
    await expect(release(event(data), deps, silentLog as Logger)).rejects.toThrow(message);
    expect(requests).toEqual([]);
  });

  it('resumes the wait for the recorded commit without looking at the event again', async () => {
    const { deps, requests } = depsWith(true, 'passed');
    const progress = { commit: SHA, ownCommit: false, deadline: Date.now() + 60_000, target: settings.target, repoUrl: settings.git.url };
    const outcome = await release(event({ deployment: {} }), deps, silentLog as Logger, { progress });
    expect(outcome).toMatchObject({ result: 'pass', gitCommit: SHA });
    expect(requests[0]).toMatchObject({ commit: SHA, deadline: progress.deadline, verifyOnly: true });
  });
});

// Issue 18 item 17: the release promotes only the exact version the sequence's deployment recorded as tested
// (deployment.progressiveVersion); the real controllers show it in test/e2e/rollouts.e2e.test.ts.
describe('releaseVersion: the progressive version the deployment recorded', () => {
  it.each<[string, unknown, { version?: string } | RegExp]>([
    ['a pod-template hash', { gitCommit: SHA, progressiveVersion: '6b9c7d5f4' }, { version: '6b9c7d5f4' }],
    ['none recorded (a direct deployment, an older service)', { gitCommit: SHA }, {}],
    ['not a hash', { gitCommit: SHA, progressiveVersion: 'x; rm -rf /' }, /must be the version hash .* got "x; rm -rf \/"/],
    ['a number', { gitCommit: SHA, progressiveVersion: 7 }, /got number/],
  ])('%s', (_name, deployment, expected) => {
    const got = releaseVersion({ ...scope, deployment } as ReleaseTriggeredData);
    if (expected instanceof RegExp) expect('problem' in got && got.problem).toMatch(expected);
    else expect(got).toEqual(expected);
  });
});

describe('release (progressive): promotes the tested version and no other', () => {
  const settings: GitOpsSettings = {
    git: { url: 'https://git.example.com/fleet.git', branch: 'main' },
    images: [{ file: 'apps/web/kustomization.yaml', kustomizeImage: 'ghcr.io/podtato/head' }],
    target: { kind: 'Application', namespace: 'argocd', name: 'web' },
    progressive: { rollout: { namespace: 'app', name: 'web' } },
  } as GitOpsSettings;
  const event = (deployment: Record<string, unknown>): TriggeredEvent<ReleaseTriggeredData> => ({
    id: 'c4f1b6b2-1111-4a5e-9c1b-000000000003',
    type: 'sh.keptn.event.release.triggered',
    source: 'shipyard-controller',
    task: 'release',
    shkeptncontext: 'a1b2c3d4-0000-4000-8000-00000000c0de',
    data: {
      ...scope,
      configurationChange: { values: { image: 'ghcr.io/podtato/head:0.2.0' } },
      deployment: { deploymentstrategy: 'blue_green_service', gitCommit: SHA, ...deployment },
    },
  });
  function depsWith(held: string) {
    const calls: Array<{ call: string; version?: string | undefined }> = [];
    const checkpoints: Array<Record<string, unknown>> = [];
    const driver: ProgressiveDriver = {
      mark: () => Promise.resolve(undefined),
      problem: () => Promise.resolve(undefined),
      uris: () => Promise.resolve(undefined),
      abort: () => Promise.resolve(false),
      promote: (_ref, _images, _log, version) => {
        calls.push({ call: 'promote', version });
        if (version !== undefined && version !== held)
          return Promise.reject(
            Object.assign(new Error(`Rollout app/web holds version ${held}, not ${version}`), { code: 'VERSION_NOT_HELD' }),
          );
        return Promise.resolve();
      },
      wait: (_ref, w) => {
        calls.push({ call: 'wait', version: w.expectation.version });
        return Promise.resolve({ state: 'passed', message: `Rollout app/web promoted ${held}`, revision: held });
      },
    };
    const deps = {
      settings: { load: () => Promise.resolve({ settings, where: 'service helloservice' }) },
      git: { onBranch: () => Promise.resolve(true) },
      tools: [{ kinds: ['Application'], deliver: () => Promise.reject(new Error('not asked')) }],
      progressive: { Rollout: driver },
      objectMetadata: () => Promise.resolve({ annotations: { 'gitops.keptn.sh/projects': 'podtato' }, labels: {} }),
      readObject: targetReading(() => settings.git),
      secretNamespace: 'keptn',
      defaultTimeoutMs: 60_000,
      author: { name: 'k', email: 'k@example.test' },
    } as unknown as DeploymentDeps;
    const context = { checkpoint: (p: Record<string, unknown>) => (checkpoints.push(p), Promise.resolve()) } as never;
    return { deps, calls, checkpoints, context };
  }

  it('promotes the recorded version, records it for a resume, and waits for that version to be stable', async () => {
    const { deps, calls, checkpoints, context } = depsWith('6b9c7d5f4');
    const outcome = await release(event({ progressiveVersion: '6b9c7d5f4' }), deps, silentLog as Logger, context);
    expect(outcome).toMatchObject({ result: 'pass' });
    expect(calls).toEqual([
      { call: 'promote', version: '6b9c7d5f4' },
      { call: 'wait', version: '6b9c7d5f4' },
    ]);
    expect(checkpoints[0]).toMatchObject({ mark: '6b9c7d5f4' });
  });

  it('fails at once, promoting nothing, when a newer template (same image) is held', async () => {
    const { deps, calls, context } = depsWith('99fdc8b7c');
    const outcome = await release(event({ progressiveVersion: '6b9c7d5f4' }), deps, silentLog as Logger, context);
    expect(outcome).toMatchObject({
      result: 'fail',
      message: expect.stringMatching(/^not released: .*holds version 99fdc8b7c, not 6b9c7d5f4/),
    });
    expect(calls).toEqual([{ call: 'promote', version: '6b9c7d5f4' }]);
  });

  it('a resumed release keeps the version it recorded', async () => {
    const { deps, calls } = depsWith('6b9c7d5f4');
    const progress = {
      commit: SHA,
      ownCommit: false,
      deadline: Date.now() + 60_000,
      target: settings.target,
      repoUrl: settings.git.url,
      mark: '6b9c7d5f4',
    };
    await release(event({}), deps, silentLog as Logger, { progress });
    expect(calls[0]).toEqual({ call: 'promote', version: '6b9c7d5f4' });
  });

  it('an invalid recorded version is errored, before anything is promoted', async () => {
    const { deps, calls, context } = depsWith('6b9c7d5f4');
    await expect(release(event({ progressiveVersion: '../x' }), deps, silentLog as Logger, context)).rejects.toThrow(/progressiveVersion/);
    expect(calls).toEqual([]);
  });
});
