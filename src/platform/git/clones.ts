/**
 * The clone cache: one working tree per repository under the workspace root, however its URL is spelled, checked
 * before every use (git's own checks when its config changed, see `problem`). The clones are partial (transport.ts fetches without blobs), and the least recently used go when
 * the cache grows past its limit (issue 19, item 5).
 *
 * A clone is only ours to trust while it looks exactly as we made it. Something that wrote into it (a hostile
 * repository through a path we failed to refuse, a disk error, a crash mid-command) could have left a hook, a
 * `core.*` setting that runs a program, another remote, or a broken index. Such a clone is removed and made anew,
 * rather than failing every later deployment of the team or running what was planted there.
 */
import { createHash } from 'node:crypto';
import { lstat, mkdir, readdir, realpath, rm, stat } from 'node:fs/promises';
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
  /^(core\.(repositoryformatversion|filemode|bare|logallrefupdates|ignorecase|precomposeunicode|symlinks)|remote\.origin\.(url|fetch|promisor|partialclonefilter)|extensions\.partialclone)$/;

/**
 * One spelling of a repository's URL, for the cache key: scheme and host in lower case (both are case-insensitive,
 * RFC 3986 section 6.2.2.1), the default port left out, and no trailing `/` or `.git` (the forges serve a
 * repository under both). Two URLs with one key share a clone; that is safe even for a server that tells `x` from
 * `x.git`, because every use fetches the branch from the URL it was given first, and git's answers depend only on
 * the commits' content.
 *
 * Stricter than src/platform/git/repository.ts sameRepository on purpose, which decides what a target reads: that rule makes
 * `ssh://git@host:2222/org/repo` and `https://host/org/repo` one repository, and drops the user name. A clone keeps
 * its `remote.origin.url` (checked below against this key), so it stays one clone per transport, port and user:
 * sharing it would fetch over another transport, with another user's credentials, than the URL the settings name.
 */
export function cloneKey(url: string): string {
  const scheme = /^(https?|ssh):\/\/([^/]*)(.*)$/i.exec(url);
  let out: string;
  if (scheme) {
    const name = scheme[1]!.toLowerCase();
    const at = scheme[2]!.lastIndexOf('@');
    const user = at >= 0 ? scheme[2]!.slice(0, at + 1) : '';
    let host = scheme[2]!.slice(at + 1).toLowerCase();
    const port = { http: ':80', https: ':443', ssh: ':22' }[name];
    if (port && host.endsWith(port)) host = host.slice(0, -port.length);
    out = `${name}://${user}${host}${scheme[3]}`;
  } else {
    const scp = /^([^@]+@)([^:]+)(:.*)$/.exec(url);
    out = scp ? `${scp[1]}${scp[2]!.toLowerCase()}${scp[3]}` : url;
  }
  return out.replace(/\/+$/, '').replace(/\.git$/, '');
}

/** Identifies the state of a clone's `.git/config`: any write to it changes this; empty when it cannot be read. */
async function configPrint(dir: string): Promise<string> {
  const st = await stat(join(dir, '.git', 'config')).catch(() => undefined);
  return st ? `${st.ino}:${st.size}:${st.mtimeMs}:${st.ctimeMs}` : '';
}

export class CloneCache {
  /** When each clone was last used (LRU order: oldest first), and its size when last measured. */
  private readonly used = new Map<string, { at: number; bytes: number }>();
  /** Clones git's checks passed in this process, with their config as it was then and the origin we last set. */
  private readonly trusted = new Map<string, { config: string; origin: string | undefined }>();
  private scanned = false;

  constructor(
    private readonly root: string,
    private readonly timeoutMs: number,
  ) {}

  /** The working tree of `url`, the same for every spelling of it: also the key of its lock. */
  dirFor(url: string): string {
    return join(this.root, createHash('sha256').update(cloneKey(url)).digest('hex').slice(0, 16));
  }

  /**
   * The clone of `url`, made when absent, made anew when it fails the checks. Call it under the tree's lock.
   * `onDiscard` hears why a clone was thrown away (for the log).
   */
  async open(url: string, onDiscard?: (problem: string) => void): Promise<Clone> {
    const dir = this.dirFor(url);
    this.touch(dir);
    if (await exists(dir)) {
      const problem = await this.problem(dir, url);
      if (!problem) {
        const clone = this.clone(url, dir);
        // Another spelling of the same repository: fetch and push go where this deployment's settings say.
        // The origin is read once per check and remembered: a git process per use is what issue 22 took away.
        const known = this.trusted.get(dir);
        const origin = known?.origin ?? (await clone.git.raw(['config', '--local', '--get', 'remote.origin.url'])).trim();
        if (origin !== url) await clone.git.raw(['remote', 'set-url', 'origin', url]);
        this.trusted.set(dir, { config: origin !== url || !known ? await configPrint(dir) : known.config, origin: url });
        return clone;
      }
      this.trusted.delete(dir);
      onDiscard?.(problem);
      await rm(dir, { recursive: true, force: true });
    }
    await mkdir(dir, { recursive: true });
    const git = gitIn(dir, localGitEnv(), this.timeoutMs);
    await git.raw(['init', '-q']);
    // No hooks at all, not even samples: the check below then only has to see an empty directory.
    await rm(join(dir, '.git', 'hooks'), { recursive: true, force: true });
    await git.raw(['remote', 'add', 'origin', url]);
    this.trusted.set(dir, { config: await configPrint(dir), origin: url });
    return this.clone(url, dir);
  }

  /** Throws the clone of `url` away; the next `open` makes it anew. Under the tree's lock. */
  async discard(url: string): Promise<void> {
    this.trusted.delete(this.dirFor(url));
    await rm(this.dirFor(url), { recursive: true, force: true });
  }

