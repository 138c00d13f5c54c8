// Process plumbing for the real peers: spawn with a log file, wait for readiness, free ports, cached Go builds.
import { spawn, execFile } from 'node:child_process';
import { createWriteStream, existsSync } from 'node:fs';
import { mkdir, readFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const execFileAsync = promisify(execFile);
const SETPRIV = '/usr/bin/setpriv';
const here = dirname(fileURLToPath(import.meta.url));

export interface PeerProcess {
  readonly name: string;
  readonly logFile: string;
  readonly pid: number;
  /** Resolves with the exit code (or signal) once the process has ended. */
  readonly exited: Promise<number | string>;
  hasExited(): boolean;
  /** SIGTERM, then SIGKILL after 5 s. */
  stop(): Promise<void>;
  /** SIGKILL at once, as a crash; resolves when it is gone. */
  kill(): Promise<void>;
}

export interface SpawnOptions {
  name: string;
  command: string;
  args?: string[];
  env?: Record<string, string | undefined>;
  cwd?: string;
  logDir: string;
}

/** Peers still running; killed if the test process exits without stopping them, so none outlives it. */
const live = new Set<ReturnType<typeof spawn>>();
const killAll = () => {
  for (const child of live) child.kill('SIGKILL');
};
process.once('exit', killAll);
// An interrupted test run (Ctrl-C, a CI timeout) must not leave peers behind either.
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    killAll();
    process.exit(signal === 'SIGINT' ? 130 : 143);
  });
}

export async function spawnPeer(opts: SpawnOptions): Promise<PeerProcess> {
  await mkdir(opts.logDir, { recursive: true });
  const logFile = join(opts.logDir, `${opts.name}.log`);
  const log = createWriteStream(logFile, { flags: 'a' });
  // setpriv --pdeathsig: the kernel kills the peer when the test process dies, however it dies (jest's sandbox does
  // not see signals sent to the process, so handlers alone cannot promise that).
  const [command, args] = existsSync(SETPRIV)
    ? [SETPRIV, ['--pdeathsig', 'KILL', '--', opts.command, ...(opts.args ?? [])]]
    : [opts.command, opts.args ?? []];
  const child = spawn(command, args, {
    cwd: opts.cwd,
    env: { ...process.env, ...opts.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  child.stdout.pipe(log, { end: false });
  child.stderr.pipe(log, { end: false });
  await new Promise<void>((resolve, reject) => {
    child.once('spawn', resolve);
    child.once('error', (err) => reject(new Error(`cannot start ${opts.name} (${opts.command}): ${err.message}`)));
  });
  let ended = false;
  live.add(child);
  const exited = new Promise<number | string>((resolve) => {
    child.once('exit', (code, signal) => {
      ended = true;
      live.delete(child);
      log.end();
      resolve(code ?? signal ?? 'unknown');
    });
  });
  return {
    name: opts.name,
    logFile,
    pid: child.pid ?? -1,
    exited,
    hasExited: () => ended,
    async kill() {
      if (ended) return;
      child.kill('SIGKILL');
      await exited;
    },
    async stop() {
      if (ended) return;
      child.kill('SIGTERM');
      const killer = setTimeout(() => child.kill('SIGKILL'), 5_000);
      await exited;
      clearTimeout(killer);
    },
  };
}

async function tail(file: string, lines = 30): Promise<string> {
  try {
    return (await readFile(file, 'utf8')).split('\n').slice(-lines).join('\n');
  } catch {
    return '(no log)';
  }
}

/**
 * Retries `probe` until it returns a value (not undefined/false). Thrown errors count as "not ready yet".
 * This is readiness polling of a peer during start-up, never a test's synchronisation.
 */
export async function waitUntil<T>(
  what: string,
  probe: () => Promise<T | undefined | false>,
  opts: { timeoutMs: number; peer?: PeerProcess },
): Promise<T> {
  const deadline = Date.now() + opts.timeoutMs;
  let delay = 50;
  let lastError: string;
  for (;;) {
    if (opts.peer?.hasExited()) {
      throw new Error(`${what}: ${opts.peer.name} exited early; log tail:\n${await tail(opts.peer.logFile)}`);
    }
    try {
      const value = await probe();
      if (value !== undefined && value !== false) return value;
      lastError = '';
    } catch (err: unknown) {
      lastError = err instanceof Error ? err.message : String(err);
    }
    if (Date.now() > deadline) {
      const log = opts.peer ? `\nlog tail of ${opts.peer.name}:\n${await tail(opts.peer.logFile)}` : '';
      throw new Error(`timed out after ${opts.timeoutMs} ms waiting for ${what}${lastError ? `: ${lastError}` : ''}${log}`);
    }
    await new Promise((r) => setTimeout(r, delay));
    delay = Math.min(delay * 2, 1_000);
  }
}

/** A TCP port that was free on 127.0.0.1 a moment ago. */
/**
 * Ports this process has handed out. The probe socket closes before the port is used, so the kernel may offer the same
 * port to the next call: notification-controller once got one port for its receiver and its metrics and exited
 * ("address already in use"). A port is handed out once per process.
 */
const handedOut = new Set<number>();

export async function freePort(): Promise<number> {
  for (;;) {
    const port = await probePort();
    if (handedOut.has(port)) continue;
    handedOut.add(port);
    return port;
  }
}

function probePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => (typeof address === 'object' && address ? resolve(address.port) : reject(new Error('no port'))));
    });
  });
}

/** Builds (or finds in the cache) the binaries of one peer family; returns the cache directory. */
export async function buildPeers(family: string): Promise<string> {
  const script = join(here, 'peers', 'build.sh');
  const { stdout } = await execFileAsync('bash', [script, family], { maxBuffer: 64 * 1024 * 1024 });
  const dir = stdout.trim().split('\n').pop();
  if (!dir) throw new Error(`build.sh ${family} printed no directory`);
  return dir;
}
