/**
 * Pure: may the settings write to `git.url`, branch `git.branch`, files `images[].file`, given the target granted to
 * the project? Only where that target deploys from (issue 19, ADR 13). A Secret may be granted to many projects (an
 * organisation's bot token); what ties one project's write to its own repository is the target, which the project is
 * granted by its owner: the service writes only to the repository and branch the target (or the source it reads) reads,
 * and only files inside what it deploys. Decided before any Git access, from the objects as the API server holds them.
 *
 * What a target deploys from Git (each a "scope": a repository, the ref it tracks, the directories and files it reads):
 * - Flux Kustomization: its GitRepository (`spec.sourceRef`), the directory `spec.path` (kustomize-controller api/v1
 *   kustomization_types.go: path relative to the source root, default the root; the controller joins it with
 *   securejoin, so `..` stops at the root).
 * - Flux HelmRelease: a chart from a GitRepository (`spec.chart.spec.sourceRef`), the chart directory
 *   `spec.chart.spec.chart` and its `valuesFiles` (helm-controller api/v2 helmrelease_types.go HelmChartTemplateSpec:
 *   "relative path in the SourceRef"); or `spec.chartRef` to a HelmChart, read the same way from the HelmChart's spec
 *   (source-controller api/v1 helmchart_types.go). An OCIRepository chart is not in Git.
 * - Either Flux kind, when a Kustomization applied it (its labels `kustomize.toolkit.fluxcd.io/name`/`namespace`, and
 *   the Kustomization's `status.inventory` lists it: labels alone are written by whoever writes the object, the
 *   inventory only by kustomize-controller): that Kustomization's source and path, where the target's manifest lives.
 *   kustomize-controller records the inventory right after applying, in the status it writes before its health checks
 *   (captured: test/fixtures/flux/kustomization-helm-fail-manager.json, "Running health checks" with the inventory).
 * - Argo CD Application: each Git source of `spec.source` or `spec.sources[]` (a source with `chart` is a Helm
 *   repository, not Git), its `path`, and its `helm.valueFiles`: relative to the path, or `$ref/...` in the source whose
 *   `ref` is `ref` (argo-cd reposerver/repository/repository.go getResolvedValueFiles and getReferencedSource: a
 *   relative file joined to the source path, a `$name/` prefix to the root of the ref source `name`). Glob patterns in
 *   valueFiles, which newer Argo CD versions expand, match only a file of that exact name here: a refusal, not a guess.
 */
import { sameRepository } from '../platform/git/repository.js';
import type { TargetKind } from '../platform/settings/schema.js';
import { applicationReads, judgedApplication } from './target-application.js';

/** An object as read from the API server; only what the rules read is typed. */
export interface SourceObject {
  kind?: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string>; annotations?: Record<string, string> };
  spec?: Record<string, unknown>;
  status?: Record<string, unknown>;
}

/** What the Kubernetes API calls each kind this module reads (group, version, plural). */
export const SOURCE_KINDS = {
  Kustomization: { group: 'kustomize.toolkit.fluxcd.io', version: 'v1', plural: 'kustomizations' },
  HelmRelease: { group: 'helm.toolkit.fluxcd.io', version: 'v2', plural: 'helmreleases' },
  Application: { group: 'argoproj.io', version: 'v1alpha1', plural: 'applications' },
  GitRepository: { group: 'source.toolkit.fluxcd.io', version: 'v1', plural: 'gitrepositories' },
  HelmChart: { group: 'source.toolkit.fluxcd.io', version: 'v1', plural: 'helmcharts' },
  ApplicationSet: { group: 'argoproj.io', version: 'v1alpha1', plural: 'applicationsets' },
} as const;
export type SourceKind = keyof typeof SOURCE_KINDS;

export interface SourceRef {
  kind: SourceKind;
  namespace: string;
  name: string;
}

/** The objects read so far, by `refKey`; a ref read and not found is absent. */
export type ReadObjects = ReadonlyMap<string, SourceObject>;

export function refKey(ref: SourceRef): string {
  return `${ref.kind}/${ref.namespace}/${ref.name}`;
}