  private clone(url: string, dir: string): Clone {
    return { url, dir, git: gitIn(dir, localGitEnv(), this.timeoutMs) };
  }

  /**
   * Why the clone in `dir` cannot be trusted, or undefined when it is as we made it. The checks that need no git run
   * every time; git's own (its view of the repository, every setting, the remote, HEAD and the index: six processes,
   * a third of a deployment's time in Git, issue 22) when this process first uses the clone and whenever its
   * `.git/config` changed since: only we write it, through `remote set-url`. A damaged object store or index still
   * fails the git command that reads it, and the protocol then makes the clone anew (transport.ts isLocalDamage).
   */
  async problem(dir: string, url: string): Promise<string | undefined> {
    const top = await lstat(dir);
    if (!top.isDirectory()) return 'the clone is not a directory';
    const dotGit = await lstat(join(dir, '.git')).catch(() => undefined);
    if (!dotGit?.isDirectory()) return '.git is missing or not a directory';
    if ((await readdir(join(dir, '.git', 'hooks')).catch(() => [])).length) return '.git/hooks holds files';
    if (!(await lstat(join(dir, '.git', 'HEAD')).catch(() => undefined))?.isFile()) return '.git/HEAD is missing or not a file';
    const config = await configPrint(dir);
    if (config && this.trusted.get(dir)?.config === config) return undefined;
    const problem = await this.gitProblem(dir, url);
    if (problem) this.trusted.delete(dir);
    else this.trusted.set(dir, { config, origin: undefined });
    return problem;
  }

  /** The checks of `problem` that ask git. */
  private async gitProblem(dir: string, url: string): Promise<string | undefined> {
    const git = gitIn(dir, localGitEnv(), this.timeoutMs);
    try {
      const gitDir = (await git.raw(['rev-parse', '--absolute-git-dir'])).trim();
      if (gitDir !== (await realpath(join(dir, '.git')))) return 'git does not see the clone as its own repository';
      const keys = (await git.raw(['config', '--local', '--list', '--name-only'])).split('\n').filter(Boolean);
      const planted = keys.find((k) => !OWN_CONFIG.test(k));
      if (planted) return `unexpected setting ${planted.slice(0, 100)} in .git/config`;
      const origin = (await git.raw(['config', '--local', '--get-all', 'remote.origin.url'])).trim();
      if (origin.includes('\n') || cloneKey(origin) !== cloneKey(url)) return 'the clone points to another remote';
      // HEAD and the index must still be readable (an empty clone has no HEAD commit yet, which is fine).
      await git.raw(['symbolic-ref', '-q', 'HEAD']).catch(() => git.raw(['rev-parse', '--verify', '-q', 'HEAD']));
      await git.raw(['ls-files', '--stage', '--', '.git-clone-check']);
    } catch (err: unknown) {
      return `git cannot read the clone (${err instanceof Error ? err.message.split('\n')[0]!.slice(0, 200) : 'unknown error'})`;
    }
    return undefined;
  }

  /** Marks the clone in `dir` as just used. */
  touch(dir: string): void {
    const entry = this.used.get(dir) ?? { at: 0, bytes: 0 };
    this.used.delete(dir);
    this.used.set(dir, { ...entry, at: Date.now() });
  }

  /** Measures the clone in `dir` after a use that may have grown it (a fetch, a commit). */
  async measure(dir: string): Promise<void> {
    const entry = this.used.get(dir);
    if (entry) entry.bytes = await sizeOf(dir);
  }

  /**
   * The clones to remove, least recently used first, until the cache is at most `limitBytes`; `busy` ones (in use
   * or waited for) are kept. The clones a previous process left are counted too, as least recent.
   */
  async overLimit(limitBytes: number, busy: (dir: string) => boolean): Promise<string[]> {
    if (!this.scanned) {
      this.scanned = true;
      const names = await readdir(this.root).catch(() => [] as string[]);
      const found = names.filter((n) => /^[0-9a-f]{16}$/.test(n)).map((n) => join(this.root, n));
      const older = new Map<string, { at: number; bytes: number }>();
      for (const dir of found)
        if (!this.used.has(dir)) older.set(dir, { at: (await stat(dir).catch(() => undefined))?.mtimeMs ?? 0, bytes: await sizeOf(dir) });
      const mine = [...this.used];
      this.used.clear();
      for (const [dir, entry] of [...[...older].sort((a, b) => a[1].at - b[1].at), ...mine]) this.used.set(dir, entry);
    }
    let total = 0;
    for (const entry of this.used.values()) total += entry.bytes;
    const evict: string[] = [];
    for (const [dir, entry] of this.used) {
      if (total <= limitBytes) break;
      if (busy(dir)) continue;
      evict.push(dir);
      total -= entry.bytes;
    }
    return evict;
  }

  /** Removes the clone in `dir` (under its lock) and forgets it. */
  async evict(dir: string): Promise<void> {
    this.used.delete(dir);
    this.trusted.delete(dir);
    await rm(dir, { recursive: true, force: true });
    await rm(`${dir}.known_hosts`, { force: true });
  }
}

/** Bytes on disk under `path` (files and links as their own size), without following links. */
async function sizeOf(path: string): Promise<number> {
  const info = await lstat(path).catch(() => undefined);
  if (!info) return 0;
  if (!info.isDirectory()) return info.size;
  let total = info.size;
  for (const name of await readdir(path).catch(() => [] as string[])) total += await sizeOf(join(path, name));
  return total;
}

async function exists(path: string): Promise<boolean> {
  return lstat(path).then(
    () => true,
    () => false,
  );
}
