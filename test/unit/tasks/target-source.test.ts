// Issue 19 item 1: the settings may write only to the repository and branch the project's granted target deploys
// from, and only files inside what it deploys (src/tasks/target-source.ts). Objects: captured from the real controllers
// (test/fixtures, see their READMEs) where the environment produced them, with the fields each case is about changed
// and named; the Argo CD multi-source and `$values` shapes are built from argo-cd's API (v1alpha1 ApplicationSource).
import { describe, expect, it } from '@jest/globals';
import type { TargetKind } from '../../../src/platform/settings/schema.js';
import {
  deployScopes,
  refKey,
  repoPath,
  sourcesToRead,
  targetSourceDecision,
  type SourceObject,
  type SourceRef,
  type WriteWanted,
} from '../../../src/tasks/target-source.js';
import { fixture } from '../fixtures.js';

type Obj = SourceObject & { spec: Record<string, unknown> };
const clone = <T>(o: T): T => structuredClone(o);
const with_ = (o: Obj, spec: Record<string, unknown>, metadata: Partial<SourceObject['metadata']> = {}): Obj => ({
  ...clone(o),
  metadata: { ...clone(o.metadata), ...metadata },
  spec: { ...clone(o.spec), ...spec },
});

// Kustomization flux-system/app (path ./deploy) and its GitRepository flux-system/app, captured together.
const kustomization = fixture<Obj>('flux', 'kustomization-ready');
const gitRepository = fixture<Obj>('flux', 'gitrepository-ready');
const URL_A = gitRepository.spec['url'] as string;
// A HelmRelease applied by a Kustomization (issue 7 item 1 capture): chart ./charts/web from GitRepository
// flux-system/flux-chart-values-1; its manager lists it in status.inventory.
const helmRelease = fixture<Obj>('flux', 'helmrelease-chart-values-upgraded');
const manager = fixture<Obj>('flux', 'kustomization-chart-values-manager');
const helmRepo = with_(gitRepository, {}, { name: 'flux-chart-values-1' });
// HelmChart flux-system/flux-system-demo (chart ./charts/demo from GitRepository flux-system/app).
const helmChart = fixture<Obj>('flux', 'helmchart-ready');
// Application argocd/demo: one source, path app, branch main.
const application = fixture<Obj>('argocd', 'synced-healthy');
const URL_APP = (application.spec['source'] as { repoURL: string }).repoURL;

function objects(...objs: Array<[string, Obj]>): Map<string, SourceObject> {
  return new Map(
    objs.map(([kind, o]) => [refKey({ kind: kind as SourceRef['kind'], namespace: o.metadata.namespace!, name: o.metadata.name }), o]),
  );
}
const want = (repoUrl: string, files: string[], branch = 'main'): WriteWanted => ({ repoUrl, branch, files });
const NO_WRITE = want('', []);

