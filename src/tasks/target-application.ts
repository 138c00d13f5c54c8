/**
 * Pure: which Application the pre-Git target check (target-source.ts, ADR 13) judges when the target is an Argo CD
 * Application, by the rules the Argo CD driver follows after the commit (src/tools/argocd/topology.ts), so that a deployment
 * the driver would carry out is not refused before Git, and one it would fail is:
 * - an app of apps: the child Application that deploys the edited file (followedApplication; the children are those
 *   the parent's `status.resources` lists, each read by its own GET);
 * - an Application an ApplicationSet generated (its controller owner reference): a file the ApplicationSet's Git files
 *   generator reads from our branch is deployed by it too, through the generated spec (generatedFromFile).
 */
import {
  childApplications,
  followedApplication,
  generatedFromFile,
  owningApplicationSet,
  type ApplicationSet,
} from '../tools/argocd/topology.js';
import type { Application } from '../tools/argocd/application.js';

/** Objects read so far by `<kind>/<namespace>/<name>` (target-source.ts refKey); no import back, no cycle. */
type ReadObjects = ReadonlyMap<string, unknown>;
type SourceObject = object;
export interface ArgoRef {
  kind: 'Application' | 'ApplicationSet';
  namespace: string;
  name: string;
}

export interface Wanted {
  repoUrl: string;
  branch: string;
  files: readonly string[];
}

function key(kind: 'Application' | 'ApplicationSet', namespace: string, name: string): string {
  return `${kind}/${namespace}/${name}`;
}

function follow(target: SourceObject, read: ReadObjects, wanted: Wanted) {
  const lookup = (namespace: string, name: string) => read.get(key('Application', namespace, name)) as Application | undefined;
  return followedApplication(target as unknown as Application, lookup, wanted.repoUrl, wanted.branch, wanted.files);
}

function ownerRef(app: Application): ArgoRef | undefined {
  const owner = owningApplicationSet(app as Application & { metadata: { ownerReferences?: [] } });
  return owner ? { kind: 'ApplicationSet', namespace: app.metadata.namespace ?? 'argocd', name: owner } : undefined;
}

/**
 * The Applications and ApplicationSet still to read: one level of children of the Application followed so far, and
 * once it has none left to read, its owning ApplicationSet. Each round descends one level, as the driver does.
 */
export function applicationReads(target: SourceObject, read: ReadObjects, tried: ReadonlySet<string>, wanted: Wanted): ArgoRef[] {
  const followed = follow(target, read, wanted);
  if ('problem' in followed) return [];
  const children = childApplications(followed.app)
    .map((c): ArgoRef => ({ kind: 'Application', namespace: c.namespace, name: c.name }))
    .filter((r) => !tried.has(key('Application', r.namespace, r.name)));
  if (children.length) return children;
  const owner = ownerRef(followed.app);
  return owner && !tried.has(key('ApplicationSet', owner.namespace, owner.name)) ? [owner] : [];
}

export type JudgedApplication = { app: Application; via: string[]; generated: string[]; applicationSet?: string } | { problem: string };

/** The Application whose sources the edited files must lie in, and which files its ApplicationSet's generator reads. */
export function judgedApplication(target: SourceObject, read: ReadObjects, wanted: Wanted): JudgedApplication {
  const followed = follow(target, read, wanted);
  if ('problem' in followed) return followed;
  const owner = ownerRef(followed.app);
  const appSet = owner && (read.get(key('ApplicationSet', owner.namespace, owner.name)) as ApplicationSet | undefined);
  const generated = appSet ? wanted.files.filter((f) => generatedFromFile(appSet, wanted.repoUrl, wanted.branch, [f]) !== undefined) : [];
  return {
    app: followed.app,
    via: followed.via,
    generated,
    ...(appSet ? { applicationSet: `ApplicationSet ${owner.namespace}/${owner.name}` } : {}),
  };
}
