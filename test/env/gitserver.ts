// A real Git server over HTTP for the tests: Debian's `git http-backend` behind a small Node CGI host that demands
// HTTP Basic credentials, so authentication is exercised like against a real forge.
import { spawn, execFile } from 'node:child_process';
import { mkdir, writeFile } from 'node:fs/promises';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { dirname, join } from 'node:path';
import type { Socket } from 'node:net';
import { promisify } from 'node:util';

const execFileAsync = promisify(execFile);

export interface GitServer {
  /** Base URL; a repository `name` is at `${url}/${name}.git`. */
  url: string;
  username: string;
  password: string;
  root: string;
  /** Creates a bare repository with `main` holding `files`; returns its URL and the first commit. */
  createRepo(name: string, files: Record<string, string>): Promise<{ url: string; commit: string }>;
  /** Commits `files` to `branch` as someone else would (a foreign push); returns the new commit. */
  commitAsOther(name: string, files: Record<string, string>, message: string, branch?: string): Promise<string>;
  /**
   * Rewrites `branch` as someone else would with a force-push: resets it to `onto`, commits `files` there, and
   * pushes over whatever the branch held. Returns the new head.
   */
  rewriteAsOther(name: string, onto: string, files: Record<string, string>, message: string, branch?: string): Promise<string>;
  /** `git log` of a branch in the bare repository: newest first, `%H %s`. */
  log(name: string, branch?: string): Promise<Array<{ sha: string; subject: string; body: string }>>;
  readFile(name: string, path: string, branch?: string): Promise<string>;
  /** Makes every request fail with this status until called with undefined (outage tests). */
  failWith(status: number | undefined): void;
  /** Makes pushes only fail with this status (fetches still work) until called with undefined. */
  failPushesWith(status: number | undefined): void;
  /**
   * Closes the listening port and cuts every open connection (true), so connections are refused, as when the host is
   * down; false listens on the same port again.
   */
  refuseConnections(refuse: boolean): Promise<void>;
  /**
   * Runs `hook` once, right after the next push to `repo` is stored and before the pusher gets its answer: the way
   * to land someone else's commit on top of ours before any GitOps tool can see ours alone.
   */
  afterNextPush(repo: string, hook: () => Promise<void>): void;
  requests: number;
  /** Every request, in arrival order, with the repository its path names (issue 19: which repository was reached). */
  requestLog: ReadonlyArray<{ method: string; repo: string | undefined; path: string }>;
  /** How many requests named repository `name` so far. */
  requestsTo(name: string): number;
  close(): Promise<void>;
}

const GIT_ENV = {
  GIT_AUTHOR_NAME: 'Someone Else',
  GIT_AUTHOR_EMAIL: 'else@example.test',
  GIT_COMMITTER_NAME: 'Someone Else',
  GIT_COMMITTER_EMAIL: 'else@example.test',
};

async function git(cwd: string, args: string[], env: Record<string, string> = {}): Promise<string> {
  const { stdout } = await execFileAsync('git', args, { cwd, env: { ...process.env, ...GIT_ENV, ...env }, maxBuffer: 16 * 1024 * 1024 });
  return stdout;
}