/** Labels kustomize-controller puts on every object it applies. */
const MANAGER_NAME = 'kustomize.toolkit.fluxcd.io/name';
const MANAGER_NAMESPACE = 'kustomize.toolkit.fluxcd.io/namespace';

function str(v: unknown): string | undefined {
  return typeof v === 'string' ? v : undefined;
}
function rec(v: unknown): Record<string, unknown> | undefined {
  return typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Record<string, unknown>) : undefined;
}
function strings(v: unknown): string[] {
  return Array.isArray(v) ? v.filter((s): s is string => typeof s === 'string') : [];
}

/** A `sourceRef` to a GitRepository (namespace defaulting to the referring object's), else undefined. */
function gitRepositoryRef(sourceRef: unknown, namespace: string): SourceRef | undefined {
  const ref = rec(sourceRef);
  const name = str(ref?.['name']);
  if (str(ref?.['kind']) !== 'GitRepository' || !name) return undefined;
  return { kind: 'GitRepository', namespace: str(ref?.['namespace']) ?? namespace, name };
}

function nsOf(obj: SourceObject): string {
  return obj.metadata.namespace ?? '';
}

/** The Kustomization the target's labels name as the one that applied it, if any (never the target itself). */
function labelledManager(kind: TargetKind, target: SourceObject): SourceRef | undefined {
  const name = target.metadata.labels?.[MANAGER_NAME];
  if (!name) return undefined;
  const namespace = target.metadata.labels?.[MANAGER_NAMESPACE] ?? nsOf(target);
  if (kind === 'Kustomization' && name === target.metadata.name && namespace === nsOf(target)) return undefined;
  return { kind: 'Kustomization', namespace, name };
}

/** The HelmChart of `spec.chartRef`, if the HelmRelease names one. */
function chartRefOf(target: SourceObject): SourceRef | undefined {
  const ref = rec(target.spec?.['chartRef']);
  const name = str(ref?.['name']);
  if (str(ref?.['kind']) !== 'HelmChart' || !name) return undefined;
  return { kind: 'HelmChart', namespace: str(ref?.['namespace']) ?? nsOf(target), name };
}

/**
 * The objects still to read to know what the target deploys from, given those read so far (empty once all are known).
 * The caller reads them and asks again: at most three rounds for Flux (the target's refs, then a HelmChart's or a
 * manager's GitRepository); for an Application one round per level of apps of apps, then its ApplicationSet
 * (target-application.ts).
 */
export function sourcesToRead(
  kind: TargetKind,
  target: SourceObject,
  read: ReadObjects,
  tried: ReadonlySet<string>,
  write: WriteWanted,
): SourceRef[] {
  if (kind === 'Application') return applicationReads(target, read, tried, write);
  const wanted: SourceRef[] = [];
  const ns = nsOf(target);
  if (kind === 'Kustomization') {
    const own = gitRepositoryRef(target.spec?.['sourceRef'], ns);
    if (own) wanted.push(own);
  } else {
    const chartSpec = rec(rec(target.spec?.['chart'])?.['spec']);
    const fromChart = gitRepositoryRef(chartSpec?.['sourceRef'], ns);
    if (fromChart) wanted.push(fromChart);
    const chartRef = chartRefOf(target);
    if (chartRef) {
      wanted.push(chartRef);
      const chart = read.get(refKey(chartRef));
      const source = chart && gitRepositoryRef(chart.spec?.['sourceRef'], nsOf(chart));
      if (source) wanted.push(source);
    }
  }
  const managerRef = labelledManager(kind, target);
  if (managerRef) {
    wanted.push(managerRef);
    const manager = read.get(refKey(managerRef));
    const source = manager && gitRepositoryRef(manager.spec?.['sourceRef'], nsOf(manager));
    if (source) wanted.push(source);
  }
  return wanted.filter((r) => !tried.has(refKey(r)));
}

/** The ref a source follows, as far as the service can tell without asking Git. */
export type Tracks = { branch: string; shown?: string } | { head: true } | { fixed: string };

