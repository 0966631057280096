/**
 * What keeping CG's vectors on the device could save on this adapter (issue 19): the WebGPU
 * reduction call of a CG step (the Gaussian K·p of bench/solve.ts, D = 2, Dv = 2) at n × n, against
 * the same call over one reduced term (what is left: upload of the kept side, dispatch, readback of
 * n × Dv floats) and the host's float32/float64 copies of a step; medians. On lavapipe (load 18-25)
 * at n = 2e4: K·p 3.2 s, the call over one term 1.2 ms, copies 3.8 ms; at 1e5: 74 s, 17.5 ms, 6.4 ms.
 * Usage: npx tsx bench/solve-overhead.ts [20000,100000]
 */
import { init, shutdown } from '../src/index.js';
import { Cat, mkVar } from '../src/graph/formula.js';
import { op } from '../src/ops/build.js';
import { executeReduction } from '../src/scheduler/execute.js';
const D = 2, Dv = 2;
const K = op('Exp', [op('Minus', [op('Mult', [mkVar(2, 1, Cat.param), op('SqDist', [mkVar(0, D, Cat.i), mkVar(1, D, Cat.j)])])])]);
const Kp = op('Mult', [K, mkVar(3, Dv, Cat.j)]);
await init({ backend: 'webgpu' });
for (const n of (process.argv[2] ?? '20000').split(',').map(Number)) {
  const x = Float32Array.from({ length: n * D }, Math.random), p = Float32Array.from({ length: n * Dv }, Math.random);
  const g = { data: Float32Array.of(50), shape: [1] };
  const time = async (m: number, reps: number) => {
    const ts: number[] = [];
    for (let r = 0; r < reps; r++) {
      const t0 = performance.now();
      await executeReduction(Kp, { reduction: 'Sum', axis: 1, backend: 'webgpu' }, [{ data: x, shape: [n, D] }, { data: x.subarray(0, m * D), shape: [m, D] }, g, { data: p.subarray(0, m * Dv), shape: [m, Dv] }]);
      ts.push(performance.now() - t0);
    }
    ts.sort((a, b) => a - b);
    return ts[Math.floor(ts.length / 2)]!;
  };
  await time(1, 3);
  const tiny = await time(1, 9);
  const full = await time(n, n > 50000 ? 1 : 3);
  // Host side of a CG iteration besides: packing p with the points, float64 copies (measured in JS).
  const t0 = performance.now();
  for (let r = 0; r < 10; r++) { const v = Float32Array.from(p); const o = new Float64Array(n * Dv); for (let k = 0; k < o.length; k++) o[k] = v[k]! + 0.01 * p[k]!; }
  const host = (performance.now() - t0) / 10;
  console.log(JSON.stringify({ n, 'K·p ms': +full.toFixed(1), 'same call over 1 term ms': +tiny.toFixed(1), 'host copies ms': +host.toFixed(2), 'overhead share': +((tiny + host) / full).toFixed(4) }));
}
await shutdown();
