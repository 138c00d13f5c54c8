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
];

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
  }).env(env);
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
