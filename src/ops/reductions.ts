import { ReductionError } from '../errors.js';
import type { Formula } from '../graph/formula.js';
import { call, mul, sub } from './diff.js';
import type { Dialect } from './op.js';
import { extremumGrad, kminGrad, plain, type GradRule } from './reduction-rule.js';

/** KeOps reduction names (API.md). */
export type ReductionName =
  | 'Sum' | 'LogSumExp' | 'Min' | 'Max' | 'ArgMin' | 'ArgMax' | 'Min_ArgMin' | 'Max_ArgMax'
  | 'KMin' | 'ArgKMin' | 'KMin_ArgKMin' | 'SumSoftMaxWeight';

/**
 * How a formula is reduced: the one description of a reduction that plans, nodes, gradient
 * rules and saved pipelines share (`weight`: KeOps's formula2; `K`: the KMin family's K).
 */
export interface ReductionSpec {
  readonly reduction: string;
  readonly axis: 0 | 1;
  readonly K?: number;
  readonly weight?: Formula | null;
}

/** One output of a reduction: `width` values per kept row, float values or int32 indices. */
export interface ReductionOutput {
  readonly width: number;
  readonly int: boolean;
  /** Trailing shape per row, e.g. [K, D] for a vector KMin, [D] otherwise. */
  readonly rowShape: readonly number[];
}

/** What the code hooks receive: sizes and a printer. Accumulator names are derived from `p`. */
export interface ReduceCtx {
  readonly d: Dialect;
  /** Dimension of the reduced formula F and of the weight G (0 when there is none). */
  readonly fDim: number;
  readonly gDim: number;
  readonly K: number;
  /** Prefix for accumulator names, unique per reduction instance in a kernel. */
  readonly p: string;
}

/** `write(o, k, expr)`: a statement storing `expr` as component k of output o for the current row. */
export type Writer = (o: number, k: number, expr: string) => string;

/** `put(k, expr)`: a statement storing `expr` as float k of the current row's partial state. */
export type StateWriter = (k: number, expr: string) => string;

/** `get(k)`: an expression reading float k of a stored partial state. */
export type StateReader = (k: number) => string;

/**
 * A reduction over the reduced index, as hooks around the kernel's inner loop (KeOps
 * `InitializeReduction / ReducePair / FinalizeOutput`), plus a float64 brute-force reference.
 */
export interface ReductionDef {
  readonly name: ReductionName;
  /** Whether a second formula (weight) is used: LogSumExp optionally, SumSoftMaxWeight always. */
  readonly weight: 'none' | 'optional' | 'required';
  readonly usesK: boolean;
  /** Throws ReductionError/DimensionError when F/G dims or K do not fit. */
  check(fDim: number, gDim: number, K: number): void;
  outputs(fDim: number, gDim: number, K: number): readonly ReductionOutput[];
  init(c: ReduceCtx): string[];
  /** `f`, `g`: expressions of the formula components at the current pair; `j`: the reduced index. */
  combine(c: ReduceCtx, f: readonly string[], g: readonly string[], j: string): string[];
  finalize(c: ReduceCtx, write: Writer): string[];
  /**
   * Split of the reduced axis (KeOps GpuReduc2D): blocks of j are reduced separately into partial
   * states, which a second pass merges in block order and finalizes. `state` declares the layout:
   * the accumulator variables (named from `c.p`, as `init` declares them) that carry a partial
   * reduction, in storage order. Every slot is a float (indices too: exact below 2^24, as in the
   * kernels' `jf`); its length is the state width. It may depend on the dialect (compensation
   * terms exist only where the dialect has a `barrier`).
   */
  state(c: ReduceCtx): readonly string[];
  /** Statements storing the accumulators as a partial state (after a block's loop; not finalized). */
  save(c: ReduceCtx, put: StateWriter): string[];
  /** Statements declaring the accumulators (as `init` does) and setting them from a stored state. */
  load(c: ReduceCtx, get: StateReader): string[];
  /**
   * Statements merging the accumulators named from prefix `from` (the partial state of a later
   * block, declared by `load`) into those of `c.p` (the earlier blocks). The result must equal the
   * unsplit reduction: ties keep `c.p`'s entries, i.e. the lower indices.
   */
  merge(c: ReduceCtx, from: string): string[];
  /**
   * The gradient rule (KeOps `DiffT`): per-pair cotangents of F (and of the weight), from which
   * reduction-grads.ts builds a reduction over the other index. Null for index outputs
   * (piecewise constant: zero gradient).
   */
  readonly grad: GradRule | null;
  /** Float64 reference over all reduced terms `(f_j, g_j)`; returns each output's row values. */
  ref(terms: readonly { f: readonly number[]; g: readonly number[] }[], fDim: number, gDim: number, K: number): number[][];
}

