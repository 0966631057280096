import { Cat, type VarNode } from '../graph/formula.js';
import { linearize, type Linearized } from '../graph/lower.js';
import type { KernelPlan } from '../kernel/plan.js';
import { kernelTemplate, planRoots, type LoopDialect } from '../kernel/template.js';
import { isWide, ix, ixAdd, type Ix } from '../ops/loop.js';
import { stateWidth, type ReduceCtx } from '../ops/reductions.js';
import { BATCH_FIELDS } from './batch-pack.js';
import { PACKED_NAME, packedOffset, packLayout } from './pack.js';
import { WGSL_PRELUDE, wgslBarrierInit, wgslDialect } from './dialect.js';

/**
 * The kernel's shape: rows of the kept axis per invocation, invocations per workgroup, and the
 * j-rows staged per tile in workgroup memory.
 * @example
 * ```ts
 * import { init, type KernelShape } from 'kernelflow';
 * const shape: KernelShape = { rowsPerThread: 1, workgroupSize: 128, tileRows: 128 };
 * await init({ backend: 'cpu', kernelShape: shape }); // every WebGPU kernel gets this shape
 * ```
 */
export interface KernelShape {
  readonly rowsPerThread: number;
  readonly workgroupSize: number;
  /**
   * Rows of the reduced side staged per tile in workgroup memory (`var<workgroup>`, loaded by all
   * invocations of the workgroup together, KeOps's shared-memory scheme); 0 or absent: none, every
   * invocation reads the j-variables from the storage buffer.
   */
  readonly tileRows?: number;
}

/**
 * What a binding slot of the rendered shader holds. Binding 0 is always the uniform. `packed`
 * holds the variables of one category (pack.ts); `state` is the buffer of partial states of a
 * split reduced axis: written by pass 1, read by pass 2.
 */
export type Binding =
  | { readonly kind: 'packed'; readonly cat: Cat }
  | { readonly kind: 'out'; readonly index: number }
  | { readonly kind: 'state'; readonly write: boolean }
  | { readonly kind: 'ranges' };

/**
 * The three kernels of a plan: `full` reduces whole rows over j and finalizes (one pass);
 * `partial` (pass 1 of a split) reduces one block of j per invocation and stores the
 * reduction's partial state; `merge` (pass 2) merges a row's partial states in block order and
 * finalizes.
 */
export type KernelKind = 'full' | 'partial' | 'merge' | 'ranged';

export interface RenderedWgsl {
  readonly kind: KernelKind;
  readonly source: string;
  readonly shape: KernelShape;
  /** `bindings[b - 1]` is what binding b (after the uniform) holds. */
  readonly bindings: readonly Binding[];
  /** Size of the uniform block in bytes (u32 fields, see the `*_UNIFORM` layouts). */
  readonly uniformBytes: number;
  /** Floats per row and block of the partial state (`partial` and `merge`; 0 for `full`). */
  readonly stateWidth: number;
}

/** Uniform of the `full` kernel: rows end M and first row row0 (both in the bound range), N, and a zero (feeds `wgslBarrierInit`). */
export const FULL_UNIFORM = ['M', 'N', 'row0', 'zero'] as const;
/**
 * Uniform of the `partial` kernel, dispatched in 2-D: invocation x of workgroup row y reduces rows
 * row0 + x*R ... (R rows) over block blk0 + y (of B, each J long). Rows are counted from the bound
 * range of the kept side (which ends at M), j from the bound range of the reduced side, which
 * starts at block jblk (the global index written to index states is jblk * J + j) and holds N terms.
 */
