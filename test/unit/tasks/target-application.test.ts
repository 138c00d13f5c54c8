// Issue 19 item 1 with issue 18 items 11 and 12: the pre-Git target check (src/tasks/target-source.ts) judges an Argo CD
// target by the driver's rules (src/tools/argocd/topology.ts): an app of apps grants the file its child Application deploys,
// and an ApplicationSet's Git files generator grants the file it reads; everything else stays refused. Objects are
// built from Argo CD's v1alpha1 types in the shapes the real controllers produce in test/e2e/verdicts-argocd (parent
// `status.resources` listing the child; the applicationset controller's owner reference on what it generates).
import { describe, expect, it } from '@jest/globals';
import {
  refKey,
  sourcesToRead,
  targetSourceDecision,
  type ReadObjects,
  type SourceObject,
  type SourceRef,
  type WriteWanted,
} from '../../../src/tasks/target-source.js';

const REPO = 'http://git.example/fleet.git';
const want = (files: string[], repoUrl = REPO, branch = 'main'): WriteWanted => ({ repoUrl, branch, files });

function app(name: string, path: string, extra: { children?: string[]; owner?: string; targetRevision?: string } = {}): SourceObject {
  return {
    kind: 'Application',
    metadata: {
      name,
      namespace: 'argocd',
      ...(extra.owner
        ? { ownerReferences: [{ apiVersion: 'argoproj.io/v1alpha1', kind: 'ApplicationSet', name: extra.owner, controller: true }] }
        : {}),
    } as SourceObject['metadata'],
    spec: { source: { repoURL: REPO, path, targetRevision: extra.targetRevision ?? 'main' } },
    status: {
      resources: (extra.children ?? []).map((c) => ({ group: 'argoproj.io', kind: 'Application', namespace: 'argocd', name: c })),
    },
  };
}

function appSet(name: string, files: string[], revision = 'main', repoURL = REPO): SourceObject {
  return {
    kind: 'ApplicationSet',
    metadata: { name, namespace: 'argocd' },
    spec: { generators: [{ git: { repoURL, revision, files: files.map((path) => ({ path })) } }] },
  };
}

/** The objects the cluster holds, by refKey: what checkTarget's GETs would return. */
function cluster(...objs: SourceObject[]): Map<string, SourceObject> {
  return new Map(
    objs.map((o) => [refKey({ kind: o.kind as SourceRef['kind'], namespace: o.metadata.namespace!, name: o.metadata.name }), o]),
  );
}

/** checkTarget's loop (src/tasks/target-check.ts) over an in-memory cluster: the reads, then the decision. */
function check(target: SourceObject, all: Map<string, SourceObject>, wanted: WriteWanted) {
  const read = new Map<string, SourceObject>();
  const tried = new Set<string>();
  const asked: string[] = [];
  for (let round = 0; round < 7; round++) {
    const next = sourcesToRead('Application', target, read as ReadObjects, tried, wanted);
    if (next.length === 0) break;
    for (const ref of next) {
      tried.add(refKey(ref));
      asked.push(refKey(ref));
      const obj = all.get(refKey(ref));
      if (obj) read.set(refKey(ref), obj);
    }
  }
  return { asked, decision: targetSourceDecision('Application', target, read, wanted) };
}

const parent = app('root', 'roots/web', { children: ['web'] });
const child = app('web', 'apps/web');
const generated = app('web', 'apps/web', { owner: 'web' });