const range = (n: number): number[] => Array.from({ length: n }, (_, k) => k);
const flat = (xs: string[][]): string[] => xs.flat();

const noCheck = (): void => undefined;
const rowOut = (width: number, int = false): ReductionOutput => ({ width, int, rowShape: [width] });
const kOut = (K: number, D: number, int: boolean): ReductionOutput => ({ width: K * D, int, rowShape: D === 1 ? [K] : [K, D] });

/** `state`, `save` and `load` from a reduction's state layout and its `init` (which declares every accumulator). */
function stateHooks(
  state: (c: ReduceCtx) => string[],
  init: (c: ReduceCtx) => string[],
): Pick<ReductionDef, 'state' | 'save' | 'load' | 'init'> {
  return {
    init,
    state,
    save: (c, put) => state(c).map((n, k) => put(k, n)),
    load: (c, get) => [...init(c), ...state(c).map((n, k) => `${n} = ${get(k)};`)],
  };
}

/** Width of a reduction's partial state for these dims, as printed with dialect `d`. */
export function stateWidth(def: ReductionDef, d: Dialect, fDim: number, gDim: number, K: number): number {
  return def.state({ d, fDim, gDim, K, p: 'w_' }).length;
}

/** Min/Max family, parameterised by comparison and which outputs are written. */
function extremum(name: ReductionName, cmp: '<' | '>', emit: 'value' | 'index' | 'both'): ReductionDef {
  const start = cmp === '<' ? Infinity : -Infinity;
  return {
    name,
    weight: 'none',
    usesK: false,
    // The cotangent flows to the selected j; index outputs have none.
    grad: emit === 'index' ? null : extremumGrad,
    check: noCheck,
    outputs: (D) => (emit === 'both' ? [rowOut(D), rowOut(D, true)] : [rowOut(D, emit === 'index')]),
    // State: the running value per coordinate, and its index unless only the value is output.
    ...stateHooks(
      (c) => flat(range(c.fDim).map((k) => (emit === 'value' ? [`${c.p}m${k}`] : [`${c.p}m${k}`, `${c.p}a${k}`]))),
      (c) => flat(range(c.fDim).map((k) => [c.d.decl(`${c.p}m${k}`, c.d.num(start)), c.d.decl(`${c.p}a${k}`, c.d.num(0))])),
    ),
    // Strict comparison keeps the first (lowest) index on ties.
    combine: (c, f, _g, j) =>
      range(c.fDim).map((k) => `if (${f[k]} ${cmp} ${c.p}m${k}) { ${c.p}m${k} = ${f[k]}; ${c.p}a${k} = ${j}; }`),
    // The later block wins only when strictly better: on ties the earlier block's (lower) index stays.
    merge: (c, q) =>
      range(c.fDim).map((k) => `if (${q}m${k} ${cmp} ${c.p}m${k}) { ${c.p}m${k} = ${q}m${k}; ${c.p}a${k} = ${q}a${k}; }`),
    finalize: (c, w) =>
      flat(
        range(c.fDim).map((k) =>
          emit === 'both'
            ? [w(0, k, `${c.p}m${k}`), w(1, k, `${c.p}a${k}`)]
            : [w(0, k, emit === 'value' ? `${c.p}m${k}` : `${c.p}a${k}`)],
        ),
      ),
    ref: (terms, D) => {
      const m = range(D).map(() => start);
      const a = range(D).map(() => 0);
      terms.forEach((t, j) =>
        range(D).forEach((k) => {
          if (cmp === '<' ? t.f[k]! < m[k]! : t.f[k]! > m[k]!) {
            m[k] = t.f[k]!;
            a[k] = j;
          }
        }),
      );
      return emit === 'both' ? [m, a] : [emit === 'value' ? m : a];
    },
  };
}

