/**
 * The service's side of the GitOps repository, as one small facade over its rooms:
 * clones.ts (the clone cache and its checks), lock.ts (one queue per working tree), transport.ts (fetch and push,
 * with the one retry policy), commit.ts (the commit protocol and trailer lookups), files.ts (reading and writing
 * inside the tree, never through a link), ancestry.ts (relation, onBranch), credentials.ts (credentials, the Git
 * environment and redaction), command.ts (how a git command runs). See docs/adr/0003-writing-to-git.md.
 */
import { Arrivals } from './arrivals.js';
import { CloneCache, type Clone } from './clones.js';
import { TreeLock } from './lock.js';
import { Transport, isLocalDamage, scratchDirOf, type RepoRef } from './transport.js';
import { CommitProtocol, editsKey, stageRevert, type Author, type CommitOutcome, type FileEdit } from './commit.js';
import type { HostPolicy, Lookup } from './hosts.js';
import { checkTrailerLine, findCommitWithLines } from './trailers.js';
import { changedAgain, isAncestor, relationOf, resolveCommit } from './ancestry.js';
import type { Relation } from './ancestry.js';
import type { Sleep } from '../../shared/retry.js';

export { GitError } from './command.js';
export { type CommitOutcome, type FileEdit } from './commit.js';
export { DEPLOYMENT_TRAILER } from './trailers.js';
export { safeUrl, type RepoRef } from './transport.js';

export interface CommitRequest {
  repo: RepoRef;
  edits: FileEdit[];
  message: string;
  author: Author;
  /** A trailer value unique to this deployment: a commit carrying it is never made twice. */
  deploymentId: string;
}

export interface RevertRequest {
  repo: RepoRef;
  /** Trailer lines the commit to revert carries, all of them, matched as whole lines (e.g. `Keptn-Context: <id>`). */
  match: string[];
  message: (reverted: string) => string;
  author: Author;
  deploymentId: string;
}

export interface CommitFacts {
  /** The full hash. */
  commit: string;
  /** `Name <email>`. */
  author: string;
  subject: string;
  /** The whole message, trailers included. */
  body: string;
}

export interface WorkspaceOptions {
  /** The directory this process owns for its clones and short-lived key files. */
  root: string;
  /** Rounds of the commit protocol when pushes are rejected because the branch moved. */
  pushAttempts?: number;
  /** Kill a git command that has been silent this long. */
  gitTimeoutMs?: number;
  /** Tries of a fetch or push against a failing server, under the tree's lock (default 2; outages: tasks/outage.ts). */
  transportAttempts?: number;
  /** The most one try of a fetch or push may take (see transport.ts). */
  attemptTimeoutMs?: number;
  /** Which Git hosts may be reached (hosts.ts). The service always passes one; unset, any host is reached. */
  hosts?: HostPolicy;
  lookup?: Lookup;
  /** Past this many bytes of clones, the least recently used are removed (unset: never). */
  cacheLimitBytes?: number;
  /** Hears why a cached clone was thrown away and made anew (for the log). */
  onDiscard?: (url: string, problem: string) => void;
  /** Hears each rejected push after which the commit is made again on the moved branch (for the metrics). */
  onPushRetry?: () => void;
  /** Waits between retries; tests pass one that does not sleep. */
  sleep?: Sleep;
}

/** How many answers of `relation` are kept (the oldest go first). */
const MAX_RELATIONS = 10_000;

/** How many deployments one commit carries at most: the message, and what one rejected push makes redo, stay bounded. */
export const MAX_GROUP = 200;

/** How long a group commit waits for the changes on their way to it (arrivals.ts) before it closes without them. */
export const GATHER_MS = 3_000;

/** The next commit's changes, and those for a later one (a clash of files, or more than MAX_GROUP). */
function splitRound(queue: Queued[]): { round: Queued[]; later: Queued[] } {
  const round: Queued[] = [];
  const later: Queued[] = [];
  const ids = new Set<string>();
  /** Each file of the round, with the whole change of the member that took it. */
  const files = new Map<string, string>();
  for (const q of queue) {
    const change = editsKey(q.req.edits);
    // A file may be in a round twice only as part of the very same change (twins: one commit carries both).
    const clash = ids.has(q.req.deploymentId) || q.req.edits.some((e) => (files.get(e.file) ?? change) !== change);
    if (round.length >= MAX_GROUP || clash) later.push(q);
    else {
      round.push(q);
      ids.add(q.req.deploymentId);
      for (const e of q.req.edits) files.set(e.file, change);
    }
  }
  return { round, later };
}