describe('targetSourceDecision', () => {
  const flux = objects(['GitRepository', gitRepository]);
  const chartValues = objects(['GitRepository', helmRepo], ['Kustomization', manager]);
  it.each<[string, TargetKind, Obj, Map<string, SourceObject>, WriteWanted, RegExp | undefined]>([
    ['Kustomization: a file under spec.path', 'Kustomization', kustomization, flux, want(URL_A, ['deploy/kustomization.yaml']), undefined],
    [
      'Kustomization: the ssh spelling of its https repository',
      'Kustomization',
      kustomization,
      flux,
      want(URL_A.replace(/^http:\/\/([^:/]+):\d+\//, 'ssh://git@$1:2222/'), ['deploy/a.yaml']),
      undefined,
    ],
    [
      "Kustomization: another team's repository",
      'Kustomization',
      kustomization,
      flux,
      want('http://127.0.0.1:36175/team-b.git', ['deploy/kustomization.yaml']),
      /^git.url http:\/\/127.0.0.1:36175\/team-b.git is not a repository Kustomization flux-system\/app deploys from \(it reads http:\/\/127.0.0.1:36175\/app.git\); .*set git.url to the URL the target reads.*Nothing was sent to Git\.$/,
    ],
    [
      'Kustomization: a file outside spec.path',
      'Kustomization',
      kustomization,
      flux,
      want(URL_A, ['other/kustomization.yaml']),
      /images\[\]\.file other\/kustomization.yaml is not in what Kustomization flux-system\/app deploys from .* \(Kustomization flux-system\/app \(GitRepository flux-system\/app\): directory deploy\)/,
    ],
    [
      'Kustomization: a path prefix is not a directory',
      'Kustomization',
      kustomization,
      flux,
      want(URL_A, ['deploy-b/x.yaml']),
      /is not in what/,
    ],
    [
      'Kustomization: spec.path ./ deploys the whole repository',
      'Kustomization',
      with_(kustomization, { path: './' }),
      flux,
      want(URL_A, ['any/where.yaml']),
      undefined,
    ],
    [
      'Kustomization: spec.path with .. stops at the root',
      'Kustomization',
      with_(kustomization, { path: '../../deploy' }),
      flux,
      want(URL_A, ['deploy/x.yaml']),
      undefined,
    ],
    [
      'Kustomization: another branch',
      'Kustomization',
      kustomization,
      objects(['GitRepository', with_(gitRepository, { ref: { branch: 'dev' } })]),
      want(URL_A, ['deploy/x.yaml']),
      /reads .* at branch dev, not branch main: point the target's source at branch main, or git.branch at the branch it tracks/,
    ],
    [
      'Kustomization: a tag',
      'Kustomization',
      kustomization,
      objects(['GitRepository', with_(gitRepository, { ref: { tag: 'v1.4.0', branch: 'main' } })]),
      want(URL_A, ['deploy/x.yaml']),
      /at tag v1.4.0, not branch main \(the service pushes to a branch, never to a tag, semver range or commit\)/,
    ],
    [
      'Kustomization: a semver range',
      'Kustomization',
      kustomization,
      objects(['GitRepository', with_(gitRepository, { ref: { semver: '>=1' } })]),
      want(URL_A, ['deploy/x']),
      /at semver >=1/,
    ],
    [
      'Kustomization: a pinned commit',
      'Kustomization',
      kustomization,
      objects(['GitRepository', with_(gitRepository, { ref: { branch: 'main', commit: 'a'.repeat(40) } })]),
      want(URL_A, ['deploy/x']),
      /at commit a{40}/,
    ],
    [
      'Kustomization: ref.name refs/heads/main',
      'Kustomization',
      kustomization,
      objects(['GitRepository', with_(gitRepository, { ref: { name: 'refs/heads/main' } })]),
      want(URL_A, ['deploy/x']),
      undefined,
    ],
    [
      'Kustomization: ref.name of a pull request',
      'Kustomization',
      kustomization,
      objects(['GitRepository', with_(gitRepository, { ref: { name: 'refs/pull/1/head' } })]),
      want(URL_A, ['deploy/x']),
      /at ref refs\/pull\/1\/head/,
    ],
    [
      'Kustomization: no ref follows master',
      'Kustomization',
      kustomization,
      objects(['GitRepository', with_(gitRepository, { ref: undefined })]),
      want(URL_A, ['deploy/x']),
      /at branch master, not branch main/,
    ],
    [
      'Kustomization: its GitRepository not found',
      'Kustomization',
      kustomization,
      objects(),
      want(URL_A, ['deploy/x']),
      /deploys from no Git repository the service can see/,
    ],
    [
      'Kustomization: an OCIRepository source',
      'Kustomization',
      with_(kustomization, { sourceRef: { kind: 'OCIRepository', name: 'app' } }),
      flux,
      want(URL_A, ['deploy/x']),
      /deploys from no Git repository/,
    ],
    // HelmRelease: the chart directory, its valuesFiles, and the manifest its managing Kustomization applies.
    [
      'HelmRelease: a file in the chart',
      'HelmRelease',
      helmRelease,
      chartValues,
      want(URL_A.replace('app.git', 'ignored.git'), []),
      /is not a repository/,
    ],
    ['HelmRelease: values.yaml of the chart', 'HelmRelease', helmRelease, chartValues, want(URL_A, ['charts/web/values.yaml']), undefined],
    [
      'HelmRelease: its manifest, under the path of the Kustomization that applies it',
      'HelmRelease',
      helmRelease,
      chartValues,
      want(URL_A, ['apps/flux-chart-values-1/release.yaml']),
      undefined,
    ],
    [
      'HelmRelease: labels naming a Kustomization whose inventory does not list it',
      'HelmRelease',
      helmRelease,
      objects(['GitRepository', helmRepo], ['Kustomization', { ...manager, status: { inventory: { entries: [] } } }]),
      want(URL_A, ['apps/flux-chart-values-1/release.yaml']),
      /is not in what HelmRelease flux-chart-values-1\/flux-chart-values-1 deploys .*: directory charts\/web\)/,
    ],
    [
      'HelmRelease: a valuesFile outside the chart',
      'HelmRelease',
      with_(helmRelease, {
        chart: {
          spec: {
            chart: './charts/web',
            valuesFiles: ['env/prod.yaml'],
            sourceRef: { kind: 'GitRepository', name: 'flux-chart-values-1', namespace: 'flux-system' },
          },
        },
      }),
      chartValues,
      want(URL_A, ['env/prod.yaml']),
      undefined,
    ],
    [
      'HelmRelease: a file beside a valuesFile',
      'HelmRelease',
      with_(
        helmRelease,
        {
          chart: {
            spec: {
              chart: './charts/web',
              valuesFiles: ['env/prod.yaml'],
              sourceRef: { kind: 'GitRepository', name: 'flux-chart-values-1', namespace: 'flux-system' },
            },
          },
        },
        { labels: {} },
      ),
      chartValues,
      want(URL_A, ['env/dev.yaml']),
      /is not in what/,
    ],
    [
      'HelmRelease: chartRef to a HelmChart built from Git',
      'HelmRelease',
      with_(
        helmRelease,
        { chart: undefined, chartRef: { kind: 'HelmChart', name: 'flux-system-demo', namespace: 'flux-system' } },
        { labels: {} },
      ),
      objects(['HelmChart', helmChart], ['GitRepository', gitRepository]),
      want(URL_A, ['charts/demo/values.yaml']),
      undefined,
    ],
    [
      'HelmRelease: chartRef to an OCIRepository, no manager',
      'HelmRelease',
      with_(helmRelease, { chart: undefined, chartRef: { kind: 'OCIRepository', name: 'web' } }, { labels: {} }),
      objects(['GitRepository', helmRepo]),
      want(URL_A, ['charts/web/values.yaml']),
      /deploys from no Git repository/,
    ],
    // Argo CD.
    ['Application: a file under its path', 'Application', application, objects(), want(URL_APP, ['app/kustomization.yaml']), undefined],
    [
      'Application: another repository',
      'Application',
      application,
      objects(),
      want(URL_APP.replace('app.git', 'b.git'), ['app/x']),
      /is not a repository Application argocd\/demo deploys from/,
    ],
    [
      'Application: targetRevision HEAD (the default branch, checked once pushed)',
      'Application',
      with_(application, { source: { repoURL: URL_APP, path: 'app', targetRevision: 'HEAD' } }),
      objects(),
      want(URL_APP, ['app/x']),
      undefined,
    ],
    [
      'Application: a tag',
      'Application',
      with_(application, { source: { repoURL: URL_APP, path: 'app', targetRevision: 'v1.4.0' } }),
      objects(),
      want(URL_APP, ['app/x']),
      /reads .* at targetRevision v1.4.0, not branch main \(the service pushes to a branch/,
    ],
    [
      'Application: a commit',
      'Application',
      with_(application, { source: { repoURL: URL_APP, path: 'app', targetRevision: 'b'.repeat(40) } }),
      objects(),
      want(URL_APP, ['app/x']),
      /at commit b{40}, not branch main \(the service pushes to a branch/,
    ],
    [
      'Application: helm valueFiles relative to the path',
      'Application',
      with_(application, {
        source: { repoURL: URL_APP, path: 'charts/web', targetRevision: 'main', helm: { valueFiles: ['../../env/prod.yaml'] } },
      }),
      objects(),
      want(URL_APP, ['env/prod.yaml']),
      undefined,
    ],
    [
      'Application: multi-source, $values from a ref source of our repository',
      'Application',
      with_(application, {
        source: undefined,
        sources: [
          { repoURL: 'https://charts.example.com', chart: 'web', targetRevision: '1.2.3', helm: { valueFiles: ['$values/env/prod.yaml'] } },
          { repoURL: URL_APP, targetRevision: 'main', ref: 'values' },
        ],
      }),
      objects(),
      want(URL_APP, ['env/prod.yaml']),
      undefined,
    ],
    [
      'Application: multi-source, a file of the ref source that no valueFiles names',
      'Application',
      with_(application, {
        source: undefined,
        sources: [
          { repoURL: 'https://charts.example.com', chart: 'web', targetRevision: '1.2.3', helm: { valueFiles: ['$values/env/prod.yaml'] } },
          { repoURL: URL_APP, targetRevision: 'main', ref: 'values' },
        ],
      }),
      objects(),
      want(URL_APP, ['env/dev.yaml']),
      /images\[\]\.file env\/dev.yaml is not in what Application argocd\/demo deploys .*source 1: file env\/prod.yaml/,
    ],
    [
      'Application: multi-source, only the source on our branch counts',
      'Application',
      with_(application, {
        source: undefined,
        sources: [
          { repoURL: URL_APP, path: 'extra', targetRevision: 'v1.4.0' },
          { repoURL: URL_APP, path: 'app', targetRevision: 'main' },
        ],
      }),
      objects(),
      want(URL_APP, ['extra/cm.yaml']),
      /is not in what .*source 1: directory app\)/,
    ],
    [
      'Application: a Helm repository chart only',
      'Application',
      with_(application, { source: { repoURL: 'https://charts.example.com', chart: 'web', targetRevision: '1.2.3' } }),
      objects(),
      want(URL_APP, ['app/x']),
      /deploys from no Git repository/,
    ],
  ])('%s', (_name, kind, target, read, wanted, problem) => {
    const decision = targetSourceDecision(kind, target, read, wanted);
    if (problem) expect(decision).toEqual({ granted: false, problem: expect.stringMatching(problem) });
    else expect(decision).toEqual({ granted: true });
  });

  it('names every file that is outside, and never a path of another target', () => {
    const decision = targetSourceDecision('Kustomization', kustomization, flux, want(URL_A, ['deploy/ok.yaml', 'a.yaml', 'b/c.yaml']));
    expect(decision).toMatchObject({ granted: false, problem: expect.stringContaining('images[].file a.yaml, b/c.yaml are not in what') });
  });
});

describe('sourcesToRead', () => {
  it('asks for the Kustomization source, then nothing more', () => {
    expect(sourcesToRead('Kustomization', kustomization, new Map(), new Set(), NO_WRITE)).toEqual([
      { kind: 'GitRepository', namespace: 'flux-system', name: 'app' },
    ]);
    expect(sourcesToRead('Kustomization', kustomization, new Map(), new Set(['GitRepository/flux-system/app']), NO_WRITE)).toEqual([]);
  });

  it("asks for a HelmRelease's chart source and its manager, then the manager's source", () => {
    const first = sourcesToRead('HelmRelease', helmRelease, new Map(), new Set(), NO_WRITE);
    expect(first).toEqual([
      { kind: 'GitRepository', namespace: 'flux-system', name: 'flux-chart-values-1' },
      { kind: 'Kustomization', namespace: 'flux-system', name: 'flux-chart-values-1' },
    ]);
    const read = objects(['Kustomization', manager]);
    const tried = new Set(first.map(refKey));
    // The manager's GitRepository is the chart's: already asked for.
    expect(sourcesToRead('HelmRelease', helmRelease, read, tried, NO_WRITE)).toEqual([]);
  });

  it('asks for a chartRef HelmChart, then its GitRepository', () => {
    const target = with_(
      helmRelease,
      { chart: undefined, chartRef: { kind: 'HelmChart', name: 'flux-system-demo', namespace: 'flux-system' } },
      { labels: {} },
    );
    expect(sourcesToRead('HelmRelease', target, new Map(), new Set(), NO_WRITE)).toEqual([
      { kind: 'HelmChart', namespace: 'flux-system', name: 'flux-system-demo' },
    ]);
    expect(
      sourcesToRead(
        'HelmRelease',
        target,
        objects(['HelmChart', helmChart]),
        new Set(['HelmChart/flux-system/flux-system-demo']),
        NO_WRITE,
      ),
    ).toEqual([{ kind: 'GitRepository', namespace: 'flux-system', name: 'app' }]);
  });

  it('reads nothing for an Application: its sources are in its spec', () => {
    expect(sourcesToRead('Application', application, new Map(), new Set(), NO_WRITE)).toEqual([]);
    expect(deployScopes('Application', application, new Map())).toEqual([
      { via: 'Application argocd/demo', url: URL_APP, tracks: { branch: 'main', shown: 'targetRevision main' }, dirs: ['app'], files: [] },
    ]);
  });
});

it.each([
  ['./apps/web', 'apps/web'],
  ['apps//web/', 'apps/web'],
  ['../../apps/web', 'apps/web'],
  ['apps/../web', 'web'],
  ['./', ''],
  ['', ''],
])('repoPath(%j) = %j', (path, clean) => expect(repoPath(path)).toBe(clean));