/**
 * Inserts (value, index) into coordinate k's ascending K-list, from the back; strict `<` puts a tie
 * after the equal values already kept (lowest index first). `value` and `index` are re-read, so
 * they must be names or loads.
 */
function insertSorted(c: ReduceCtx, k: number, value: string, index: string): string {
  const v = (r: number): string => `${c.p}v${k}_${r}`;
  const ix = (r: number): string => `${c.p}i${k}_${r}`;
  let body = `${v(0)} = ${value}; ${ix(0)} = ${index};`;
  for (let r = 1; r < c.K; r++) {
    body = `if (${value} < ${v(r - 1)}) { ${v(r)} = ${v(r - 1)}; ${ix(r)} = ${ix(r - 1)}; ${body} } else { ${v(r)} = ${value}; ${ix(r)} = ${index}; }`;
  }
  return `if (${value} < ${v(c.K - 1)}) { ${body} }`;
}

/** KMin family: per coordinate, an ascending list of the K smallest values and their indices. */
function kmin(name: ReductionName, emit: 'value' | 'index' | 'both'): ReductionDef {
  return {
    name,
    weight: 'none',
    usesK: true,
    grad: emit === 'index' ? null : kminGrad,
    check: (_f, _g, K) => {
      if (!Number.isInteger(K) || K < 1) throw new ReductionError(`${name}: K must be a positive integer, got ${K}`);
    },
    outputs: (D, _g, K) => (emit === 'both' ? [kOut(K, D, false), kOut(K, D, true)] : [kOut(K, D, emit === 'index')]),
    // State: the K-lists of values and indices, coordinate by coordinate.
    ...stateHooks(
      (c) => flat(range(c.fDim).map((k) => flat(range(c.K).map((r) => [`${c.p}v${k}_${r}`, `${c.p}i${k}_${r}`])))),
      (c) =>
        flat(
          range(c.fDim).map((k) =>
            flat(range(c.K).map((r) => [c.d.decl(`${c.p}v${k}_${r}`, c.d.num(Infinity)), c.d.decl(`${c.p}i${k}_${r}`, c.d.num(-1))])),
          ),
        ),
    ),
    combine: (c, f, _g, j) => range(c.fDim).map((k) => insertSorted(c, k, f[k]!, j)),
    // Inserting the later block's sorted list entry by entry, each after the equal values already
    // kept, is a stable merge: on ties the earlier block's (lower) indices come first.
    merge: (c, q) => flat(range(c.fDim).map((k) => range(c.K).map((r) => insertSorted(c, k, `${q}v${k}_${r}`, `${q}i${k}_${r}`)))),
    finalize: (c, w) =>
      flat(
        range(c.K).map((r) =>
          flat(
            range(c.fDim).map((k) => {
              const at = r * c.fDim + k;
              const val = w(0, at, `${c.p}v${k}_${r}`);
              if (emit === 'both') return [val, w(1, at, `${c.p}i${k}_${r}`)];
              return [emit === 'value' ? val : w(0, at, `${c.p}i${k}_${r}`)];
            }),
          ),
        ),
      ),
    ref: (terms, D, _g, K) => {
      const vals: number[] = [];
      const idxs: number[] = [];
      const perCoord = range(D).map((k) =>
        terms
          .map((t, j) => ({ v: t.f[k]!, j }))
          .sort((a, b) => a.v - b.v || a.j - b.j)
          .slice(0, K),
      );
      for (let r = 0; r < K; r++)
        for (let k = 0; k < D; k++) {
          vals.push(perCoord[k]![r]?.v ?? Infinity);
          idxs.push(perCoord[k]![r]?.j ?? -1);
        }
      return emit === 'both' ? [vals, idxs] : [emit === 'value' ? vals : idxs];
    },
  };
}

/** `s_k += x`, compensated (Kahan) where the dialect has a barrier. */
function kahanAdd(c: ReduceCtx, k: number, x: string): string {
  const s = `${c.p}s${k}`;
  if (c.d.barrier === undefined) return `${s} = ${s} + ${x};`;
  const [y, t, comp] = [`${c.p}ky${k}`, `${c.p}kt${k}`, `${c.p}c${k}`];
  return `{ ${c.d.decl(y, `${x} - ${comp}`)} ${c.d.decl(t, c.d.barrier(`${s} + ${y}`))} ${comp} = (${t} - ${s}) - ${y}; ${s} = ${t}; }`;
}

