// Git over SSH for the tests: Debian's sshd on loopback, key authentication only, serving the bare repositories of a
// GitServer (the same repositories, so HTTPS and SSH see the same history).
import { execFile } from 'node:child_process';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { freePort, spawnPeer, waitUntil, type PeerProcess } from './process.js';
import { createConnection } from 'node:net';

const execFileAsync = promisify(execFile);

export interface SshGitServer {
  /** ssh:// URL of a repository of the GitServer rooted at `reposRoot`. */
  urlOf(repo: string): string;
  /** The client's private key (what a Secret's `identity` holds). */
  identity: string;
  /** The server's host key as a known_hosts line (what a Secret's `known_hosts` holds). */
  knownHosts: string;
  peer: PeerProcess;
  stop(): Promise<void>;
}

export async function startSshGitServer(opts: {
  reposRoot: string;
  workDir: string;
  logDir: string;
  user?: string;
}): Promise<SshGitServer> {
  const dir = opts.workDir;
  await mkdir(dir, { recursive: true, mode: 0o700 });
  // sshd insists on its privilege-separation directory.
  await mkdir('/run/sshd', { recursive: true, mode: 0o755 });
  const keygen = (file: string) =>
    execFileAsync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'keptn-gitops-test', '-f', join(dir, file)]);
  await keygen('host_key');
  await keygen('client_key');
  await writeFile(join(dir, 'authorized_keys'), await readFile(join(dir, 'client_key.pub')), { mode: 0o600 });
  const port = await freePort();
  await writeFile(
    join(dir, 'sshd_config'),
    [
      `Port ${port}`,
      'ListenAddress 127.0.0.1',
      `HostKey ${join(dir, 'host_key')}`,
      `PidFile ${join(dir, 'sshd.pid')}`,
      `AuthorizedKeysFile ${join(dir, 'authorized_keys')}`,
      'PasswordAuthentication no',
      'KbdInteractiveAuthentication no',
      'PermitRootLogin prohibit-password',
      'StrictModes no',
      'UsePAM no',
      '',
    ].join('\n'),
  );
  const peer = await spawnPeer({
    name: 'sshd',
    command: '/usr/sbin/sshd',
    args: ['-D', '-e', '-f', join(dir, 'sshd_config')],
    logDir: opts.logDir,
  });
  await waitUntil(
    'sshd listening',
    () =>
      new Promise<boolean>((resolve) => {
        const socket = createConnection({ host: '127.0.0.1', port }, () => {
          socket.destroy();
          resolve(true);
        });
        socket.once('error', () => resolve(false));
      }),
    { timeoutMs: 10_000, peer },
  );
  const hostKey = (await readFile(join(dir, 'host_key.pub'), 'utf8')).trim().split(' ').slice(0, 2).join(' ');
  const user = opts.user ?? 'root';
  return {
    urlOf: (repo) => `ssh://${user}@127.0.0.1:${port}${join(opts.reposRoot, `${repo}.git`)}`,
    identity: await readFile(join(dir, 'client_key'), 'utf8'),
    knownHosts: `[127.0.0.1]:${port} ${hostKey}\n`,
    peer,
    stop: () => peer.stop(),
  };
}
