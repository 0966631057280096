/**
 * `init()` is optional: in a fresh process the first computation picks the backend ('auto') and
 * says once on stderr which; `quiet` and KERNELFLOW_QUIET silence that line, KERNELFLOW_BACKEND
 * decides what 'auto' means. Each case runs in a child process (the choice is per process), which
 * must exit by itself without `shutdown()`.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { childEnv } from '../helpers/child.js';

const entry = fileURLToPath(new URL('../../src/index.ts', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'kernelflow-init-'));
test.after(() => rmSync(dir, { recursive: true, force: true }));

interface Run {
  readonly code: number | null;
  readonly stdout: string;
  /** The lines kernelflow wrote on stderr (Dawn's own warnings left out). */
  readonly notices: string[];
  readonly stderr: string;
}

let n = 0;
/** Runs `body` (top-level await, `kf` is the package) in a child process with these variables. */
function child(body: string, env: Record<string, string> = {}): Promise<Run> {
  const file = join(dir, `case${n++}.mts`);
  writeFileSync(file, `import * as kf from ${JSON.stringify(entry)};\n${body}\n`);
  const base = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('KERNELFLOW_')));
  return new Promise((resolve) => {
    execFile(process.execPath, ['--import', 'tsx', file], { env: childEnv(env, base), timeout: 90_000 }, (err, stdout, stderr) => {
      const code = err === null ? 0 : typeof err.code === 'number' ? err.code : null;
      resolve({ code, stdout, stderr, notices: stderr.split('\n').filter((l) => l.startsWith('kernelflow:')) });
    });
  });
}

const compute = `
const x = kf.source(new Float32Array([0, 1, 2]), [3, 1]);
const [a, b] = await Promise.all([kf.Vi(x).sqdist(kf.Vj(x)).sum(1).read(), kf.Vi(x).sqdist(kf.Vj(x)).min(1).read()]);
await kf.Vi(x).sqdist(kf.Vj(x)).max(1).read();
console.log(kf.backendName(), Array.from(a.data).join(','), Array.from(b.data).join(','));
`;

test('without init(), the first computation picks the backend and says so once; the process exits by itself', async () => {
  const r = await child(compute);
  assert.is(r.code, 0, r.stderr);
  const [used, sums, mins] = r.stdout.trim().split(' ');
  assert.is(sums, '5,2,5');
  assert.is(mins, '0,0,0');
  assert.is(r.notices.length, 1, r.stderr);
  if (used === 'webgpu') assert.match(r.notices[0]!, /^kernelflow: using WebGPU \(.+\)$/);
  else assert.match(r.notices[0]!, /^kernelflow: using the CPU backend \(WebGPU unavailable: .+\)$/);
});

test('KERNELFLOW_BACKEND decides what auto means; quiet and KERNELFLOW_QUIET silence the line', async () => {
  const forced = await child(compute, { KERNELFLOW_BACKEND: 'cpu' });
  assert.is(forced.code, 0, forced.stderr);
  assert.match(forced.stdout, /^cpu /);
  assert.equal(forced.notices, ['kernelflow: using the CPU backend (KERNELFLOW_BACKEND=cpu)']);
  const quietEnv = await child(compute, { KERNELFLOW_BACKEND: 'cpu', KERNELFLOW_QUIET: '1' });
  assert.is(quietEnv.code, 0, quietEnv.stderr);
  assert.equal(quietEnv.notices, []);
  const quietOpt = await child(`console.log(await kf.init({ backend: 'auto', quiet: true }));\n${compute}`, { KERNELFLOW_BACKEND: 'cpu' });
  assert.is(quietOpt.code, 0, quietOpt.stderr);
  assert.equal(quietOpt.notices, []);
  // An explicit backend is not 'auto': nothing to say.
  const explicit = await child(`await kf.init({ backend: 'cpu' });\n${compute}`);
  assert.equal(explicit.notices, []);
  assert.match(explicit.stdout, /^cpu /);
  const explicitGpu = await child(`await kf.init({ backend: 'webgpu' }).catch(() => kf.init({ backend: 'cpu' }));\n${compute}`);
  assert.is(explicitGpu.code, 0, explicitGpu.stderr);
  assert.equal(explicitGpu.notices, []);
});

test('bad settings are typed errors that say what is accepted (an unknown option key: OptionError; an unknown backend: BackendError)', async () => {
  const r = await child(`
for (const bad of [{ backend: 'cpu', quite: true }, { backend: 'gpu' }]) {
  try { await kf.init(bad as kf.InitOptions); } catch (e) { console.log((e as kf.KernelflowError).name + ' ' + (e as Error).message); }
}
const x = kf.source(new Float32Array([1]), [1, 1]);
try { await kf.Vi(x).sum(1).read(); } catch (e) { console.log(String(e instanceof kf.BackendError) + ' ' + (e as Error).message); }
`, { KERNELFLOW_BACKEND: 'metal' });
  assert.is(r.code, 0, r.stderr);
  assert.equal(r.stdout.trim().split('\n'), [
    "OptionError init: unknown option 'quite' (did you mean 'quiet'?); the options are 'backend', 'kernelCacheSize', 'quiet', 'servers', 'cluster', 'float64', 'gpuProfile', 'autotune', 'kernelShape', 'cpuKernels', 'fuse'",
    "BackendError init: unknown backend 'gpu' (use 'auto', 'webgpu', 'cpu', 'cluster')",
    "true KERNELFLOW_BACKEND='metal': use auto, webgpu or cpu",
  ]);
});

test.run();
