/**
 * Git credentials, and the one policy for what environment git runs with and what is masked in its messages.
 * Credentials never become part of a URL, an argument list or a log line: HTTPS through an `http.extraHeader` passed
 * in the environment (GIT_CONFIG_*), SSH through a key file readable only by us, for one remote command. Local
 * commands get no credentials at all. The Secret layout is Flux's GitRepository one, so teams can reuse the Secret.
 */
import { randomUUID } from 'node:crypto';
import { chmod, mkdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ServiceError, type ServiceErrorOptions } from '../../shared/errors.js';

export type GitCredentials = { kind: 'basic'; username: string; password: string } | { kind: 'ssh'; identity: string; knownHosts?: string };

export class CredentialsError extends ServiceError {
  constructor(message: string, options: ServiceErrorOptions = {}) {
    super('INVALID_CREDENTIALS', message, options);
  }
}

/** From a Secret's decoded data: `username`+`password` (HTTPS), or `identity` (+`known_hosts`) (SSH). */
export function credentialsFromSecretData(data: Record<string, string>, secret: string): GitCredentials {
  if (data['identity'])
    return { kind: 'ssh', identity: data['identity'], ...(data['known_hosts'] ? { knownHosts: data['known_hosts'] } : {}) };
  if (data['password'] !== undefined) return { kind: 'basic', username: data['username'] || 'git', password: data['password'] };
  throw new CredentialsError(`Secret ${secret} has neither "password" (with "username") for HTTPS nor "identity" for SSH`);
}

/** What git needs to run; nothing else from our process environment (which may hold tokens) is passed on. */
const KEPT_FROM_PROCESS = [
  'PATH',
  'HOME',
  'LANG',
  'TMPDIR',
  'SSL_CERT_FILE',
  'SSL_CERT_DIR',
  'HTTPS_PROXY',
  'HTTP_PROXY',
  'NO_PROXY',
  'https_proxy',
  'http_proxy',
  'no_proxy',
];

function processEnv(): Record<string, string> {
  const env: Record<string, string> = {};
  for (const k of KEPT_FROM_PROCESS) if (process.env[k]) env[k] = process.env[k]!;
  return env;
}

/** For commands that never leave the machine (checkout, log, commit): no credentials, no prompts. */
export function localGitEnv(author?: { name: string; email: string }): Record<string, string> {
  return {
    ...processEnv(),
    GIT_TERMINAL_PROMPT: '0',
    ...(author
      ? { GIT_AUTHOR_NAME: author.name, GIT_AUTHOR_EMAIL: author.email, GIT_COMMITTER_NAME: author.name, GIT_COMMITTER_EMAIL: author.email }
      : {}),
  };
}

/** The environment for one remote git invocation, plus a clean-up for any key files written. */
export interface GitAuthEnv {
  env: Record<string, string>;
  dispose(): Promise<void>;
}

export interface HostKeyOptions {
  /**
   * The documented opt-out (`git.insecureAcceptNewHostKey`): without `known_hosts` in the Secret, trust the first key
   * a host shows and keep it in this file, so later connections are checked against it.
   */
  acceptNewHostKeyFile?: string;
}

const REMOTE_ENV = {
  // Never wait for a password prompt; fail at once instead.
  GIT_TERMINAL_PROMPT: '0',
  // Remote transports only: no ext::, no file://, whatever a URL or a redirect says.
  GIT_ALLOW_PROTOCOL: 'https:http:ssh',
};

/**
 * How long a Git server may stay silent before the transfer is given up (issue 19, item 4): a host that accepts the
 * connection and never answers otherwise holds a deployment (and its start slot) until the command's own timeout.
 */
export const SILENCE_LIMIT_SECONDS = 20;
/** How long SSH may take to connect (git has no such knob for HTTPS; there the attempt's own bound applies). */
export const SSH_CONNECT_SECONDS = 10;

/**
 * Settings every remote command gets through GIT_CONFIG_* (never as `-c` arguments, which a URL could not reach anyway):
 * - below 1 KB/s for SILENCE_LIMIT_SECONDS the transfer is given up (git's http.lowSpeedLimit/lowSpeedTime, which
 *   it hands to curl as CURLOPT_LOW_SPEED_LIMIT/TIME: git/http.c, get_curl_handle);
 * - no redirects at all (http.followRedirects=false, git/http.c): a server must not send our request, and with it
 *   the credentials header, to another host, nor make us report what another host answered (issue 19, item 8).
 */
const REMOTE_CONFIG: ReadonlyArray<readonly [string, string]> = [
  ['http.lowSpeedLimit', '1000'],
  ['http.lowSpeedTime', String(SILENCE_LIMIT_SECONDS)],
  ['http.followRedirects', 'false'],
];

/** At most this many GIT_CONFIG_* pairs are passed (command.ts lets exactly these through simple-git). */
export const MAX_CONFIG_PAIRS = 6;

/** `pairs` as GIT_CONFIG_COUNT/KEY_n/VALUE_n (git's documented way to pass settings in the environment). */
function configEnv(pairs: ReadonlyArray<readonly [string, string]>): Record<string, string> {
  if (pairs.length > MAX_CONFIG_PAIRS) throw new Error(`at most ${MAX_CONFIG_PAIRS} git settings can be passed`);
  const env: Record<string, string> = { GIT_CONFIG_COUNT: String(pairs.length) };
  pairs.forEach(([key, value], i) => {
    env[`GIT_CONFIG_KEY_${i}`] = key;
    env[`GIT_CONFIG_VALUE_${i}`] = value;
  });
  return env;
}

