/**
 * Which Flux or Argo CD objects are observed, and for which Keptn service: annotations on the object name the Keptn
 * project, stage, service and sequence, and the object must also be granted to that project (`gitops.keptn.sh/projects`,
 * see grants.ts), so a team cannot make the service start sequences in another team's project by annotating its own
 * object. Pure: the observer passes the metadata it read from its watch.
 */
import { listOf, PROJECTS_ANNOTATION, targetGrant } from '../grants.js';

export const OBSERVE_PROJECT = 'gitops.keptn.sh/observe-project';
export const OBSERVE_STAGE = 'gitops.keptn.sh/observe-stage';
export const OBSERVE_SERVICE = 'gitops.keptn.sh/observe-service';
/** The shipyard sequence to trigger in the stage; `delivery` when absent. */
export const OBSERVE_SEQUENCE = 'gitops.keptn.sh/observe-sequence';
export const DEFAULT_SEQUENCE = 'delivery';

export type ObservedKind = 'Kustomization' | 'HelmRelease' | 'Application';

/** The Keptn service an object's deployments belong to. */
export interface Link {
  project: string;
  stage: string;
  service: string;
  sequence: string;
}

/**
 * Keptn's names: project, stage and service names are DNS labels (keptn/keptn 1.4.5 api, ValidateKeptnEntityName);
 * a sequence name goes into an event type, so it gets the same rule: no dots, no wildcards for NATS.
 */
const NAME = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;

/**
 * The link an object's annotations declare: undefined when it is not observed (no `observe-project`), a problem when
 * the annotations are incomplete or invalid, or when the object is not granted to the project.
 */
export function linkOf(
  kind: ObservedKind,
  namespace: string,
  name: string,
  annotations: Record<string, string> | undefined,
): { link: Link } | { problem: string } | undefined {
  const project = annotations?.[OBSERVE_PROJECT];
  if (project === undefined) return undefined;
  const wanted = {
    project,
    stage: annotations?.[OBSERVE_STAGE],
    service: annotations?.[OBSERVE_SERVICE],
    sequence: annotations?.[OBSERVE_SEQUENCE] ?? DEFAULT_SEQUENCE,
  };
  const problems: string[] = [];
  for (const [field, value] of Object.entries(wanted)) {
    const annotation = `gitops.keptn.sh/observe-${field}`;
    if (value === undefined) problems.push(`${annotation} is missing`);
    else if (!NAME.test(value))
      problems.push(`${annotation} must be a Keptn name (lower-case letters, digits and '-'), got ${JSON.stringify(value.slice(0, 80))}`);
  }
  if (problems.length) return { problem: `${kind} ${namespace}/${name} is not observed: ${problems.join('; ')}` };
  const grant = targetGrant({ kind, namespace, name, metadata: { annotations: annotations ?? {} } }, project);
  if (!grant.granted) {
    const listed = listOf(annotations?.[PROJECTS_ANNOTATION]).length > 0;
    return {
      problem: `${kind} ${namespace}/${name} names Keptn project ${project} in ${OBSERVE_PROJECT}, but its ${PROJECTS_ANNOTATION} annotation does not ${listed ? 'list' : 'exist to grant'} it; nothing is announced until a platform engineer grants it: ${grant.missing.fix}`,
    };
  }
  return { link: wanted as Link };
}
