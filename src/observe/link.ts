/**
 * Which Flux or Argo CD objects may start which Keptn sequences (ADR 16). Three parties must agree, and only one of
 * them is the authority:
 * - the object's annotations name the Keptn project, stage and service (`gitops.keptn.sh/observe-*`): a hint of which
 *   settings to read, never a permission, since whoever may annotate the object writes them;
 * - the object's `gitops.keptn.sh/projects` grant (ADR 8) lists the project: its owner lets that project use it;
 * - the project's own settings for that stage and service (`gitops/config.yaml`, written by the project's team in its
 *   Keptn configuration) name the object as `target` and carry `observe`: the project asks for sequences from it, and
 *   chooses the sequence. Only this lets an object speak for a project: those who may write it may start the
 *   project's sequences anyway.
 * Pure, except `observedSettings`, which reads the settings through the injected source.
 */
import { listOf, PROJECTS_ANNOTATION, targetGrant } from '../platform/grants.js';
import { SettingsError, type GitOpsSettings } from '../platform/settings/schema.js';
import type { SettingsSource } from '../platform/settings/source.js';

export const OBSERVE_PROJECT = 'gitops.keptn.sh/observe-project';
export const OBSERVE_STAGE = 'gitops.keptn.sh/observe-stage';
export const OBSERVE_SERVICE = 'gitops.keptn.sh/observe-service';
/**
 * No longer read: the sequence is the project's choice (settings `observe.sequence`). An object that still carries it
 * is not observed, so that its owner learns where the choice moved instead of getting another sequence silently.
 */
export const OBSERVE_SEQUENCE = 'gitops.keptn.sh/observe-sequence';
export const DEFAULT_SEQUENCE = 'delivery';

export type ObservedKind = 'Kustomization' | 'HelmRelease' | 'Application';

/** The Keptn service an object's deployments belong to, and the sequence its project starts for them. */
export interface Link {
  project: string;
  stage: string;
  service: string;
  sequence: string;
}

/** What an object's annotations claim: which Keptn service's settings to ask. Not a permission. */
export type LinkHint = Omit<Link, 'sequence'>;

/** An observed object, by kind, namespace and name. */
export interface ObservedObject {
  kind: ObservedKind;
  namespace: string;
  name: string;
}

/**
 * Keptn's names: project, stage and service names are DNS labels (keptn/keptn 1.4.5 api, ValidateKeptnEntityName);
 * a sequence name goes into an event type, so it gets the same rule: no dots, no wildcards for NATS.
 */
const NAME = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;

/**
 * The link an object's annotations claim: undefined when it is not linked (no `observe-project`), a problem when the
 * annotations are incomplete or invalid, or when the object is not granted to the project (its owner's side).
 * Whether the project wants it is `observationGrant`'s question, asked before anything is announced.
 */
export function linkOf(
  kind: ObservedKind,
  namespace: string,
  name: string,
  annotations: Record<string, string> | undefined,
): { link: LinkHint } | { problem: string } | undefined {
  const project = annotations?.[OBSERVE_PROJECT];
  if (project === undefined) return undefined;
  const wanted = { project, stage: annotations?.[OBSERVE_STAGE], service: annotations?.[OBSERVE_SERVICE] };
  const problems: string[] = [];
  for (const [field, value] of Object.entries(wanted)) {
    const annotation = `gitops.keptn.sh/observe-${field}`;
    if (value === undefined) problems.push(`${annotation} is missing`);
    else if (!NAME.test(value))
      problems.push(`${annotation} must be a Keptn name (lower-case letters, digits and '-'), got ${JSON.stringify(value.slice(0, 80))}`);
  }
  if (annotations?.[OBSERVE_SEQUENCE] !== undefined)
    problems.push(
      `${OBSERVE_SEQUENCE} is no longer read: the project chooses the sequence in its settings (observe.sequence in gitops/config.yaml of the linked service); remove the annotation`,
    );
  if (problems.length) return { problem: `${kind} ${namespace}/${name} is not observed: ${problems.join('; ')}` };
  const grant = targetGrant({ kind, namespace, name, metadata: { annotations: annotations ?? {} } }, project);
  if (!grant.granted) {
    const listed = listOf(annotations?.[PROJECTS_ANNOTATION]).length > 0;
    return {
      problem: `${kind} ${namespace}/${name} names Keptn project ${project} in ${OBSERVE_PROJECT}, but its ${PROJECTS_ANNOTATION} annotation does not ${listed ? 'list' : 'exist to grant'} it; nothing is announced until a platform engineer grants it: ${grant.missing.fix}`,
    };
  }
  return { link: wanted as LinkHint };
}

/** The settings of the linked Keptn service as read, or why they could not be (not found, not valid). */
export type ObservedSettings = { settings: Pick<GitOpsSettings, 'target' | 'observe'>; where: string } | { problem: string };

/**
 * May this object start the sequences of the Keptn service its annotations name? Only when that service's settings
 * (the project's own, in its Keptn configuration) carry `observe` and name exactly this object as `target`; the
 * sequence is the one the settings choose. Anything else is a problem naming what the project's team must add: the
 * object's annotations and grant, which its owner writes, never suffice on their own.
 */
export function observationGrant(object: ObservedObject, hint: LinkHint, found: ObservedSettings): { link: Link } | { problem: string } {
  const what = `${object.kind} ${object.namespace}/${object.name}`;
  const service = `${hint.project}/${hint.stage}/${hint.service}`;
  const refused = (why: string) => ({
    problem: `${what} is linked to Keptn service ${service} by its annotations, but ${why}; nothing is announced for it. Only the project's own settings can let an object start its sequences`,
  });
  if ('problem' in found) return refused(`the settings of that service cannot be read (${found.problem})`);
  const { settings, where } = found;
  if (!settings.observe)
    return refused(
      `its settings (${where}) do not ask for changes made in Git; the project's team adds "observe: {}" (or "observe: { sequence: <name> }") there, with target ${object.kind} ${object.namespace}/${object.name}`,
    );
  const target = settings.target;
  if (target.kind !== object.kind || target.namespace !== object.namespace || target.name !== object.name)
    return refused(`its settings (${where}) name another object as target, and only their target may start the service's sequences`);
  return { link: { ...hint, sequence: settings.observe.sequence ?? DEFAULT_SEQUENCE } };
}

/**
 * The linked service's settings, at the latest configuration version (no sequence pins one): a missing or invalid
 * file is a refusal (a problem); an unreachable resource-service is thrown, so the observer tries again at the
 * object's next change instead of deciding on what it could not read.
 */
export async function observedSettings(source: SettingsSource, hint: LinkHint): Promise<ObservedSettings> {
  try {
    return await source.load(hint);
  } catch (err: unknown) {
    if (err instanceof SettingsError) return { problem: err.message };
    throw err;
  }
}
