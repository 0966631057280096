import type { VarNode } from '../graph/formula.js';
import { linearize, type Linearized } from '../graph/lower.js';
import type { KernelPlan } from '../nodes/plan.js';
import type { ReduceCtx } from '../nodes/reductions.js';
import { renderTemps, type RenderedTemps } from '../nodes/render.js';
import { WGSL_PRELUDE, wgslBarrierInit, wgslDialect } from './dialect.js';

/** The kernel's shape: rows of the kept axis per invocation, invocations per workgroup. */
export interface KernelShape {
  readonly rowsPerThread: number;
  readonly workgroupSize: number;
}

/** What a binding slot of the rendered shader holds. Binding 0 is always the uniform (M, N, row0). */
export type Binding = { readonly kind: 'var'; readonly index: number } | { readonly kind: 'out'; readonly index: number };

export interface RenderedWgsl {
  readonly source: string;
  readonly shape: KernelShape;
  /** `bindings[b - 1]` is what binding b (after the uniform) holds. */
  readonly bindings: readonly Binding[];
}

/** Size of the uniform block in bytes: M, N, row0 and a zero (u32 each; the zero feeds `wgslBarrierInit`). */
export const UNIFORM_BYTES = 16;

/**
 * Default shape for a plan on a CPU Vulkan driver (lavapipe, 2 cores), from measurements at
 * M = N = 1e4: several rows per invocation share the j loads and give the compiler independent
 * work (Gaussian sum: 1 row 0.3 G pairs/s, 4 rows 0.65, 8 rows 2.3, 16 rows 2.4 but twice the
 * first-dispatch compile, 0.8 s instead of 0.4 s). The KMin family keeps K-long lists per row:
 * ArgKMin K=10 ran at 0.3 G/s with 1 row, 0.6 with 2, 1.0 with 4 (8 rows: no faster, 1.5 s compile).
 */
export function defaultShape(plan: KernelPlan, lin: Linearized = linearize(plan.g === null ? [plan.f] : [plan.f, plan.g])): KernelShape {
  const pairTemps = lin.temps.filter((t) => t.level === 3).length;
  const accWidth = plan.outputs.reduce((s, o) => s + o.width, 0);
  if (plan.reduction.usesK) {
    const list = plan.K * plan.f.dim;
    return { rowsPerThread: list <= 16 ? 4 : list <= 32 ? 2 : 1, workgroupSize: 16 };
  }
  if (pairTemps > 48 || accWidth > 16) return { rowsPerThread: 1, workgroupSize: 16 };
  if (pairTemps > 16 || accWidth > 4) return { rowsPerThread: 4, workgroupSize: 16 };
  return { rowsPerThread: 8, workgroupSize: 16 };
}

const indent = (lines: readonly string[], n: number): string[] => lines.map((l) => ' '.repeat(n) + l);

/**
 * Renders a plan as one WGSL compute shader. Each invocation reduces `rowsPerThread` consecutive
 * rows i over j in [0, N): temporaries are placed in the outermost loop they can live in (level 0
 * once, level 1 per row, level 2 once per j for all rows of the invocation, level 3 per pair), and
 * the plan's reduction hooks, printed with the WGSL dialect, wrap the j loop. Sizes are read from
 * the uniform `P` (never baked in), so one pipeline serves every M and N. Rows past M are clamped
 * for reading (no divergence in the loop) and skipped for writing.
 */