/** One place a target deploys from: a repository at a ref, the directories it reads whole, and single files it reads. */
export interface Scope {
  /** Where this scope comes from, for messages, e.g. `GitRepository flux-system/web`. */
  via: string;
  url: string;
  tracks: Tracks;
  dirs: string[];
  files: string[];
}

/**
 * A path as the controllers read it: relative to the repository root, `.` and empty segments dropped, `..` stopping
 * at the root (securejoin, as kustomize-controller and source-controller join paths).
 */
export function repoPath(path: string): string {
  const out: string[] = [];
  for (const part of path.split('/')) {
    if (part === '' || part === '.') continue;
    if (part === '..') out.pop();
    else out.push(part);
  }
  return out.join('/');
}

/**
 * What a Flux GitRepository follows (source-controller api/v1 gitrepository_types.go GitRepositoryRef: commit wins,
 * then name, semver, tag, branch; without a ref, branch master).
 */
export function fluxTracks(repo: SourceObject): Tracks {
  const ref = rec(repo.spec?.['ref']) ?? {};
  const commit = str(ref['commit']);
  if (commit) return { fixed: `commit ${commit}` };
  const name = str(ref['name']);
  if (name) return name.startsWith('refs/heads/') ? { branch: name.slice('refs/heads/'.length) } : { fixed: `ref ${name}` };
  const semver = str(ref['semver']);
  if (semver) return { fixed: `semver ${semver}` };
  const tag = str(ref['tag']);
  if (tag) return { fixed: `tag ${tag}` };
  return { branch: str(ref['branch']) ?? 'master' };
}

/**
 * What an Argo CD source's `targetRevision` follows: empty or `HEAD` is the repository's default branch, which only
 * Git knows (the driver checks it against our commit once pushed); a full commit hash is fixed; any other text is a
 * branch or a tag, which only Git tells apart, so it is taken as a branch name and must equal `git.branch`.
 */
export function argoTracks(targetRevision: unknown): Tracks {
  const revision = str(targetRevision)?.trim() ?? '';
  if (revision === '' || revision === 'HEAD') return { head: true };
  if (/^[0-9a-f]{40}$/i.test(revision)) return { fixed: `commit ${revision}` };
  const branch = revision.startsWith('refs/heads/') ? revision.slice('refs/heads/'.length) : revision;
  return { branch, shown: `targetRevision ${revision}` };
}

function fluxScope(via: string, repo: SourceObject | undefined, dirs: string[], files: string[] = []): Scope[] {
  const url = str(repo?.spec?.['url']);
  if (!repo || !url) return [];
  return [{ via, url, tracks: fluxTracks(repo), dirs: dirs.map(repoPath), files: files.map(repoPath) }];
}

function name(kind: string, obj: SourceObject): string {
  return `${kind} ${nsOf(obj)}/${obj.metadata.name}`;
}

/** Whether the Kustomization's inventory lists the object (entry ids `<ns>_<name>_<group>_<Kind>`, flux/inventory.ts). */
function inventoryLists(manager: SourceObject, kind: TargetKind, target: SourceObject): boolean {
  const id = `${nsOf(target)}_${target.metadata.name}_${SOURCE_KINDS[kind].group}_${kind}`;
  const entries = rec(manager.status?.['inventory'])?.['entries'];
  return Array.isArray(entries) && entries.some((e) => rec(e)?.['id'] === id);
}

function helmChartScopes(via: string, chartSpec: Record<string, unknown> | undefined, owner: SourceObject, read: ReadObjects): Scope[] {
  const ref = gitRepositoryRef(chartSpec?.['sourceRef'], nsOf(owner));
  if (!ref) return [];
  const chart = str(chartSpec?.['chart']);
  const valuesFiles = [
    ...strings(chartSpec?.['valuesFiles']),
    ...(str(chartSpec?.['valuesFile']) ? [str(chartSpec?.['valuesFile'])!] : []),
  ];
  return fluxScope(
    `${via} (chart from GitRepository ${ref.namespace}/${ref.name})`,
    read.get(refKey(ref)),
    chart ? [chart] : [],
    valuesFiles,
  );
}

