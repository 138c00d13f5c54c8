/**
 * The target check of `prepare` (ADR 8, ADR 13): the target is read in full, must be granted to the project, and the
 * settings may write only to the repository and branch it deploys from, and only files inside what it deploys
 * (target-source.ts decides). Every read is a GET before any Git access: a refusal fetches and pushes nothing.
 */
import type { Logger } from 'pino';
import { codeOf, messageOf } from '../shared/errors.js';
import { targetGrant } from '../platform/grants.js';
import { retry } from '../shared/retry.js';
import type { GitOpsSettings } from '../platform/settings/schema.js';
import { refKey, sourcesToRead, targetSourceDecision, type ReadObjects, type SourceKind, type SourceObject } from './target-source.js';
import { DeploymentError, type DeploymentDeps } from './deps.js';
import { METADATA_RETRY, refuseUnlessGranted } from './grant-checks.js';

/**
 * Reads of what the target deploys from; beyond this many rounds the objects refer to each other in a loop. An
 * Application takes one round per level of apps of apps (topology.ts follows at most 5) and one for its ApplicationSet.
 */
const MAX_ROUNDS = 7;

async function readOne(
  deps: DeploymentDeps,
  kind: SourceKind,
  namespace: string,
  name: string,
  purpose: string,
): Promise<SourceObject | undefined> {
  const read = deps.readObject;
  if (!read)
    throw new DeploymentError(
      'NO_CLUSTER',
      `${purpose} needs ${kind} ${namespace}/${name}, but the service has no Kubernetes access to read it`,
    );
  try {
    return await retry(METADATA_RETRY, () => read(kind, namespace, name));
  } catch (err: unknown) {
    if (codeOf(err) === 'NOT_FOUND') return undefined;
    throw new DeploymentError(
      codeOf(err) === 'FORBIDDEN' ? 'FORBIDDEN' : 'API_ERROR',
      `cannot read ${kind} ${namespace}/${name}, which ${purpose}: ${messageOf(err)}`,
      { cause: err },
    );
  }
}

/**
 * Refuses a target (Kustomization, HelmRelease, Application) that is not granted to the project, or that does not
 * deploy from the settings' repository, branch and files.
 */
export async function checkTarget(settings: GitOpsSettings, project: string, deps: DeploymentDeps, log: Logger): Promise<void> {
  const { kind, namespace, name } = settings.target;
  const target = await readOne(deps, kind, namespace, name, 'the settings name as target');
  if (!target) throw new DeploymentError('NOT_FOUND', `${kind} ${namespace}/${name} not found; check target in the settings`);
  refuseUnlessGranted(
    targetGrant({ kind, namespace, name, metadata: { annotations: { ...target.metadata.annotations } } }, project),
    project,
    log,
  );
  const wanted = { repoUrl: settings.git.url, branch: settings.git.branch, files: settings.images.map((w) => w.file) };
  const read = new Map<string, SourceObject>();
  const tried = new Set<string>();
  for (let round = 0; round < MAX_ROUNDS; round++) {
    const next = sourcesToRead(kind, target, read as ReadObjects, tried, wanted);
    if (next.length === 0) break;
    for (const ref of next) {
      tried.add(refKey(ref));
      const obj = await readOne(deps, ref.kind, ref.namespace, ref.name, `the target ${kind} ${namespace}/${name} deploys from`);
      if (obj) read.set(refKey(ref), obj);
    }
  }
  const decision = targetSourceDecision(kind, target, read, wanted);
  if (decision.granted) return;
  log.warn({ target: `${kind} ${namespace}/${name}` }, 'settings do not match what the target deploys; refused');
  throw new DeploymentError('TARGET_MISMATCH', `project ${project} may not write there: ${decision.problem}`);
}