export async function startGitServer(opts: { root: string; username?: string; password?: string }): Promise<GitServer> {
  const username = opts.username ?? 'keptn';
  const password = opts.password ?? 'test-token-0f3c9a';
  const reposDir = join(opts.root, 'repos');
  await mkdir(reposDir, { recursive: true });
  const expected = `Basic ${Buffer.from(`${username}:${password}`).toString('base64')}`;
  let failStatus: number | undefined;
  let failPushStatus: number | undefined;
  let requests = 0;
  const requestLog: Array<{ method: string; repo: string | undefined; path: string }> = [];
  const pushHooks = new Map<string, () => Promise<void>>();

  const server: Server = createServer((req, res) => {
    requests++;
    const path = new URL(req.url ?? '/', 'http://x').pathname;
    requestLog.push({ method: req.method ?? '', repo: /^\/([^/]+?)(?:\.git)?(?:\/|$)/.exec(path)?.[1], path });
    if (failStatus) return void res.writeHead(failStatus).end('unavailable for the test\n');
    const pushing = (req.url ?? '').includes('git-receive-pack');
    if (failPushStatus && pushing) return void res.writeHead(failPushStatus).end('pushes unavailable for the test\n');
    if (req.headers.authorization !== expected) {
      return void res.writeHead(401, { 'WWW-Authenticate': 'Basic realm="git"' }).end('authentication required\n');
    }
    const repo = /^\/([^/]+)\.git\/git-receive-pack$/.exec(new URL(req.url ?? '/', 'http://x').pathname)?.[1];
    const hook = repo ? pushHooks.get(repo) : undefined;
    if (repo && hook) pushHooks.delete(repo);
    cgi(req, res, reposDir, username, hook);
  });
  const sockets = new Set<Socket>();
  server.on('connection', (socket: Socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  const url = `http://127.0.0.1:${port}`;

  const worktree = async (name: string, branch: string) => {
    const dir = join(opts.root, 'work', `${name}-${Date.now()}-${Math.random().toString(36).slice(2)}`);
    await mkdir(dir, { recursive: true });
    await git(dir, ['clone', '-q', '--branch', branch, join(reposDir, `${name}.git`), '.']);
    return dir;
  };
  const writeFiles = async (dir: string, files: Record<string, string>) => {
    for (const [path, content] of Object.entries(files)) {
      await mkdir(dirname(join(dir, path)), { recursive: true });
      await writeFile(join(dir, path), content);
    }
  };

  return {
    url,
    username,
    password,
    root: opts.root,
    get requests() {
      return requests;
    },
    requestLog,
    requestsTo: (name) => requestLog.filter((r) => r.repo === name).length,
    async createRepo(name, files) {
      const bare = join(reposDir, `${name}.git`);
      await mkdir(bare, { recursive: true });
      await git(bare, ['init', '-q', '--bare', '--initial-branch=main']);
      await git(bare, ['config', 'http.receivepack', 'true']);
      const seed = join(opts.root, 'work', `${name}-seed-${Date.now()}`);
      await mkdir(seed, { recursive: true });
      await git(seed, ['init', '-q', '--initial-branch=main']);
      await writeFiles(seed, files);
      await git(seed, ['add', '-A']);
      await git(seed, ['commit', '-q', '-m', 'initial manifests']);
      await git(seed, ['push', '-q', bare, 'main']);
      return { url: `${url}/${name}.git`, commit: (await git(seed, ['rev-parse', 'HEAD'])).trim() };
    },
    async commitAsOther(name, files, message, branch = 'main') {
      const dir = await worktree(name, branch);
      await writeFiles(dir, files);
      await git(dir, ['add', '-A']);
      await git(dir, ['commit', '-q', '--allow-empty', '-m', message]);
      await git(dir, ['push', '-q', 'origin', branch]);
      return (await git(dir, ['rev-parse', 'HEAD'])).trim();
    },
    async rewriteAsOther(name, onto, files, message, branch = 'main') {
      const dir = await worktree(name, branch);
      await git(dir, ['reset', '-q', '--hard', onto]);
      await writeFiles(dir, files);
      await git(dir, ['add', '-A']);
      await git(dir, ['commit', '-q', '--allow-empty', '-m', message]);
      await git(dir, ['push', '-q', '--force', 'origin', branch]);
      return (await git(dir, ['rev-parse', 'HEAD'])).trim();
    },
    async log(name, branch = 'main') {
      const out = await git(join(reposDir, `${name}.git`), ['log', '--format=%H%x1f%s%x1f%b%x1e', branch]);
      return out
        .split('\x1e')
        .map((r) => r.trim())
        .filter(Boolean)
        .map((r) => {
          const [sha = '', subject = '', body = ''] = r.split('\x1f');
          return { sha, subject, body };
        });
    },
    async readFile(name, path, branch = 'main') {
      return git(join(reposDir, `${name}.git`), ['show', `${branch}:${path}`]);
    },
    failWith(status) {
      failStatus = status;
    },
    failPushesWith(status) {
      failPushStatus = status;
    },
    async refuseConnections(refuse) {
      if (refuse === !server.listening) return;
      if (refuse) {
        const closed = new Promise<void>((resolve) => server.close(() => resolve()));
        for (const socket of sockets) socket.destroy();
        await closed;
      } else await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
    },
    afterNextPush(repo, hook) {
      pushHooks.set(repo, hook);
    },
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

/** Runs `git http-backend` as a CGI program for one request. */
function cgi(req: IncomingMessage, res: ServerResponse, projectRoot: string, user: string, beforeAnswer?: () => Promise<void>): void {
  const url = new URL(req.url ?? '/', 'http://localhost');
  const child = spawn('git', ['http-backend'], {
    env: {
      PATH: process.env['PATH'] ?? '/usr/bin:/bin',
      GIT_PROJECT_ROOT: projectRoot,
      GIT_HTTP_EXPORT_ALL: '1',
      PATH_INFO: decodeURIComponent(url.pathname),
      QUERY_STRING: url.search.slice(1),
      REQUEST_METHOD: req.method ?? 'GET',
      CONTENT_TYPE: req.headers['content-type'] ?? '',
      ...(req.headers['content-length'] ? { CONTENT_LENGTH: req.headers['content-length'] } : {}),
      ...(req.headers['content-encoding'] ? { HTTP_CONTENT_ENCODING: String(req.headers['content-encoding']) } : {}),
      ...(req.headers['git-protocol'] ? { GIT_PROTOCOL: String(req.headers['git-protocol']) } : {}),
      REMOTE_USER: user,
      REMOTE_ADDR: '127.0.0.1',
    },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  req.pipe(child.stdin);
  let head = Buffer.alloc(0);
  let headersDone = false;
  child.stdout.on('data', (chunk: Buffer) => {
    if (headersDone) return void res.write(chunk);
    head = Buffer.concat([head, chunk]);
    const end = head.indexOf('\r\n\r\n');
    if (end < 0) return;
    headersDone = true;
    let status = 200;
    for (const line of head.subarray(0, end).toString('latin1').split('\r\n')) {
      const i = line.indexOf(':');
      const name = line.slice(0, i).trim();
      const value = line.slice(i + 1).trim();
      if (name.toLowerCase() === 'status') status = Number.parseInt(value, 10);
      else res.setHeader(name, value);
    }
    res.writeHead(status);
    res.write(head.subarray(end + 4));
  });
  child.on('close', () => {
    if (!headersDone) res.writeHead(502);
    void (beforeAnswer ?? (async () => {}))().finally(() => res.end());
  });
  child.on('error', () => {
    if (!res.headersSent) res.writeHead(500);
    res.end();
  });
}