interface Queued {
  req: CommitRequest;
  resolve(outcome: CommitOutcome): void;
  reject(err: unknown): void;
}

export class GitWorkspace {
  /** Changes waiting for the next commit, per working tree, branch and author (group commit). */
  private readonly waiting = new Map<string, Queued[]>();
  /** Changes on their way to a group commit, which it waits for (bounded by GATHER_MS). */
  private readonly arrivals = new Arrivals();
  private readonly clones: CloneCache;
  private readonly lock = new TreeLock();
  private readonly transport: Transport;
  private readonly protocol: CommitProtocol;
  private readonly timeoutMs: number;
  private readonly onDiscard: WorkspaceOptions['onDiscard'];
  /** Answers of `relation`, asked or being asked, oldest first. */
  private readonly relations = new Map<string, Promise<Relation>>();
  private readonly cacheLimitBytes: number | undefined;
  private trimming: Promise<void> | undefined;
  private trimAgain = false;
  /** Uses that may grow a clone, until the cache has been trimmed after them. */
  private readonly growing = new Set<Promise<void>>();

  constructor(opts: WorkspaceOptions) {
    this.onDiscard = opts.onDiscard;
    this.cacheLimitBytes = opts.cacheLimitBytes;
    this.timeoutMs = opts.gitTimeoutMs ?? 60_000;
    this.clones = new CloneCache(opts.root, this.timeoutMs);
    this.transport = new Transport({
      scratchDir: scratchDirOf(opts.root),
      timeoutMs: this.timeoutMs,
      attempts: opts.transportAttempts ?? 2,
      ...(opts.attemptTimeoutMs ? { attemptTimeoutMs: opts.attemptTimeoutMs } : {}),
      ...(opts.hosts ? { hosts: opts.hosts } : {}),
      ...(opts.lookup ? { lookup: opts.lookup } : {}),
      ...(opts.sleep ? { sleep: opts.sleep } : {}),
    });
    this.protocol = new CommitProtocol(this.clones, this.transport, {
      pushAttempts: opts.pushAttempts ?? 5,
      timeoutMs: this.timeoutMs,
      ...(opts.sleep ? { sleep: opts.sleep } : {}),
      ...(opts.onDiscard ? { onDiscard: opts.onDiscard } : {}),
      ...(opts.onPushRetry ? { onPushRetry: opts.onPushRetry } : {}),
    });
  }

  /**
   * Writes the image, commits and pushes; starts over on a moved remote by re-applying the edits on the new head.
   *
   * Group commit: changes for the same branch that arrive while a commit is under way (or waiting for the tree's
   * lock) wait together and go out in the next one commit and one push, each with its own `Keptn-Deployment-Id`
   * trailer; each caller gets the commit that carries its change. Different changes to the same file, or a second
   * change of the same deployment, go in a later commit, so a commit never carries a change another one in it
   * overwrote; the very same change asked by several deployments (a redelivered trigger, many sequences for one
   * version) goes in one commit that names them all.
   */
  async commitImage(req: CommitRequest): Promise<CommitOutcome> {
    checkTrailerLine(req.deploymentId, 'the deployment id');
    const key = this.groupKey(req.repo, req.author);
    return new Promise<CommitOutcome>((resolve, reject) => {
      const queued = this.waiting.get(key);
      if (queued) queued.push({ req, resolve, reject });
      else {
        const group: Queued[] = [{ req, resolve, reject }];
        this.waiting.set(key, group);
        void this.locked(req.repo, () => this.commitGroups(key, group), true).catch((err: unknown) => {
          for (const q of group) q.reject(err);
        });
      }
      // Queued first: a group woken by this arrival finds the change in its queue.
      this.arrivals.arrived(key, req.deploymentId);
    });
  }

  /**
   * A deployment that will ask `commitImage` for `repo` as `author` once its checks are done is on its way: the group
   * commit for that branch waits for it (at most GATHER_MS). The returned function withdraws it (it will not commit
   * after all); calling `commitImage` does too.
   */
  expectCommit(repo: Pick<RepoRef, 'url' | 'branch'>, author: Author, deploymentId: string): () => void {
    return this.arrivals.expect(this.groupKey(repo, author), deploymentId);
  }

