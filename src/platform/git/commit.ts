/**
 * The commit protocol, the one way a change reaches a branch (under the tree's lock): a fresh checkout of the remote
 * head; the deployment's own commit if an earlier attempt pushed it already; else the change is staged, committed with
 * the deployment trailer and pushed, and the whole round starts over, after a jittered pause, when the remote moved.
 * See docs/adr/0003-writing-to-git.md; how a deployment's commit is found again is trailers.ts.
 */
import { applyImageWrite, EditError, type ImageWrite } from './editors.js';
import { gitIn, gitMessage, GitError } from './command.js';
import { localGitEnv, CredentialsError } from './credentials.js';
import { cloneKey, type CloneCache, type Clone } from './clones.js';
import { readInTree, writeInTree } from './files.js';
import type { ImageRef } from './image.js';
import { isLocalDamage, type RepoRef, type Transport } from './transport.js';
import { retry, realSleep, type Sleep } from '../../shared/retry.js';
import { DEPLOYMENT_TRAILER, checkTrailerLine, findCommitWithLines, findCommitsWithLine, groupMessage, messageBlocks } from './trailers.js';

export interface Author {
  name: string;
  email: string;
}

export interface FileEdit {
  file: string;
  write: ImageWrite;
  image: ImageRef;
}

/** The identity of a whole change: changes with equal keys write the same bytes to the same files. */
export function editsKey(edits: readonly FileEdit[]): string {
  return JSON.stringify(edits.map((e) => [e.file, e.write, e.image]));
}

export interface CommitOutcome {
  commit: string;
  /** True only when this call made a new commit and pushed it; otherwise `commit` is one already on the branch. */
  created: boolean;
  /** True when an earlier attempt for the same deployment already pushed `commit` (then `created` is false). */
  reused: boolean;
}

/** One deployment's change in a group commit. */
export interface GroupMember {
  deploymentId: string;
  edits: FileEdit[];
  /** The message this change would have alone (subject and its Keptn trailers). */
  message: string;
}

/** What became of one member of a group: the commit that carries its change, or why it could not be staged. */
export type MemberOutcome = { ok: CommitOutcome } | { error: unknown };

/** What staging did: the index holds a change to commit with `message`; or the head has it already; or nothing applies. */
export type Staged = { message: string } | 'unchanged' | 'absent';

export interface ProtocolOptions {
  pushAttempts: number;
  timeoutMs: number;
  sleep?: Sleep;
  /** Hears why a cached clone was thrown away and made anew. */
  onDiscard?: (url: string, problem: string) => void;
  /** Hears each rejected push after which the protocol starts over on the new head (the metrics' push retries). */
  onPushRetry?: () => void;
}

export class CommitProtocol {
  /** Branches (warmKey) this process fetched: their remote-tracking head is a fair first guess of the remote's. */
  private readonly warm = new Set<string>();

  constructor(
    private readonly clones: CloneCache,
    private readonly transport: Transport,
    private readonly opts: ProtocolOptions,
  ) {}

  /** Runs the protocol for one change. Call it under the tree's lock. */
  async run(
    repo: RepoRef,
    author: Author,
    deploymentId: string,
    stage: (clone: Clone) => Promise<Staged>,
  ): Promise<CommitOutcome | undefined> {
    checkTrailerLine(deploymentId, 'the deployment id');
    const trailer = `${DEPLOYMENT_TRAILER}: ${deploymentId}`;
    return this.untilPushed(repo, async () => {
      const clone = await this.checkout(repo);
      const earlier = await findCommitWithLines(clone, `refs/remotes/origin/${repo.branch}`, [trailer]);
      if (earlier) return { commit: earlier, created: false, reused: true };
      const staged = await stage(clone);
      if (staged === 'absent') return undefined;
      const head = async () => (await clone.git.raw(['rev-parse', 'HEAD'])).trim();
      // Writing bytes is not making a change: what git would commit decides (line-end rules, equal content).
      if (staged === 'unchanged' || !(await clone.git.raw(['diff', '--cached', '--name-only'])).trim())
        return { commit: await head(), created: false, reused: false };
      const commit = await this.commitAndPush(clone, repo, author, `${staged.message}\n\n${trailer}`);
      return { commit, created: true, reused: false };
    });
  }

