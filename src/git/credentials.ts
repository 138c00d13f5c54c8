/**
 * Git credentials and how they reach git without ever being part of a URL, an argument list or a log line:
 * HTTPS through an `http.extraHeader` passed in the environment (GIT_CONFIG_*), SSH through a key file
 * readable only by us. The Secret layout is Flux's GitRepository one, so teams can reuse the same Secret.
 */
import { randomUUID } from 'node:crypto';
import { chmod, mkdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ServiceError, type ServiceErrorOptions } from '../errors.js';

export type GitCredentials =
  | { kind: 'basic'; username: string; password: string }
  | { kind: 'ssh'; identity: string; knownHosts?: string };

export class CredentialsError extends ServiceError {
  constructor(message: string, options: ServiceErrorOptions = {}) {
    super('INVALID_CREDENTIALS', message, options);
  }
}

/** From a Secret's decoded data: `username`+`password` (HTTPS), or `identity` (+`known_hosts`) (SSH). */
export function credentialsFromSecretData(data: Record<string, string>, secret: string): GitCredentials {
  if (data['identity']) return { kind: 'ssh', identity: data['identity'], ...(data['known_hosts'] ? { knownHosts: data['known_hosts'] } : {}) };
  if (data['password'] !== undefined) return { kind: 'basic', username: data['username'] || 'git', password: data['password'] };
  throw new CredentialsError(`Secret ${secret} has neither "password" (with "username") for HTTPS nor "identity" for SSH`);
}

/** The environment for one git invocation, plus a clean-up for any key files written. */
export interface GitAuthEnv {
  env: Record<string, string>;
  dispose(): Promise<void>;
}

const BASE_ENV = {
  // Never wait for a password prompt; fail at once instead.
  GIT_TERMINAL_PROMPT: '0',
  // Remote transports only: no ext::, no file://, whatever a URL or a redirect says.
  GIT_ALLOW_PROTOCOL: 'https:http:ssh',
};

export async function gitAuthEnv(credentials: GitCredentials | undefined, scratchDir: string): Promise<GitAuthEnv> {
  if (!credentials) return { env: { ...BASE_ENV }, dispose: async () => {} };
  if (credentials.kind === 'basic') {
    const token = Buffer.from(`${credentials.username}:${credentials.password}`).toString('base64');
    return {
      env: { ...BASE_ENV, GIT_CONFIG_COUNT: '1', GIT_CONFIG_KEY_0: 'http.extraHeader', GIT_CONFIG_VALUE_0: `Authorization: Basic ${token}` },
      dispose: async () => {},
    };
  }
  const dir = join(scratchDir, `ssh-${randomUUID()}`);
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const key = join(dir, 'identity');
  await writeFile(key, credentials.identity.endsWith('\n') ? credentials.identity : `${credentials.identity}\n`, { mode: 0o600 });
  await chmod(key, 0o600);
  const options = ['-i', key, '-o', 'IdentitiesOnly=yes', '-o', 'BatchMode=yes'];
  if (credentials.knownHosts) {
    const knownHosts = join(dir, 'known_hosts');
    await writeFile(knownHosts, credentials.knownHosts, { mode: 0o600 });
    options.push('-o', `UserKnownHostsFile=${knownHosts}`, '-o', 'StrictHostKeyChecking=yes');
  } else {
    // Without known_hosts in the Secret, trust the host key on first use only.
    options.push('-o', `UserKnownHostsFile=${join(dir, 'known_hosts')}`, '-o', 'StrictHostKeyChecking=accept-new');
  }
  return {
    env: { ...BASE_ENV, GIT_SSH_COMMAND: ['ssh', ...options].join(' ') },
    dispose: () => rm(dir, { recursive: true, force: true }),
  };
}

/** Masks anything that looks like a secret in a message before it is logged or sent to Keptn. */
export function redact(text: string, credentials?: GitCredentials): string {
  let out = text.replace(/(Authorization:\s*\w+\s+)[^\s'"]+/gi, '$1***').replace(/(\/\/)[^/@\s:]+:[^/@\s]+@/g, '$1***@');
  if (credentials?.kind === 'basic' && credentials.password) {
    out = out.split(credentials.password).join('***');
    out = out.split(Buffer.from(`${credentials.username}:${credentials.password}`).toString('base64')).join('***');
  }
  if (credentials?.kind === 'ssh') out = out.replace(/-----BEGIN[^-]*PRIVATE KEY-----[\s\S]*?-----END[^-]*PRIVATE KEY-----/g, '***');
  return out;
}
