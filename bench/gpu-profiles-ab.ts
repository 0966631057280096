/**
 * No regression of the CPU-driver profile (issue 15, acceptance 2): the WebGPU backend's default
 * shapes on a CPU driver (lavapipe) at this checkout against another checkout (--base, e.g. a
 * worktree of main at /tmp), in alternated child processes (one library copy, one Dawn instance
 * per process). Each child: Gaussian sum D = 3 at 1e4 and 3e4, LogSumExp of -SqDist and ArgKMin
 * K = 10 at 1e4; one call untimed (compile), then --reps timed calls, best kept. The parent runs
 * --rounds rounds of (base, this) and reports the best of each side and the ratio this/base.
 * Usage: npx tsx bench/gpu-profiles-ab.ts --base /tmp/kf-gpuprof-base [--rounds 3] [--reps 3] [--out FILE]
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { dirname, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const flag = (name: string): string | undefined => {
  const at = process.argv.indexOf(`--${name}`);
  return at > 0 ? process.argv[at + 1] : undefined;
};
const self = fileURLToPath(import.meta.url);
const here = resolve(dirname(self), '..');

if (flag('child') !== undefined) {
  // Child: time the cases with the checkout at --child.
  const root = flag('child')!;
  const reps = Number(flag('reps') ?? 3);
  const imp = async <T>(p: string): Promise<T> => (await import(pathToFileURL(resolve(root, p)).href)) as T;
  const { mkVar } = await imp<typeof import('../src/graph/formula.js')>('src/graph/formula.ts');
  const { op } = await imp<typeof import('../src/ops/build.js')>('src/ops/build.ts');
  const { makePlan } = await imp<typeof import('../src/kernel/plan.js')>('src/kernel/plan.ts');
  const { GpuBackend } = await imp<typeof import('../src/gpu/backend.js')>('src/gpu/backend.ts');
  const { releaseDevice } = await imp<typeof import('../src/gpu/device.js')>('src/gpu/device.ts');
  const x = mkVar(0, 3, 0);
  const y = mkVar(1, 3, 1);
  const b = mkVar(2, 1, 1);
  const sq = op('SqDist', [x, y]);
  const gauss = makePlan(op('Mult', [op('Exp', [op('Minus', [sq])]), b]), { reduction: 'Sum', axis: 1 });
  const cases = [
    { name: 'Gaussian sum 1e4', plan: gauss, n: 10_000 },
    { name: 'Gaussian sum 3e4', plan: gauss, n: 30_000 },
    { name: 'LogSumExp 1e4', plan: makePlan(op('Minus', [sq]), { reduction: 'LogSumExp', axis: 1 }), n: 10_000 },
    { name: 'ArgKMin K=10 1e4', plan: makePlan(sq, { reduction: 'ArgKMin', axis: 1, K: 10 }), n: 10_000 },
  ];
  let s = 1;
  const rand = (m: number): Float32Array => Float32Array.from({ length: m }, () => (s = (s * 1103515245 + 12345) % 2147483648) / 2147483648);
  const gpu = new GpuBackend();
  const best: Record<string, number> = {};
  // The default WGSL of each case: identical sources mean identical kernels (any difference in time is noise or host code).
  const { createHash } = await import('node:crypto');
  for (const c of cases) best[`wgsl ${c.name}`] = parseInt(createHash('sha256').update(gpu.source(c.plan)).digest('hex').slice(0, 12), 16);
  for (const c of cases) {
    const ins = [rand(c.n * 3), rand(c.n * 3), rand(c.n)];
    await gpu.run(c.plan, ins, c.n, c.n);
    let t = Infinity;
    for (let r = 0; r < reps; r++) {
      const t0 = performance.now();
      await gpu.run(c.plan, ins, c.n, c.n);
      t = Math.min(t, (performance.now() - t0) / 1000);
    }
    best[c.name] = t;
  }
  process.stdout.write(`RESULT ${JSON.stringify(best)}\n`);
  await releaseDevice();
} else {
  const base = resolve(flag('base') ?? '/tmp/kf-gpuprof-base');
  const rounds = Number(flag('rounds') ?? 3);
  const out = flag('out') ?? 'bench/results/gpu-profiles-ab.json';
  const sides = { base, this: here };
  const best: Record<string, Record<string, number>> = { base: {}, this: {} };
  const loads: number[] = [loadavg()[0]!];
  for (let r = 0; r < rounds; r++) {
    for (const [side, root] of Object.entries(sides)) {
      const child = spawnSync(process.execPath, ['--import', 'tsx', self, '--child', root, '--reps', flag('reps') ?? '3'], { encoding: 'utf8', cwd: here, env: { ...process.env, KERNELFLOW_GPU_PROFILE: '' } });
      const line = child.stdout.split('\n').find((l) => l.startsWith('RESULT '));
      if (line === undefined) throw new Error(`${side} child failed: ${child.stderr.slice(-2000)}`);
      const got = JSON.parse(line.slice(7)) as Record<string, number>;
      for (const [k, v] of Object.entries(got)) best[side]![k] = k.startsWith('wgsl ') ? v : Math.min(best[side]![k] ?? Infinity, v);
      loads.push(loadavg()[0]!);
      console.log(`round ${r + 1} ${side}: ${JSON.stringify(got)} (load ${loadavg()[0]!.toFixed(1)})`);
    }
  }
  const sameWgsl = Object.keys(best.this!).filter((k) => k.startsWith('wgsl ')).map((k) => ({ case: k.slice(5), 'same WGSL as base': best.this![k] === best.base![k] }));
  console.table(sameWgsl);
  const rows = Object.keys(best.this!).filter((k) => !k.startsWith('wgsl ')).map((k) => ({ case: k, 'base best s': +best.base![k]!.toFixed(4), 'this best s': +best.this![k]!.toFixed(4), 'this/base': +(best.this![k]! / best.base![k]!).toFixed(2) }));
  console.table(rows);
  mkdirSync(dirname(out), { recursive: true });
  const commit = spawnSync('git', ['-C', base, 'rev-parse', '--short', 'HEAD'], { encoding: 'utf8' }).stdout.trim();
  const machine = { cpu: cpus()[0]?.model ?? 'unknown', cores: cpus().length, node: process.version };
  writeFileSync(out, JSON.stringify({ bench: 'gpu-profiles-ab', backend: 'webgpu (CPU-driver profile)', base: `${commit} (${base})`, rounds, loads: loads.map((l) => l.toFixed(1)).join(' '), machine, date: new Date().toISOString(), sameWgsl, rows }, null, 2));
  console.log(`wrote ${out}`);
}
