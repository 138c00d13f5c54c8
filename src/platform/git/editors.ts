/**
 * Pure manifest editors: write an image into YAML text and return the new text.
 *
 * Existing values are changed in place on the concrete syntax tree, so comments, quoting, indentation and every
 * other byte of the file stay as the team wrote them; only adding or removing keys re-renders the document.
 * Aliases are never expanded (no alias bombs), and a path that does not exist is an error, never silently created:
 * a typo must not turn into a "successful" deployment that changed nothing.
 */
import {
  Composer,
  CST,
  Parser,
  isAlias,
  isMap,
  isScalar,
  isSeq,
  parse as parseYaml,
  type Document,
  type Node,
  type Scalar,
  type YAMLMap,
} from 'yaml';
import { formatImageRef, type ImageRef } from './image.js';
import { ServiceError, type ServiceErrorOptions } from '../../shared/errors.js';
import { firstDuplicateKey } from '../../shared/yaml.js';

export type ImagePart = 'ref' | 'name' | 'tag' | 'digest';

export type ImageWrite =
  /** The kustomize `images:` entry whose `name` is the image name used in the manifests. */
  | { kind: 'kustomizeImage'; name: string }
  /** One scalar at a dot path, e.g. `spec.values.image.tag` or `containers[0].image`. */
  | { kind: 'yamlPath'; path: string; part: ImagePart; document?: number }
  /** Every scalar carrying Flux's setter marker `# {"$imagepolicy": "<namespace>:<policy>[:tag|:name|:digest]"}`. */
  | { kind: 'imagePolicy'; policy: string };

export interface EditResult {
  changed: boolean;
  content: string;
}

export class EditError extends ServiceError {
  constructor(message: string, options: ServiceErrorOptions = {}) {
    super('MANIFEST_EDIT_FAILED', message, options);
  }
}

export const MAX_MANIFEST_BYTES = 1024 * 1024;

export function applyImageWrite(source: string, write: ImageWrite, image: ImageRef): EditResult {
  if (Buffer.byteLength(source) > MAX_MANIFEST_BYTES) throw new EditError(`file is larger than ${MAX_MANIFEST_BYTES} bytes`);
  const file = new YamlFile(source);
  switch (write.kind) {
    case 'kustomizeImage':
      setKustomizeImage(file, write.name, image);
      break;
    case 'yamlPath':
      file.setScalar(file.document(write.document ?? 0), parsePath(write.path), imagePart(image, write.part), write.path);
      break;
    case 'imagePolicy':
      setImagePolicyMarkers(file, write.policy, image);
      break;
  }
  return file.result();
}

export function imagePart(image: ImageRef, part: ImagePart): string {
  switch (part) {
    case 'ref':
      return formatImageRef(image);
    case 'name':
      return image.name;
    case 'tag':
      if (!image.tag) throw new EditError(`image ${formatImageRef(image)} has no tag to write`);
      return image.tag;
    case 'digest':
      if (!image.digest) throw new EditError(`image ${formatImageRef(image)} has no digest to write`);
      return image.digest;
  }
}

