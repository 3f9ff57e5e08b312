// The layout is the data flow: src/ reads top-down as http -> live -> inventory -> pipeline ->
// reconcile -> alerts, with the clients and the shared kernel below (live, the read-only
// view of a running sale, reads from every layer under it). A module may import
// its own folder or any folder below it, never one above. Checked by reading the imports.
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');
const src = join(root, 'src');
/** Top to bottom. The composition root (src/*.ts) sits above them all. */
export const LAYERS = [
  'http',
  'live',
  'admission',
  'inventory',
  'pipeline',
  'reconcile',
  'alerts',
  'clients',
  'shared',
  'generated',
];

function sources(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    if (name === 'generated') return [];
    if (statSync(path).isDirectory()) return sources(path);
    return name.endsWith('.ts') ? [path] : [];
  });
}

const rank = (file: string) => {
  const top = relative(src, file).split('/')[0]!;
  return top.endsWith('.ts') ? -1 : LAYERS.indexOf(top);
};

describe('layers', () => {
  it('every folder of src/ is a known layer', () => {
    const folders = readdirSync(src).filter((n) => statSync(join(src, n)).isDirectory());
    assert.deepEqual(
      folders.filter((f) => !LAYERS.includes(f)),
      [],
    );
  });

  it('no module imports a layer above its own', () => {
    const upward: string[] = [];
    for (const file of sources(src)) {
      const text = readFileSync(file, 'utf8');
      for (const m of text.matchAll(/(?:from|import)\s*\(?\s*'(\.{1,2}\/[^']+)'/g)) {
        const target = resolve(dirname(file), m[1]!.replace(/\.js$/, '.ts'));
        if (rank(target) < rank(file))
          upward.push(`${relative(root, file)} -> ${relative(root, target)}`);
      }
    }
    assert.deepEqual(upward, []);
  });

  it('src/ holds only what the engine runs: no development tooling', () => {
    const tooling = sources(src).filter((f) =>
      /child_process|apt-get|kafka-pom|mvn /.test(readFileSync(f, 'utf8')),
    );
    assert.deepEqual(
      tooling.map((f) => relative(root, f)),
      [],
    );
  });
});
