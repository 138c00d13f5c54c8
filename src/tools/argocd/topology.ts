/**
 * Where an Application sits among others (Argo CD 3.5): an app of apps, whose child Applications deploy what the
 * parent lists, and Applications an ApplicationSet generates (and, with a RollingSync strategy, syncs itself).
 * Pure rules: the driver reads the objects and asks these.
 */
import { sameRepository } from '../../platform/git/repository.js';
import { appName, sourcesOf, trackedSource, type Application } from './application.js';

/** At most this many levels of apps of apps are followed (a loop of Applications naming each other ends here). */
const MAX_DEPTH = 5;

/** A repository path without `./`, leading or trailing slashes; `''` is the repository root. */
function normalPath(path: string | undefined): string {
  return (path ?? '')
    .trim()
    .replace(/^(\.\/)+/, '')
    .replace(/^\/+|\/+$/g, '')
    .replace(/^\.$/, '');
}

/** How deep the path of one of our sources holds the file: its length in characters, or -1 when it does not. */
function depthHolding(sourcePath: string | undefined, file: string): number {
  const dir = normalPath(sourcePath);
  const f = normalPath(file);
  return dir === '' || f === dir || f.startsWith(`${dir}/`) ? dir.length : -1;
}

/**
 * How closely an Application deploys one of the files we edited: the longest path of a source that reads our branch
 * and holds the file, or -1. A source that reaches the file from outside its path (a kustomize `../base`, Helm
 * values from another source) is not seen here.
 */
export function closeness(app: Application, repoUrl: string, branch: string, files: readonly string[]): number {
  const tracked = trackedSource(app, repoUrl, branch);
  if ('problem' in tracked) return -1;
  const sources = sourcesOf(app);
  let best = -1;
  sources.forEach((source, index) => {
    if (source.chart || !sameRepository(source.repoURL, repoUrl)) return;
    if (index !== tracked.index && (source.targetRevision?.trim() || 'HEAD') !== (sources[tracked.index]?.targetRevision?.trim() || 'HEAD'))
      return;
    for (const file of files) best = Math.max(best, depthHolding(source.path, file));
  });
  return best;
}

/** The child Applications an app of apps deploys, as its own resource list names them. */
export function childApplications(parent: Application): Array<{ namespace: string; name: string }> {
  return (parent.status?.resources ?? [])
    .filter((r) => r.kind === 'Application' && r.group === 'argoproj.io')
    .map((r) => ({ namespace: r.namespace || parent.metadata.namespace || 'argocd', name: r.name }));
}

export type Followed = { app: Application; via: string[] } | { problem: string };

/**
 * The Application to judge for a target: the target itself, or, when it is an app of apps, the child that deploys
 * the file we edited (recursively). A parent's health says nothing of its children's: Argo CD skips child
 * Applications when it computes the parent's health unless a custom health check is configured
 * (argo-cd controller/health.go setApplicationHealth: no health check for argoproj.io/Application, and Missing or
 * Unknown children are skipped), so a parent is Healthy while its child is Degraded. A child deploys the file when
 * one of its sources reads our branch and its path holds the file; the deepest such path wins over the parent's own.
 */
export function followedApplication(
  target: Application,
  lookup: (namespace: string, name: string) => Application | undefined,
  repoUrl: string,
  branch: string,
  files: readonly string[],
): Followed {
  let current = target;
  const via: string[] = [];
  for (let depth = 0; depth < MAX_DEPTH; depth++) {
    const children = childApplications(current)
      .map((ref) => lookup(ref.namespace, ref.name))
      .filter((a): a is Application => a !== undefined && !via.includes(appName(a)) && appName(a) !== appName(current));
    if (children.length === 0) return { app: current, via };
    const scored = children.map((app) => ({ app, depth: closeness(app, repoUrl, branch, files) })).filter((c) => c.depth >= 0);
    const own = closeness(current, repoUrl, branch, files);
    const deepest = Math.max(-1, ...scored.map((c) => c.depth));
    if (deepest < 0 || own > deepest) {
      if (own >= 0) return { app: current, via };
      return {
        problem: `${appName(current)} is an app of apps, and none of its child Applications (${children.map(appName).join(', ')}) nor itself deploys ${files.join(', ')} from branch ${branch} of ${repoUrl}; name the Application that deploys it as target in the settings`,
      };
    }
    const chosen = scored.filter((c) => c.depth === deepest);
    if (chosen.length > 1)
      return {
        problem: `${appName(current)} is an app of apps with several child Applications that deploy ${files.join(', ')} (${chosen.map((c) => appName(c.app)).join(', ')}); name one of them as target in the settings`,
      };
    via.push(appName(current));
    current = chosen[0]!.app;
  }
  return {
    problem: `${appName(target)} nests apps of apps more than ${MAX_DEPTH} levels deep (${via.join(' → ')}); name the Application that deploys the file as target`,
  };
}

