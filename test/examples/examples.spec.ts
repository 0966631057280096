/**
 * Runs both tutorial examples at a small size on the CPU backend, as child processes, so that they
 * cannot rot: every line the tutorials print is there, the numbers are accurate, the plots exist.
 */
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { test } from 'uvu';
import * as assert from 'uvu/assert';

const root = fileURLToPath(new URL('../../', import.meta.url));

interface Run {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/**
 * The examples' environment: the CPU backend, and no V8 coverage. They run under tsx's ESM loader,
 * whose source maps differ from the test runner's, so c8 would count their ranges on the wrong lines.
 */
function childEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, KF_BACKEND: 'cpu' };
  // Node copies NODE_V8_COVERAGE into children unless the child's env sets it; empty turns it off.
  if (env.NODE_V8_COVERAGE !== undefined) env.NODE_V8_COVERAGE = '';
  return env;
}

/** `node --import tsx examples/<name>.ts ...args` from the repository root. */
function runExample(name: string, args: readonly string[]): Promise<Run> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      ['--import', 'tsx', join('examples', `${name}.ts`), ...args],
      { cwd: root, env: childEnv(), timeout: 120_000, maxBuffer: 1 << 24 },
      (err, stdout, stderr) => {
        const code = err === null ? 0 : typeof err.code === 'number' ? err.code : null;
        resolve({ code, stdout, stderr });
      },
    );
  });
}

const lines = (s: string): string[] => s.split('\n').map((l) => l.trimEnd());
const escapeRe = (s: string): string => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/** The line matching `re`; fails with the whole output when none does. */
function line(out: string, re: RegExp): RegExpMatchArray {
  for (const l of lines(out)) {
    const m = re.exec(l);
    if (m !== null) return m;
  }
  assert.unreachable(`no line matches ${re}:\n${out}`);
  throw new Error('unreachable');
}

/** Every `re` match over the output's lines, in order. */
function allLines(out: string, re: RegExp): RegExpMatchArray[] {
  return lines(out).flatMap((l) => {
    const m = re.exec(l);
    return m === null ? [] : [m];
  });
}