  /**
   * Runs the protocol once for several deployments to the same branch (call it under the tree's lock): one checkout,
   * each member's change staged in turn, ONE commit and ONE push for all that changed something. A member whose
   * commit is already on the branch reuses it; a member whose change is there already gets the head; a member that
   * cannot be staged gets its error and the others go on. Members must edit disjoint files, or make the very same
   * change (twins: the commit carries them all; see editsKey). A rejected push starts the whole group over on the new
   * head.
   */
  async runGroup(
    repo: RepoRef,
    author: Author,
    group: readonly GroupMember[] | (() => readonly GroupMember[] | Promise<readonly GroupMember[]>),
  ): Promise<MemberOutcome[]> {
    const trailerOf = (m: GroupMember) => `${DEPLOYMENT_TRAILER}: ${m.deploymentId}`;
    /** Set once an attempt got as far as its push: a push that fails is the server's answer, not the tree's fault. */
    let pushing = false;
    const attempt = (fetch: boolean) => async (): Promise<MemberOutcome[]> => {
      const clone = await this.checkout(repo, fetch);
      // A function gives the members once the clone is fetched, so that changes arriving meanwhile can join.
      const members = typeof group === 'function' ? await group() : group;
      for (const m of members) checkTrailerLine(m.deploymentId, 'the deployment id');
      const results: MemberOutcome[] = new Array(members.length);
      const earlier = await findCommitsWithLine(clone, `refs/remotes/origin/${repo.branch}`, members.map(trailerOf));
      const before = (await clone.git.raw(['rev-parse', 'HEAD'])).trim();
      // Every member's files are written first, then staged and compared in one git command each: a git process
      // per member made a group of 64 take half a minute on a busy machine (issue 11).
      const written = new Map<number, string[]>();
      /** Members asking for the very change of an earlier member (twins), which they share. */
      const twins: Array<{ index: number; of: number }> = [];
      const firstWith = new Map<string, number>();
      for (const [index, m] of members.entries()) {
        const sha = earlier.get(trailerOf(m));
        if (sha) {
          results[index] = { ok: { commit: sha, created: false, reused: true } };
          continue;
        }
        const change = editsKey(m.edits);
        const of = firstWith.get(change);
        if (of !== undefined) {
          twins.push({ index, of });
          continue;
        }
        firstWith.set(change, index);
        try {
          written.set(index, await writeEdits(clone, m.edits));
        } catch (err: unknown) {
          results[index] = { error: err };
        }
      }
      const files = [...new Set([...written.values()].flat())];
      // What git would commit decides (line-end rules, equal content), per member: members' files are disjoint.
      let staged = new Set<string>();
      if (files.length) {
        await clone.git.raw(['add', '--', ...files]);
        staged = new Set((await clone.git.raw(['diff', '--cached', '--name-only', '--', ...files])).split('\n').filter(Boolean));
      }
      const carried: Array<{ index: number; files: string[] }> = [];
      for (const [index, mine] of written) {
        const changed = mine.filter((f) => staged.has(f));
        if (changed.length) carried.push({ index, files: changed });
        else results[index] = { ok: { commit: before, created: false, reused: false } };
      }
      for (const { index, of } of twins) {
        const first = carried.find((c) => c.index === of);
        if (first) carried.push({ index, files: first.files });
        else results[index] = results[of]!;
      }
      carried.sort((a, b) => a.index - b.index);
      // Without a fetch, only a push tells that the tree was the branch's head: a member whose change the tree holds
      // already, or that could not be staged in it, is judged again on the fetched head.
      if (!fetch && carried.length + reusedCount(results) < members.length) throw new StaleTree();
      if (!carried.length) return results;
      const only = carried.length === 1 ? members[carried[0]!.index]! : undefined;
      const message = only
        ? `${only.message}\n\n${trailerOf(only)}`
        : groupMessage(
            carried.map(({ index, files }) => ({
              deploymentId: members[index]!.deploymentId,
              message: members[index]!.message,
              files,
            })),
          );
      pushing = true;
      const commit = await this.commitAndPush(clone, repo, author, message);
      for (const { index } of carried) results[index] = { ok: { commit, created: true, reused: false } };
      return results;
    };
    // First on the tree as this process's last fetch or push of the branch left it: the push only goes through if
    // that is still the remote's head (a fast-forward of it), so no fetch is needed when nobody else wrote since,
    // the usual case (issue 22, item 4: the fetch was a fifth of a deployment's time to its push).
    const warm = this.warm.has(warmKey(repo));
    if (warm) {
      // Anything that went wrong before the push (the clone made anew meanwhile, a tree that cannot hold a change) is
      // tried again the usual way; a push the server refuses or cannot take is its answer either way.
      const outcome = await attempt(false)().catch((err: unknown) => {
        if (err instanceof PushRejected || !pushing) return undefined;
        throw err;
      });
      if (outcome) return outcome;
    }
    return this.untilPushed(repo, attempt(true));
  }

