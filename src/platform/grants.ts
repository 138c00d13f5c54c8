/**
 * Grants: what one Keptn project may use. Settings are written by anyone who can `keptn add-resource` to a project,
 * so they are never trusted to pick a Secret or a GitOps object on their own. The owner of the Secret or the object
 * grants it, with annotations that a platform engineer sets with kubectl (see docs/security.md, docs/adr/0008-grants.md):
 *
 * - a Secret is usable by the projects its `gitops.keptn.sh/projects` annotation lists, and its credentials go only to
 *   the Git hosts its `gitops.keptn.sh/git-hosts` annotation lists (and, if it has one, only to the repositories its
 *   `gitops.keptn.sh/git-repositories` annotation lists);
 * - a Flux Kustomization or HelmRelease, or an Argo CD Application, may be driven by the projects its
 *   `gitops.keptn.sh/projects` annotation lists.
 *
 * Everything here is pure: the deployment reads the metadata (through the Cluster interface) and asks these functions
 * before anything is cloned, fetched, written to Git or patched. Anything not granted is refused; so is anything that
 * cannot be read unambiguously (a Git URL whose host git and we might read differently).
 */
import { sameRepository } from './git/repository.js';
import type { TargetKind } from './settings/schema.js';

/** Comma-separated Keptn project names that may use the object. */
export const PROJECTS_ANNOTATION = 'gitops.keptn.sh/projects';
/** Comma-separated `host` or `host:port` entries a Secret's credentials may be sent to. */
export const GIT_HOSTS_ANNOTATION = 'gitops.keptn.sh/git-hosts';
/**
 * Optional, comma-separated repository URLs a Secret's credentials may be used for (ADR 13): an outer fence for a
 * token shared by many projects. Which of them one project may write is decided by its target (target-source.ts).
 */
export const GIT_REPOSITORIES_ANNOTATION = 'gitops.keptn.sh/git-repositories';

/** The API version the service reads and patches for each target kind (the drivers use the same ones). */
export const TARGET_API_VERSIONS: Record<TargetKind, string> = {
  Kustomization: 'kustomize.toolkit.fluxcd.io/v1',
  HelmRelease: 'helm.toolkit.fluxcd.io/v2',
  Application: 'argoproj.io/v1alpha1',
};

/** The part of an object's metadata grants are read from. */
export interface GrantMetadata {
  annotations?: Record<string, string> | undefined;
}

/** An object a project wants to use: kind, where it is, and its metadata as read from the API server. */
export interface GrantSubject {
  kind: string;
  namespace: string;
  name: string;
  metadata: GrantMetadata;
}

/** What is missing, in terms a platform engineer can act on. */
export interface MissingGrant {
  /** e.g. `Secret keptn/team-b-git`. */
  object: string;
  annotation: string;
  /** The value the annotation must list. */
  expected: string;
  /** Why this grant is needed, one clause. */
  reason: string;
  /** The kubectl command that grants it. */
  fix: string;
}

export type GrantDecision = { granted: true } | { granted: false; missing: MissingGrant };

/** Where a Git URL sends what it sends: host (lower case; IPv6 in brackets) and the port, defaults filled in. */
export interface GitEndpoint {
  host: string;
  port: number;
}

const DEFAULT_PORTS: Record<string, number> = { https: 443, http: 80, ssh: 22 };
const HOSTNAME = /^[a-z0-9]([a-z0-9.-]{0,251}[a-z0-9])?$/;
const IPV6 = /^\[[0-9a-f:.]{2,45}\]$/;
const PORT = /^[0-9]{1,5}$/;
// Never a leading '-': ssh would read the user (or host) as an option.
const USER = /^[A-Za-z0-9_][A-Za-z0-9._-]{0,63}$/;

/**
 * The host and port a Git URL reaches, or a reason it is refused. Deliberately stricter than any URL parser: the
 * authority may only hold `[user@]host[:port]` made of plain characters, because git (curl, ssh) and the WHATWG URL
 * parser disagree on strings such as `https://granted.example\@other.example/` (a backslash ends the host for one and
 * not the other); a URL both could read differently is refused, never guessed.
 */
