/**
 * The package as a user gets it: `npm pack` (which builds dist/ through `prepack`), the tarball
 * installed into a fresh project from the local npm cache (offline), then, in that project, a
 * plain `.mjs` script run by `node` alone (values against float64 brute force, inside the script)
 * and a TypeScript file type-checked with `tsc --strict`, both as a Node user (no DOM) and as a
 * browser user (DOM, no @types/node), with `skipLibCheck` off so the shipped declarations are
 * checked too. The optional `webgpu` peer dependency is not installed there.
 */
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { childEnv } from '../helpers/child.js';

const root = fileURLToPath(new URL('../../', import.meta.url));
const fixtures = fileURLToPath(new URL('./fixtures/', import.meta.url));
const tsc = join(root, 'node_modules', 'typescript', 'bin', 'tsc');

interface Run {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs a command; never rejects (the exit code is in the result). */
function run(cmd: string, args: readonly string[], cwd: string, env: NodeJS.ProcessEnv = process.env): Promise<Run> {
  return new Promise((resolve) => {
    execFile(cmd, args, { cwd, env: childEnv({}, env), timeout: 120_000, maxBuffer: 1 << 26 }, (err, stdout, stderr) => {
      resolve({ code: err === null ? 0 : typeof err.code === 'number' ? err.code : null, stdout, stderr });
    });
  });
}

const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';
/** The environment of the user's processes: no kernelflow settings inherited from the test run. */
const userEnv = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('KERNELFLOW_') && !k.startsWith('KF_')));

interface Packed {
  readonly tarball: string;
  readonly size: number;
  readonly files: readonly string[];
}

const dir = mkdtempSync(join(tmpdir(), 'kernelflow-pack-'));
const project = join(dir, 'project');
let packed: Packed | undefined;

test.after(() => rmSync(dir, { recursive: true, force: true }));