export const PARTIAL_UNIFORM = ['M', 'N', 'row0', 'zero', 'J', 'B', 'blk0', 'jblk'] as const;
/** Uniform of the batched one-pass kernel: FULL_UNIFORM, then the batch shape and each category's rows per batch step (gpu/batch-pack.ts). */
export const BATCHED_UNIFORM = [...FULL_UNIFORM, ...BATCH_FIELDS] as const;
/**
 * Uniform of the `ranged` kernel (block-sparse): workgroup w of a dispatch reduces tile
 * tile0 + w (of T) of the u32 table RG: four words per tile, `[rowStart, rowEnd, s0, s1)`, rows
 * of one segment of kernel/ranges.ts, reduced over its j-ranges s0 ... s1 - 1, stored (two words
 * each) from word rr of RG. A tile lies in one segment, so a workgroup's j loop is uniform.
 */
export const RANGED_UNIFORM = ['M', 'N', 'tile0', 'zero', 'T', 'rr'] as const;
/** Uniform of the `merge` kernel: invocation t merges row row0 + t (rows end at M) over its B partial states. */
export const MERGE_UNIFORM = ['M', 'B', 'row0', 'zero'] as const;

/** The merge kernel's shape: one row per invocation (its loop is over B blocks, not N terms). */
export const MERGE_SHAPE: KernelShape = { rowsPerThread: 1, workgroupSize: 64 };

const struct = (fields: readonly string[]): string => `struct Params { ${fields.map((f) => `${f}: u32`).join(', ')} }`;

/**
 * Default shape for a plan on a CPU Vulkan driver (lavapipe, 2 cores), from measurements at
 * M = N = 1e4: several rows per invocation share the j loads and give the compiler independent
 * work (Gaussian sum: 1 row 0.3 G pairs/s, 4 rows 0.65, 8 rows 2.3, 16 rows 2.4 but twice the
 * first-dispatch compile, 0.8 s instead of 0.4 s). The KMin family keeps K-long lists per row:
 * ArgKMin K=10 ran at 0.3 G/s with 1 row, 0.6 with 2, 1.0 with 4 (8 rows: no faster, 1.5 s compile)
 * while the lists were arrays; as scalars 8 rows are faster (below).
 */
export function defaultShape(plan: KernelPlan, lin: Linearized = linearize(planRoots(plan))): KernelShape {
  const pairTemps = lin.temps.filter((t) => t.level === 3).length;
  const accWidth = plan.outputs.reduce((s, o) => s + o.width, 0);
  // Loops over wide vectors gain nothing from more rows (each row reloads the j side) and compile longer.
  const widest = lin.temps.reduce((w, t) => (t.level === 0 ? w : Math.max(w, t.node.dim)), 0);
  if (isWide(wgslDialect, widest)) return { rowsPerThread: 1, workgroupSize: 16 };
  // Unrolled vectors of 9-16 components: 4 rows (lavapipe, D = 16: 1.4 s to the first result,
  // 0.17 G pairs/s; 8 rows 3.3 s, 0.25; 2 rows 0.6 s, 0.11).
  const rowCap = widest > 8 ? 4 : 8;
  const rows = (R: number): KernelShape => ({ rowsPerThread: Math.min(R, rowCap), workgroupSize: 16 });
  if (plan.reduction.usesK) {
    // K-lists of up to 16 entries are scalars with a branch-free insertion (ops/kmin.ts): ArgKMin
    // K=10 at 2e4 x 2e4, alternated, load average 7-25: 8 rows 1.2-1.4x the speed of 4 (0.43-1.0
    // G pairs/s), first result about 2x longer (shader cache off: 10.6 s against 5.9 s at load 25).
    const list = Math.max(...plan.parts.map((p) => p.K * p.f.dim)); // the longest K-list of a fused kernel's parts
    return rows(list <= 16 ? 8 : list <= 32 ? 2 : 1);
  }
  if (pairTemps > 48 || accWidth > 16) return rows(1);
  if (pairTemps > 16 || accWidth > 4) return rows(4);
  return rows(8);
}

