/**
 * YAML checks in linear time, shared by the settings loader and the manifest editors. `yaml`'s own `uniqueKeys`
 * compares every key of a mapping with every other: a 40,000-key mapping blocked the event loop for 10 s (17 s for a
 * 256 KB settings file). Here one pass with a set per mapping, without recursion (a hostile file may nest deeply) and
 * without following aliases.
 */
import { isMap, isPair, isScalar, isSeq, parseDocument } from 'yaml';

/** Identity of a scalar key as `yaml` compares them (the value, with its type), or undefined for complex keys. */
function keyIdentity(key: unknown): string | undefined {
  const value = isScalar(key) ? key.value : key;
  if (value === null || ['string', 'number', 'boolean', 'bigint'].includes(typeof value)) return `${typeof value}:${String(value)}`;
  return undefined;
}

/** Every node below `root`, depth first, without recursion and without following aliases. */
export function* nodesOf(root: unknown): Generator<unknown> {
  const stack: unknown[] = [root];
  while (stack.length) {
    const node = stack.pop();
    yield node;
    if (isMap(node) || isSeq(node)) for (const item of node.items) stack.push(item);
    else if (isPair(node)) stack.push(node.key, node.value);
  }
}

/** The first key that appears twice in one mapping below `root` (shortened), or undefined. */
export function firstDuplicateKey(root: unknown): string | undefined {
  for (const node of nodesOf(root)) {
    if (!isMap(node)) continue;
    const seen = new Set<string>();
    for (const pair of node.items) {
      const id = keyIdentity(pair.key);
      if (id === undefined) continue;
      if (seen.has(id)) return id.slice(id.indexOf(':') + 1, id.indexOf(':') + 101);
      seen.add(id);
    }
  }
  return undefined;
}

/**
 * Parses one YAML document into plain data, refusing duplicate keys and more than `maxAliasCount` alias expansions.
 * Throws an Error whose message is one short line.
 */
export function parseYamlData(text: string, maxAliasCount: number): unknown {
  let doc;
  try {
    doc = parseDocument(text, { uniqueKeys: false });
  } catch (err: unknown) {
    throw new Error(err instanceof RangeError ? 'nested too deeply' : oneLine(err), { cause: err });
  }
  const error = doc.errors[0];
  if (error) throw new Error(oneLine(error));
  const duplicate = firstDuplicateKey(doc.contents);
  if (duplicate !== undefined) throw new Error(`map keys must be unique (${JSON.stringify(duplicate)} appears twice)`);
  try {
    return doc.toJS({ maxAliasCount });
  } catch (err: unknown) {
    throw new Error(err instanceof RangeError ? 'nested too deeply' : oneLine(err), { cause: err });
  }
}

function oneLine(err: unknown): string {
  return (err instanceof Error ? err.message : String(err)).split('\n')[0]!.slice(0, 200);
}
