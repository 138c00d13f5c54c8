/**
 * OCI image references, parsed strictly: whatever reaches a Git file must be exactly one well-formed reference.
 * Grammar after the distribution/reference spec: [registry[:port]/]path[:tag][@algo:hex].
 */
import { ServiceError, type ServiceErrorOptions } from '../errors.js';

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