/** Every place the target deploys from Git, by the rules at the top of this file (an Application: its own sources). */
export function deployScopes(kind: TargetKind, target: SourceObject, read: ReadObjects): Scope[] {
  return kind === 'Application' ? applicationScopes(target) : fluxScopes(kind, target, read);
}

/** An Application's Git sources; a ref-only source (no path) deploys only the values files others take from it. */
export function applicationScopes(target: SourceObject): Scope[] {
  const scopes: Scope[] = [];
  const shown = name('Application', target);
  const spec = target.spec ?? {};
  const sources = Array.isArray(spec['sources']) && spec['sources'].length ? spec['sources'] : spec['source'] ? [spec['source']] : [];
  const git = sources.map((s) => rec(s) ?? {}).map((s, index) => ({ s, index, isGit: !s['chart'] && typeof s['repoURL'] === 'string' }));
  const perSource = git.map(({ s, index, isGit }) => ({
    via: sources.length > 1 ? `${shown} source ${index}` : shown,
    url: isGit ? (s['repoURL'] as string) : '',
    tracks: argoTracks(s['targetRevision']),
    dirs: [] as string[],
    files: [] as string[],
    isGit,
    ref: str(s['ref']),
  }));
  git.forEach(({ s, index, isGit }) => {
    const path = str(s['path']);
    const own = perSource[index]!;
    if (isGit && (path || own.ref === undefined)) own.dirs.push(repoPath(path ?? ''));
    for (const file of strings(rec(s['helm'])?.['valueFiles'])) {
      const dollar = /^\$([^/]+)\/(.*)$/.exec(file);
      if (dollar) {
        const refSource = perSource.find((p) => p.isGit && p.ref === dollar[1]);
        refSource?.files.push(repoPath(dollar[2]!));
      } else if (isGit && !/^[a-z][a-z0-9+.-]*:\/\//i.test(file)) {
        own.files.push(repoPath(`${path ?? ''}/${file}`));
      }
    }
  });
  for (const p of perSource) if (p.isGit) scopes.push({ via: p.via, url: p.url, tracks: p.tracks, dirs: p.dirs, files: p.files });
  return scopes;
}

/** A Flux object's GitRepository-backed sources, and the Kustomization that applies it when its inventory says so. */
function fluxScopes(kind: Exclude<TargetKind, 'Application'>, target: SourceObject, read: ReadObjects): Scope[] {
  const scopes: Scope[] = [];
  const shown = name(kind, target);
  if (kind === 'Kustomization') {
    const ref = gitRepositoryRef(target.spec?.['sourceRef'], nsOf(target));
    if (ref)
      scopes.push(
        ...fluxScope(`${shown} (GitRepository ${ref.namespace}/${ref.name})`, read.get(refKey(ref)), [str(target.spec?.['path']) ?? '']),
      );
  } else {
    scopes.push(...helmChartScopes(shown, rec(rec(target.spec?.['chart'])?.['spec']), target, read));
    const chartRef = chartRefOf(target);
    const chart = chartRef && read.get(refKey(chartRef));
    if (chart) scopes.push(...helmChartScopes(`${shown} (HelmChart ${chartRef.namespace}/${chartRef.name})`, chart.spec, chart, read));
  }
  const managerRef = labelledManager(kind, target);
  const manager = managerRef && read.get(refKey(managerRef));
  if (manager && inventoryLists(manager, kind, target)) {
    const ref = gitRepositoryRef(manager.spec?.['sourceRef'], nsOf(manager));
    if (ref)
      scopes.push(
        ...fluxScope(
          `${name('Kustomization', manager)}, which applies ${shown} (GitRepository ${ref.namespace}/${ref.name})`,
          read.get(refKey(ref)),
          [str(manager.spec?.['path']) ?? ''],
        ),
      );
  }
  return scopes;
}

export interface WriteWanted {
  repoUrl: string;
  branch: string;
  /** `images[].file` of the settings, relative to the repository root. */
  files: readonly string[];
}

