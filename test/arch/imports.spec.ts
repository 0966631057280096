import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, normalize, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { test } from 'uvu';
import * as assert from 'uvu/assert';

/*
 * The layering of src/ (README "Layout"): each folder may import only folders below it, and
 * src/index.ts is the only importer of src/api, apart from the worker command (a program built on
 * the library's internals, which nothing imports). Root files (errors, options, stats, tensor) are
 * shared utilities that import nothing of ours but each other. The cluster backend sits beside the
 * CPU and WebGPU backends and imports neither.
 */
const LAYERS = ['graph', 'ops', 'kernel', 'wasm', 'cpu|gpu|cluster', 'scheduler', 'solve', 'nodes', 'grad', 'api', 'cli|worker'] as const;
/** Layers above the user API: programs built on the library (nothing imports them). */
const COMMANDS = new Set(['cli', 'worker']);
const SHARED = new Set(['errors.ts', 'options.ts', 'stats.ts', 'tensor.ts']);

const SRC = normalize(join(dirname(fileURLToPath(import.meta.url)), '../../src'));

function files(dir: string): string[] {
  return readdirSync(dir).flatMap((n) => {
    const p = join(dir, n);
    return statSync(p).isDirectory() ? files(p) : p.endsWith('.ts') ? [p] : [];
  });
}

/** The folder of src/ a file lives in ('' for a root file). */
const folderOf = (file: string): string => {
  const rel = relative(SRC, file).split('/');
  return rel.length === 1 ? '' : rel[0]!;
};
const layerOf = (folder: string): number => LAYERS.findIndex((l) => l.split('|').includes(folder));

/** Every relative import of src/ as [from file, to file]. */
function edges(): [string, string][] {
  const out: [string, string][] = [];
  for (const f of files(SRC)) {
    const text = readFileSync(f, 'utf8');
    for (const m of text.matchAll(/(?:from|import)\s*\(?\s*'(\.{1,2}\/[^']+)'/g)) {
      out.push([f, normalize(join(dirname(f), m[1]!)).replace(/\.js$/, '.ts')]);
    }
  }
  return out;
}

test('every folder of src/ is in the layer table', () => {
  for (const f of files(SRC)) {
    const folder = folderOf(f);
    if (folder === '') assert.ok(SHARED.has(relative(SRC, f)) || f.endsWith('index.ts'), `unexpected root file ${relative(SRC, f)}`);
    else assert.ok(layerOf(folder) >= 0, `folder src/${folder} has no layer in the import rule`);
  }
});

/** The edges that break the layering. */
function upward(list: readonly [string, string][]): string[] {
  const bad: string[] = [];
  for (const [from, to] of list) {
    const a = folderOf(from);
    const b = folderOf(to);
    if (a === '' || a === b) {
      if (a === '' && !from.endsWith('index.ts') && b !== '') bad.push(`${relative(SRC, from)} -> ${relative(SRC, to)} (a shared root file imports a folder)`);
      continue;
    }
    if (b === '') continue;
    if (layerOf(b) >= layerOf(a)) bad.push(`${relative(SRC, from)} -> ${relative(SRC, to)}`);
  }
  return bad;
}

test('no import runs upward (a folder imports only its own layer or those below it)', () => {
  const bad = upward(edges());
  assert.equal(bad, [], `upward or sideways imports:\n${bad.join('\n')}`);
});

test('only src/index.ts imports src/api', () => {
  const bad = edges().filter(
    ([from, to]) => folderOf(to) === 'api' && folderOf(from) !== 'api' && folderOf(from) !== 'worker' && !from.endsWith('src/index.ts'),
  );
  assert.equal(bad.map(([a, b]) => `${relative(SRC, a)} -> ${relative(SRC, b)}`), []);
});

test('nothing imports a command (src/cli, src/worker)', () => {
  const bad = edges().filter(([from, to]) => COMMANDS.has(folderOf(to)) && folderOf(from) !== folderOf(to));
  assert.equal(bad.map(([a, b]) => `${relative(SRC, a)} -> ${relative(SRC, b)}`), []);
});

test('src/cli (the kernelflow command) uses kernelflow only through src/index.ts, as a user would', () => {
  const bad = edges().filter(([from, to]) => folderOf(from) === 'cli' && folderOf(to) !== 'cli' && relative(SRC, to) !== 'index.ts');
  assert.equal(bad.map(([a, b]) => `${relative(SRC, a)} -> ${relative(SRC, b)}`), []);
});

test('no two folders import each other', () => {
  const pairs = new Set(edges().map(([a, b]) => `${folderOf(a)}>${folderOf(b)}`));
  const cycles = [...pairs].filter((p) => {
    const [a, b] = p.split('>');
    return a !== b && a !== '' && b !== '' && pairs.has(`${b}>${a}`);
  });
  assert.equal(cycles, []);
});

test('the rule catches upward and sideways imports (made-up edges)', () => {
  const at = (p: string): string => join(SRC, p);
  assert.equal(upward([[at('grad/grad.ts'), at('api/lazy.ts')]]).length, 1);
  assert.equal(upward([[at('cpu/backend.ts'), at('gpu/device.ts')]]).length, 1);
  assert.equal(upward([[at('cluster/backend.ts'), at('cpu/backend.ts')]]).length, 1);
  assert.equal(upward([[at('api/lazy.ts'), at('worker/serve.ts')]]).length, 1);
  assert.equal(upward([[at('errors.ts'), at('graph/formula.ts')]]).length, 1);
  assert.equal(upward([[at('api/lazy.ts'), at('graph/formula.ts')], [at('nodes/node.ts'), at('tensor.ts')]]), []);
});

test.run();
