/**
 * `kernelflow inspect` (the inputs, the graph as printGraph prints it, and the kernels it
 * compiles and dispatches) and `kernelflow bench` (load, first run with compilation, timed runs).
 */
import { backendName, cpuKernels, printGraph, resetStats, stats, toJSON, type ReductionJSON, type SourceJSON } from '../index.js';
import type { Args } from './args.js';
import { EXIT } from './errors.js';
import { describeOrigin } from './inputs.js';
import { computeAll, feed, prepare, Progress, type IO, type Session } from './session.js';

const AXIS = ['over i (axis 0)', 'over j (axis 1)'];
const CAT = ['i', 'j', 'param'];

/** A fused kernel: one reduction structure, and the node groups that dispatch it. */
interface Kernel {
  readonly key: string;
  readonly text: string;
  readonly runs: Map<string, { results: string[]; reads: string }>;
}

/** The kernels of the graph, from what toJSON saves of it (formula strings, reductions, inputs). */
function kernelsOf(s: Session): Kernel[] {
  const nodes = s.built.results.map((r) => r.node);
  const json = toJSON(nodes);
  const nameOf = new Map<number, string>();
  json.nodes.forEach((n) => {
    if (n.kind === 'source') nameOf.set(n.id, (n as SourceJSON).label ?? `#${n.id}`);
  });
  json.outputs.forEach((id, k) => nameOf.set(id, s.built.results[k]!.name));
  const kernels = new Map<string, Kernel>();
  for (const n of json.nodes) {
    if (n.kind !== 'reduction') continue;
    const r = n as ReductionJSON;
    const key = JSON.stringify([r.formula, r.reduction, r.axis, r.K, r.weight]);
    const text = `${r.reduction}${r.K === undefined ? '' : ` K=${r.K}`} ${AXIS[r.axis]} of ${r.formula}${r.weight === null || r.weight === undefined ? '' : `, weight ${r.weight}`}`;
    const k = kernels.get(key) ?? { key, text, runs: new Map() };
    kernels.set(key, k);
    const vars = [...r.formula.matchAll(/Var\((\d+),(\d+),(\d)\)/g)];
    const catOf = new Map(vars.map((m) => [Number(m[1]), Number(m[3])]));
    const reads = r.inputs.map((id, v) => `${nameOf.get(id) ?? `#${id}`} (${CAT[catOf.get(v) ?? 0]})`).join(', ');
    const runKey = JSON.stringify(r.inputs);
    const run = k.runs.get(runKey) ?? { results: [], reads };
    run.results.push(nameOf.get(n.id) ?? `#${n.id}`);
    k.runs.set(runKey, run);
  }
  return [...kernels.values()];
}

/** What the current backend compiles a kernel to. */
function codeKind(): string {
  const b = backendName();
  if (b === 'webgpu') return 'WGSL compute shaders';
  if (b === 'cpu') return cpuKernels().kernels === 'wasm' ? 'WebAssembly SIMD, generated JavaScript for float64 plans and block-sparse ArgMin and ArgMax' : 'generated JavaScript';
  return `kernels run by the ${b} backend`;
}

/** Prints the pipeline's inputs, graph and kernels. */
export async function inspect(args: Args, io: IO): Promise<number> {
  const s = await prepare(args, new Progress(io, false), 'any');
  try {
    const spec = s.spec;
    io.out(`pipeline ${args.pipeline}${spec.kind === 'spec' && spec.description !== undefined ? `: ${spec.description}` : spec.kind === 'saved' ? ' (saved by toJSON)' : ''}`);
    io.out('inputs:');
    for (const [name, src] of s.built.sources) {
      const p = s.planned.find((q) => q.info.name === name);
      const from = p === undefined ? 'no data given' : describeOrigin(p.origin);
      const l = s.loaded.get(name);
      const cols = l !== undefined && l.columns.length > 0 ? ` (${l.columns.join(', ')})` : '';
      io.out(`  ${name}  [${src.shape.join(', ')}]  from ${from}${cols}`);
    }
    io.out('results:');
    for (const r of s.built.results) io.out(`  ${r.name}  #${r.node.id}`);
    io.out('');
    io.out(printGraph(s.built.results.map((r) => r.node)));
    const kernels = kernelsOf(s);
    const dispatches = kernels.reduce((a, k) => a + k.runs.size, 0);
    io.out('');
    // Fusion is decided when a flush runs (fusion.ts: depth, backend, shared sources, device limits): before a run, only a bound.
    io.out(`kernels: ${kernels.length} to compile on the ${backendName()} backend (${codeKind()}), at most ${dispatches} dispatch${dispatches === 1 ? '' : 'es'} per run (sibling reductions over the same points run as one fused kernel; \`kernelflow bench\` counts them)`);
    kernels.forEach((k, i) => {
      io.out(`  ${i + 1}. ${k.text}`);
      for (const run of k.runs.values()) io.out(`       -> ${run.results.join(', ')}  reading ${run.reads}`);
    });
    return EXIT.ok;
  } finally {
    s.built.dispose();
  }
}

/** Times the pipeline: input loading, the first run (compilation included), then `--repeat` runs. */
export async function bench(args: Args, io: IO): Promise<number> {
  const progress = new Progress(io, args.progress);
  const t0 = performance.now();
  const s = await prepare(args, progress, 'all');
  const loadMs = performance.now() - t0;
  try {
    resetStats();
    let t = performance.now();
    await computeAll(s.built, progress);
    const firstMs = performance.now() - t;
    const first = stats();
    const times: number[] = [];
    const all = [...s.built.sources].flatMap(([name, src]) => (src.value === undefined ? [] : [{ name, tensor: src.value }]));
    resetStats();
    for (let k = 0; k < args.repeat; k++) {
      progress.step(`timed run ${k + 1} of ${args.repeat}`);
      feed(s.built, all); // same data, new versions: everything downstream recomputes
      t = performance.now();
      await computeAll(s.built, new Progress(io, false));
      times.push(performance.now() - t);
    }
    progress.done();
    const sorted = [...times].sort((a, b) => a - b);
    const median = sorted[Math.floor(sorted.length / 2)]!;
    const mean = times.reduce((a, b) => a + b, 0) / times.length;
    io.out(`backend: ${backendName()}`);
    io.out(`inputs: ${[...s.built.sources].map(([n, src]) => `${n} [${src.shape.join(', ')}]`).join(', ')}`);
    io.out(`load + build: ${loadMs.toFixed(1)} ms`);
    io.out(`first run: ${firstMs.toFixed(1)} ms (${first.pipelinesCompiled} kernels compiled, ${first.dispatches} dispatches)`);
    io.out(`runs: ${args.repeat}, median ${median.toFixed(2)} ms, min ${sorted[0]!.toFixed(2)} ms, mean ${mean.toFixed(2)} ms, ${stats().dispatches / args.repeat} dispatches per run`);
    return EXIT.ok;
  } finally {
    s.built.dispose();
  }
}
