/**
 * Fetch and push: the only git commands that reach the server, and so the only ones that get credentials. Whether a
 * failure may pass is src/shared/failures.ts's to say: a transient one is tried once more here, quickly, under the
 * tree's lock; a longer outage is waited out by the task, outside the lock (tasks/outage.ts). Wrong credentials, an
 * unknown host key, a missing branch or a refused push are terminal at once.
 */
import { join } from 'node:path';
import { gitIn, gitMessage, GitError } from './command.js';
import { gitAuthEnv, redact, removeStaleKeyFiles, type GitCredentials } from './credentials.js';
import type { Clone } from './clones.js';
import { checkGitHost, type HostPolicy, type Lookup } from './hosts.js';
import { retry, realSleep, type RetryPolicy, type Sleep } from '../../shared/retry.js';
import { isTransient } from '../../shared/failures.js';

export interface RepoRef {
  url: string;
  branch: string;
  credentials?: GitCredentials;
  /** The settings' `git.insecureAcceptNewHostKey`: SSH without `known_hosts` trusts the first host key seen. */
  insecureAcceptNewHostKey?: boolean;
}

export interface TransportOptions {
  /** Where key files live for the length of one command; emptied at start (a crash leaves them behind). */
  scratchDir: string;
  timeoutMs: number;
  /** Tries of a fetch or push against a failing server, under the tree's lock (a longer outage: tasks/outage.ts). */
  attempts: number;
  /**
   * The most one try may take, however slowly the server answers (issue 19, item 4): with the low-speed limits of
   * credentials.ts a silent server ends a try sooner; this bounds one that trickles, or a connection never made.
   */
  attemptTimeoutMs?: number;
  /** Which hosts may be reached (hosts.ts); unset: any (only tests that run their own servers leave it out). */
  hosts?: HostPolicy;
  lookup?: Lookup;
  sleep?: Sleep;
}

/** Object ids per fetch of missing blobs: the command line stays far below the system's limit. */
const BLOBS_PER_FETCH = 2_000;

/** One try's bound when none is given. */
export const DEFAULT_ATTEMPT_TIMEOUT_MS = 120_000;

/** Failures no retry can mend (the server understood us and said no), or that this service cannot tell will pass. */
export function isPermanentTransportFailure(message: string): boolean {
  return !isTransient({ message });
}

/** Failures of our own clone, not of the server: a fresh clone mends them, a retry does not. */
const LOCAL_DAMAGE = new RegExp(
  [
    '\\bis corrupt',
    '\\bbad object\\b',
    'unable to read [0-9a-f]{7,}',
    'not a git repository',
    'bad config',
    'index file (smaller|corrupt)',
    'packfile .*(cannot be accessed|does not match)',
    '\\bbad (tree|commit|blob) object',
  ].join('|'),
  'i',
);

export function isLocalDamage(err: unknown): boolean {
  for (let e: unknown = err, depth = 0; e instanceof Error && depth < 3; e = e.cause, depth++)
    if (LOCAL_DAMAGE.test(e.message)) return true;
  return false;
}

export class Transport {
  private readonly policy: RetryPolicy;
  private readonly ready: Promise<void>;

  constructor(private readonly opts: TransportOptions) {
    // Short pauses: they are spent holding the tree's lock, which other deployments to this repository wait for.
    this.policy = { attempts: Math.max(1, opts.attempts), baseDelayMs: 500, maxDelayMs: 2_000 };
    this.ready = removeStaleKeyFiles(opts.scratchDir).catch(() => undefined);
  }

  /**
   * Fetches the branch as a partial clone: every commit and tree (the ancestry and trailer questions read only
   * those), and the blobs of the branch head only (what a checkout needs). A server that does not filter sends
   * everything, which works the same. See docs/adr/0015-bounded-git.md.
   */
  async fetch(clone: Clone, repo: RepoRef): Promise<void> {
    await this.attempt(
      clone,
      repo,
      ['fetch', '--prune', '--no-tags', '--filter=blob:none', 'origin', `+refs/heads/${repo.branch}:refs/remotes/origin/${repo.branch}`],
      this.fetchFailure(repo),
    );
    await this.fetchBlobs(clone, repo, [`refs/remotes/origin/${repo.branch}`]);
  }