export interface OwnerReference {
  apiVersion?: string;
  kind?: string;
  name?: string;
  controller?: boolean;
}

/** The ApplicationSet that generated an Application, from its owner reference (applicationset controller sets it). */
export function owningApplicationSet(app: Application & { metadata: { ownerReferences?: OwnerReference[] } }): string | undefined {
  return app.metadata.ownerReferences?.find((o) => o.kind === 'ApplicationSet' && (o.apiVersion ?? '').startsWith('argoproj.io/'))?.name;
}

export interface GitGenerator {
  repoURL?: string;
  revision?: string;
  files?: Array<{ path?: string; exclude?: boolean }>;
}

export interface ApplicationSetGenerator {
  git?: GitGenerator;
  matrix?: { generators?: ApplicationSetGenerator[] };
  merge?: { generators?: ApplicationSetGenerator[] };
  /** Other generators (list, clusters, scm, ...): they read no file of ours. */
  [other: string]: unknown;
}

export interface ApplicationSet {
  metadata: { name: string; namespace?: string };
  spec?: {
    strategy?: { type?: string; rollingSync?: { steps?: unknown[] } };
    generators?: ApplicationSetGenerator[];
  };
}

/**
 * A RollingSync ApplicationSet syncs its Applications itself, step by step: it turns their automated sync off and
 * writes their sync operations (argo-cd applicationset/progressivesync/progressive_sync.go RollingSyncStrategyEnabled:
 * type `RollingSync` with at least one step; SyncDesiredApplications and syncApplication). A sync started by anyone
 * else would skip the steps.
 */
export function syncsStepByStep(appSet: ApplicationSet): boolean {
  const strategy = appSet.spec?.strategy;
  return strategy?.type === 'RollingSync' && (strategy.rollingSync?.steps?.length ?? 0) > 0;
}

/**
 * A `files` pattern as the generator's default lookup reads it: `git ls-files -- <pattern>` in the repo-server
 * (argo-cd util/git/client.go LsFiles without new globbing), a pathspec where `*` and `?` also match `/` and a
 * directory names everything under it. With `applicationsetcontroller.enable.new.git.file.globbing` Argo CD uses
 * doublestar globs instead, which match fewer paths: reading more here only makes the service wait for a
 * regeneration that does not come, never pass.
 */
function pathspecMatches(pattern: string, file: string): boolean {
  const p = normalPath(pattern);
  const f = normalPath(file);
  if (p === '' || f === p || f.startsWith(`${p}/`)) return true;
  let source = '';
  for (let i = 0; i < p.length; i++) {
    const c = p[i]!;
    if (c === '*') source += '.*';
    else if (c === '?') source += '.';
    else if (c === '[') {
      const end = p.indexOf(']', i + 1);
      if (end < 0) source += '\\[';
      else {
        source += `[${p
          .slice(i + 1, end)
          .replace(/^!/, '^')
          .replace(/\\/g, '\\\\')}]`;
        i = end;
      }
    } else source += c.replace(/[.+^${}()|\\/]/g, '\\$&');
  }
  return new RegExp(`^${source}(/.*)?$`).test(f);
}

function gitGenerators(generators: ApplicationSetGenerator[] | undefined, depth = 0): GitGenerator[] {
  if (!generators || depth > 3) return [];
  return generators.flatMap((g) => [
    ...(g.git ? [g.git] : []),
    ...gitGenerators(g.matrix?.generators, depth + 1),
    ...gitGenerators(g.merge?.generators, depth + 1),
  ]);
}

/**
 * The file we edited that a Git files generator of the ApplicationSet reads from our branch, if any: then the
 * Application's spec is generated from our commit, and only the ApplicationSet controller's next reconcile (every
 * 3 minutes by default, ARGOCD_APPLICATIONSET_CONTROLLER_REQUEUE_AFTER, or at a webhook) brings our change into it
 * (argo-cd applicationset/generators/git.go generateParamsForGitFiles, GetRequeueAfter; interface.go
 * getDefaultRequeueAfter).
 */
export function generatedFromFile(appSet: ApplicationSet, repoUrl: string, branch: string, files: readonly string[]): string | undefined {
  for (const git of gitGenerators(appSet.spec?.generators)) {
    if (!git.repoURL || !sameRepository(git.repoURL, repoUrl) || !git.files?.length) continue;
    const revision = git.revision?.trim() || 'HEAD';
    if (revision !== branch && revision !== `refs/heads/${branch}` && revision !== 'HEAD') continue;
    const include = git.files.filter((f) => !f.exclude && f.path);
    const exclude = git.files.filter((f) => f.exclude && f.path);
    const read = files.find(
      (file) => include.some((f) => pathspecMatches(f.path!, file)) && !exclude.some((f) => pathspecMatches(f.path!, file)),
    );
    if (read) return read;
  }
  return undefined;
}