export function gitEndpoint(url: string): GitEndpoint | { problem: string } {
  if (/[^\x21-\x7e]/.test(url)) return { problem: 'contains white space, control or non-ASCII characters' };
  if (/[\\%]/.test(url)) return { problem: 'contains a backslash or a percent sign, which git and URL parsers read differently' };
  const scheme = /^([a-z][a-z0-9+.-]*):\/\//i.exec(url);
  if (scheme) {
    const name = scheme[1]!.toLowerCase();
    const defaultPort = DEFAULT_PORTS[name];
    if (defaultPort === undefined) return { problem: `scheme ${name}:// is not one of https, http, ssh` };
    const rest = url.slice(scheme[0].length);
    const end = rest.search(/[/?#]/);
    let authority = end < 0 ? rest : rest.slice(0, end);
    if (end >= 0 && rest[end] !== '/') return { problem: 'has a query or fragment right after the host' };
    const at = authority.lastIndexOf('@');
    if (at >= 0) {
      if (name !== 'ssh' || !USER.test(authority.slice(0, at)))
        return { problem: 'carries user information in a form that is not allowed' };
      authority = authority.slice(at + 1);
    }
    return hostAndPort(authority, defaultPort);
  }
  // scp-like `user@host:path` (git's rule: a colon before any slash, no scheme); always SSH on port 22.
  const scp = /^([A-Za-z0-9_][A-Za-z0-9._-]{0,63})@([^:/]+|\[[^\]/]+\]):(?!\/\/)/.exec(url);
  if (scp) return hostAndPort(scp[2]!, 22, false);
  return { problem: 'is not an https://, http://, ssh:// or user@host:path URL' };
}

function hostAndPort(authority: string, defaultPort: number, portAllowed = true): GitEndpoint | { problem: string } {
  const lower = authority.toLowerCase();
  const m = /^(\[[^\]]*\]|[^:]*)(?::([^:]*))?$/.exec(lower);
  const host = m?.[1] ?? '';
  const port = m?.[2];
  if (!HOSTNAME.test(host) && !IPV6.test(host))
    return { problem: `has a host (${JSON.stringify(authority.slice(0, 100))}) that is not a plain host name or IP address` };
  if (port !== undefined) {
    if (!portAllowed || !PORT.test(port) || Number(port) < 1 || Number(port) > 65535) return { problem: 'has an invalid port' };
    return { host, port: Number(port) };
  }
  return { host, port: defaultPort };
}

/** `host` or `host:port` as written in the annotation and as shown in messages (ports only when not the default). */
export function formatEndpoint(e: GitEndpoint, defaultPort?: number): string {
  return e.port === defaultPort ? e.host : `${e.host}:${e.port}`;
}

