/**
 * Every ```ts / ```js code block of README.md and docs/*.md is a complete program that runs: each
 * is extracted, its `'kernelflow'` import pointed at the local src/index.ts, type-checked (all
 * together, strict), then run with tsx on the CPU backend, one after the other in two processes. A block marked ```ts no-run is only
 * illustrative (kept for the few that need a browser or a GPU): it is type-checked, not run.
 * Other languages (sh, python, text) are not code of this package.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { join, relative } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import ts from 'typescript';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { childEnv } from '../helpers/child.js';

const root = fileURLToPath(new URL('../../', import.meta.url));
const CODE = new Set(['ts', 'typescript', 'js', 'javascript', 'mjs']);

interface Block {
  readonly doc: string;
  readonly line: number;
  readonly lang: string;
  readonly run: boolean;
  readonly code: string;
}

/** The fenced code blocks of a markdown file, with their info strings. */
function blocksOf(doc: string, text: string): Block[] {
  const out: Block[] = [];
  const lines = text.split('\n');
  for (let k = 0; k < lines.length; k++) {
    const open = /^```(\S*)\s*(.*)$/.exec(lines[k]!);
    if (open === null) continue;
    const end = lines.findIndex((l, m) => m > k && /^```\s*$/.test(l));
    assert.ok(end > k, `${doc}:${k + 1}: a code block is not closed`);
    const [, lang = '', info = ''] = open;
    if (CODE.has(lang)) out.push({ doc, line: k + 1, lang, run: !/\bno-run\b/.test(info), code: lines.slice(k + 1, end).join('\n') });
    k = end;
  }
  return out;
}

const docs = ['README.md', ...readdirSync(join(root, 'docs')).filter((f) => f.endsWith('.md')).map((f) => `docs/${f}`)];
const blocks = docs.flatMap((d) => blocksOf(d, readFileSync(join(root, d), 'utf8')));
const dir = mkdtempSync(join(root, '.docs-blocks-'));
test.after(() => rmSync(dir, { recursive: true, force: true }));

/** Each block as a module file importing the local sources. */
const files = blocks.map((b, k) => {
  const entry = relative(dir, join(root, 'src', 'index.js'));
  const code = b.code.replace(/from\s+'kernelflow'/g, `from './${entry}'`);
  const file = join(dir, `${b.doc.replace(/[/.]/g, '_')}_L${b.line}_${k}.${b.lang.startsWith('j') || b.lang === 'mjs' ? 'mjs' : 'ts'}`);
  writeFileSync(file, `${code}\nexport {};\n`);
  return file;
});
const where = (k: number): string => `${blocks[k]!.doc}:${blocks[k]!.line}`;

test('the docs have code blocks, and few of them are marked no-run', () => {
  assert.ok(blocks.length >= 25, `found only ${blocks.length} blocks`);
  const skipped = blocks.filter((b) => !b.run);
  assert.ok(skipped.length <= 3, `no-run blocks: ${skipped.map((b) => `${b.doc}:${b.line}`).join(', ')}`);
  for (const d of ['README.md', 'docs/guide.md', 'docs/from-pykeops.md']) assert.ok(blocks.some((b) => b.doc === d), `${d} has code blocks`);
});

test('every code block type-checks (strict) against the local sources', () => {
  const program = ts.createProgram(
    files.filter((f) => f.endsWith('.ts')),
    {
      module: ts.ModuleKind.NodeNext,
      moduleResolution: ts.ModuleResolutionKind.NodeNext,
      target: ts.ScriptTarget.ES2022,
      lib: ['lib.es2022.d.ts'],
      types: ['node'],
      strict: true,
      skipLibCheck: true,
      noEmit: true,
    },
  );
  const diagnostics = ts.getPreEmitDiagnostics(program).filter((d) => d.file === undefined || d.file.fileName.startsWith(dir));
  const text = diagnostics.map((d) => {
    const k = d.file === undefined ? -1 : files.indexOf(d.file.fileName);
    const pos = d.file === undefined || d.start === undefined ? undefined : d.file.getLineAndCharacterOfPosition(d.start);
    const at = k < 0 ? '?' : `${blocks[k]!.doc}:${blocks[k]!.line + 1 + (pos?.line ?? 0)}`;
    return `${at}: ${ts.flattenDiagnosticMessageText(d.messageText, '\n')}`;
  });
  assert.equal(text, []);
});

