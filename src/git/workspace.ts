/**
 * The service's side of the GitOps repository: one cached clone per repository, every write to one repo+branch
 * serialised, our change re-applied on top when the remote moved, and ancestry answers for the waiters.
 * See docs/adr/0003-writing-to-git.md.
 */
import { createHash } from 'node:crypto';
import { mkdir, readFile, stat, writeFile } from 'node:fs/promises';
import { dirname, join, resolve, sep } from 'node:path';
import { simpleGit, type SimpleGit } from 'simple-git';
import { applyImageWrite, EditError, type ImageWrite } from './editors.js';
import { gitAuthEnv, redact, type GitCredentials } from './credentials.js';
import type { ImageRef } from './image.js';
import type { Relation } from '../readiness.js';
import { ServiceError } from '../errors.js';

export interface RepoRef {
  url: string;
  branch: string;
  credentials?: GitCredentials;
}

export interface FileEdit {
  file: string;
  write: ImageWrite;
  image: ImageRef;
}

export interface CommitRequest {
  repo: RepoRef;
  edits: FileEdit[];
  message: string;
  author: { name: string; email: string };
  /** A trailer value unique to this deployment: a commit carrying it is never made twice. */
  deploymentId: string;
}

export interface CommitOutcome {
  commit: string;
  /** False when every value was already in place: then `commit` is the branch head to wait for. */
  created: boolean;
  /** True when an earlier attempt for the same deployment already pushed this commit. */
  reused: boolean;
}


export interface RevertRequest {
  repo: RepoRef;
  /** Trailer lines the commit to revert carries, all of them (e.g. `Keptn-Context: <id>`). */
  match: string[];
  message: (reverted: string) => string;
  author: { name: string; email: string };
  deploymentId: string;
}

/** A Git step that failed; `retryable` when the server may answer better later. */
export class GitError extends ServiceError {}

export const DEPLOYMENT_TRAILER = 'Keptn-Deployment-Id';

export interface WorkspaceOptions {
  root: string;
  pushAttempts?: number;
  /** Kill a git command that has been silent this long. */
  gitTimeoutMs?: number;
  /** Tries of a fetch or push against a failing server. */
  transportAttempts?: number;
}

export class GitWorkspace {
  private readonly locks = new Map<string, Promise<unknown>>();
  private readonly pushAttempts: number;
  private readonly gitTimeoutMs: number;

  constructor(private readonly opts: WorkspaceOptions) {
    this.pushAttempts = opts.pushAttempts ?? 5;
    this.gitTimeoutMs = opts.gitTimeoutMs ?? 60_000;
  }

  /** Writes the image, commits and pushes; retries on a moved remote by re-applying the edits on the new head. */
  async commitImage(req: CommitRequest): Promise<CommitOutcome> {
    const outcome = await this.commitChange(req.repo, req.author, req.deploymentId, async (git) => {
      const changed = await this.applyEdits(git, req.edits);
      return changed.length ? { message: req.message } : 'unchanged';
    });
    return outcome!;
  }

  /**
   * Reverts the newest commit on the branch carrying all `match` lines, commits with the deployment trailer and pushes,
   * re-applying on a moved remote. Undefined when no such commit exists (nothing to undo).
   */
  revertDeployment(req: RevertRequest): Promise<CommitOutcome | undefined> {
    return this.commitChange(req.repo, req.author, req.deploymentId, async (git) => {
      const grep = req.match.map((line) => `--grep=^${escapeRegex(line)}$`);
      const target = (await git.raw(['log', '-n', '1', '--format=%H', '--all-match', ...grep, `refs/remotes/origin/${req.repo.branch}`])).trim();
      if (!target) return 'absent';
      try {
        await git.env(commitEnv(req.author)).raw(['revert', '--no-commit', target]);
      } catch (err: unknown) {
        await git.raw(['revert', '--abort']).catch(() => undefined);
        throw new GitError('GIT_REVERT_CONFLICT', `commit ${target} cannot be reverted cleanly (later commits changed the same lines); roll back by hand: ${gitMessage(err, req.repo.credentials)}`, { cause: err });
      }
      const staged = await git.raw(['diff', '--cached', '--name-only']);
      return staged.trim() ? { message: req.message(target) } : 'unchanged';
    });
  }