  /**
   * The clone of the repository with the branch checked out exactly at the remote head, nothing else in the tree.
   * A clone that fails its checks, or whose local steps fail, is made anew once; a failing server is not a reason.
   */
  /**
   * Runs `attempt` (checkout, stage, commitAndPush) until its push goes through. Replicas of the service contend for
   * a branch only through rejected pushes: each rejection starts over on the moved branch after a jittered backoff.
   */
  private async untilPushed<T>(repo: RepoRef, attempt: () => Promise<T>): Promise<T> {
    const attempts = Math.max(1, this.opts.pushAttempts);
    let rejections = 0;
    const counted = async () => {
      try {
        return await attempt();
      } catch (err: unknown) {
        if (err instanceof PushRejected && ++rejections < attempts) this.opts.onPushRetry?.();
        throw err;
      }
    };
    try {
      return await retry(
        { attempts, baseDelayMs: 250, maxDelayMs: 4_000, retryable: (err) => err instanceof PushRejected },
        counted,
        this.opts.sleep ?? realSleep,
      );
    } catch (err: unknown) {
      if (err instanceof PushRejected) {
        throw new GitError(
          'GIT_PUSH_FAILED',
          `push to ${repo.branch} was rejected ${rejections} times (the branch kept moving): ${err.message}`,
          { retryable: true },
        );
      }
      throw err;
    }
  }

  /** Commits what is staged and pushes it; a push the remote rejects (the branch moved) throws PushRejected. */
  private async commitAndPush(clone: Clone, repo: RepoRef, author: Author, message: string): Promise<string> {
    await gitIn(clone.dir, localGitEnv(author), this.opts.timeoutMs).raw([
      'commit',
      '-q',
      '--no-verify',
      '--no-gpg-sign',
      '--cleanup=verbatim',
      '-m',
      message,
    ]);
    const commit = (await clone.git.raw(['rev-parse', 'HEAD'])).trim();
    const rejection = await this.transport.push(clone, repo);
    if (rejection) throw new PushRejected(rejection);
    return commit;
  }

  /**
   * The clone with the branch checked out at the remote-tracking head, nothing else in the tree: fetched first
   * (`fetch`), or as the last fetch or push left it.
   */
  private async checkout(repo: RepoRef, fetch = true): Promise<Clone> {
    const onDiscard = (problem: string) => this.opts.onDiscard?.(repo.url, problem);
    const clone = await this.clones.open(repo.url, onDiscard);
    if (!fetch) {
      await this.reset(clone, repo.branch);
      return clone;
    }
    let fetched = false;
    try {
      await this.transport.fetch(clone, repo);
      fetched = true;
      await this.reset(clone, repo.branch);
      this.warm.add(warmKey(repo));
      return clone;
    } catch (err: unknown) {
      // A failing server or refused credentials are not the clone's fault; anything local after a fetch is.
      if (err instanceof CredentialsError || (!fetched && !isLocalDamage(err))) throw err;
      onDiscard(`${fetched ? 'the checkout' : 'the fetch'} failed: ${gitMessage(err)}`);
      await this.clones.discard(repo.url);
      const fresh = await this.clones.open(repo.url, onDiscard);
      await this.transport.fetch(fresh, repo);
      await this.reset(fresh, repo.branch);
      this.warm.add(warmKey(repo));
      return fresh;
    }
  }