const sum: ReductionDef = {
  name: 'Sum',
  weight: 'none',
  usesK: false,
  grad: (r, inp) => plain([{ f: r.formula, g: inp.g }]),
  check: noCheck,
  outputs: (D) => [rowOut(D)],
  // JS numbers are float64, so a plain running sum meets the accuracy bound. Float32 dialects
  // (those with a `barrier`, i.e. WGSL) use Kahan summation, so 2e5 terms stay within 1e-5
  // relative error; the barrier keeps the compiler from simplifying the compensation away.
  // State: the sums, and where the dialect compensates, the compensation terms (the partial sum is s - c).
  ...stateHooks(
    (c) => range(c.fDim).flatMap((k) => (c.d.barrier === undefined ? [`${c.p}s${k}`] : [`${c.p}s${k}`, `${c.p}c${k}`])),
    (c) =>
      range(c.fDim).flatMap((k) =>
        c.d.barrier === undefined ? [c.d.decl(`${c.p}s${k}`, c.d.num(0))] : [c.d.decl(`${c.p}s${k}`, c.d.num(0)), c.d.decl(`${c.p}c${k}`, c.d.num(0))],
      ),
  ),
  combine: (c, f) => range(c.fDim).map((k) => kahanAdd(c, k, f[k]!)),
  // (s - c) + (s' - c') = s + s' - (c + c'): add the compensations, then add s' compensated.
  merge: (c, q) =>
    range(c.fDim).map((k) =>
      c.d.barrier === undefined ? kahanAdd(c, k, `${q}s${k}`) : `${c.p}c${k} = ${c.p}c${k} + ${q}c${k}; ${kahanAdd(c, k, `${q}s${k}`)}`,
    ),
  finalize: (c, w) => range(c.fDim).map((k) => w(0, k, `${c.p}s${k}`)),
  ref: (terms, D) => [range(D).map((k) => terms.reduce((s, t) => s + t.f[k]!, 0))],
};

/**
 * Running-max log-sum-exp: keeps (m, s) with s = sum exp(f - m) * g. With a weight G the formula
 * F must be scalar and the output has G's dimension; without one, each coordinate of F reduces alone.
 */
