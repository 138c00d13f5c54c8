/**
 * Which Git repository a URL names, so that the settings' `git.url` and the URL a Flux source or an Argo CD Application
 * reads can be compared: the same repository, however each of them spells it.
 *
 * "Same repository" here means: the same host (case-insensitive, as DNS is), the same path (case-sensitive: plain Git
 * servers and Gitea keep `org/Repo` and `org/repo` apart), and the same server port when both URLs use the same
 * transport. Across transports the port is not compared: a forge serves one repository over HTTPS on one port and
 * over SSH on another (`ssh://git@host:2222/org/repo.git` and `https://host/org/repo` are one repository on Gitea,
 * GitLab and Forgejo, whose SSH URLs are the HTTPS path on the SSH port). Within one transport two ports are two
 * servers. http and https count as one transport (a forge redirects one to the other), each with its default port.
 *
 * What is left out on purpose: user names and passwords (they choose who asks, not what is read), a `.git` suffix and
 * trailing slashes (every forge, Flux and Argo CD read `repo` and `repo.git` as one; argo-cd util/git/git.go
 * NormalizeGitURL drops the suffix too). What is refused rather than guessed: backslashes and percent signs (git, curl
 * and URL parsers read them differently), `.` and `..` path segments (curl removes them, a text comparison does not),
 * query strings and fragments, and anything not https://, http://, ssh:// or scp-like `user@host:path`. A URL that is
 * refused matches nothing, so a write is refused, never sent somewhere a reader did not mean.
 */

export interface RepositoryKey {
  /** `web` for http and https, `ssh` for ssh:// and `user@host:path`. */
  transport: 'web' | 'ssh';
  /** Lower case; IPv6 in brackets. */
  host: string;
  /** The port when it is not the scheme's default, else undefined. */
  port: number | undefined;
  /** Without leading or trailing slashes and without `.git`. */
  path: string;
}

const DEFAULT_PORTS: Record<string, number> = { https: 443, http: 80, ssh: 22 };
const HOSTNAME = /^[a-z0-9]([a-z0-9.-]{0,251}[a-z0-9])?$/;
const IPV6 = /^\[[0-9a-f:.]{2,45}\]$/;

/** The repository a Git URL names, or why it cannot be told. */
export function repositoryKey(url: string): RepositoryKey | { problem: string } {
  const text = url.trim();
  if (/[^\x21-\x7e]/.test(text)) return { problem: 'contains white space, control or non-ASCII characters' };
  if (/[\\%]/.test(text)) return { problem: 'contains a backslash or a percent sign, which git and URL parsers read differently' };
  if (/[?#]/.test(text)) return { problem: 'carries a query string or fragment' };
  const scheme = /^([a-z][a-z0-9+.-]*):\/\//i.exec(text);
  let authority: string;
  let path: string;
  let name: string;
  if (scheme) {
    name = scheme[1]!.toLowerCase();
    if (DEFAULT_PORTS[name] === undefined) return { problem: `scheme ${name}:// is not one of https, http, ssh` };
    const rest = text.slice(scheme[0].length);
    const slash = rest.indexOf('/');
    authority = slash < 0 ? rest : rest.slice(0, slash);
    path = slash < 0 ? '' : rest.slice(slash);
  } else {
    // scp-like `user@host:path` (git's rule: a colon before any slash and no scheme); SSH on port 22.
    const scp = /^([^@/:]+@)?([^:/]+|\[[^\]/]+\]):(?!\/\/)(.*)$/.exec(text);
    if (!scp || !scp[1]) return { problem: 'is not an https://, http://, ssh:// or user@host:path URL' };
    name = 'ssh';
    authority = scp[2]!;
    path = scp[3]!;
  }
  const at = authority.lastIndexOf('@');
  const hostPort = (at >= 0 ? authority.slice(at + 1) : authority).toLowerCase();
  const m = /^(\[[^\]]*\]|[^:]*)(?::([0-9]{1,5}))?$/.exec(hostPort);
  if (!m) return { problem: 'has an invalid port' };
  const host = m[1]!;
  if (!HOSTNAME.test(host) && !IPV6.test(host)) return { problem: 'has a host that is not a plain host name or IP address' };
  const port = m[2] === undefined ? DEFAULT_PORTS[name]! : Number(m[2]);
  if (port < 1 || port > 65535) return { problem: 'has an invalid port' };
  const segments = path.split('/').filter((s) => s !== '');
  if (segments.some((s) => s === '.' || s === '..')) return { problem: 'has "." or ".." in its path' };
  const joined = segments.join('/').replace(/\.git$/, '');
  if (joined === '') return { problem: 'names no repository path' };
  return {
    transport: name === 'ssh' ? 'ssh' : 'web',
    host,
    port: port === DEFAULT_PORTS[name] ? undefined : port,
    path: joined,
  };
}

/** Whether two Git URLs name the same repository (see above); false when either cannot be told. */
export function sameRepository(a: string, b: string): boolean {
  const x = repositoryKey(a);
  const y = repositoryKey(b);
  if ('problem' in x || 'problem' in y) return false;
  if (x.host !== y.host || x.path !== y.path) return false;
  return x.transport !== y.transport || x.port === y.port;
}