export function renderKernelWgsl(plan: KernelPlan, shape?: KernelShape): RenderedWgsl {
  const roots = plan.g === null ? [plan.f] : [plan.f, plan.g];
  const lin = linearize(roots);
  const sh = shape ?? defaultShape(plan, lin);
  const R = sh.rowsPerThread;
  const d = wgslDialect;
  const vars = plan.vars.flatMap((v) => (v === undefined ? [] : [v]));
  const iVars = vars.filter((v) => v.cat === 0);
  const jVars = vars.filter((v) => v.cat === 1);

  const bindings: Binding[] = [];
  const decls: string[] = [
    'struct Params { M: u32, N: u32, row0: u32, zero: u32 }',
    '@group(0) @binding(0) var<uniform> P: Params;',
  ];
  for (const v of vars) {
    bindings.push({ kind: 'var', index: v.index });
    decls.push(`@group(0) @binding(${bindings.length}) var<storage, read> V${v.index}: array<f32>;`);
  }
  plan.outputs.forEach((o, k) => {
    bindings.push({ kind: 'out', index: k });
    decls.push(`@group(0) @binding(${bindings.length}) var<storage, read_write> O${k}: array<${o.int ? 'i32' : 'f32'}>;`);
  });

  const load = (r: number) => (v: VarNode, k: number): string =>
    v.cat === 0 ? `V${v.index}[ib${v.index}_${r} + ${k}u]` : v.cat === 1 ? `V${v.index}[jb${v.index} + ${k}u]` : `V${v.index}[${k}u]`;
  const top = renderTemps(lin, d, load(0), '_r0');
  const rs: RenderedTemps[] = [];
  for (let r = 0; r < R; r++) {
    const first = rs[0];
    const shared = first === undefined ? { from: top, levels: [0 as const] } : { from: first, levels: [0 as const, 2 as const] };
    rs.push(renderTemps(lin, d, load(r), `_b${r}`, shared));
  }
  const red = plan.reduction;
  const ctx = (r: number): ReduceCtx => ({ d, fDim: plan.f.dim, gDim: plan.g?.dim ?? 0, K: plan.K, p: `acc${r}_` });
  const comps = (r: number, root: number): readonly string[] => (root < 0 ? [] : rs[r]!.names[lin.roots[root]!]!);
  const each = (fn: (r: number) => readonly string[]): string[] => rs.flatMap((_, r) => fn(r));
  const write = (r: number) => (o: number, k: number, e: string): string => {
    const out = plan.outputs[o]!;
    return `O${o}[row${r} * ${out.width}u + ${k}u] = ${out.int ? `i32(${e})` : e};`;
  };

  const body = [
    'let M = P.M;',
    'let N = P.N;',
    `let base = P.row0 + gid.x * ${R}u;`,
    'if (base >= M) { return; }',
    wgslBarrierInit('P.zero'),
    ...top.stmts[0],
    ...each((r) => [`let row${r} = base + ${r}u;`, `let ri${r} = min(row${r}, M - 1u);`]),
    ...each((r) => iVars.map((v) => `let ib${v.index}_${r} = ri${r} * ${v.dim}u;`)),
    ...each((r) => rs[r]!.stmts[1]),
    ...each((r) => red.init(ctx(r))),
    'for (var j: u32 = 0u; j < N; j = j + 1u) {',
    ...indent(
      [
        'let jf = f32(j);',
        ...jVars.map((v) => `let jb${v.index} = j * ${v.dim}u;`),
        ...rs[0]!.stmts[2],
        ...each((r) => [...rs[r]!.stmts[3], ...red.combine(ctx(r), comps(r, 0), comps(r, plan.g === null ? -1 : 1), 'jf')]),
      ],
      2,
    ),
    '}',
    ...each((r) => [`if (row${r} < M) {`, ...indent(red.finalize(ctx(r), write(r)), 2), '}']),
  ];

  const source = [
    `// kernelflow ${red.name} K=${plan.K}: ${plan.f.key}${plan.g === null ? '' : ` weighted by ${plan.g.key}`}`,
    `// ${R} row(s) per invocation, workgroup ${sh.workgroupSize}`,
    WGSL_PRELUDE,
    ...decls,
    '',
    `@compute @workgroup_size(${sh.workgroupSize})`,
    'fn main(@builtin(global_invocation_id) gid: vec3<u32>) {',
    ...indent(body, 2),
    '}',
    '',
  ].join('\n');
  return { source, shape: sh, bindings };
}
