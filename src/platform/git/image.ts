/**
 * OCI image references, parsed strictly: whatever reaches a Git file must be exactly one well-formed reference.
 * Grammar after the distribution/reference spec: [registry[:port]/]path[:tag][@algo:hex].
 */
import { ServiceError, type ServiceErrorOptions } from '../../shared/errors.js';

export interface ImageRef {
  /** Repository including registry, e.g. `ghcr.io/podtato/head`. */
  name: string;
  tag?: string;
  digest?: string;
}

const COMPONENT = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$/;
const REGISTRY =
  /^(?:localhost|[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)*|\[[0-9a-fA-F:]+\])(?::[0-9]{1,5})?$/;
const TAG = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/;
const DIGEST = /^[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[a-fA-F0-9]{32,}$/;
const MAX_LENGTH = 512;

export class ImageRefError extends ServiceError {
  constructor(message: string, options: ServiceErrorOptions = {}) {
    super('INVALID_IMAGE', message, options);
  }
}

export function parseImageRef(input: string): ImageRef {
  const fail = (why: string) => new ImageRefError(`image ${JSON.stringify(input.slice(0, 80))} is not a valid image reference: ${why}`);
  if (input.length === 0) throw fail('it is empty');
  if (input.length > MAX_LENGTH) throw fail(`longer than ${MAX_LENGTH} characters`);
  if (/\s/.test(input)) throw fail('it contains white space');

  let rest = input;
  let digest: string | undefined;
  const at = rest.indexOf('@');
  if (at >= 0) {
    digest = rest.slice(at + 1);
    rest = rest.slice(0, at);
    if (!DIGEST.test(digest)) throw fail('the digest must look like sha256:<hex>');
  }
  let tag: string | undefined;
  const lastSlash = rest.lastIndexOf('/');
  const colon = rest.lastIndexOf(':');
  if (colon > lastSlash) {
    tag = rest.slice(colon + 1);
    rest = rest.slice(0, colon);
    if (!TAG.test(tag)) throw fail('the tag may hold only letters, digits, "_", "." and "-", at most 128');
  }
  const parts = rest.split('/');
  const first = parts[0] ?? '';
  const hasRegistry =
    parts.length > 1 && (first.includes('.') || first.includes(':') || first === 'localhost' || first !== first.toLowerCase());
  if (hasRegistry && !REGISTRY.test(first)) throw fail(`${JSON.stringify(first)} is not a registry host`);
  const path = hasRegistry ? parts.slice(1) : parts;
  if (path.length === 0 || !path.every((p) => COMPONENT.test(p))) {
    throw fail('the repository path must be lower-case letters, digits and separators ("/", ".", "_", "-")');
  }
  return { name: rest, ...(tag ? { tag } : {}), ...(digest ? { digest } : {}) };
}

export function formatImageRef(ref: ImageRef): string {
  return `${ref.name}${ref.tag ? `:${ref.tag}` : ''}${ref.digest ? `@${ref.digest}` : ''}`;
}

/**
 * A reference as the container runtime resolves it, read leniently: the running side comes from objects anyone may
 * write, so nothing here throws. Docker Hub's implicit registry and `library/` namespace are made explicit
 * (distribution/reference normalize.go ParseNormalizedNamed: `nginx` is `docker.io/library/nginx`, and
 * `index.docker.io` is the same registry); names compare lower-case (the path is lower-case by the grammar, the
 * registry host is case-insensitive); digests compare lower-case.
 */
function canonical(ref: string): ImageRef | undefined {
  let rest = ref.trim();
  if (!rest) return undefined;
  let digest: string | undefined;
  const at = rest.indexOf('@');
  if (at >= 0) {
    digest = rest.slice(at + 1).toLowerCase() || undefined;
    rest = rest.slice(0, at);
  }
  let tag: string | undefined;
  const colon = rest.lastIndexOf(':');
  if (colon > rest.lastIndexOf('/')) {
    tag = rest.slice(colon + 1) || undefined;
    rest = rest.slice(0, colon);
  }
  if (!rest) return undefined;
  const parts = rest.toLowerCase().split('/');
  const first = parts[0]!;
  const hasRegistry = parts.length > 1 && (first.includes('.') || first.includes(':') || first === 'localhost');
  let registry = hasRegistry ? first : 'docker.io';
  if (registry === 'index.docker.io' || registry === 'registry-1.docker.io') registry = 'docker.io';
  const path = hasRegistry ? parts.slice(1) : parts;
  if (registry === 'docker.io' && path.length === 1) path.unshift('library');
  return { name: `${registry}/${path.join('/')}`, ...(tag ? { tag } : {}), ...(digest ? { digest } : {}) };
}

const lastSegment = (name: string) => name.slice(name.lastIndexOf('/') + 1);

/**
 * Whether a running (or templated) image is the one we wrote: the one matcher of every tool (Flux inventories,
 * Argo CD's image summary, Rollout and Canary templates).
 *
 * - The repository: the same once normalised, or the same last path segment. With `part: tag` only the tag reaches
 *   Git and the manifest keeps its own repository, which a chart or a registry mirror may name differently
 *   (`mirror.example.com/podtato/head` for `ghcr.io/podtato/head`); what this check exists to catch is the old
 *   version still running, not a renamed registry.
 * - The content: when both sides carry a digest, the digests decide, whatever tag text either side renders around
 *   it (`head:0.2@sha256:x` and `head@sha256:x` are the same content; the runtime pulls by digest and ignores the
 *   tag: distribution/reference, a reference with a digest is canonical by the digest).
 * - We wrote a digest and the running side names only a tag: not a match, a tag says nothing about content.
 * - We wrote a tag only: the tags must be equal (no tag is `latest`); a running reference with a digest and no tag
 *   cannot be told apart without asking the registry, so it is not a match.
 */
export function sameImage(written: string, running: string): boolean {
  const w = canonical(written);
  const r = canonical(running);
  if (!w || !r) return false;
  if (w.name !== r.name && lastSegment(w.name) !== lastSegment(r.name)) return false;
  if (w.digest && r.digest) return w.digest === r.digest;
  if (w.digest) return false;
  return (w.tag ?? 'latest') === (r.tag ?? (r.digest ? undefined : 'latest'));
}

/** Whether every image we wrote is among `held` (sameImage); true when we wrote none. */
export function carriesAll(written: readonly string[], held: readonly string[]): boolean {
  return written.every((w) => held.some((h) => sameImage(w, h)));
}