test('npm pack builds dist/ and ships only what users need', async () => {
  const r = await run(npm, ['pack', '--pack-destination', dir, '--json'], root);
  assert.is(r.code, 0, `npm pack failed:\n${r.stderr}`);
  const [info] = JSON.parse(r.stdout) as { filename: string; size: number; files: { path: string }[] }[];
  packed = { tarball: join(dir, info!.filename), size: info!.size, files: info!.files.map((f) => f.path) };
  const files = packed.files;
  console.log(`  tarball ${info!.filename}: ${(packed.size / 1024).toFixed(1)} kB, ${files.length} files`);
  for (const need of ['package.json', 'README.md', 'LICENSE', 'dist/index.js', 'dist/index.d.ts', 'dist/index.js.map', 'cjs/index.cjs', 'docs/guide.md', 'docs/from-pykeops.md']) {
    assert.ok(files.includes(need), `the tarball has ${need}`);
  }
  const stray = files.filter((f) => !/^(dist\/|docs\/[^/]+\.md$|cjs\/|package\.json$|README\.md$|LICENSE$)/.test(f));
  assert.equal(stray, [], 'nothing but dist/, cjs/, docs/*.md, README, LICENSE');
  for (const f of files) assert.not.ok(/(^|\/)(test|bench|\.ci|examples|scratch)\//.test(f), `${f} is not shipped`);
  // Every module has its declarations and source map.
  for (const f of files.filter((p) => p.endsWith('.js'))) {
    assert.ok(files.includes(f.replace(/\.js$/, '.d.ts')), `${f} has declarations`);
    assert.ok(files.includes(`${f}.map`), `${f} has a source map`);
  }
  const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as Record<string, Record<string, unknown>>;
  assert.is(pkg.peerDependenciesMeta?.webgpu && (pkg.peerDependenciesMeta.webgpu as { optional?: boolean }).optional, true, 'webgpu is an optional peer');
  assert.not.ok(pkg.dependencies?.webgpu, 'webgpu is not a dependency');
});

test('the tarball installs offline into a fresh project (dependencies from the npm cache)', async () => {
  assert.ok(packed, 'packed');
  // A lockfile for the project: the tarball, and kernelflow's dependencies as this repository locks them
  // (so npm takes them from its cache by integrity, without asking the registry).
  const lock = JSON.parse(readFileSync(join(root, 'package-lock.json'), 'utf8')) as { packages: Record<string, Record<string, unknown>> };
  const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { version: string; dependencies: Record<string, string> } & Record<string, unknown>;
  const packages: Record<string, unknown> = {};
  const todo = Object.keys(pkg.dependencies);
  while (todo.length > 0) {
    const name = todo.pop()!;
    if (packages[`node_modules/${name}`] !== undefined) continue;
    const entry = lock.packages[`node_modules/${name}`];
    assert.ok(entry, `${name} is in package-lock.json`);
    const { dev: _dev, devOptional: _devOptional, peer: _peer, optional: _optional, ...rest } = entry!;
    packages[`node_modules/${name}`] = rest;
    todo.push(...Object.keys((entry!.dependencies as Record<string, string> | undefined) ?? {}));
  }
  const spec = `file:${packed!.tarball}`;
  rmSync(project, { recursive: true, force: true });
  mkdirSync(project, { recursive: true });
  writeFileSync(join(project, 'package.json'), JSON.stringify({ name: 'consumer', private: true, type: 'module', dependencies: { kernelflow: spec } }, null, 2));
  const integrity = `sha512-${createHash('sha512').update(readFileSync(packed!.tarball)).digest('base64')}`;
  const self = { version: pkg.version, resolved: spec, integrity, dependencies: pkg.dependencies, peerDependencies: pkg.peerDependencies, peerDependenciesMeta: pkg.peerDependenciesMeta };
  writeFileSync(
    join(project, 'package-lock.json'),
    JSON.stringify({ name: 'consumer', lockfileVersion: 3, requires: true, packages: { '': { name: 'consumer', dependencies: { kernelflow: spec } }, 'node_modules/kernelflow': self, ...packages } }, null, 2),
  );
  const r = await run(npm, ['ci', '--offline', '--no-audit', '--no-fund'], project);
  assert.is(r.code, 0, `npm ci --offline failed:\n${r.stdout}\n${r.stderr}`);
  assert.ok(existsSync(join(project, 'node_modules', 'kernelflow', 'dist', 'index.js')), 'dist/index.js installed');
  assert.not.ok(existsSync(join(project, 'node_modules', 'webgpu')), 'the optional webgpu peer is not installed');
});

test('a plain .mjs script runs with node alone: Gaussian sum, argKmin, grad, solve (float64 references)', async () => {
  copyFileSync(join(fixtures, 'consumer.mjs'), join(project, 'consumer.mjs'));
  const r = await run(process.execPath, ['consumer.mjs'], project, userEnv);
  assert.is(r.code, 0, `consumer.mjs failed:\n${r.stdout}\n${r.stderr}`);
  for (const name of ['gaussian-sum', 'argKmin', 'grad', 'solve', 'residual', 'float64', 'webgpu-missing']) assert.match(r.stdout, new RegExp(`^ok ${name}\\b`, 'm'));
  // The first computation chose the backend itself, said so once, and why WebGPU was not taken.
  const lines = r.stderr.split('\n').filter((l) => l.startsWith('kernelflow:'));
  assert.equal(lines, ["kernelflow: using the CPU backend (WebGPU unavailable: the optional 'webgpu' package is not installed (npm install webgpu))"]);
});

test("require('kernelflow') works where Node can require ES modules, and otherwise says the package is ESM", async () => {
  const code = "const kf = require('kernelflow'); console.log(typeof kf.genred)";
  const features = process.features as { require_module?: boolean };
  if (features.require_module === true) {
    const r = await run(process.execPath, ['-e', code], project, userEnv);
    assert.is(r.code, 0, r.stderr);
    assert.is(r.stdout.trim(), 'function');
  }
  const args = features.require_module === undefined ? ['-e', code] : ['--no-experimental-require-module', '-e', code];
  const r = await run(process.execPath, args, project, userEnv);
  assert.is.not(r.code, 0);
  assert.match(r.stderr, /kernelflow is an ES module/);
  assert.match(r.stderr, /await import\('kernelflow'\)/);
});

/** Type-checks consumer.ts in the project with a tsconfig of these compiler options (strict, no skipLibCheck). */
async function typecheck(options: Record<string, unknown>): Promise<Run> {
  copyFileSync(join(fixtures, 'consumer.ts'), join(project, 'consumer.ts'));
  const compilerOptions = { strict: true, noEmit: true, module: 'nodenext', moduleResolution: 'nodenext', target: 'es2022', skipLibCheck: false, ...options };
  writeFileSync(join(project, 'tsconfig.json'), JSON.stringify({ compilerOptions, files: ['consumer.ts'] }, null, 2));
  return run(process.execPath, [tsc, '-p', project], project);
}

test('consumer.ts type-checks with tsc --strict as a Node user (with @types/node, no DOM)', async () => {
  const r = await typecheck({ lib: ['es2022'], types: ['node'], typeRoots: [join(root, 'node_modules', '@types')] });
  assert.is(r.code, 0, `tsc failed:\n${r.stdout}${r.stderr}`);
});

test('consumer.ts type-checks with tsc --strict as a browser user (DOM, no @types/node)', async () => {
  const r = await typecheck({ lib: ['es2022', 'dom'], types: [] });
  assert.is(r.code, 0, `tsc failed:\n${r.stdout}${r.stderr}`);
});

test.run();