  private async reset(clone: Clone, branch: string): Promise<void> {
    await clone.git.raw(['checkout', '-q', '--force', '--no-track', '-B', branch, `refs/remotes/origin/${branch}`]);
    await clone.git.raw(['clean', '-q', '-ffdx']);
  }
}

class PushRejected extends Error {}

/** A tree checked out without a fetch cannot tell some member's outcome: judged again after a fetch. */
class StaleTree extends Error {}

function reusedCount(results: MemberOutcome[]): number {
  return results.filter((r) => 'ok' in r && r.ok.reused).length;
}

/** A branch of a clone (by the URL's clone) that this process fetched or pushed. */
function warmKey(repo: RepoRef): string {
  return `${cloneKey(repo.url)}\0${repo.branch}`;
}

/** Writes every image into the checked-out tree and stages what changed. */
export async function stageEdits(clone: Clone, edits: FileEdit[], message: string): Promise<Staged> {
  const changed = await writeEdits(clone, edits);
  if (!changed.length) return 'unchanged';
  await clone.git.raw(['add', '--', ...changed]);
  return { message };
}

/** Writes each edit into the tree (nothing staged); the files whose bytes changed. */
async function writeEdits(clone: Clone, edits: FileEdit[]): Promise<string[]> {
  const changed: string[] = [];
  for (const edit of edits) {
    const text = await readInTree(clone.dir, edit.file);
    let result;
    try {
      result = applyImageWrite(text, edit.write, edit.image);
    } catch (err: unknown) {
      if (err instanceof EditError) throw new GitError('MANIFEST_EDIT_FAILED', `${edit.file}: ${err.message}`, { cause: err });
      throw err;
    }
    if (!result.changed) continue;
    await writeInTree(clone.dir, edit.file, result.content);
    if (!changed.includes(edit.file)) changed.push(edit.file);
  }
  return changed;
}

/** Stages the revert of the newest commit on the branch carrying every line of `match`; `absent` when there is none. */
export async function stageRevert(
  clone: Clone,
  branch: string,
  match: string[],
  message: (reverted: string) => string,
  author: Author,
  timeoutMs: number,
): Promise<Staged> {
  const target = await findCommitWithLines(clone, `refs/remotes/origin/${branch}`, match);
  if (!target) return 'absent';
  // A group commit carries other deployments' changes too: only this deployment's files are undone.
  const blocks = messageBlocks(await clone.git.raw(['log', '-1', '--format=%B', target]));
  let keep: string[] = [];
  if (blocks.length > 1) {
    const own = blocks.find((b) => match.every((line) => b.lines.includes(line)));
    if (!own || !own.files.length) {
      throw new GitError(
        'GIT_REVERT_CONFLICT',
        `commit ${target} carries several deployments and none of them alone matches this roll-back; roll back by hand`,
      );
    }
    const touched = (await clone.git.raw(['diff-tree', '--no-commit-id', '--name-only', '-r', target])).split('\n').filter(Boolean);
    keep = touched.filter((f) => !own.files.includes(f));
  }
  try {
    await gitIn(clone.dir, localGitEnv(author), timeoutMs).raw(['revert', '--no-commit', target]);
    if (keep.length) await clone.git.raw(['checkout', '-q', 'HEAD', '--', ...keep]);
  } catch (err: unknown) {
    await clone.git.raw(['revert', '--abort']).catch(() => undefined);
    throw new GitError(
      'GIT_REVERT_CONFLICT',
      `commit ${target} cannot be reverted cleanly (later commits changed the same lines); roll back by hand: ${gitMessage(err)}`,
      { cause: err },
    );
  }
  return { message: message(target) };
}