  /**
   * The one way a change reaches the branch, under the repo+branch lock: fresh checkout of the remote head; the
   * deployment's commit if an earlier attempt pushed it already; else `stage` prepares the index and the commit is
   * made with the deployment trailer and pushed, starting over on a moved remote. `unchanged`: the head already has
   * the change and is the commit to wait for; `absent`: there is nothing to change (undefined).
   */
  private commitChange(
    repo: RepoRef,
    author: { name: string; email: string },
    deploymentId: string,
    stage: (git: SimpleGit) => Promise<{ message: string } | 'unchanged' | 'absent'>,
  ): Promise<CommitOutcome | undefined> {
    return this.serialised(repo, async () => {
      const git = await this.open(repo);
      let lastRejection = '';
      for (let attempt = 1; attempt <= this.pushAttempts; attempt++) {
        await this.syncToRemote(git, repo);
        const earlier = await this.findDeploymentCommit(git, repo.branch, deploymentId);
        if (earlier) return { commit: earlier, created: false, reused: true };
        const staged = await stage(git);
        if (staged === 'absent') return undefined;
        if (staged === 'unchanged') return { commit: (await git.revparse(['HEAD'])).trim(), created: false, reused: false };
        await git.env(commitEnv(author)).raw(['commit', '-q', '-m', `${staged.message}\n\n${DEPLOYMENT_TRAILER}: ${deploymentId}`]);
        const commit = (await git.revparse(['HEAD'])).trim();
        const rejection = await this.push(git, repo);
        if (!rejection) return { commit, created: true, reused: false };
        lastRejection = rejection;
      }
      throw new GitError('GIT_PUSH_FAILED', `push to ${repo.branch} was rejected ${this.pushAttempts} times: ${lastRejection}`);
    });
  }

  /** How `sha` relates to `ours`: the same, a descendant (contains ours), or not. Fetches when `sha` is unknown. */
  async relation(repo: RepoRef, ours: string, sha: string): Promise<Relation> {
    if (ours.startsWith(sha)) return 'same';
    const git = await this.open(repo);
    let full = await this.resolveCommit(git, sha);
    if (!full) {
      await this.serialised(repo, () => this.fetch(git, repo)).catch(() => undefined);
      full = await this.resolveCommit(git, sha);
      if (!full) return 'unknown';
    }
    // Exit codes without output do not reach us through simple-git, so compare what git prints instead.
    const base = await git.raw(['merge-base', ours, full]).catch(() => '');
    return base.trim() === ours ? 'descendant' : 'unrelated';
  }

  /** Whether `commit` is on the remote branch now (fetched first): false once history was rewritten without it. */
  async onBranch(repo: RepoRef, commit: string): Promise<boolean> {
    const git = await this.open(repo);
    await this.serialised(repo, () => this.fetch(git, repo));
    const base = await git.raw(['merge-base', commit, `refs/remotes/origin/${repo.branch}`]).catch(() => '');
    return base.trim() === commit;
  }

  /** The full hash of a commit given in full or abbreviated (Helm chart revisions carry 12 hex digits). */
  private async resolveCommit(git: SimpleGit, sha: string): Promise<string | undefined> {
    if (!/^[0-9a-f]{7,40}$/.test(sha)) return undefined;
    const out = (await git.raw(['rev-parse', '--verify', '--quiet', `${sha}^{commit}`]).catch(() => '')).trim();
    return out.startsWith(sha) ? out : undefined;
  }

  private serialised<T>(repo: RepoRef, work: () => Promise<T>): Promise<T> {
    const key = `${repo.url}#${repo.branch}`;
    const previous = this.locks.get(key) ?? Promise.resolve();
    const next = previous.catch(() => undefined).then(work);
    this.locks.set(key, next);
    void next.finally(() => {
      if (this.locks.get(key) === next) this.locks.delete(key);
    }).catch(() => undefined);
    return next;
  }

  private dirFor(url: string): string {
    return join(this.opts.root, createHash('sha256').update(url).digest('hex').slice(0, 16));
  }

  private async open(repo: RepoRef): Promise<SimpleGit> {
    const dir = this.dirFor(repo.url);
    const exists = await stat(join(dir, '.git')).then(() => true, () => false);
    if (!exists) await mkdir(dir, { recursive: true });
    const git = simpleGit({
      baseDir: dir,
      timeout: { block: this.gitTimeoutMs },
      // Exactly the environment we set ourselves; nothing a user controls reaches these variables.
      allowEnvironment: ['GIT_CONFIG_COUNT', 'GIT_CONFIG_KEY_0', 'GIT_CONFIG_VALUE_0', 'GIT_SSH_COMMAND', 'GIT_TERMINAL_PROMPT', 'GIT_ALLOW_PROTOCOL', 'GIT_AUTHOR_NAME', 'GIT_AUTHOR_EMAIL', 'GIT_COMMITTER_NAME', 'GIT_COMMITTER_EMAIL'],
      unsafe: { allowUnsafeConfigEnvCount: true, allowUnsafeSshCommand: true, allowUnsafeProtocolOverride: true },
    });
    if (!exists) {
      await git.init();
      await git.addRemote('origin', repo.url);
    }
    return git;
  }

  /** Runs one remote git command with credentials in its environment; SSH key files live only that long. */
  private async remote(git: SimpleGit, repo: RepoRef, args: string[]): Promise<string> {
    const auth = await gitAuthEnv(repo.credentials, join(this.opts.root, '.auth'));
    try {
      return await git.env({ ...minimalEnv(), ...auth.env }).raw(args);
    } finally {
      await auth.dispose().catch(() => undefined);
    }
  }

