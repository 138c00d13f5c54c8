// The deployment's two additions for changes made in Git, over fakes of Git and the tool: a sequence started for an
// observed commit is confirmed without writing (item 4), and a failed commit of ours is reverted when the settings
// ask for it (item 6).
import { describe, expect, it } from '@jest/globals';
import { deploy, type DeploymentDeps } from '../../../src/tasks/deployment.js';
import type { GitWorkspace, RevertRequest } from '../../../src/platform/git/workspace.js';
import type { DeploymentTriggeredData, TriggeredEvent } from '../../../src/keptn/events.js';
import type { GitOpsSettings } from '../../../src/platform/settings/schema.js';
import type { DeliveryRequest } from '../../../src/judge/tool.js';
import type { FinalVerdict } from '../../../src/judge/wait.js';
import { silentLog, targetReading, triggeredCloudEvent } from '../helpers.js';

const OBSERVED = 'c0ffee0000000000000000000000000000000001';
const OURS = 'c0ffee0000000000000000000000000000000002';
const REVERT = 'c0ffee0000000000000000000000000000000003';

function harness(opts: {
  onFailure?: 'report' | 'revert';
  verdicts: Record<string, FinalVerdict>;
  changedAgain?: { by: string; files: string[] };
}) {
  const settings: GitOpsSettings = {
    git: { url: 'https://git.example.com/podtato/fleet.git', branch: 'main' },
    images: [{ file: 'apps/kustomization.yaml', kustomizeImage: 'ghcr.io/podtato/head' }],
    target: { kind: 'Kustomization', name: 'web', namespace: 'flux-system' },
    ...(opts.onFailure ? { onFailure: opts.onFailure } : {}),
  };
  const calls: string[] = [];
  const delivered: DeliveryRequest[] = [];
  const reverts: RevertRequest[] = [];
  const deps: DeploymentDeps = {
    settings: { load: async () => ({ settings, where: 'test settings' }) },
    git: {
      expectCommit: () => () => undefined,
      commitImage: async () => {
        calls.push('commitImage');
        return { commit: OURS, created: true, reused: false };
      },
      revertDeployment: async (req: RevertRequest) => {
        calls.push('revertDeployment');
        reverts.push(req);
        return { commit: REVERT, created: true, reused: false };
      },
      relation: async () => 'same',
      onBranch: async () => true,
      changedAgain: async () => opts.changedAgain,
    } as unknown as GitWorkspace,
    tools: [
      {
        kinds: ['Kustomization'],
        deliver: async (req) => {
          calls.push(`deliver ${req.commit}`);
          delivered.push(req);
          return opts.verdicts[req.commit] ?? { state: 'failed', message: 'unexpected commit' };
        },
      },
    ],
    objectMetadata: async () => ({ labels: {}, annotations: { 'gitops.keptn.sh/projects': 'podtato' } }),
    readObject: targetReading(() => settings.git),
    secretNamespace: 'keptn',
    defaultTimeoutMs: 10_000,
    author: { name: 'Keptn', email: 'keptn@example.test' },
  };
  return { deps, calls, delivered, reverts };
}

const event = (data: Record<string, unknown>) =>
  ({ ...triggeredCloudEvent({}, data), task: 'deployment' }) as unknown as TriggeredEvent<DeploymentTriggeredData>;