/** A small well-formedness check: tags nest and close, the root is one <svg> element. */
function assertWellFormedSvg(svg: string, file: string): void {
  assert.ok(svg.startsWith('<svg'), `${file} starts with <svg`);
  assert.ok(svg.trimEnd().endsWith('</svg>'), `${file} ends with </svg>`);
  const stack: string[] = [];
  const tag = /<(\/?)([A-Za-z][\w:-]*)((?:\s+[\w:-]+="[^"<]*")*)\s*(\/?)>/g;
  let roots = 0;
  let at = 0;
  for (let m = tag.exec(svg); m !== null; m = tag.exec(svg)) {
    const between = svg.slice(at, m.index);
    assert.not.ok(/[<>]/.test(between), `${file}: stray '<' or '>' before offset ${m.index}: ${between.slice(0, 80)}`);
    assert.not.ok(/&(?!amp;|lt;|gt;|quot;|apos;|#\d+;)/.test(between), `${file}: unescaped '&' before offset ${m.index}`);
    at = tag.lastIndex;
    const [, close, name, , self] = m;
    if (close === '/') assert.is(stack.pop(), name, `${file}: </${name}> closes the open element`);
    else if (self !== '/') {
      if (stack.length === 0) roots++;
      stack.push(name!);
    } else if (stack.length === 0) roots++;
  }
  assert.is(svg.slice(at).trim(), '', `${file}: nothing after the root element`);
  assert.equal(stack, [], `${file}: every element is closed`);
  assert.is(roots, 1, `${file}: one root element`);
}

/** The plot has `panels` panels of two polylines (kernelflow, dense) of `points` points each. */
function assertPlot(file: string, panels: number, points: number): void {
  assert.ok(existsSync(file), `${file} exists`);
  const svg = readFileSync(file, 'utf8');
  assert.ok(svg.length > 2000, `${file} is not trivial (${svg.length} bytes)`);
  assertWellFormedSvg(svg, file);
  const parts = svg.split('<g class="panel"').slice(1);
  assert.is(parts.length, panels, `${file}: ${panels} panels`);
  for (const part of parts) {
    const polys = [...part.matchAll(/<polyline[^>]*points="([^"]*)"/g)];
    assert.is(polys.length, 2, `${file}: two polylines per panel`);
    for (const [, pts] of polys) {
      const xy = pts!.trim().split(/\s+/).map((p) => p.split(',').map(Number));
      assert.is(xy.length, points, `${file}: ${points} points per line`);
      assert.ok(xy.every((p) => p.length === 2 && p.every(Number.isFinite)), `${file}: finite coordinates`);
      assert.ok(new Set(xy.map((p) => p[1])).size > 5, `${file}: the line is not flat`);
    }
    assert.ok(/kernelflow/.test(part) && /dense float64/.test(part), `${file}: a legend names both lines`);
  }
}

let out = '';
test.before(() => {
  out = mkdtempSync(join(tmpdir(), 'kf-examples-'));
});
test.after(() => {
  rmSync(out, { recursive: true, force: true });
});

test('examples/kernel-solve.ts: solve and derivative match the dense float64 reference, plots written', async () => {
  const N = 200;
  const dir = join(out, 'solve');
  const r = await runExample('kernel-solve', ['--N', String(N), '--backend', 'cpu', '--out', dir]);
  assert.is(r.code, 0, `exit code 0\n${r.stdout}\n${r.stderr}`);
  const o = r.stdout;
  line(o, new RegExp(`^Solving a Gaussian linear system, with ${N} points in dimension 2\\.$`));
  line(o, /^Timing \(kernelflow implementation, cpu\): \d+(\.\d+)? s$/);
  line(o, /^Timing \(dense float64 implementation\): \d+(\.\d+)? s$/);
  line(o, /^1st order derivative$/);
  line(o, /^Timing \(kernelflow derivative\): \d+(\.\d+)? s$/);
  line(o, /^Timing \(dense float64 derivative\): \d+(\.\d+)? s$/);
  const errs = allLines(o, /^Relative error = (\S+)$/).map((m) => Number(m[1]));
  assert.is(errs.length, 2, 'two relative errors: solution and derivative');
  for (const e of errs) assert.ok(Number.isFinite(e) && e < 1e-3, `relative error ${e} < 1e-3`);
  const plots = allLines(o, /^Plot written to (.+)$/).map((m) => m[1]!);
  assert.equal(plots, [join(dir, 'kernel-solve.svg'), join(dir, 'kernel-solve-grad.svg')]);
  // Order: the solve's plot right after its error, the derivative section after.
  assert.ok(o.indexOf('Plot written to') < o.indexOf('1st order derivative'), 'the solution plot comes before the derivative');
  for (const p of plots) assertPlot(p, 2, 40);
});

test('examples/fancy-reductions.ts: every reduction with its shape, then solve and its gradient', async () => {
  const M = 200;
  const N = 300;
  const r = await runExample('fancy-reductions', ['--M', String(M), '--N', String(N), '--backend', 'cpu']);
  assert.is(r.code, 0, `exit code 0\n${r.stdout}\n${r.stderr}`);
  const o = r.stdout;
  assert.ok(o.includes(`formula: Sum(Square((Var(0,3,0) - Var(1,3,1))))\nshape: (${M}, ${N})\n`), 'S_ij printed as KeOps does');
  assert.ok(o.includes(`formula: (Var(0,3,0) - Var(1,3,1))\nshape: (${M}, ${N}, 3)\n`), 'V_ij printed as KeOps does');
  const expected: [string, string][] = [
    ["Sum reduction of S_ij wrt. the 'N' dimension:", `[${M}, 1]`],
    ["Sum reduction of V_ij wrt. the 'M' dimension:", `[${N}, 3]`],
    ["LogSumExp reduction of S_ij wrt. the 'M' dimension:", `[${N}, 1]`],
    ["LogSumExp reduction of S_ij, with 'weight' V_ij, wrt. the 'N' dimension:", `[${M}, 3]`],
    ["Min    reduction of S_ij wrt. the 'M' dimension:", `[${N}, 1]`],
    ["ArgMin reduction of S_ij wrt. the 'N' dimension:", `[${M}, 1]`],
    ["Max    reduction of V_ij wrt. the 'M' dimension:", `[${N}, 3]`],
    ["ArgMax reduction of V_ij wrt. the 'N' dimension:", `[${M}, 3]`],
    ["Min-ArgMin reduction on S_ij wrt. the 'M' dimension:", `[${N}, 1] [${N}, 1]`],
    ["Max-ArgMax reduction on V_ij wrt. the 'N' dimension:", `[${M}, 3] [${M}, 3]`],
    ["KMin    reduction of S_ij wrt. the 'M' dimension (K=5):", `[${N}, 5]`],
    ["ArgKMin reduction of S_ij wrt. the 'N' dimension (K=5):", `[${M}, 5]`],
    ["KMin    reduction of V_ij wrt. the 'M' dimension (K=7):", `[${N}, 7, 3]`],
    ["ArgKMin reduction of V_ij wrt. the 'N' dimension (K=7):", `[${M}, 7, 3]`],
    ["SumSoftMaxWeight reduction of S_ij, with weights V_ij, wrt. the 'N' dimension:", `[${M}, 3]`],
  ];
  let last = -1;
  for (const [label, shape] of expected) {
    const m = line(o, new RegExp(`^${escapeRe(label)}\\s+${escapeRe(shape)}\\s+\\(\\d+(\\.\\d+)? s\\)$`));
    const at = o.indexOf(m[0]);
    assert.ok(at > last, `'${label}' is printed in the tutorial's order`);
    last = at;
  }
  line(o, new RegExp(`^a_i is now a Tensor of shape \\[${M}, 4\\]\\.`));
  const mse = Number(line(o, /^Mean squared reconstruction error: (\d\.\d\de[+-]\d\d)$/)[1]);
  assert.ok(Number.isFinite(mse) && mse < 1e-5, `mean squared reconstruction error ${mse} < 1e-5`);
  line(o, new RegExp(`^g_i is now a Tensor of shape \\[${M}, 3\\]\\.`));
});

test.run();
