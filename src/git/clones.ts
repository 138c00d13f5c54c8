/**
 * The clone cache: one working tree per repository URL under the workspace root, checked before every use.
 *
 * A clone is only ours to trust while it looks exactly as we made it. Something that wrote into it (a hostile
 * repository through a path we failed to refuse, a disk error, a crash mid-command) could have left a hook, a
 * `core.*` setting that runs a program, another remote, or a broken index. Such a clone is removed and made anew,
 * rather than failing every later deployment of the team or running what was planted there.
 */
import { createHash } from 'node:crypto';
import { lstat, mkdir, readdir, realpath, rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { SimpleGit } from 'simple-git';
import { gitIn } from './command.js';
import { localGitEnv } from './credentials.js';

export interface Clone {
  url: string;
  dir: string;
  /** git for local commands in this clone (no credentials in its environment). */
  git: SimpleGit;
}

/** The local settings `git init` and `git remote add` write; any other key was planted. */
const OWN_CONFIG =
  /^(core\.(repositoryformatversion|filemode|bare|logallrefupdates|ignorecase|precomposeunicode|symlinks)|remote\.origin\.(url|fetch))$/;

export class CloneCache {
  constructor(
    private readonly root: string,
    private readonly timeoutMs: number,
  ) {}

  /** The working tree of `url`: also the key of its lock. */
  dirFor(url: string): string {
    return join(this.root, createHash('sha256').update(url).digest('hex').slice(0, 16));
  }

  /**
   * The clone of `url`, made when absent, made anew when it fails the checks. Call it under the tree's lock.
   * `onDiscard` hears why a clone was thrown away (for the log).
   */
  async open(url: string, onDiscard?: (problem: string) => void): Promise<Clone> {
    const dir = this.dirFor(url);
    if (await exists(dir)) {
      const problem = await this.problem(dir, url);
      if (!problem) return this.clone(url, dir);
      onDiscard?.(problem);
      await rm(dir, { recursive: true, force: true });
    }
    await mkdir(dir, { recursive: true });
    const git = gitIn(dir, localGitEnv(), this.timeoutMs);
    await git.raw(['init', '-q']);
    // No hooks at all, not even samples: the check below then only has to see an empty directory.
    await rm(join(dir, '.git', 'hooks'), { recursive: true, force: true });
    await git.raw(['remote', 'add', 'origin', url]);
    return this.clone(url, dir);
  }

  /** Throws the clone of `url` away; the next `open` makes it anew. Under the tree's lock. */
  async discard(url: string): Promise<void> {
    await rm(this.dirFor(url), { recursive: true, force: true });
  }

  private clone(url: string, dir: string): Clone {
    return { url, dir, git: gitIn(dir, localGitEnv(), this.timeoutMs) };
  }

  /** Why the clone in `dir` cannot be trusted, or undefined when it is as we made it. */
  async problem(dir: string, url: string): Promise<string | undefined> {
    const top = await lstat(dir);
    if (!top.isDirectory()) return 'the clone is not a directory';
    const dotGit = await lstat(join(dir, '.git')).catch(() => undefined);
    if (!dotGit?.isDirectory()) return '.git is missing or not a directory';
    if ((await readdir(join(dir, '.git', 'hooks')).catch(() => [])).length) return '.git/hooks holds files';
    const git = gitIn(dir, localGitEnv(), this.timeoutMs);
    try {
      const gitDir = (await git.raw(['rev-parse', '--absolute-git-dir'])).trim();
      if (gitDir !== (await realpath(join(dir, '.git')))) return 'git does not see the clone as its own repository';
      const keys = (await git.raw(['config', '--local', '--list', '--name-only'])).split('\n').filter(Boolean);
      const planted = keys.find((k) => !OWN_CONFIG.test(k));
      if (planted) return `unexpected setting ${planted.slice(0, 100)} in .git/config`;
      const origin = (await git.raw(['config', '--local', '--get-all', 'remote.origin.url'])).trim();
      if (origin !== url) return 'the clone points to another remote';
      // HEAD and the index must still be readable (an empty clone has no HEAD commit yet, which is fine).
      await git.raw(['symbolic-ref', '-q', 'HEAD']).catch(() => git.raw(['rev-parse', '--verify', '-q', 'HEAD']));
      await git.raw(['ls-files', '--stage', '--', '.git-clone-check']);
    } catch (err: unknown) {
      return `git cannot read the clone (${err instanceof Error ? err.message.split('\n')[0]!.slice(0, 200) : 'unknown error'})`;
    }
    return undefined;
  }
}

async function exists(path: string): Promise<boolean> {
  return lstat(path).then(
    () => true,
    () => false,
  );
}
