/**
 * How one git command is run here: in one directory, with exactly the environment the caller gives (no ambient
 * variable reaches git), a silence timeout, and the one error class of the Git rooms.
 *
 * A simple-git instance keeps the environment it was given for every later command, so each kind of command gets its
 * own instance: a local command never runs with the credentials of a fetch that ran before it.
 */
import { simpleGit, type SimpleGit } from 'simple-git';
import { MAX_CONFIG_PAIRS, redact, type GitCredentials } from './credentials.js';
import { ServiceError } from '../../shared/errors.js';

/** A Git step that failed; `retryable` when the server may answer better later. */
export class GitError extends ServiceError {}

/** Every GIT_* variable the rooms set themselves (simple-git refuses the others). */
const ALLOWED_ENV = [
  'GIT_CONFIG_COUNT',
  ...Array.from({ length: MAX_CONFIG_PAIRS }, (_, i) => [`GIT_CONFIG_KEY_${i}`, `GIT_CONFIG_VALUE_${i}`]).flat(),
  'GIT_CONFIG_NOSYSTEM',
  'GIT_SSH_COMMAND',
  'GIT_TERMINAL_PROMPT',
  'GIT_ALLOW_PROTOCOL',
  'GIT_AUTHOR_NAME',
  'GIT_AUTHOR_EMAIL',
  'GIT_COMMITTER_NAME',
  'GIT_COMMITTER_EMAIL',
  'GIT_TRACE_PERFORMANCE',
];

/**
 * simple-git waits 50 ms more after every command that printed nothing at all (its completion-detection plugin: `c &&
 * await delay(50)` when no output arrived), and most of the commands here print nothing (`checkout -q`, `clean -q`,
 * `add`, `commit -q`, a fetch with nothing new): a fifth of a deployment's time to its push went to that wait (issue
 * 22, item 4). git's performance trace on stderr makes every command say something at its end; its lines are taken
 * out of what an error reports (`withoutTrace`), and stdout, which the callers read, is untouched.
 */
const ALWAYS_SAY_SOMETHING = { GIT_TRACE_PERFORMANCE: '2' };

/** A line of git's performance trace: `HH:MM:SS.micros file.c:123  performance: …`. */
const TRACE_LINE = /^\d{2}:\d{2}:\d{2}\.\d+ +[\w./-]+:\d+ +performance: .*$/gm;

/** git's output without its performance trace. */
export function withoutTrace(text: string): string {
  return text
    .replace(TRACE_LINE, '')
    .replace(/\n{2,}/g, '\n')
    .replace(/^\n/, '');
}

/** A git bound to one directory and one environment. */
export function gitIn(dir: string, env: Record<string, string>, timeoutMs: number, abort?: AbortSignal): SimpleGit {
  return simpleGit({
    baseDir: dir,
    timeout: { block: timeoutMs },
    ...(abort ? { abort } : {}),
    allowEnvironment: ALLOWED_ENV,
    // GIT_CONFIG_* carries the HTTPS credentials and the transfer limits, GIT_SSH_COMMAND the key and SSH's limits.
    // Protocol overrides stay refused: which transports git may use is GIT_ALLOW_PROTOCOL's (credentials.ts), an
    // environment variable simple-git leaves alone, so no `-c protocol.*.allow` ever needs to pass (issue 19, item 9).
    unsafe: { allowUnsafeConfigEnvCount: true, allowUnsafeSshCommand: true },
    // A failed command's error is built again from its output without the trace (simple-git built it with it); one
    // that said nothing but the trace is no error, as simple-git treats a silent failure.
    errors: (error, result) => {
      if (!result.exitCode || !result.stdErr.length) return error;
      const text = withoutTrace(Buffer.concat([...result.stdOut, ...result.stdErr]).toString('utf8'));
      return text.trim() ? Buffer.from(text) : undefined;
    },
  }).env({ ...env, ...ALWAYS_SAY_SOMETHING });
}

/** The last lines git printed, redacted, for a message shown to users. */
export function gitMessage(err: unknown, credentials?: GitCredentials): string {
  const text = err instanceof Error ? err.message : String(err);
  const lines = text
    .trim()
    .split('\n')
    .filter((l) => l.trim() && !l.startsWith('hint:'))
    .slice(-4)
    .join(' | ');
  return redact(lines.length > 1_000 ? `${lines.slice(0, 1_000)}…` : lines, credentials);
}