/** The entries of a comma-separated annotation (white space around entries ignored; empty entries dropped). */
export function listOf(value: string | undefined): string[] {
  return (value ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
}

/** Whether an annotation entry (`host` = any port, `host:port` = that port only) admits the endpoint. */
export function hostEntryAdmits(entry: string, e: GitEndpoint): boolean {
  const parsed = hostAndPort(entry.trim(), -1);
  if ('problem' in parsed) return false;
  return parsed.host === e.host && (parsed.port === -1 || parsed.port === e.port);
}

function subjectName(s: Pick<GrantSubject, 'kind' | 'namespace' | 'name'>): string {
  return `${s.kind} ${s.namespace}/${s.name}`;
}

/** kubectl's names for the kinds grants are set on; plural.group, because `application` alone is ambiguous. */
const KUBECTL_RESOURCES: Record<string, string> = {
  Secret: 'secret',
  Kustomization: 'kustomizations.kustomize.toolkit.fluxcd.io',
  HelmRelease: 'helmreleases.helm.toolkit.fluxcd.io',
  Application: 'applications.argoproj.io',
  Rollout: 'rollouts.argoproj.io',
};

function annotateCommand(s: Pick<GrantSubject, 'kind' | 'namespace' | 'name'>, annotation: string, current: string[], add: string): string {
  const resource = KUBECTL_RESOURCES[s.kind] ?? s.kind.toLowerCase();
  // Never echo what else the object is granted to: the settings' author may be another team.
  const value = current.length ? `<its current list>,${add}` : add;
  return `kubectl annotate ${current.length ? '--overwrite ' : ''}${resource} -n ${s.namespace} ${s.name} ${annotation}=${value}`;
}

function projectGrant(s: GrantSubject, project: string, reason: string): GrantDecision {
  const projects = listOf(s.metadata.annotations?.[PROJECTS_ANNOTATION]);
  if (projects.includes(project)) return { granted: true };
  return {
    granted: false,
    missing: {
      object: subjectName(s),
      annotation: PROJECTS_ANNOTATION,
      expected: project,
      reason,
      fix: annotateCommand(s, PROJECTS_ANNOTATION, projects, project),
    },
  };
}

/**
 * May `project` use this Secret's credentials for `gitUrl`? The project must be listed in its projects annotation and
 * the URL's host (and port, when the entry names one) in its git-hosts annotation.
 */
export function secretGrant(secret: GrantSubject, project: string, gitUrl: string): GrantDecision {
  const forProject = projectGrant(secret, project, `git.secretRef names it, and only the projects it lists may use its credentials`);
  if (!forProject.granted) return forProject;
  const endpoint = gitEndpoint(gitUrl);
  const hosts = listOf(secret.metadata.annotations?.[GIT_HOSTS_ANNOTATION]);
  if ('problem' in endpoint) {
    return {
      granted: false,
      missing: {
        object: subjectName(secret),
        annotation: GIT_HOSTS_ANNOTATION,
        expected: 'the host of git.url',
        reason: `git.url ${endpoint.problem}, so its host cannot be matched against the hosts the Secret's credentials may go to; write it as https://host[:port]/path`,
        fix: 'correct git.url in the settings',
      },
    };
  }
  if (hosts.some((h) => hostEntryAdmits(h, endpoint))) return repositoryGrant(secret, gitUrl);
  const shown = formatEndpoint(endpoint);
  return {
    granted: false,
    missing: {
      object: subjectName(secret),
      annotation: GIT_HOSTS_ANNOTATION,
      expected: shown,
      reason: `its credentials go only to the Git hosts it lists, and git.url is on ${shown}`,
      fix: annotateCommand(secret, GIT_HOSTS_ANNOTATION, hosts, shown),
    },
  };
}

/** Without the repositories annotation, any repository on a granted host; with it, only those it lists (src/platform/git/repository.ts). */
function repositoryGrant(secret: GrantSubject, gitUrl: string): GrantDecision {
  const listed = listOf(secret.metadata.annotations?.[GIT_REPOSITORIES_ANNOTATION]);
  if (listed.length === 0 || listed.some((r) => sameRepository(r, gitUrl))) return { granted: true };
  return {
    granted: false,
    missing: {
      object: subjectName(secret),
      annotation: GIT_REPOSITORIES_ANNOTATION,
      expected: gitUrl,
      reason: 'its credentials go only to the repositories it lists, and git.url is not one of them',
      fix: annotateCommand(secret, GIT_REPOSITORIES_ANNOTATION, listed, gitUrl),
    },
  };
}

/** May `project` drive this Flux or Argo CD object (write what it applies, ask it to reconcile or sync)? */
export function targetGrant(target: GrantSubject, project: string): GrantDecision {
  return projectGrant(target, project, 'the settings name it as target, and only the projects it lists may deploy through it');
}

/** May `project` promote and abort this progressive workload (an Argo Rollouts Rollout, a Flagger Canary)? */
export function workloadGrant(workload: GrantSubject, project: string): GrantDecision {
  const setting = workload.kind === 'Canary' ? 'progressive.canary' : 'progressive.rollout';
  return projectGrant(workload, project, `the settings name it as ${setting}, and only the projects it lists may promote or abort it`);
}

/** The message of an errored `.finished`: the object, the annotation, the value it must list, and how to add it. */
export function missingGrantMessage(project: string, m: MissingGrant): string {
  return `project ${project} has no grant for ${m.object}: ${m.reason}. Its annotation ${m.annotation} must list ${m.expected}; a platform engineer grants it with: ${m.fix}. Nothing was sent to Git.`;
}