/**
 * SSH options of every remote command, with or without a key: give up a connection not made in SSH_CONNECT_SECONDS,
 * and a session whose server stays silent for SILENCE_LIMIT_SECONDS (keep-alives every 5 s, 4 missed); never ask.
 */
const SSH_LIMITS = [
  '-o',
  'BatchMode=yes',
  '-o',
  `ConnectTimeout=${SSH_CONNECT_SECONDS}`,
  '-o',
  'ServerAliveInterval=5',
  '-o',
  `ServerAliveCountMax=${SILENCE_LIMIT_SECONDS / 5}`,
];

export interface RemoteOptions extends HostKeyOptions {
  /**
   * `host:port:address` entries for curl (git's http.curloptResolve): the address the host check approved is the
   * one connected to, whatever the name resolves to a moment later (see hosts.ts).
   */
  resolve?: string[];
}

/** Single-quoted for the shell that runs GIT_SSH_COMMAND. */
function shellQuote(text: string): string {
  return `'${text.replaceAll("'", `'\\''`)}'`;
}

export async function gitAuthEnv(
  credentials: GitCredentials | undefined,
  scratchDir: string,
  remote: RemoteOptions = {},
): Promise<GitAuthEnv> {
  const config: Array<readonly [string, string]> = [
    ...REMOTE_CONFIG,
    ...(remote.resolve ?? []).map((r) => ['http.curloptResolve', r] as const),
  ];
  const base = { ...processEnv(), ...REMOTE_ENV };
  const ssh = (options: string[]) => ({ GIT_SSH_COMMAND: ['ssh', ...SSH_LIMITS, ...options].join(' ') });
  if (!credentials) return { env: { ...base, ...configEnv(config), ...ssh([]) }, dispose: async () => {} };
  if (credentials.kind === 'basic') {
    const token = Buffer.from(`${credentials.username}:${credentials.password}`).toString('base64');
    return {
      env: { ...base, ...configEnv([...config, ['http.extraHeader', `Authorization: Basic ${token}`]]), ...ssh([]) },
      dispose: async () => {},
    };
  }
  if (!credentials.knownHosts && !remote.acceptNewHostKeyFile) {
    throw new CredentialsError(
      'the Git Secret has an SSH "identity" but no "known_hosts", so the Git host cannot be told from an impostor; add the host\'s key ' +
        '(e.g. the output of `ssh-keyscan <host>`) as "known_hosts" to the Secret, or, knowing the risk, set git.insecureAcceptNewHostKey: true ' +
        'in the settings to trust the first key the host shows',
    );
  }
  const dir = join(scratchDir, `ssh-${randomUUID()}`);
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const dispose = () => rm(dir, { recursive: true, force: true });
  try {
    const key = join(dir, 'identity');
    await writeFile(key, credentials.identity.endsWith('\n') ? credentials.identity : `${credentials.identity}\n`, { mode: 0o600 });
    await chmod(key, 0o600);
    const options = ['-i', shellQuote(key), '-o', 'IdentitiesOnly=yes'];
    if (credentials.knownHosts) {
      const knownHosts = join(dir, 'known_hosts');
      await writeFile(knownHosts, credentials.knownHosts, { mode: 0o600 });
      options.push('-o', shellQuote(`UserKnownHostsFile=${knownHosts}`), '-o', 'StrictHostKeyChecking=yes');
    } else {
      options.push('-o', shellQuote(`UserKnownHostsFile=${remote.acceptNewHostKeyFile!}`), '-o', 'StrictHostKeyChecking=accept-new');
    }
    return { env: { ...base, ...configEnv(config), ...ssh(options) }, dispose };
  } catch (err: unknown) {
    await dispose();
    throw err;
  }
}

/** Key files a crashed process left behind: removed before the first command of a new one. */
export async function removeStaleKeyFiles(scratchDir: string): Promise<void> {
  await rm(scratchDir, { recursive: true, force: true });
}

const TOKEN_PARAMS = /([?&](?:access_token|private_token|oauth_token|token|password|passwd|secret|key|sig|signature)=)[^&#\s'"]+/gi;

/** Masks anything that looks like a secret in a message before it is logged or sent to Keptn. */
export function redact(text: string, credentials?: GitCredentials): string {
  let out = text
    .replace(/(Authorization:\s*\w+\s+)[^\s'"]+/gi, '$1***')
    .replace(/(\/\/)[^/@\s:]+:[^/@\s]+@/g, '$1***@')
    .replace(TOKEN_PARAMS, '$1***');
  if (credentials?.kind === 'basic' && credentials.password) {
    out = out.split(credentials.password).join('***');
    out = out.split(Buffer.from(`${credentials.username}:${credentials.password}`).toString('base64')).join('***');
  }
  if (credentials?.kind === 'ssh') out = out.replace(/-----BEGIN[^-]*PRIVATE KEY-----[\s\S]*?-----END[^-]*PRIVATE KEY-----/g, '***');
  return out;
}