  /** The changes that may share a commit: the same working tree, branch and author. */
  private groupKey(repo: Pick<RepoRef, 'url' | 'branch'>, author: Author): string {
    return [this.clones.dirFor(repo.url), repo.branch, author.name, author.email].join('\0');
  }

  /**
   * Commits the queued changes in as few commits as their files allow (under the tree's lock). The group takes new
   * arrivals until its clone is fetched and nothing more is on its way to it (arrivals.ts, at most GATHER_MS): the
   * changes of a burst go in one commit, not in one for the first that reached Git and others for the rest (issue 22,
   * item 2).
   */
  private async commitGroups(key: string, group: Queued[]): Promise<void> {
    const close = () => {
      if (this.waiting.get(key) === group) this.waiting.delete(key);
    };
    // The group takes what is on its way to it (arrivals.ts), up to this deadline.
    const gatherUntil = Date.now() + GATHER_MS;
    let rest = group;
    while (rest.length) {
      let round: Queued[] | undefined;
      let later: Queued[] = [];
      /** Called after the fetch, on every attempt (a rejected push starts over): the same round each time once closed. */
      const plan = async () => {
        await this.arrivals.settled(key, gatherUntil);
        close();
        ({ round, later } = splitRound(rest));
        return round.map((q) => ({ deploymentId: q.req.deploymentId, edits: q.req.edits, message: q.req.message }));
      };
      const { repo, author } = rest[0]!.req;
      try {
        const outcomes = await this.protocol.runGroup(repo, author, plan);
        round!.forEach((q, i) => {
          const o = outcomes[i]!;
          if ('ok' in o) q.resolve(o.ok);
          else q.reject(o.error);
        });
      } catch (err: unknown) {
        close();
        // Failed before the round was planned (the fetch): every change waiting fails with it, as a lone one would.
        for (const q of round ?? rest) q.reject(err);
        if (!round) return;
      }
      rest = later;
    }
  }

  /**
   * Reverts the newest commit on the branch carrying all `match` lines, commits with the deployment trailer and pushes,
   * starting over on a moved remote. Undefined when no such commit exists (nothing to undo).
   */
  async revertDeployment(req: RevertRequest): Promise<CommitOutcome | undefined> {
    for (const line of req.match) checkTrailerLine(line, 'a line to match');
    return this.locked(
      req.repo,
      () =>
        this.protocol.run(req.repo, req.author, req.deploymentId, async (clone) => {
          // The revert reads the reverted commit's files and its parent's, which a partial clone may lack.
          const target = await findCommitWithLines(clone, `refs/remotes/origin/${req.repo.branch}`, req.match);
          if (target) {
            const parents = (await clone.git.raw(['log', '-1', '--format=%P', target, '--'])).trim().split(' ').filter(Boolean);
            await this.transport.fetchBlobs(clone, req.repo, [target, ...parents]);
          }
          return stageRevert(clone, req.repo.branch, req.match, req.message, req.author, this.timeoutMs);
        }),
      true,
    );
  }

  /**
   * How `sha` relates to `ours`: the same, a descendant (contains ours; superseded when a later commit changed one of
   * the `files` we edited), or not. Fetches when `sha` is unknown.
   */
  relation(repo: RepoRef, ours: string, sha: string, files: readonly string[] = []): Promise<Relation> {
    if (sha && ours.startsWith(sha)) return Promise.resolve('same');
    // How two commits relate never changes, and every waiter on one group commit asks the same questions: a burst of
    // 200 asked them one by one under the tree's lock, each with its git commands, for tens of seconds (issue 11).
    const key = [this.clones.dirFor(repo.url), ours, sha, ...files].join('\0');
    const known = this.relations.get(key);
    if (known) return known;
    const answer = this.lookUpRelation(repo, ours, sha, files);
    this.relations.set(key, answer);
    if (this.relations.size > MAX_RELATIONS) this.relations.delete(this.relations.keys().next().value!);
    // Not a fact: a revision Git does not have yet, or a failed lookup, is asked again next time.
    answer.then(
      (relation) => relation === 'unknown' && this.relations.delete(key),
      () => this.relations.delete(key),
    );
    return answer;
  }

