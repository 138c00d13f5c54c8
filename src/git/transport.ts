/**
 * Fetch and push: the only git commands that reach the server, and so the only ones that get credentials. A server
 * that is briefly away gets the one retry policy of src/retry.ts; wrong credentials, an unknown host key or a missing
 * branch are terminal at once.
 */
import { join } from 'node:path';
import { gitIn, gitMessage, GitError } from './command.js';
import { gitAuthEnv, redact, removeStaleKeyFiles, type GitCredentials } from './credentials.js';
import type { Clone } from './clones.js';
import { retry, realSleep, type RetryPolicy, type Sleep } from '../retry.js';

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
  /** Tries of a fetch or push against a failing server. */
  attempts: number;
  sleep?: Sleep;
}

/** Failures no retry can mend: the server understood us and said no. */
const PERMANENT = new RegExp(
  [
    'Authentication failed',
    'could not read Username',
    'Permission denied',
    'Host key verification failed',
    'REMOTE HOST IDENTIFICATION HAS CHANGED',
    '\\b40[134]\\b',
    'not found',
    "couldn't find remote ref",
    'does not appear to be a git repository',
  ].join('|'),
  'i',
);

export function isPermanentTransportFailure(message: string): boolean {
  return PERMANENT.test(message);
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
    this.policy = { attempts: Math.max(1, opts.attempts), baseDelayMs: 1_000, maxDelayMs: 8_000 };
    this.ready = removeStaleKeyFiles(opts.scratchDir).catch(() => undefined);
  }

  async fetch(clone: Clone, repo: RepoRef): Promise<void> {
    await this.attempt(
      clone,
      repo,
      ['fetch', '--prune', '--no-tags', 'origin', `+refs/heads/${repo.branch}:refs/remotes/origin/${repo.branch}`],
      (message, err) =>
        new GitError('GIT_FETCH_FAILED', `cannot fetch branch ${repo.branch} of ${safeUrl(repo.url)}: ${message}`, {
          cause: err,
          retryable: !isPermanentTransportFailure(message) && !isLocalDamage(err),
        }),
    );
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
    await retry(
      this.policy,
      async () => {
        const auth = await gitAuthEnv(
          repo.credentials,
          this.opts.scratchDir,
          repo.insecureAcceptNewHostKey ? { acceptNewHostKeyFile: `${clone.dir}.known_hosts` } : {},
        );
        try {
          await gitIn(clone.dir, auth.env, this.opts.timeoutMs).raw(args);
        } catch (err: unknown) {
          throw failure(gitMessage(err, repo.credentials), err);
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