  private async fetch(git: SimpleGit, repo: RepoRef): Promise<void> {
    await this.withRetries(async () => {
      try {
        await this.remote(git, repo, ['fetch', '--prune', '--no-tags', 'origin', `+refs/heads/${repo.branch}:refs/remotes/origin/${repo.branch}`]);
      } catch (err: unknown) {
        throw new GitError('GIT_FETCH_FAILED', `cannot fetch branch ${repo.branch} of ${safeUrl(repo.url)}: ${gitMessage(err, repo.credentials)}`, { cause: err });
      }
    });
  }

  /** A Git server that is briefly down or overloaded gets a few tries; wrong credentials or a missing branch do not. */
  private async withRetries<T>(work: () => Promise<T>): Promise<T> {
    const attempts = this.opts.transportAttempts ?? 3;
    for (let attempt = 1; ; attempt++) {
      try {
        return await work();
      } catch (err: unknown) {
        const permanent = /Authentication failed|could not read Username|403|404|not found|couldn't find remote ref/i.test((err as Error).message);
        if (permanent || attempt >= attempts) throw err;
        await new Promise((r) => setTimeout(r, 1_000 * 2 ** (attempt - 1)));
      }
    }
  }

  private async syncToRemote(git: SimpleGit, repo: RepoRef): Promise<void> {
    await this.fetch(git, repo);
    await git.raw(['checkout', '--force', '-B', repo.branch, `refs/remotes/origin/${repo.branch}`]);
    await git.raw(['clean', '-ffdx']);
  }

  private async findDeploymentCommit(git: SimpleGit, branch: string, deploymentId: string): Promise<string | undefined> {
    const out = await git.raw(['log', '-n', '500', '--format=%H', `--grep=^${DEPLOYMENT_TRAILER}: ${escapeRegex(deploymentId)}$`, `refs/remotes/origin/${branch}`]);
    return out.trim().split('\n').filter(Boolean)[0];
  }

  /** Applies every edit to the checked-out tree; returns the changed files (none when all values were in place). */
  private async applyEdits(git: SimpleGit, edits: FileEdit[]): Promise<string[]> {
    const root = await git.revparse(['--show-toplevel']);
    const changed: string[] = [];
    for (const edit of edits) {
      const path = resolve(root, edit.file);
      if (!path.startsWith(root + sep)) throw new GitError('MANIFEST_EDIT_FAILED', `${edit.file}: path leaves the repository`);
      let text: string;
      try {
        text = await readFile(path, 'utf8');
      } catch {
        throw new GitError('GIT_FILE_MISSING', `${edit.file} does not exist on the branch; check images[].file in the settings`);
      }
      try {
        const result = applyImageWrite(text, edit.write, edit.image);
        if (result.changed) {
          await mkdir(dirname(path), { recursive: true });
          await writeFile(path, result.content);
          if (!changed.includes(edit.file)) changed.push(edit.file);
        }
      } catch (err: unknown) {
        if (err instanceof EditError) throw new GitError('MANIFEST_EDIT_FAILED', `${edit.file}: ${err.message}`, { cause: err });
        throw err;
      }
    }
    if (changed.length) await git.add(['--', ...changed]);
    return changed;
  }

  /** Pushes HEAD to the branch; returns the rejection text when the remote moved, throws on other failures. */
  private async push(git: SimpleGit, repo: RepoRef): Promise<string | undefined> {
    return this.withRetries(async () => {
      try {
        await this.remote(git, repo, ['push', '--porcelain', 'origin', `HEAD:refs/heads/${repo.branch}`]);
        return undefined;
      } catch (err: unknown) {
        const message = gitMessage(err, repo.credentials);
        if (/\[rejected\]|non-fast-forward|fetch first|failed to update ref|cannot lock ref/i.test(message)) return message;
        throw new GitError('GIT_PUSH_FAILED', `cannot push to ${repo.branch} of ${safeUrl(repo.url)}: ${message}`, { cause: err });
      }
    });
  }
}

function commitEnv(author: { name: string; email: string }): Record<string, string> {
  return {
    ...minimalEnv(),
    GIT_AUTHOR_NAME: author.name,
    GIT_AUTHOR_EMAIL: author.email,
    GIT_COMMITTER_NAME: author.name,
    GIT_COMMITTER_EMAIL: author.email,
  };
}

/** What git needs to run; nothing else from our process environment (which may hold tokens) is passed on. */
function minimalEnv(): Record<string, string> {
  const keep = ['PATH', 'HOME', 'LANG', 'TMPDIR', 'SSL_CERT_FILE', 'SSL_CERT_DIR', 'HTTPS_PROXY', 'HTTP_PROXY', 'NO_PROXY', 'https_proxy', 'http_proxy', 'no_proxy'];
  const env: Record<string, string> = {};
  for (const k of keep) if (process.env[k]) env[k] = process.env[k]!;
  return env;
}

function gitMessage(err: unknown, credentials?: GitCredentials): string {
  const text = err instanceof Error ? err.message : String(err);
  return redact(text.trim().split('\n').filter((l) => l.trim()).slice(-4).join(' | '), credentials);
}

export function safeUrl(url: string): string {
  return redact(url);
}

function escapeRegex(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