/**
 * Default shape of pass 1 of a split for M kept rows. Two variants, each a structure of its own
 * in the pipeline cache (the key holds the shape, never sizes): the one-pass kernel's shape
 * (rows per invocation are the lever on lavapipe), or, when M is below its rows per invocation
 * (rows past M are clamped, i.e. computed and thrown away, and one invocation would do all the
 * work), one row per invocation so that M invocations share the work. Measured on lavapipe
 * (N = 1e6-2e6, 16 blocks): M = 64, 8 rows 47 ms, 4 rows 74 ms (one-pass kernel 64 ms); M = 4,
 * 1 row 40-60 ms, 8 rows 80-87 ms (one-pass kernel 104-119 ms).
 */
export function defaultSplitShape(plan: KernelPlan, M: number): KernelShape {
  const full = defaultShape(plan);
  return M < full.rowsPerThread ? { rowsPerThread: 1, workgroupSize: full.workgroupSize } : full;
}

const indent = (lines: readonly string[], n: number): string[] => lines.map((l) => ' '.repeat(n) + l);

/**
 * Opens the tiled loop over j in [from, to): for each tile of T rows, the workgroup's WG
 * invocations copy it (S floats per row, contiguous in XJ) into `TJ` together, then each reduces
 * its rows over the tile from workgroup memory. The bounds are uniform (the uniform, or the
 * workgroup's block), so both barriers are in uniform control flow; the first one keeps the
 * previous tile until every invocation is done with it.
 */
function tileOpen(from: string, to: string, T: number, S: number, WG: number): string {
  return [
    `for (var t0: u32 = ${from}; t0 < ${to}; t0 = t0 + ${T}u) {`,
    `  let tn = min(${T}u, ${to} - t0);`,
    '  workgroupBarrier();',
    `  for (var q: u32 = lid; q < tn * ${S}u; q = q + ${WG}u) { TJ[q] = XJ[t0 * ${S}u + q]; }`,
    '  workgroupBarrier();',
    '  for (var jt: u32 = 0u; jt < tn; jt = jt + 1u) {',
  ].join('\n');
}

/**
 * Renders a plan as one WGSL compute shader. Each invocation reduces `rowsPerThread` consecutive
 * rows i over j in [0, N): temporaries are placed in the outermost loop they can live in (level 0
 * once, level 1 per row, level 2 once per j for all rows of the invocation, level 3 per pair), and
 * the plan's reduction hooks, printed with the WGSL dialect, wrap the j loop. Sizes are read from
 * the uniform `P` (never baked in), so one pipeline serves every M and N. Rows past M are clamped
 * for reading (no divergence in the loop) and skipped for writing.
 */
export function renderKernelWgsl(plan: KernelPlan, shape?: KernelShape): RenderedWgsl {
  return renderReduce(plan, shape, 'full');
}

/**
 * The one-pass kernel over all batches of a call in one dispatch: workgroup row y is batch y,
 * decoded into its index along (up to) BATCH_RANK batch axes; its rows start in each packed buffer
 * at that index times the category's rows per axis step (uniform fields, 0 along a broadcast axis),
 * and its outputs follow batch y - 1's. Sizes and strides are run-time data: one pipeline serves
 * every batch shape.
 */
export function renderBatchedWgsl(plan: KernelPlan, shape?: KernelShape): RenderedWgsl {
  return renderReduce(plan, shape, 'full', true);
}

/**
 * Pass 1 of a split reduced axis (KeOps GpuReduc2D): as `renderKernelWgsl`, but the workgroups
 * of row y of the dispatch reduce their rows over block y of j only, and stores the reduction's partial state
 * (its `save` hook) at `S[(row * B + block) * W + k]` instead of finalizing.
 */
export function renderPartialWgsl(plan: KernelPlan, shape?: KernelShape): RenderedWgsl {
  return renderReduce(plan, shape, 'partial');
}

/** The block-sparse kernel (RANGED_UNIFORM): one tile of rows of one segment per workgroup, over its j-ranges. */
export function renderRangedWgsl(plan: KernelPlan, shape?: KernelShape): RenderedWgsl {
  return renderReduce(plan, shape, 'ranged');
}