/** `a.b[0].c` → ['a', 'b', 0, 'c']. Keys with dots can be quoted: `metadata.annotations["x.io/y"]`. */
export function parsePath(path: string): Array<string | number> {
  const malformed = () => new EditError(`path ${JSON.stringify(path)} is malformed`);
  const segments: Array<string | number> = [];
  // Each step is a key (first, or after "."), an index "[n]", or a quoted key '["k"]'.
  const step = /\.?([^.[\]"]+)|\[(\d+)\]|\["([^"]+)"\]/y;
  let i = 0;
  while (i < path.length) {
    step.lastIndex = i;
    const m = step.exec(path);
    if (!m) throw malformed();
    const dotted = path[i] === '.';
    if (m[1] !== undefined) {
      // A bare key needs a dot before it, except at the very start.
      if (dotted === (i === 0)) throw malformed();
      segments.push(m[1]);
    } else segments.push(m[2] !== undefined ? Number(m[2]) : m[3]!);
    i = step.lastIndex;
  }
  if (segments.length === 0) throw malformed();
  return segments;
}

/** A YAML stream kept with its concrete syntax, edited in place where possible. */
class YamlFile {
  private readonly tokens: CST.Token[];
  private readonly docs: Document.Parsed[];
  private changed = false;
  private restructured = false;

  constructor(private readonly source: string) {
    ({ tokens: this.tokens, docs: this.docs } = parseStream(source));
  }

  document(index: number): Document.Parsed {
    const doc = this.docs[index];
    if (!doc) throw new EditError(`the file has ${this.docs.length} YAML document(s); document ${index} does not exist`);
    return doc;
  }

  all(): Document.Parsed[] {
    return this.docs;
  }

  /** Sets an existing scalar; the path must exist. */
  setScalar(doc: Document.Parsed, path: Array<string | number>, value: string, label: string): void {
    const node = doc.getIn(path, true);
    if (node === undefined) throw new EditError(`key ${label} not found`);
    if (!isScalar(node))
      throw new EditError(`key ${label} holds a ${isMap(node) ? 'mapping' : isSeq(node) ? 'list' : 'non-scalar'}, not a value`);
    this.setNode(node, value);
  }

  setNode(node: Scalar, value: string): void {
    // Only the same string is in place: `tag: true` or `tag: 1.0` print alike but read as a boolean and a number.
    if (node.value === value) return;
    const token = node.srcToken;
    if (token) {
      CST.setScalarValue(token, value, { type: scalarStyle(token, value) });
    } else {
      node.value = value;
      this.restructured = true;
    }
    node.value = value;
    this.changed = true;
  }

  /** For edits that add or remove keys: the document is rendered anew from its node tree. */
  markRestructured(): void {
    this.changed = true;
    this.restructured = true;
  }

  /**
   * The edited text, once it has been parsed again and reads back as the edited model, value for value: an edit that
   * would push something else (a value swallowed by a block scalar, a plain scalar that reads as another type, a
   * broken flow collection) is an error, never a commit.
   */
  result(): EditResult {
    if (!this.changed) return { changed: false, content: this.source };
    const content = this.restructured
      ? this.docs.map((d) => d.toString({ lineWidth: 0 })).join('')
      : this.tokens.map((t) => CST.stringify(t)).join('');
    let again: Document.Parsed[];
    try {
      again = parseStream(content).docs;
    } catch (err: unknown) {
      throw new EditError(
        `the edited file would not be valid YAML (${err instanceof Error ? err.message : String(err)}); nothing was written`,
        { cause: err },
      );
    }
    const where = differenceAt(this.docs, again);
    if (where !== undefined) throw new EditError(`the edited file would not read back as written (at ${where}); nothing was written`);
    return { changed: true, content };
  }
}

/**
 * Keep the author's quoting unless a plain scalar would read back as something other than our string. A block scalar
 * (`|`, `>`) always ends its value with a line break or folds it; an image reference is one line, so it becomes plain
 * (or double-quoted when plain would change its meaning).
 */
function scalarStyle(token: CST.Token, value: string): Scalar.Type | undefined {
  if (token.type !== 'scalar' && token.type !== 'block-scalar') return undefined;
  let readBack: unknown;
  try {
    readBack = parseYaml(value);
  } catch {
    readBack = undefined;
  }
  if (readBack === value) return token.type === 'block-scalar' ? 'PLAIN' : undefined;
  return 'QUOTE_DOUBLE';
}

/**
 * Parses a YAML stream keeping its syntax. Duplicate keys are refused by one linear pass (`yaml`'s own `uniqueKeys`
 * compares every key with every other: a 40,000-key mapping took 10 s); nesting too deep for the parser is an
 * EditError, not a crash.
 */
function parseStream(source: string): { tokens: CST.Token[]; docs: Document.Parsed[] } {
  let tokens: CST.Token[];
  let docs: Document.Parsed[];
  try {
    tokens = [...new Parser().parse(source)];
    docs = [...new Composer({ keepSourceTokens: true, uniqueKeys: false }).compose(tokens)] as Document.Parsed[];
  } catch (err: unknown) {
    if (err instanceof RangeError) throw new EditError('not valid YAML: nested too deeply', { cause: err });
    throw err;
  }
  const error = docs.flatMap((d) => d.errors)[0];
  if (error) throw new EditError(`not valid YAML: ${error.message.split('\n')[0]!.slice(0, 200)}`);
  for (const doc of docs) {
    const duplicate = firstDuplicateKey(doc.contents);
    if (duplicate !== undefined)
      throw new EditError(`not valid YAML: map keys must be unique (${JSON.stringify(duplicate)} appears twice)`);
  }
  return { tokens, docs };
}

/** A scalar node, or a plain value the model holds where an edit set one without a node (`map.set(key, 'x')`). */
function isValue(x: unknown): boolean {
  return isScalar(x) || x === null || x === undefined || (typeof x !== 'object' && typeof x !== 'function');
}

function valueOf(x: unknown): unknown {
  return isScalar(x) ? x.value : (x ?? null);
}

function sameScalar(a: unknown, b: unknown): boolean {
  if (Object.is(a, b)) return true;
  return typeof a === 'object' && typeof b === 'object' && a !== null && b !== null && String(a) === String(b);
}

/** Where two parsed streams differ as data (comments and layout aside), or undefined when they read the same. */
function differenceAt(before: Document.Parsed[], after: Document.Parsed[]): string | undefined {
  if (before.length !== after.length) return `the number of documents (${before.length} became ${after.length})`;
  for (const [i, doc] of before.entries()) {
    const stack: Array<[unknown, unknown, string]> = [[doc.contents, after[i]!.contents, `document ${i}`]];
    while (stack.length) {
      const [a, b, at] = stack.pop()!;
      if (isValue(a) || isValue(b)) {
        if (!isValue(a) || !isValue(b) || !sameScalar(valueOf(a), valueOf(b))) return at;
      } else if (isAlias(a) || isAlias(b)) {
        if (!isAlias(a) || !isAlias(b) || a.source !== b.source) return at;
      } else if (isMap(a) || isMap(b)) {
        if (!isMap(a) || !isMap(b) || a.items.length !== b.items.length) return at;
        a.items.forEach((pair, k) => {
          const other = b.items[k]!;
          const key = isValue(pair.key) ? String(valueOf(pair.key)) : String(k);
          stack.push([pair.key, other.key, `${at}: key ${key.slice(0, 100)}`], [pair.value, other.value, `${at}.${key.slice(0, 100)}`]);
        });
      } else if (isSeq(a) || isSeq(b)) {
        if (!isSeq(a) || !isSeq(b) || a.items.length !== b.items.length) return at;
        a.items.forEach((item, k) => stack.push([item, b.items[k], `${at}[${k}]`]));
      } else {
        return at;
      }
    }
  }
  return undefined;
}

function setKustomizeImage(file: YamlFile, name: string, image: ImageRef): void {
  if (!image.tag && !image.digest) throw new EditError(`image ${formatImageRef(image)} needs a tag or a digest for kustomize`);
  const doc = file.document(0);
  const images = doc.get('images', true);
  if (images !== undefined && !isSeq(images)) throw new EditError('images: is not a list');
  const entries = (images?.items ?? []).filter(isMap) as YAMLMap[];
  const entry = entries.find((e) => e.get('name') === name);
  const wanted: Record<'newName' | 'newTag' | 'digest', string | undefined> = {
    newName: image.name === name ? undefined : image.name,
    newTag: image.tag,
    digest: image.digest,
  };
  if (!entry) {
    const fresh: Record<string, string> = { name };
    for (const [k, v] of Object.entries(wanted)) if (v !== undefined) fresh[k] = v;
    if (images) images.add(doc.createNode(fresh));
    else doc.set('images', doc.createNode([fresh]));
    file.markRestructured();
    return;
  }
  for (const [key, value] of Object.entries(wanted)) {
    const node = entry.get(key, true);
    if (value === undefined) {
      if (node !== undefined) {
        entry.delete(key);
        file.markRestructured();
      }
    } else if (isScalar(node)) {
      file.setNode(node, value);
    } else {
      entry.set(key, value);
      file.markRestructured();
    }
  }
}

const MARKER = /^\s*\{\s*"\$imagepolicy"\s*:\s*"([^"]+)"\s*\}\s*$/;

function setImagePolicyMarkers(file: YamlFile, policy: string, image: ImageRef): void {
  let found = 0;
  for (const doc of file.all()) {
    forEachScalar(doc.contents, (node) => {
      const m = node.comment ? MARKER.exec(node.comment) : null;
      if (!m?.[1]) return;
      const [ns, name, part, ...extra] = m[1].split(':');
      if (extra.length || `${ns}:${name}` !== policy) return;
      const which: ImagePart = part === undefined ? 'ref' : part === 'tag' || part === 'name' || part === 'digest' ? part : 'ref';
      if (part !== undefined && which === 'ref') throw new EditError(`marker ${m[1]} has an unknown field ${JSON.stringify(part)}`);
      file.setNode(node, imagePart(image, which));
      found++;
    });
  }
  if (found === 0) throw new EditError(`no {"$imagepolicy": "${policy}"} marker found`);
}

function forEachScalar(node: Node | null | undefined, visit: (node: Scalar) => void): void {
  if (!node) return;
  if (isScalar(node)) visit(node);
  else if (isMap(node)) for (const pair of node.items) forEachScalar(pair.value as Node | null, visit);
  else if (isSeq(node)) for (const item of node.items) forEachScalar(item as Node | null, visit);
}