const logSumExp: ReductionDef = {
  name: 'LogSumExp',
  weight: 'optional',
  usesK: false,
  // out_k = log sum_j exp F_jk (each coordinate alone): dout/dF_jk = exp(F_jk - out_k).
  // With a weight V (F scalar): out_k = log sum_j exp(F_j) V_jk, so dF_j gets sum_k G_k exp(F_j - out_k) V_jk
  // and dV_jk gets G_k exp(F_j - out_k).
  grad: (r, inp) => {
    const e = call('Exp', sub(r.formula, inp.out()));
    if (r.weight === null) return plain([{ f: r.formula, g: mul(e, inp.g) }]);
    return plain([
      { f: r.formula, g: call('Scalprod', inp.g, mul(e, r.weight)) },
      { f: r.weight, g: mul(inp.g, e) },
    ]);
  },
  check: (fDim, gDim) => {
    if (gDim > 0 && fDim !== 1) throw new ReductionError(`LogSumExp with a weight needs a scalar formula, got dimension ${fDim}`);
  },
  outputs: (fDim, gDim) => [rowOut(gDim > 0 ? gDim : fDim)],
  // State: the running maxima m (one with a weight, else one per coordinate) and the scaled sums s.
  ...stateHooks(
    (c) => [...range(c.gDim > 0 ? 1 : c.fDim).map((k) => `${c.p}m${k}`), ...range(c.gDim > 0 ? c.gDim : c.fDim).map((k) => `${c.p}s${k}`)],
    (c) => {
      const n = c.gDim > 0 ? 1 : c.fDim;
      const w = c.gDim > 0 ? c.gDim : c.fDim;
      return [
        ...range(n).map((k) => c.d.decl(`${c.p}m${k}`, c.d.num(-Infinity))),
        ...range(w).map((k) => c.d.decl(`${c.p}s${k}`, c.d.num(0))),
        c.d.decl(`${c.p}r`, c.d.num(0)),
      ];
    },
  ),
  // (m, s) and (m', s'): rescale the pair with the smaller maximum to the larger one.
  merge: (c, q) => {
    const e = c.d;
    const p = c.p;
    if (c.gDim === 0) {
      return range(c.fDim).map(
        (k) =>
          `if (${q}m${k} > ${p}m${k}) { ${p}s${k} = ${p}s${k} * ${e.call('exp', `${p}m${k} - ${q}m${k}`)} + ${q}s${k}; ${p}m${k} = ${q}m${k}; } else { ${p}s${k} = ${p}s${k} + ${q}s${k} * ${e.call('exp', `${q}m${k} - ${p}m${k}`)}; }`,
      );
    }
    const up = range(c.gDim).map((k) => `${p}s${k} = ${p}s${k} * ${p}r + ${q}s${k};`).join(' ');
    const add = range(c.gDim).map((k) => `${p}s${k} = ${p}s${k} + ${p}r * ${q}s${k};`).join(' ');
    return [
      `if (${q}m0 > ${p}m0) { ${p}r = ${e.call('exp', `${p}m0 - ${q}m0`)}; ${up} ${p}m0 = ${q}m0; } else { ${p}r = ${e.call('exp', `${q}m0 - ${p}m0`)}; ${add} }`,
    ];
  },
  combine: (c, f, g) => {
    const e = c.d;
    if (c.gDim === 0) {
      return range(c.fDim).map(
        (k) =>
          `if (${f[k]} > ${c.p}m${k}) { ${c.p}s${k} = ${c.p}s${k} * ${e.call('exp', `${c.p}m${k} - ${f[k]}`)} + ${e.num(1)}; ${c.p}m${k} = ${f[k]}; } else { ${c.p}s${k} = ${c.p}s${k} + ${e.call('exp', `${f[k]} - ${c.p}m${k}`)}; }`,
      );
    }
    const up = range(c.gDim).map((k) => `${c.p}s${k} = ${c.p}s${k} * ${c.p}r + ${g[k]};`).join(' ');
    const add = range(c.gDim).map((k) => `${c.p}s${k} = ${c.p}s${k} + ${c.p}r * ${g[k]};`).join(' ');
    return [
      `if (${f[0]} > ${c.p}m0) { ${c.p}r = ${e.call('exp', `${c.p}m0 - ${f[0]}`)}; ${up} ${c.p}m0 = ${f[0]}; } else { ${c.p}r = ${e.call('exp', `${f[0]} - ${c.p}m0`)}; ${add} }`,
    ];
  },
  finalize: (c, w) =>
    c.gDim === 0
      ? range(c.fDim).map((k) => w(0, k, `${c.p}m${k} + ${c.d.call('log', `${c.p}s${k}`)}`))
      : range(c.gDim).map((k) => w(0, k, `${c.p}m0 + ${c.d.call('log', `${c.p}s${k}`)}`)),
  ref: (terms, fDim, gDim) => {
    if (gDim === 0) {
      return [
        range(fDim).map((k) => {
          const m = Math.max(...terms.map((t) => t.f[k]!));
          return m + Math.log(terms.reduce((s, t) => s + Math.exp(t.f[k]! - m), 0));
        }),
      ];
    }
    const m = Math.max(...terms.map((t) => t.f[0]!));
    return [range(gDim).map((k) => m + Math.log(terms.reduce((s, t) => s + Math.exp(t.f[0]! - m) * t.g[k]!, 0)))];
  },
};

