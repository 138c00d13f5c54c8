/**
 * Ancestry answers for the waiters: how a revision a tool reports relates to our commit, and whether our commit is
 * still on the branch. Both read the clone, so both run under the tree's lock (see lock.ts).
 */
import type { Clone } from './clones.js';

/**
 * How an applied commit relates to ours. `superseded`: a descendant in which a later commit rewrote a file we edited
 * (another deployment of the same service, a person): it contains ours, but what it deploys there is no longer what
 * we wrote, so only its health, not our image, can be asked of it.
 */
export type Relation = 'same' | 'descendant' | 'superseded' | 'unrelated' | 'unknown';

const HASH = /^[0-9a-f]{7,64}$/;

/** The full hash of a commit given in full or abbreviated (Helm chart revisions carry 12 hex digits). */
export async function resolveCommit(clone: Clone, sha: string): Promise<string | undefined> {
  if (!HASH.test(sha)) return undefined;
  const out = (await clone.git.raw(['rev-parse', '--verify', '--quiet', `${sha}^{commit}`]).catch(() => '')).trim();
  return out.startsWith(sha) ? out : undefined;
}

/** Whether `ancestor` is an ancestor of (or equal to) `descendant`. */
export async function isAncestor(clone: Clone, ancestor: string, descendant: string): Promise<boolean> {
  if (!HASH.test(ancestor) || !(HASH.test(descendant) || descendant.startsWith('refs/remotes/origin/'))) return false;
  // Exit codes without output do not reach us through simple-git, so compare what git prints instead.
  const base = await clone.git.raw(['merge-base', ancestor, descendant]).catch(() => '');
  return base.trim() === ancestor;
}

/**
 * How the full commit `sha` relates to `ours`: a descendant (contains ours), a descendant in which a later commit
 * changed one of `files` (superseded), or not related.
 */
export async function relationOf(clone: Clone, ours: string, sha: string, files: readonly string[] = []): Promise<Relation> {
  if (!(await isAncestor(clone, ours, sha))) return 'unrelated';
  if (files.length === 0) return 'descendant';
  // No rename detection: it compares file contents, which a partial clone does not hold for older commits.
  const changed = await clone.git.raw(['diff', '--no-renames', '--name-only', ours, sha, '--', ...files.map((f) => `:(literal)${f}`)]);
  return changed.trim() === '' ? 'descendant' : 'superseded';
}

/**
 * Whether what `commit` changed still stands at `head`: undefined when every file it changed reads at `head` as the
 * commit left it; otherwise the files that read differently and the latest commit after it that changed them (a
 * revert, or a later change of the same files). Issue 18 item 6: a change no longer in effect is not "deployed".
 */
export async function changedAgain(clone: Clone, commit: string, head: string): Promise<{ by: string; files: string[] } | undefined> {
  if (!HASH.test(commit)) return undefined;
  const changed = (await clone.git.raw(['diff-tree', '--root', '--no-commit-id', '--name-only', '-r', commit]))
    .split('\n')
    .map((f) => f.trim())
    .filter(Boolean);
  if (changed.length === 0) return undefined;
  const literal = changed.map((f) => `:(literal)${f}`);
  const differ = (await clone.git.raw(['diff', '--name-only', commit, head, '--', ...literal]))
    .split('\n')
    .map((f) => f.trim())
    .filter(Boolean);
  if (differ.length === 0) return undefined;
  const by = (await clone.git.raw(['log', '-1', '--format=%H', `${commit}..${head}`, '--', ...differ.map((f) => `:(literal)${f}`)])).trim();
  return { by, files: differ };
}
