/**
 * Which Git hosts the service may reach (issue 19, item 8). Settings are written by teams, and a `git.url` naming
 * the cloud's metadata address, a cluster-internal Service or the pod's own loopback would make the service fetch
 * from there and report the answer in `.finished`. Such hosts are refused unless the operator allows them by name
 * (ALLOWED_GIT_HOSTS); the address a name resolves to is checked too, and HTTPS connects to exactly that address.
 */
import { lookup as dnsLookup } from 'node:dns/promises';
import { BlockList, isIP } from 'node:net';
import { gitEndpoint, hostEntryAdmits, type GitEndpoint } from '../grants.js';
import { GitError } from './command.js';
import { isTransient } from '../../shared/failures.js';

export interface HostPolicy {
  /** `host` or `host:port` entries (as in a Secret's git-hosts annotation) that may be reached whatever they are. */
  allowed: readonly string[];
}

export type Lookup = (host: string) => Promise<Array<{ address: string; family: number }>>;

const systemLookup: Lookup = (host) => dnsLookup(host, { all: true, verbatim: true });

/**
 * Addresses that are not on the internet: this host, the pod and cluster networks, link-local (the cloud metadata
 * endpoints, 169.254.169.254 and fd00:ec2::254), carrier-grade NAT, multicast and reserved ranges (IANA special-purpose
 * registries for IPv4 and IPv6). IPv4-mapped IPv6 addresses are checked as the IPv4 address they carry.
 */
const INTERNAL = new BlockList();
for (const [net, prefix] of [
  ['0.0.0.0', 8],
  ['10.0.0.0', 8],
  ['100.64.0.0', 10],
  ['127.0.0.0', 8],
  ['169.254.0.0', 16],
  ['172.16.0.0', 12],
  ['192.0.0.0', 24],
  ['192.168.0.0', 16],
  ['198.18.0.0', 15],
  ['224.0.0.0', 3],
] as const)
  INTERNAL.addSubnet(net, prefix, 'ipv4');
for (const [net, prefix] of [
  ['::', 127],
  ['64:ff9b:1::', 48],
  ['100::', 64],
  ['fc00::', 7],
  ['fe80::', 10],
  ['ff00::', 8],
] as const)
  INTERNAL.addSubnet(net, prefix, 'ipv6');

export function isInternalAddress(address: string): boolean {
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address)?.[1];
  if (mapped) return INTERNAL.check(mapped, 'ipv4');
  const family = isIP(address);
  if (family === 0) return true;
  return INTERNAL.check(address, family === 4 ? 'ipv4' : 'ipv6');
}

/**
 * Names that only mean something inside the cluster or on this machine: single labels (found through the pod's DNS
 * search list, `kubernetes`, `my-gitea.gitea`), and the suffixes Kubernetes and mDNS resolve locally.
 */
export function isInternalName(host: string): boolean {
  if (isIP(host) || host.startsWith('[')) return false;
  const name = host.replace(/\.$/, '');
  return !name.includes('.') || /(^|\.)(localhost|local|internal|svc|cluster\.local|localdomain|home\.arpa)$/.test(name);
}

/**
 * Whether `url` may be reached, and how: throws GIT_HOST_REFUSED naming the setting to change, or returns the
 * `host:port:address` entries that pin HTTPS to the addresses checked (none for SSH, for an IP literal, or for an
 * allowed host).
 */
export async function checkGitHost(url: string, policy: HostPolicy, lookup: Lookup = systemLookup): Promise<string[]> {
  const endpoint = gitEndpoint(url);
  if ('problem' in endpoint) throw refused(`the Git URL ${endpoint.problem}`);
  if (policy.allowed.some((entry) => entry === '*' || hostEntryAdmits(entry, endpoint))) return [];
  const plain = endpoint.host.replace(/^\[|\]$/g, '');
  if (isInternalName(endpoint.host)) throw refused(`${shown(endpoint)} is a cluster-internal or local host name`, endpoint);
  if (isIP(plain)) {
    if (isInternalAddress(plain)) throw refused(`${shown(endpoint)} is an internal address`, endpoint);
    return [];
  }
  let addresses: Array<{ address: string }>;
  try {
    addresses = await lookup(plain);
  } catch (err: unknown) {
    throw new GitError(
      'GIT_HOST_UNRESOLVED',
      `cannot resolve the Git host ${plain}: ${(err as NodeJS.ErrnoException).code ?? 'unknown error'}`,
      // EAI_AGAIN (the resolver failed for now) passes; ENOTFOUND (no such name) does not (shared/failures.ts).
      { cause: err, retryable: isTransient({ code: (err as NodeJS.ErrnoException).code ?? 'EAI_AGAIN' }) },
    );
  }
  const internal = addresses.find((a) => isInternalAddress(a.address));
  if (internal) throw refused(`${shown(endpoint)} resolves to the internal address ${internal.address}`, endpoint);
  if (!/^https?:/i.test(url) || !addresses.length) return [];
  // curl takes the first working address of the entry; IPv6 addresses go in brackets (curl's CURLOPT_RESOLVE syntax).
  const list = addresses.map((a) => (isIP(a.address) === 6 ? `[${a.address}]` : a.address)).join(',');
  return [`${plain}:${endpoint.port}:${list}`];
}

function shown(e: GitEndpoint): string {
  return `${e.host}:${e.port}`;
}

function refused(why: string, endpoint?: GitEndpoint): GitError {
  const entry = endpoint
    ? ` (add "${endpoint.host}" to the service's ALLOWED_GIT_HOSTS, chart value git.allowedHosts, if it is meant to be reached)`
    : '';
  return new GitError('GIT_HOST_REFUSED', `refusing to contact the Git host: ${why}${entry}`, { retryable: false });
}