  private lookUpRelation(repo: RepoRef, ours: string, sha: string, files: readonly string[]): Promise<Relation> {
    return this.locked(repo, async () => {
      const clone = await this.clones.open(repo.url);
      let full = await resolveCommit(clone, sha);
      if (full) return relationOf(clone, ours, full, files);
      const fetched = await this.fetched(repo).catch(() => undefined);
      full = fetched && (await resolveCommit(fetched, sha));
      return fetched && full ? relationOf(fetched, ours, full, files) : 'unknown';
    });
  }

  /**
   * Who made a commit and what it says (fetched first when unknown), for announcing a change made in Git; undefined
   * when the repository does not have it. `sha` may be abbreviated (a Helm chart revision carries 12 digits).
   */
  commitFacts(repo: RepoRef, sha: string): Promise<CommitFacts | undefined> {
    return this.locked(repo, async () => {
      let clone = await this.clones.open(repo.url);
      let full = await resolveCommit(clone, sha);
      if (!full) {
        clone = await this.fetched(repo);
        full = await resolveCommit(clone, sha);
      }
      if (!full) return undefined;
      const out = await clone.git.raw(['show', '-s', '--format=%H%x00%an <%ae>%x00%s%x00%B', full, '--']);
      const [commit = full, author = '', subject = '', body = ''] = out.split('\0');
      return { commit: commit.trim(), author, subject, body };
    });
  }

  /**
   * Whether what `commit` changed still stands on the remote branch (fetched first): undefined when it does, otherwise
   * the files that read differently now and the latest commit that changed them (a revert, a later change).
   */
  changedAgain(repo: RepoRef, commit: string): Promise<{ by: string; files: string[] } | undefined> {
    return this.locked(repo, async () => {
      const clone = await this.fetched(repo);
      return changedAgain(clone, commit, `refs/remotes/origin/${repo.branch}`);
    });
  }

  /** Whether `commit` is on the remote branch now (fetched first): false once history was rewritten without it. */
  onBranch(repo: RepoRef, commit: string): Promise<boolean> {
    return this.locked(
      repo,
      async () => {
        const clone = await this.fetched(repo);
        return isAncestor(clone, commit, `refs/remotes/origin/${repo.branch}`);
      },
      true,
    );
  }

  /** The clone with the branch fetched; a clone too damaged to fetch into is made anew once. Under the lock. */
  private async fetched(repo: RepoRef): Promise<Clone> {
    const clone = await this.clones.open(repo.url, (problem) => this.onDiscard?.(repo.url, problem));
    try {
      await this.transport.fetch(clone, repo);
      return clone;
    } catch (err: unknown) {
      if (!isLocalDamage(err)) throw err;
      this.onDiscard?.(repo.url, 'the fetch failed on a damaged clone');
      await this.clones.discard(repo.url);
      const fresh = await this.clones.open(repo.url);
      await this.transport.fetch(fresh, repo);
      return fresh;
    }
  }

  /**
   * Every use of a clone, whatever the branch, waits for the one before it on the same working tree. A use that may
   * grow the clone (`grows`: it fetches or commits) measures it afterwards, and the cache is trimmed to its limit.
   */
  private locked<T>(repo: RepoRef, work: () => Promise<T>, grows = false): Promise<T> {
    const dir = this.clones.dirFor(repo.url);
    const run = this.lock.run(dir, async () => {
      try {
        return await work();
      } finally {
        if (grows) await this.clones.measure(dir).catch(() => undefined);
      }
    });
    if (grows) {
      const after = run.then(this.trim, this.trim);
      this.growing.add(after);
      void after.finally(() => this.growing.delete(after));
    }
    return run;
  }

  /** Removes least recently used clones, each under its own lock, until the cache is within its limit. */
  private readonly trim = (): void => {
    if (this.cacheLimitBytes === undefined) return;
    if (this.trimming) {
      this.trimAgain = true;
      return;
    }
    const limit = this.cacheLimitBytes;
    this.trimming = (async () => {
      do {
        this.trimAgain = false;
        const evict = await this.clones.overLimit(limit, (dir) => this.lock.busy(dir));
        for (const dir of evict) await this.lock.run(dir, () => this.clones.evict(dir));
      } while (this.trimAgain);
    })()
      .catch(() => undefined)
      .finally(() => (this.trimming = undefined));
  };

  /** Until the cache is trimmed after the last use (tests, and a clean stop). */
  async settled(): Promise<void> {
    while (this.growing.size || this.trimming) await Promise.all([...this.growing, this.trimming]);
  }
}