export type TargetSourceDecision = { granted: true } | { granted: false; problem: string };

function tracksText(t: Tracks): string {
  return 'branch' in t ? (t.shown ?? `branch ${t.branch}`) : 'head' in t ? 'HEAD (its default branch)' : t.fixed;
}

function within(file: string, scope: Scope): boolean {
  return scope.files.includes(file) || scope.dirs.some((d) => d === '' || file === d || file.startsWith(`${d}/`));
}

function reads(scope: Scope): string {
  const parts = [...scope.dirs.map((d) => (d === '' ? 'the whole repository' : `directory ${d}`)), ...scope.files.map((f) => `file ${f}`)];
  return parts.length ? parts.join(', ') : 'no path of it';
}

/**
 * Granted when some scope reads `git.url` (the same repository, src/platform/git/repository.ts) on `git.branch` (or HEAD), and every
 * file lies in such a scope; otherwise what does not match, and how to fix it.
 */
export function targetSourceDecision(kind: TargetKind, target: SourceObject, read: ReadObjects, wanted: WriteWanted): TargetSourceDecision {
  const shown = name(kind, target);
  const refuse = (problem: string): TargetSourceDecision => ({ granted: false, problem: `${problem}. Nothing was sent to Git.` });
  // An Application: the one the driver judges (an app of apps' child), and files its ApplicationSet's generator reads.
  const judged = kind === 'Application' ? judgedApplication(target, read, wanted) : undefined;
  if (judged && 'problem' in judged) return refuse(judged.problem);
  const scopes = judged
    ? applicationScopes(judged.app as SourceObject).map((s) =>
        judged.via.length ? { ...s, via: `${s.via}, child of ${judged.via.join(' → ')}` } : s,
      )
    : deployScopes(kind, target, read);
  const generated = judged?.generated ?? [];
  if (scopes.length === 0)
    return refuse(
      `${shown} deploys from no Git repository the service can see (a GitRepository it reads directly or through a HelmChart, or an Argo CD Git source), so git.url ${wanted.repoUrl} cannot be tied to it; the service writes only where the target deploys from`,
    );
  const same = scopes.filter((s) => sameRepository(s.url, wanted.repoUrl));
  if (same.length === 0)
    return refuse(
      `git.url ${wanted.repoUrl} is not a repository ${shown} deploys from (it reads ${[...new Set(scopes.map((s) => s.url))].join(', ')}); the service writes only to the repository of the project's target: set git.url to the URL the target reads, or target to the object that deploys ${wanted.repoUrl}`,
    );
  const onBranch = same.filter((s) => ('branch' in s.tracks && s.tracks.branch === wanted.branch) || 'head' in s.tracks);
  if (onBranch.length === 0) {
    const fixed = same.some((s) => 'fixed' in s.tracks || ('shown' in s.tracks && s.tracks.shown));
    return refuse(
      `${shown} reads ${wanted.repoUrl} at ${[...new Set(same.map((s) => tracksText(s.tracks)))].join(', ')}, not branch ${wanted.branch}${fixed ? ' (the service pushes to a branch, never to a tag, semver range or commit)' : ''}: point the target's source at branch ${wanted.branch}, or git.branch at the branch it tracks`,
    );
  }
  const outside = wanted.files.filter((f) => !generated.includes(f) && !onBranch.some((s) => within(repoPath(f), s)));
  if (outside.length)
    return refuse(
      `images[].file ${outside.join(', ')} ${outside.length > 1 ? 'are' : 'is'} not in what ${shown} deploys from ${wanted.repoUrl} on branch ${wanted.branch} (${onBranch.map((s) => `${s.via}: ${reads(s)}`).join('; ')}${judged?.applicationSet ? `; no Git files generator of its ${judged.applicationSet} reads ${outside.length > 1 ? 'them' : 'it'}` : ''}): name a file there in images[].file, or the target that deploys ${outside.length > 1 ? 'them' : 'it'}`,
    );
  return { granted: true };
}