function renderReduce(plan: KernelPlan, shape: KernelShape | undefined, kind: 'full' | 'partial' | 'ranged', batched = false): RenderedWgsl {
  const lin = linearize(planRoots(plan));
  const sh = shape ?? defaultShape(plan, lin);
  const R = sh.rowsPerThread;
  const d = wgslDialect;
  const partial = kind === 'partial';
  const ranged = kind === 'ranged';
  const red = plan.reduction;
  const W = partial ? stateWidth(red, d, plan.f.dim, plan.g?.dim ?? 0, plan.K) : 0;
  const layout = packLayout(plan);
  const stride = (cat: Cat): number => layout.find((c) => c.cat === cat)?.stride ?? 0;
  const S = stride(Cat.j);
  // Tiles of T j-rows: every invocation takes part in the loads and barriers (uniform control flow).
  // A block-sparse kernel's rows leave early (past their tile's end), and a batched one offsets its j rows per batch: neither tiles.
  const T = S > 0 && !ranged && !batched ? Math.max(0, Math.floor(sh.tileRows ?? 0)) : 0;
  const tiled = T > 0;

  const bindings: Binding[] = [];
  const uniform = partial ? PARTIAL_UNIFORM : ranged ? RANGED_UNIFORM : batched ? BATCHED_UNIFORM : FULL_UNIFORM;
  const decls: string[] = [struct(uniform), '@group(0) @binding(0) var<uniform> P: Params;'];
  for (const c of layout) {
    bindings.push({ kind: 'packed', cat: c.cat });
    decls.push(`@group(0) @binding(${bindings.length}) var<storage, read> ${PACKED_NAME[c.cat]}: array<f32>;`);
  }
  if (partial) {
    bindings.push({ kind: 'state', write: true });
    decls.push(`@group(0) @binding(${bindings.length}) var<storage, read_write> S: array<f32>;`);
  } else {
    plan.outputs.forEach((o, k) => {
      bindings.push({ kind: 'out', index: k });
      decls.push(`@group(0) @binding(${bindings.length}) var<storage, read_write> O${k}: array<${o.int ? 'i32' : 'f32'}>;`);
    });
  }
  if (ranged) {
    bindings.push({ kind: 'ranges' });
    decls.push(`@group(0) @binding(${bindings.length}) var<storage, read> RG: array<u32>;`);
  }

  const write = (r: number) => (o: number, k: Ix, e: string): string => {
    const out = plan.outputs[o]!;
    return `O${o}[${batched ? `(ob + row${r})` : `row${r}`} * ${out.width}u + ${ix(d, k)}] = ${out.int ? `i32(${e})` : e};`;
  };
  const put = (r: number) => (k: Ix, e: string): string => `S[sb${r} + ${ix(d, k)}] = ${e};`;
  const at = (v: VarNode, k: Ix): string => ix(d, ixAdd(d, packedOffset(layout, v.index), k));
  const [jFrom, jTo] = partial ? ['j0', 'j1'] : ['0u', 'N'];
  const loop: LoopDialect = {
    d,
    load: (v, k, r) =>
      v.cat === Cat.i
        ? `XI[ib${r} + ${at(v, k)}]`
        : v.cat === Cat.j
          ? `${tiled ? 'TJ' : 'XJ'}[jb + ${at(v, k)}]`
          : batched
            ? `XP[po * ${stride(Cat.param)}u + ${at(v, k)}]`
            : `XP[${at(v, k)}]`,
    // Rows past M are clamped for reading (no divergence in the loop) and skipped for writing.
    // Ranged: rows end at the tile's end, not at M.
    rowStart: (r, iVars) => [
      `let row${r} = base + ${r}u;`,
      `let ri${r} = min(row${r}, ${ranged ? 'rend' : 'M'} - 1u);`,
      ...(iVars.length > 0 ? [`let ib${r} = ${batched ? `(io + ri${r})` : `ri${r}`} * ${stride(Cat.i)}u;`] : []),
    ],
    openJ: ranged
      ? 'for (var s: u32 = s0; s < s1; s = s + 1u) { let ja = RG[P.rr + 2u * s]; let jz = RG[P.rr + 2u * s + 1u]; for (var j: u32 = ja; j < jz; j = j + 1u) {'
      : tiled
        ? tileOpen(jFrom, jTo, T, S, sh.workgroupSize)
        : `for (var j: u32 = ${jFrom}; j < ${jTo}; j = j + 1u) {`,
    ...(tiled || ranged ? { closeJ: ['}', '}'] } : {}),
    jStart: (jVars) => [
      ...(tiled ? ['let j = t0 + jt;'] : []),
      partial ? 'let jf = f32(jbase + j);' : 'let jf = f32(j);',
      ...(jVars.length > 0 ? [`let jb = ${tiled ? 'jt' : batched ? '(jo + j)' : 'j'} * ${S}u;`] : []),
    ],
    j: 'jf',
    rowEnd: (r, c) =>
      partial
        ? [`if (row${r} < M) {`, ...indent([`let sb${r} = (row${r} * P.B + blk) * ${W}u;`, ...red.save(c, put(r))], 2), '}']
        : [`if (row${r} < ${ranged ? 'rend' : 'M'}) {`, ...indent(red.finalize(c, write(r)), 2), '}'],
  };
  const t = kernelTemplate(plan, loop, lin);
  const block = t.block(R, 'b');

  const body = [
    'let M = P.M;',
    'let N = P.N;',
    ...(partial
      ? [
          // The block comes from the workgroup's y, so it is uniform across the workgroup: its
          // j loop and j loads are too (scalar loads, not gathers: 3x on lavapipe).
          'let blk = P.blk0 + wid.y;',
          `let base = P.row0 + gid.x * ${R}u;`,
          ...(tiled ? [] : ['if (base >= M) { return; }']),
          'let j0 = (blk - P.jblk) * P.J;',
          'let j1 = min(N, j0 + P.J);',
          'let jbase = P.jblk * P.J;',
        ]
      : ranged
        ? [
            // The tile comes from the workgroup, so its j-ranges (the loop bounds and j loads) are uniform across it.
            'let t = P.tile0 + wid.x;',
            'if (t >= P.T) { return; }',
            'let rend = RG[4u * t + 1u];',
            `let base = RG[4u * t] + lid.x * ${R}u;`,
            'if (base >= rend) { return; }',
            'let s0 = RG[4u * t + 2u];',
            'let s1 = RG[4u * t + 3u];',
          ]
        : [`let base = P.row0 + gid.x * ${R}u;`, ...(tiled ? [] : ['if (base >= M) { return; }'])]),
    // Batch gid.y: its rows of each packed buffer start at the table's rows, its outputs at ob.
    // wid.y, not gid.y: the workgroup id is uniform, so the table loads and the j offsets are too (scalar j loads, not gathers).
    ...(batched
      ? [
          'let bt = wid.y;',
          'let ob = bt * M;',
          'let c3 = bt % P.b3;',
          'let q3 = bt / P.b3;',
          'let c2 = q3 % P.b2;',
          'let q2 = q3 / P.b2;',
          'let c1 = q2 % P.b1;',
          'let c0 = q2 / P.b1;',
          ...(['i', 'j', 'p'] as const).map((c) => `let ${c}o = c0 * P.${c}0 + c1 * P.${c}1 + c2 * P.${c}2 + c3 * P.${c}3;`),
        ]
      : []),
    wgslBarrierInit('P.zero'),
    // Function-scope arrays of the wide temps, declared once per invocation.
    ...t.once.arrays,
    ...block.arrays,
    ...t.once.body,
    ...block.body,
  ];

  const source = [
    `// kernelflow ${partial ? 'partial (pass 1 of a split) ' : ranged ? 'block-sparse ' : batched ? 'batched ' : ''}${red.name} K=${plan.K}: ${plan.f.key}${plan.g === null ? '' : ` weighted by ${plan.g.key}`}`,
    `// ${R} row(s) per invocation, workgroup ${sh.workgroupSize}${tiled ? `, tiles of ${T} j-rows in workgroup memory` : ''}${partial ? `, state width ${W}` : ''}`,
    WGSL_PRELUDE,
    ...decls,
    ...(tiled ? [`var<workgroup> TJ: array<f32, ${T * S}>;`] : []),
    '',
    `@compute @workgroup_size(${sh.workgroupSize})`,
    `fn main(@builtin(global_invocation_id) gid: vec3<u32>${partial || ranged || batched ? ', @builtin(workgroup_id) wid: vec3<u32>' : ''}${ranged ? ', @builtin(local_invocation_id) lid: vec3<u32>' : ''}${tiled ? ', @builtin(local_invocation_index) lid: u32' : ''}) {`,
    ...indent(body, 2),
    '}',
    '',
  ].join('\n');
  return { kind, source, shape: sh, bindings, uniformBytes: 4 * uniform.length, stateWidth: W };
}