/** sum_j exp(f_j) g_j / sum_j exp(f_j), with a running max for stability. */
const sumSoftMaxWeight: ReductionDef = {
  name: 'SumSoftMaxWeight',
  weight: 'required',
  usesK: false,
  // out = sum_j p_j V_j with p = softmax_j(F): dF_j = p_j <G, V_j - out>, dV_j = p_j G. Over j the
  // p-weighted sum is itself a SumSoftMaxWeight (no lse needed); over i, p_ij = exp(F_ij - lse_i).
  grad: (r, inp, overKept) => {
    const v = r.weight!;
    const dF = call('Scalprod', inp.g, sub(v, inp.out()));
    if (!overKept) return { seeds: [{ f: r.formula, g: dF }, { f: v, g: inp.g }], softmax: true };
    const p = call('Exp', sub(r.formula, inp.lse()));
    return plain([{ f: r.formula, g: mul(p, dF) }, { f: v, g: mul(p, inp.g) }]);
  },
  check: (fDim) => {
    if (fDim !== 1) throw new ReductionError(`SumSoftMaxWeight needs a scalar formula, got dimension ${fDim}`);
  },
  outputs: (_f, gDim) => [rowOut(gDim)],
  // State: the running maximum m, the normaliser z and the weighted sums s (all scaled by exp(-m)).
  ...stateHooks(
    (c) => [`${c.p}m`, `${c.p}z`, ...range(c.gDim).map((k) => `${c.p}s${k}`)],
    (c) => [
      c.d.decl(`${c.p}m`, c.d.num(-Infinity)),
      c.d.decl(`${c.p}z`, c.d.num(0)),
      c.d.decl(`${c.p}r`, c.d.num(0)),
      ...range(c.gDim).map((k) => c.d.decl(`${c.p}s${k}`, c.d.num(0))),
    ],
  ),
  merge: (c, q) => {
    const e = c.d;
    const p = c.p;
    const up = range(c.gDim).map((k) => `${p}s${k} = ${p}s${k} * ${p}r + ${q}s${k};`).join(' ');
    const add = range(c.gDim).map((k) => `${p}s${k} = ${p}s${k} + ${p}r * ${q}s${k};`).join(' ');
    return [
      `if (${q}m > ${p}m) { ${p}r = ${e.call('exp', `${p}m - ${q}m`)}; ${p}z = ${p}z * ${p}r + ${q}z; ${up} ${p}m = ${q}m; } else { ${p}r = ${e.call('exp', `${q}m - ${p}m`)}; ${p}z = ${p}z + ${p}r * ${q}z; ${add} }`,
    ];
  },
  combine: (c, f, g) => {
    const e = c.d;
    const up = range(c.gDim).map((k) => `${c.p}s${k} = ${c.p}s${k} * ${c.p}r + ${g[k]};`).join(' ');
    const add = range(c.gDim).map((k) => `${c.p}s${k} = ${c.p}s${k} + ${c.p}r * ${g[k]};`).join(' ');
    return [
      `if (${f[0]} > ${c.p}m) { ${c.p}r = ${e.call('exp', `${c.p}m - ${f[0]}`)}; ${c.p}z = ${c.p}z * ${c.p}r + ${e.num(1)}; ${up} ${c.p}m = ${f[0]}; } else { ${c.p}r = ${e.call('exp', `${f[0]} - ${c.p}m`)}; ${c.p}z = ${c.p}z + ${c.p}r; ${add} }`,
    ];
  },
  finalize: (c, w) => range(c.gDim).map((k) => w(0, k, `${c.p}s${k} / ${c.p}z`)),
  ref: (terms, _f, gDim) => {
    const m = Math.max(...terms.map((t) => t.f[0]!));
    const z = terms.reduce((s, t) => s + Math.exp(t.f[0]! - m), 0);
    return [range(gDim).map((k) => terms.reduce((s, t) => s + Math.exp(t.f[0]! - m) * t.g[k]!, 0) / z)];
  },
};

/** The reduction table, keyed by KeOps name. */
export const REDUCTIONS: ReadonlyMap<ReductionName, ReductionDef> = new Map(
  [
    sum,
    logSumExp,
    sumSoftMaxWeight,
    extremum('Min', '<', 'value'),
    extremum('Max', '>', 'value'),
    extremum('ArgMin', '<', 'index'),
    extremum('ArgMax', '>', 'index'),
    extremum('Min_ArgMin', '<', 'both'),
    extremum('Max_ArgMax', '>', 'both'),
    kmin('KMin', 'value'),
    kmin('ArgKMin', 'index'),
    kmin('KMin_ArgKMin', 'both'),
  ].map((r) => [r.name, r] as const),
);

/** Looks a reduction up by name; an unknown name is a ReductionError listing the known ones. */
export function reductionDef(name: string): ReductionDef {
  const def = REDUCTIONS.get(name as ReductionName);
  if (def === undefined) {
    throw new ReductionError(`unknown reduction '${name}' (known: ${[...REDUCTIONS.keys()].join(', ')})`);
  }
  return def;
}