describe('pre-Git check of an Argo CD target: apps of apps and ApplicationSets', () => {
  it.each<[string, SourceObject, Map<string, SourceObject>, WriteWanted, RegExp | null]>([
    ['app of apps: the file the child deploys', parent, cluster(parent, child), want(['apps/web/kustomization.yaml']), null],
    ['app of apps: the parent’s own file still', parent, cluster(parent, child), want(['roots/web/child.yaml']), null],
    [
      'app of apps: a file neither deploys',
      parent,
      cluster(parent, child),
      want(['apps/other/kustomization.yaml']),
      /app of apps, and none of its child Applications \(Application argocd\/web\) nor itself deploys/,
    ],
    [
      'app of apps: a child on another branch does not grant it',
      parent,
      cluster(parent, app('web', 'apps/web', { targetRevision: 'v1.0.0' })),
      want(['apps/web/kustomization.yaml']),
      /none of its child Applications/,
    ],
    [
      'app of apps: a child the parent does not list does not grant it',
      app('root', 'roots/web'),
      cluster(child),
      want(['apps/web/kustomization.yaml']),
      /images\[\]\.file apps\/web\/kustomization\.yaml is not in what Application argocd\/root deploys/,
    ],
    [
      'app of apps: a listed child that does not exist grants nothing',
      parent,
      cluster(parent),
      want(['apps/web/kustomization.yaml']),
      /is not in what Application argocd\/root deploys/,
    ],
    [
      'ApplicationSet: the file its Git files generator reads',
      generated,
      cluster(generated, appSet('web', ['config/web/*.yaml'])),
      want(['config/web/dev.yaml']),
      null,
    ],
    [
      'ApplicationSet: a file its generator does not read',
      generated,
      cluster(generated, appSet('web', ['config/web/*.yaml'])),
      want(['config/other.json']),
      /is not in what .*; no Git files generator of its ApplicationSet argocd\/web reads it\)/,
    ],
    [
      'ApplicationSet: a generator on another branch',
      generated,
      cluster(generated, appSet('web', ['config/web/*.yaml'], 'release')),
      want(['config/web/dev.yaml']),
      /no Git files generator of its ApplicationSet argocd\/web reads it/,
    ],
    [
      'ApplicationSet: a generator of another repository',
      generated,
      cluster(generated, appSet('web', ['config/web/*.yaml'], 'main', 'http://git.example/other.git')),
      want(['config/web/dev.yaml']),
      /no Git files generator/,
    ],
    [
      'ApplicationSet not found: only the Application’s own path',
      generated,
      cluster(generated),
      want(['config/web/dev.yaml']),
      /is not in what Application argocd\/web deploys/,
    ],
    [
      'ApplicationSet: the generated Application must still read our branch',
      app('web', 'apps/web', { owner: 'web', targetRevision: 'v1.0.0' }),
      cluster(appSet('web', ['config/web/*.yaml'])),
      want(['config/web/dev.yaml']),
      /reads http:\/\/git\.example\/fleet\.git at targetRevision v1\.0\.0, not branch main/,
    ],
  ])('%s', (_name, target, all, wanted, problem) => {
    const { decision } = check(target, all, wanted);
    if (problem) expect(decision).toEqual({ granted: false, problem: expect.stringMatching(problem) });
    else expect(decision).toEqual({ granted: true });
  });

  it('reads the children level by level, then the followed Application’s ApplicationSet, each once', () => {
    const top = app('top', 'top', { children: ['root'] });
    // As the driver follows: each level's path holds the file (topology.ts closeness), the deepest wins.
    const nested = app('root', 'apps', { children: ['web'] });
    const leaf = app('web', 'apps/web', { owner: 'set' });
    const { asked, decision } = check(
      top,
      cluster(top, nested, leaf, appSet('set', ['config/*.yaml'])),
      want(['apps/web/a.yaml', 'config/x.yaml']),
    );
    expect(asked).toEqual(['Application/argocd/root', 'Application/argocd/web', 'ApplicationSet/argocd/set']);
    expect(decision).toEqual({ granted: true });
  });

  it('names the child in the refusal of a file outside it', () => {
    const withFile = (files: string[]) => check(parent, cluster(parent, child), want(files)).decision;
    expect(withFile(['apps/web/a.yaml', 'elsewhere.yaml'])).toMatchObject({
      granted: false,
      problem: expect.stringContaining('Application argocd/web, child of Application argocd/root: directory apps/web'),
    });
  });
});
