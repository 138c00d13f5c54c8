/**
 * The GitRepository our commit travels through: does it read our repository and branch (checked at the start), and
 * what does it say after our reconcile request? docs/verdicts.md (Flux, GitRepository) is the table.
 * @see https://fluxcd.io/flux/components/source/gitrepositories/#status
 */
import { sameRepository } from '../../platform/git/repository.js';
import { commitOf, findCondition, type Expectation, type Verdict } from '../../judge/verdict.js';
import {
  askAbout,
  conditionText,
  handledSince,
  isTrue,
  objectName,
  ours,
  readyAtGeneration,
  suspended,
  type FluxObject,
} from './object.js';

export interface SourceWanted {
  repoUrl: string;
  branch: string;
}

/**
 * Checked once at the start: a GitRepository that reads another repository, or a ref that is not our branch, never
 * picks our commit (source-controller api/v1 gitrepository_types.go: commit, then name, semver, tag, branch; the
 * branch defaults to master).
 */
export function checkGitRepositoryRef(obj: FluxObject, wanted: SourceWanted): Verdict | undefined {
  const url = obj.spec?.['url'];
  if (typeof url === 'string' && !sameRepository(url, wanted.repoUrl)) {
    return {
      state: 'failed',
      message: `${objectName(obj)} reads ${url}, not our repository ${wanted.repoUrl}; point the settings' git.url or target at the same repository`,
    };
  }
  const ref = (obj.spec?.['ref'] as { branch?: string; tag?: string; semver?: string; name?: string; commit?: string } | undefined) ?? {};
  const tracks = ref.commit
    ? `commit ${ref.commit}`
    : ref.name
      ? ref.name === `refs/heads/${wanted.branch}`
        ? undefined
        : `ref ${ref.name}`
      : ref.semver
        ? `semver ${ref.semver}`
        : ref.tag
          ? `tag ${ref.tag}`
          : (ref.branch ?? 'master') === wanted.branch
            ? undefined
            : `branch ${ref.branch ?? 'master'}`;
  if (tracks)
    return { state: 'failed', message: `${objectName(obj)} tracks ${tracks}, not branch ${wanted.branch}: it will never pick our commit` };
  return undefined;
}

/**
 * What the GitRepository says after our reconcile request (or a later one) was handled: a failed fetch or signature
 * verification, or a new artifact that does not contain our commit, is final. Undefined while it says nothing decisive.
 *
 * `artifactBefore` is the artifact's revision when we asked. Only an artifact made after our request is evidence of
 * what the fetch found: the one from before may stand beside our handled token in a status written while kube-apiserver
 * was away (seen twice in faults.e2e: source-controller stored our artifact, its status write failed, and a later write
 * carried the token with the old artifact, Ready=True and no Reconciling). source-controller records the token whatever
 * the reconcile's outcome (v1.9.3 internal/reconcile/summarize/processor.go RecordReconcileReq ignores the error), so
 * the token alone never says the artifact is new. A branch rewritten without our commit is
 * still found: the wait asks whether our commit is on the branch when the tool reports a revision without it.
 */
export function evaluateGitRepository(
  obj: FluxObject,
  requestedAt: string | undefined,
  expected: Expectation,
  artifactBefore?: string,
): Verdict | undefined {
  const stop = suspended(obj);
  if (stop) return stop;
  if (!handledSince(obj.status?.lastHandledReconcileAt, requestedAt)) return undefined;
  const verified = findCondition(obj.status?.conditions, 'SourceVerified');
  if (verified?.status === 'False')
    return { state: 'failed', message: `${objectName(obj)} could not verify the signature of our commit: ${conditionText(verified)}` };
  const ready = findCondition(obj.status?.conditions, 'Ready');
  const fetchFailed = isTrue(obj, 'FetchFailed');
  if (fetchFailed && ready?.status === 'False')
    return { state: 'failed', message: `Flux cannot fetch from ${objectName(obj)}: ${conditionText(fetchFailed)}` };
  const { current } = readyAtGeneration(obj);
  const artifact = commitOf(obj.status?.artifact?.revision);
  // While `Reconciling` is True the status may still carry the previous artifact beside the new handled token: seen
  // when kube-apiserver went away after source-controller stored our artifact but before its status write landed
  // (faults.e2e); the old Ready=True and artifact then stood beside our token until the retried reconcile finished.
  if (isTrue(obj, 'Reconciling')) return undefined;
  if (current && ready?.status === 'True' && artifact && obj.status?.artifact?.revision !== artifactBefore) {
    const ask = askAbout(expected, artifact);
    if (ask) return ask;
    if (!ours(expected, artifact)) {
      return {
        state: 'failed',
        message: `${objectName(obj)} fetched ${obj.status?.artifact?.revision} after our request, which does not contain our commit ${expected.commit}`,
      };
    }
  }
  return undefined;
}