  /**
   * The blobs of these commits' trees that the partial clone lacks, fetched here, with the credentials and limits of
   * a fetch: otherwise git would fetch them by itself in a local command (a checkout, a revert), which runs without
   * credentials, host check or time bound (git/promisor-remote.c, fetch_objects).
   */
  async fetchBlobs(clone: Clone, repo: RepoRef, commits: string[]): Promise<void> {
    // `--missing=print` lists what is absent instead of fetching it (git/list-objects.c, show_object with
    // MA_PRINT); `--no-walk`: these commits' trees only, not their history's.
    const out = await clone.git.raw(['rev-list', '--objects', '--no-walk', '--missing=print', ...commits, '--']);
    const missing = out
      .split('\n')
      .filter((l) => /^\?[0-9a-f]{40,64}$/.test(l.trim()))
      .map((l) => l.trim().slice(1));
    for (let i = 0; i < missing.length; i += BLOBS_PER_FETCH)
      await this.attempt(
        clone,
        repo,
        ['fetch', '--no-tags', '--no-write-fetch-head', '--filter=blob:none', 'origin', ...missing.slice(i, i + BLOBS_PER_FETCH)],
        this.fetchFailure(repo),
      );
  }

  private fetchFailure(repo: RepoRef): (message: string, err: unknown) => Error {
    return (message, err) =>
      new GitError('GIT_FETCH_FAILED', `cannot fetch branch ${repo.branch} of ${safeUrl(repo.url)}: ${message}`, {
        cause: err,
        retryable: !isPermanentTransportFailure(message) && !isLocalDamage(err),
      });
  }

  /** Pushes HEAD to the branch; returns the rejection text when the remote moved, throws on other failures. */
  async push(clone: Clone, repo: RepoRef): Promise<string | undefined> {
    try {
      await this.attempt(clone, repo, ['push', '--porcelain', 'origin', `HEAD:refs/heads/${repo.branch}`], (message, err) => {
        // On the whole of git's output: the last lines shown to users are often hints, not the verdict.
        if (
          /\[rejected\]|non-fast-forward|fetch first|failed to update ref|cannot lock ref/i.test(
            err instanceof Error ? err.message : String(err),
          )
        )
          return new RemoteMoved(message);
        return new GitError('GIT_PUSH_FAILED', `cannot push to ${repo.branch} of ${safeUrl(repo.url)}: ${message}`, {
          cause: err,
          retryable: !isPermanentTransportFailure(message),
        });
      });
      return undefined;
    } catch (err: unknown) {
      if (err instanceof RemoteMoved) return err.message;
      throw err;
    }
  }

  private async attempt(clone: Clone, repo: RepoRef, args: string[], failure: (message: string, err: unknown) => Error): Promise<void> {
    await this.ready;
    const bound = this.opts.attemptTimeoutMs ?? DEFAULT_ATTEMPT_TIMEOUT_MS;
    await retry(
      this.policy,
      async () => {
        // Checked on every try: what a name resolves to may change between them, and curl is pinned to what passed.
        const resolve = this.opts.hosts ? await checkGitHost(repo.url, this.opts.hosts, this.opts.lookup) : [];
        const auth = await gitAuthEnv(repo.credentials, this.opts.scratchDir, {
          resolve,
          ...(repo.insecureAcceptNewHostKey ? { acceptNewHostKeyFile: `${clone.dir}.known_hosts` } : {}),
        });
        const overall = AbortSignal.timeout(bound);
        try {
          await gitIn(clone.dir, auth.env, this.opts.timeoutMs, overall).raw(args);
        } catch (err: unknown) {
          const message = overall.aborted ? `no answer within ${Math.round(bound / 1000)} s` : gitMessage(err, repo.credentials);
          throw failure(message, err);
        } finally {
          await auth.dispose().catch(() => undefined);
        }
      },
      this.opts.sleep ?? realSleep,
    );
  }
}

/** A push refused because the branch moved: not retried here, the commit protocol starts over on the new head. */
class RemoteMoved extends Error {}

export function safeUrl(url: string): string {
  return redact(url);
}

export function scratchDirOf(root: string): string {
  return join(root, '.auth');
}
