/**
 * The grant checks of `prepare` (see grants.ts, ADR 8): the Secret of `git.secretRef` is read from the cluster and
 * decided before anything is cloned, fetched, written or patched (the target: target-check.ts).
 */
import type { Logger } from 'pino';
import { codeOf, messageOf } from '../shared/errors.js';
import { missingGrantMessage, secretGrant, type GrantDecision } from '../platform/grants.js';
import { credentialsFromSecretData, type GitCredentials } from '../platform/git/credentials.js';
import type { GitOpsSettings } from '../platform/settings/schema.js';
import type { ObjectMetadata, ObjectRef } from '../platform/k8s/cluster.js';
import { retry } from '../shared/retry.js';
import { DeploymentError, type DeploymentDeps } from './deps.js';

/** A Secret the settings name, with the namespace filled in. */
export interface SecretRef {
  namespace: string;
  name: string;
}

/** Transient API failures (not 403/404) are worth a few quick attempts before the deployment errors. */
export const METADATA_RETRY = {
  attempts: 3,
  baseDelayMs: 200,
  maxDelayMs: 2_000,
  retryable: (err: unknown) => codeOf(err) === 'API_ERROR',
};

export async function metadataOf(ref: ObjectRef, deps: DeploymentDeps, purpose: string): Promise<ObjectMetadata> {
  const read = deps.objectMetadata;
  if (!read)
    throw new DeploymentError(
      'NO_CLUSTER',
      `${purpose} needs the grant on ${ref.kind} ${ref.namespace}/${ref.name}, but the service has no Kubernetes access to read it`,
    );
  return retry(METADATA_RETRY, () => read(ref));
}

export function refuseUnlessGranted(decision: GrantDecision, project: string, log: Logger): void {
  if (decision.granted) return;
  log.warn(
    { grant: decision.missing.object, annotation: decision.missing.annotation, expected: decision.missing.expected },
    'grant missing; deployment refused',
  );
  throw new DeploymentError('GRANT_MISSING', missingGrantMessage(project, decision.missing));
}

/** The Secret of `git.secretRef`, once it is granted to the project and to the host of `git.url`. */
export async function grantedSecret(
  settings: GitOpsSettings,
  project: string,
  deps: DeploymentDeps,
  log: Logger,
): Promise<SecretRef | undefined> {
  const ref = settings.git.secretRef;
  if (!ref) return undefined;
  const secret = { namespace: ref.namespace ?? deps.secretNamespace, name: ref.name };
  const metadata = await metadataOf({ apiVersion: 'v1', kind: 'Secret', ...secret }, deps, 'git.secretRef').catch((err: unknown) => {
    if (err instanceof DeploymentError) throw err;
    const hint =
      codeOf(err) === 'FORBIDDEN'
        ? ": the service may read only the Secrets its RBAC names; bind the Role of the Secret's Keptn scope to it (chart value secrets.keptnScopeRoles) or list it in secrets.names"
        : '';
    throw new DeploymentError('SECRET_UNAVAILABLE', `cannot read the Git credentials: ${messageOf(err)}${hint}`, { cause: err });
  });
  refuseUnlessGranted(secretGrant({ kind: 'Secret', ...secret, metadata }, project, settings.git.url), project, log);
  return secret;
}

export async function credentials(secret: SecretRef | undefined, deps: DeploymentDeps): Promise<{ credentials?: GitCredentials }> {
  if (!secret) return {};
  if (!deps.secretData)
    throw new DeploymentError(
      'NO_CLUSTER',
      `git.secretRef names Secret ${secret.name}, but the service has no Kubernetes access to read it`,
    );
  const data = await deps.secretData(secret.namespace, secret.name).catch((err: unknown) => {
    throw new DeploymentError('SECRET_UNAVAILABLE', `cannot read the Git credentials: ${(err as Error).message}`, { cause: err });
  });
  return { credentials: credentialsFromSecretData(data, `${secret.namespace}/${secret.name}`) };
}
