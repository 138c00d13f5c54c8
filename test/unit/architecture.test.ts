// The house rules of docs/development.md, checked on every test run: the folders are layers, each importing only
// itself and the layers below it; the tool folders never import each other; no import cycle (type imports included);
// no source file too big to hold in one's head.
import { describe, expect, it } from '@jest/globals';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, posix } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('../..', import.meta.url));
const MAX_LINES = 400;

/** Top to bottom; a file may import from its own layer and any layer after it. */
const LAYERS: { name: string; holds: (file: string) => boolean }[] = [
  { name: 'process', holds: (f) => /^src\/[^/]+\.ts$/.test(f) },
  { name: 'tasks', holds: (f) => f.startsWith('src/tasks/') || f.startsWith('src/observe/') },
  { name: 'tools', holds: (f) => f.startsWith('src/tools/') },
  { name: 'judge', holds: (f) => f.startsWith('src/judge/') },
  { name: 'platform', holds: (f) => f.startsWith('src/platform/') || f.startsWith('src/keptn/') },
  { name: 'shared', holds: (f) => f.startsWith('src/shared/') },
];

function sources(dir: string): string[] {
  return readdirSync(join(root, dir)).flatMap((name) => {
    const path = posix.join(dir, name);
    if (statSync(join(root, path)).isDirectory()) return sources(path);
    return path.endsWith('.ts') ? [path] : [];
  });
}

const files = sources('src');
const imports = new Map(
  files.map((file) => {
    const text = readFileSync(join(root, file), 'utf8');
    const targets = [...text.matchAll(/(?:from|import)\s*\(?\s*['"](\.{1,2}\/[^'"]+)['"]/g)].map((m) =>
      posix.normalize(posix.join(posix.dirname(file), m[1]!)).replace(/\.js$/, '.ts'),
    );
    return [file, targets];
  }),
);

function layerOf(file: string): number {
  const index = LAYERS.findIndex((l) => l.holds(file));
  if (index < 0) throw new Error(`${file} is in no layer of docs/development.md`);
  return index;
}

const toolOf = (file: string) => /^src\/tools\/([^/]+)\//.exec(file)?.[1];

describe('the house in layers', () => {
  it('keeps at most the process at the root of src/', () => {
    expect(files.filter((f) => /^src\/[^/]+\.ts$/.test(f)).sort()).toEqual(['src/app.ts', 'src/config.ts', 'src/main.ts']);
  });

  it('puts every source file in a layer', () => {
    for (const file of files) expect(() => layerOf(file)).not.toThrow();
  });

  it('imports only from the same layer or the layers below', () => {
    const upward = [...imports].flatMap(([file, targets]) =>
      targets.filter((t) => layerOf(t) < layerOf(file)).map((t) => `${file} -> ${t}`),
    );
    expect(upward).toEqual([]);
  });

  it('never lets one tool import another', () => {
    const across = [...imports].flatMap(([file, targets]) =>
      targets.filter((t) => toolOf(file) && toolOf(t) && toolOf(t) !== toolOf(file)).map((t) => `${file} -> ${t}`),
    );
    expect(across).toEqual([]);
  });

  it('has no import cycle, type imports included', () => {
    const cycles: string[] = [];
    const state = new Map<string, 'open' | 'done'>();
    const visit = (file: string, path: string[]) => {
      if (state.get(file) === 'done') return;
      if (state.get(file) === 'open') {
        cycles.push([...path.slice(path.indexOf(file)), file].join(' -> '));
        return;
      }
      state.set(file, 'open');
      for (const target of imports.get(file) ?? []) visit(target, [...path, file]);
      state.set(file, 'done');
    };
    for (const file of files) visit(file, []);
    expect(cycles).toEqual([]);
  });

  it(`keeps every source file under ${MAX_LINES} lines`, () => {
    const big = files
      .map((f) => ({ f, lines: readFileSync(join(root, f), 'utf8').trimEnd().split('\n').length }))
      .filter(({ lines }) => lines > MAX_LINES)
      .map(({ f, lines }) => `${f}: ${lines}`);
    expect(big).toEqual([]);
  });
});