interface Outcome {
  readonly where: string;
  readonly ok: boolean;
  readonly ms: number;
  readonly detail: string;
}

/**
 * Runs blocks one after the other in one child process (tsx compiles the sources once): each is
 * imported, so its top-level awaits finish before the next starts. The child must exit by itself.
 */
function runBlocks(ks: readonly number[]): Promise<{ outcomes: Outcome[]; code: number | null; out: string }> {
  const runner = join(dir, `runner-${ks[0] ?? 0}.mts`);
  const list = ks.map((k) => [where(k), pathToFileURL(files[k]!).href]);
  writeFileSync(
    runner,
    `const list: [string, string][] = ${JSON.stringify(list)};
let current = '';
process.on('unhandledRejection', (e) => console.log('@@fail ' + JSON.stringify([current, 0, 'unhandled rejection: ' + String((e as Error)?.stack ?? e)])));
for (const [where, url] of list) {
  current = where;
  const t0 = performance.now();
  try {
    await import(url);
    console.log('@@ok ' + JSON.stringify([where, performance.now() - t0, '']));
  } catch (e) {
    console.log('@@fail ' + JSON.stringify([where, performance.now() - t0, String((e as Error)?.stack ?? e)]));
  }
}
`,
  );
  const env = childEnv({ KERNELFLOW_BACKEND: 'cpu', KERNELFLOW_QUIET: '1' });
  return new Promise((resolve) => {
    execFile(process.execPath, ['--import', 'tsx', runner], { cwd: dir, env, timeout: 240_000, maxBuffer: 1 << 26 }, (err, stdout, stderr) => {
      const outcomes = stdout.split('\n').flatMap((l): Outcome[] => {
        const m = /^@@(ok|fail) (.*)$/.exec(l);
        if (m === null) return [];
        const [w, ms, detail] = JSON.parse(m[2]!) as [string, number, string];
        return [{ where: w, ok: m[1] === 'ok', ms, detail }];
      });
      resolve({ outcomes, code: err === null ? 0 : typeof err.code === 'number' ? err.code : null, out: `${stdout}${stderr}` });
    });
  });
}

test('every code block runs (tsx, CPU backend), and the processes running them exit by themselves', async () => {
  const todo = blocks.map((b, k) => (b.run ? k : -1)).filter((k) => k >= 0);
  const parts = Math.max(1, Math.min(2, availableParallelism()));
  const runs = await Promise.all(Array.from({ length: parts }, (_, p) => runBlocks(todo.filter((_, i) => i % parts === p))));
  const outcomes = runs.flatMap((r) => r.outcomes);
  if (process.env.KF_DOCS_TIMES === '1') for (const o of [...outcomes].sort((a, b) => b.ms - a.ms)) console.log(`  ${o.where}: ${(o.ms / 1000).toFixed(1)} s`);
  for (const r of runs) assert.is(r.code, 0, `a runner did not exit cleanly:\n${r.out.slice(-3000)}`);
  const failed = outcomes.filter((o) => !o.ok).map((o) => `${o.where}:\n${o.detail}`);
  assert.ok(failed.length === 0, `${failed.length} blocks failed:\n\n${failed.join('\n\n')}`);
  const ran = new Set(outcomes.map((o) => o.where));
  assert.equal(todo.map(where).filter((w) => !ran.has(w)), [], 'every block ran');
  const slow = outcomes.filter((o) => o.ms > 15_000).map((o) => `${o.where}: ${(o.ms / 1000).toFixed(1)} s`);
  assert.equal(slow, [], 'blocks should stay small');
});

test.run();