/**
 * Pass 2 of a split: invocation t loads row row0 + t's partial state of block 0 (the reduction's
 * `load` hook), merges those of blocks 1 ... B-1 into it in block order (`merge`: ties keep the
 * earlier block, i.e. the lower index) and finalizes into the outputs.
 */
export function renderMergeWgsl(plan: KernelPlan): RenderedWgsl {
  const d = wgslDialect;
  const red = plan.reduction;
  const ctx = (p: string): ReduceCtx => ({ d, fDim: plan.f.dim, gDim: plan.g?.dim ?? 0, K: plan.K, p });
  const acc = ctx('acc_');
  const W = stateWidth(red, d, plan.f.dim, plan.g?.dim ?? 0, plan.K);
  const bindings: Binding[] = [{ kind: 'state', write: false }];
  const decls = [struct(MERGE_UNIFORM), '@group(0) @binding(0) var<uniform> P: Params;', '@group(0) @binding(1) var<storage, read> S: array<f32>;'];
  plan.outputs.forEach((o, k) => {
    bindings.push({ kind: 'out', index: k });
    decls.push(`@group(0) @binding(${bindings.length}) var<storage, read_write> O${k}: array<${o.int ? 'i32' : 'f32'}>;`);
  });
  const write = (o: number, k: Ix, e: string): string => {
    const out = plan.outputs[o]!;
    return `O${o}[row * ${out.width}u + ${ix(d, k)}] = ${out.int ? `i32(${e})` : e};`;
  };
  const body = [
    'let row = P.row0 + gid.x;',
    'if (row >= P.M) { return; }',
    wgslBarrierInit('P.zero'),
    `let s0 = row * P.B * ${W}u;`,
    ...red.load(acc, (k) => `S[s0 + ${ix(d, k)}]`),
    'for (var b: u32 = 1u; b < P.B; b = b + 1u) {',
    ...indent([`let sb = (row * P.B + b) * ${W}u;`, ...red.load(ctx('blk_'), (k) => `S[sb + ${ix(d, k)}]`), ...red.merge(acc, 'blk_')], 2),
    '}',
    ...red.finalize(acc, write),
  ];
  const source = [
    `// kernelflow merge (pass 2 of a split) ${red.name} K=${plan.K}: ${plan.f.key}${plan.g === null ? '' : ` weighted by ${plan.g.key}`}`,
    `// state width ${W}, workgroup ${MERGE_SHAPE.workgroupSize}`,
    WGSL_PRELUDE,
    ...decls,
    '',
    `@compute @workgroup_size(${MERGE_SHAPE.workgroupSize})`,
    'fn main(@builtin(global_invocation_id) gid: vec3<u32>) {',
    ...indent(body, 2),
    '}',
    '',
  ].join('\n');
  return { kind: 'merge', source, shape: MERGE_SHAPE, bindings, uniformBytes: 4 * MERGE_UNIFORM.length, stateWidth: W };
}