describe('a deployment.triggered for a change made in Git (the revision label)', () => {
  it('confirms the commit with the tool, writes nothing, and reports it', async () => {
    const h = harness({ verdicts: { [OBSERVED]: { state: 'passed', message: 'Flux applied it', revision: OBSERVED } } });
    const outcome = await deploy(event({ labels: { 'gitops.keptn.sh/revision': OBSERVED } }), h.deps, silentLog);
    expect(h.calls).toEqual([`deliver ${OBSERVED}`]);
    expect(h.delivered[0]).toMatchObject({ images: [], files: [] });
    expect(outcome).toMatchObject({ status: 'succeeded', result: 'pass', gitCommit: OBSERVED });
  });

  it('a change reverted on the branch before the task ran is not deployed: fails at once, the tool not asked (issue 18 item 6)', async () => {
    const h = harness({
      verdicts: { [OBSERVED]: { state: 'passed', message: 'Flux applied a later commit', revision: REVERT } },
      changedAgain: { by: REVERT, files: ['apps/kustomization.yaml'] },
    });
    const outcome = await deploy(event({ labels: { 'gitops.keptn.sh/revision': OBSERVED } }), h.deps, silentLog);
    expect(h.calls).toEqual([]);
    expect(outcome).toMatchObject({ result: 'fail', gitCommit: OBSERVED });
    expect(outcome.message).toContain(
      `no longer in effect, as apps/kustomization.yaml changed again on branch main after it (last in commit ${REVERT})`,
    );
  });

  it("reports the tool's failure at that commit", async () => {
    const h = harness({ verdicts: { [OBSERVED]: { state: 'failed', message: 'kustomize build failed' } } });
    const outcome = await deploy(event({ labels: { 'gitops.keptn.sh/revision': OBSERVED } }), h.deps, silentLog);
    expect(outcome).toMatchObject({ result: 'fail', gitCommit: OBSERVED, message: expect.stringContaining('kustomize build failed') });
  });

  it.each(['main', OBSERVED.slice(0, 12), `${OBSERVED}\nKeptn-Deployment-Id: x`])(
    'refuses a label that is not a full commit: %j',
    async (label) => {
      const h = harness({ verdicts: {} });
      await expect(deploy(event({ labels: { 'gitops.keptn.sh/revision': label } }), h.deps, silentLog)).rejects.toMatchObject({
        code: 'INVALID_REVISION',
      });
      expect(h.calls).toEqual([]);
    },
  );
});

describe('onFailure: revert', () => {
  const image = { configurationChange: { values: { image: 'ghcr.io/podtato/head:0.2.0' } } };

  it('reverts our failed commit, waits for the revert, and reports both commits', async () => {
    const h = harness({
      onFailure: 'revert',
      verdicts: {
        [OURS]: { state: 'failed', message: 'health check failed' },
        [REVERT]: { state: 'passed', message: 'Flux applied the revert', revision: REVERT },
      },
    });
    const e = event(image);
    const outcome = await deploy(e, h.deps, silentLog);
    expect(h.calls).toEqual(['commitImage', `deliver ${OURS}`, 'revertDeployment', `deliver ${REVERT}`]);
    expect(h.reverts[0]).toMatchObject({ match: [`Keptn-Deployment-Id: ${e.id}`], deploymentId: `${e.id}.revert` });
    expect(h.reverts[0]!.message(OURS)).not.toMatch(/^Keptn-Context:/m);
    expect(outcome).toMatchObject({ status: 'succeeded', result: 'fail', gitCommit: OURS, revertCommit: REVERT });
    expect(outcome.message).toMatch(/health check failed/);
    expect(outcome.message).toMatch(new RegExp(`Reverted with commit ${REVERT}, which is deployed`));
  });

  it('says so when the revert is not deployed either', async () => {
    const h = harness({
      onFailure: 'revert',
      verdicts: { [OURS]: { state: 'failed', message: 'health check failed' }, [REVERT]: { state: 'failed', message: 'still broken' } },
    });
    const outcome = await deploy(event(image), h.deps, silentLog);
    expect(outcome.message).toMatch(/which is not deployed either: still broken/);
  });

  it.each<['report' | undefined, FinalVerdict]>([
    [undefined, { state: 'failed', message: 'health check failed' }],
    ['report', { state: 'failed', message: 'health check failed' }],
  ])('does not revert with onFailure %s', async (onFailure, verdict) => {
    const h = harness({ ...(onFailure ? { onFailure } : {}), verdicts: { [OURS]: verdict } });
    const outcome = await deploy(event(image), h.deps, silentLog);
    expect(h.calls).toEqual(['commitImage', `deliver ${OURS}`]);
    expect(outcome).not.toHaveProperty('revertCommit');
  });

  it('does not revert a passed deployment', async () => {
    const h = harness({ onFailure: 'revert', verdicts: { [OURS]: { state: 'passed', message: 'ok', revision: OURS } } });
    await deploy(event(image), h.deps, silentLog);
    expect(h.calls).toEqual(['commitImage', `deliver ${OURS}`]);
  });
});
