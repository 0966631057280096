import { executeReduction } from '../src/api/execute.js';
import { mkVar } from '../src/graph/formula.js';
import { op } from '../src/nodes/build.js';
const M = +process.argv[2]!, N = M;
const x = mkVar(0,3,0), y = mkVar(1,3,1), b = mkVar(2,1,1), g = mkVar(3,1,2);
const f = op('Mult',[op('Exp',[op('Minus',[op('Mult',[g, op('SqDist',[x,y])])])]), b]);
const rnd = (n: number) => Float32Array.from({length:n}, () => Math.random());
const args = [{data: rnd(M*3), shape:[M,3]}, {data: rnd(N*3), shape:[N,3]}, {data: rnd(N), shape:[N,1]}, {data: Float32Array.of(2), shape:[1]}];
for (let rep = 0; rep < 3; rep++) {
  const t0 = performance.now();
  await executeReduction(f, {reduction:'Sum', axis:1}, args);
  const dt = (performance.now()-t0)/1000;
  console.log(`M=N=${M}: ${dt.toFixed(3)} s, ${(M*N/dt/1e9).toFixed(3)} G/s`);
}
process.exit(0);
