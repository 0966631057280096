import { ReductionError } from '../errors.js';
import type { Formula } from '../graph/formula.js';
import { acc, declAcc, one, printer, slotsWidth, stateHooks, type StateSlot } from './accumulators.js';
import { call, mul, sub } from './diff.js';
import { kmin } from './kmin.js';
import { forEach, type Ix, type Operand } from './loop.js';
import type { Dialect } from './op.js';
import { extremumGrad, plain, type GradRule } from './reduction-rule.js';

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
  /** Where the declarations of array accumulators go, for the kernel to hoist out of its loops (default: declared in place). */
  readonly arrays?: string[];
}

/** `write(o, k, expr)`: a statement storing `expr` as component k (a constant or an index expression) of output o for the current row. */
export type Writer = (o: number, k: Ix, expr: string) => string;

/** `put(k, expr)`: a statement storing `expr` as float k of the current row's partial state. */
export type StateWriter = (k: Ix, expr: string) => string;

/** `get(k)`: an expression reading float k of a stored partial state. */
export type StateReader = (k: Ix) => string;

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
  /** `f`, `g`: the formulas' values at the current pair (read at the coordinate's index); `j`: the reduced index. */
  combine(c: ReduceCtx, f: Operand, g: Operand, j: string): string[];
  finalize(c: ReduceCtx, write: Writer): string[];
  /**
   * Split of the reduced axis (KeOps GpuReduc2D): blocks of j are reduced separately into partial
   * states, which a second pass merges in block order and finalizes. `state` declares the layout:
   * the accumulators (named from `c.p`, as `init` declares them) that carry a partial reduction,
   * in storage order. Every float is a value or an index (exact below 2^24, as in the kernels'
   * `jf`); their count is the state width (`stateWidth`). It may depend on the dialect
   * (compensation terms exist only where the dialect has a `barrier`).
   */
  state(c: ReduceCtx): readonly StateSlot[];
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

const noCheck = (): void => undefined;
const rowOut = (width: number, int = false): ReductionOutput => ({ width, int, rowShape: [width] });

/** Width of a reduction's partial state for these dims, as printed with dialect `d`. */
export function stateWidth(def: ReductionDef, d: Dialect, fDim: number, gDim: number, K: number): number {
  return slotsWidth(def.state({ d, fDim, gDim, K, p: 'w_' }));
}

/** Statements of `body(k)` for each of n coordinates (unrolled, or a loop when n is wide). */
const coords = (c: ReduceCtx, n: number, body: (k: Ix) => readonly string[]): string[] => forEach(printer(c), n, body);

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
      (c) => (emit === 'value' ? [{ base: 'm', n: c.fDim }] : [{ base: 'm', n: c.fDim }, { base: 'a', n: c.fDim }]),
      (c) => [...declAcc(c, 'm', c.fDim, c.d.num(start)), ...declAcc(c, 'a', c.fDim, c.d.num(0))],
    ),
    // Strict comparison keeps the first (lowest) index on ties.
    combine: (c, f, _g, j) => {
      const [m, a] = [acc(c, 'm', c.fDim), acc(c, 'a', c.fDim)];
      return coords(c, c.fDim, (k) => [`if (${f.at(k)} ${cmp} ${m(k)}) { ${m(k)} = ${f.at(k)}; ${a(k)} = ${j}; }`]);
    },
    // The later block wins only when strictly better: on ties the earlier block's (lower) index stays.
    merge: (c, q) => {
      const [m, a] = [acc(c, 'm', c.fDim), acc(c, 'a', c.fDim)];
      return coords(c, c.fDim, (k) => [`if (${m(k, q)} ${cmp} ${m(k)}) { ${m(k)} = ${m(k, q)}; ${a(k)} = ${a(k, q)}; }`]);
    },
    finalize: (c, w) => {
      const [m, a] = [acc(c, 'm', c.fDim), acc(c, 'a', c.fDim)];
      return coords(c, c.fDim, (k) => (emit === 'both' ? [w(0, k, m(k)), w(1, k, a(k))] : [w(0, k, emit === 'value' ? m(k) : a(k))]));
    },
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

/** `s_k += x`, compensated (Kahan) where the dialect has a barrier (its locals live in a block of their own). */
function kahanAdd(c: ReduceCtx, k: Ix, x: string): string {
  const s = acc(c, 's', c.fDim)(k);
  if (c.d.barrier === undefined) return `${s} = ${s} + ${x};`;
  const tag = typeof k === 'number' ? k : '';
  const [y, t, comp] = [`${c.p}ky${tag}`, `${c.p}kt${tag}`, acc(c, 'c', c.fDim)(k)];
  // An infinite running sum has no rounding error to carry: inf - inf would make the compensation NaN.
  const finite = `${c.d.call('abs', t)} <= ${c.d.num(3.4028234663852886e38)}`;
  return `{ ${c.d.decl(y, `${x} - ${comp}`)} ${c.d.decl(t, c.d.barrier(`${s} + ${y}`))} ${comp} = ${c.d.select(finite, `(${t} - ${s}) - ${y}`, c.d.num(0))}; ${s} = ${t}; }`;
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
    (c) => (c.d.barrier === undefined ? [{ base: 's', n: c.fDim }] : [{ base: 's', n: c.fDim }, { base: 'c', n: c.fDim }]),
    (c) => [...declAcc(c, 's', c.fDim, c.d.num(0)), ...(c.d.barrier === undefined ? [] : declAcc(c, 'c', c.fDim, c.d.num(0)))],
  ),
  combine: (c, f) => coords(c, c.fDim, (k) => [kahanAdd(c, k, f.at(k))]),
  // (s - c) + (s' - c') = s + s' - (c + c'): add the compensations, then add s' compensated.
  merge: (c, q) => {
    const [s, comp] = [acc(c, 's', c.fDim), acc(c, 'c', c.fDim)];
    return coords(c, c.fDim, (k) => [c.d.barrier === undefined ? kahanAdd(c, k, s(k, q)) : `${comp(k)} = ${comp(k)} + ${comp(k, q)}; ${kahanAdd(c, k, s(k, q))}`]);
  },
  finalize: (c, w) => {
    const s = acc(c, 's', c.fDim);
    return coords(c, c.fDim, (k) => [w(0, k, s(k))]);
  },
  ref: (terms, D) => [range(D).map((k) => terms.reduce((s, t) => s + t.f[k]!, 0))],
};

/**
 * exp(f - m) for a term f at or below the running maximum m, without exp(inf - inf) = NaN for
 * infinite ties: a -inf term adds 0 (exp(-inf) = 0, whatever its weight), a term equal to the
 * maximum adds 1 (several +inf terms: +inf, as scipy and torch give). Only a NaN term (or state)
 * leaves NaN.
 */
const expBelow = (c: ReduceCtx, f: string, m: string): string =>
  c.d.select(`${f} == ${c.d.num(-Infinity)}`, c.d.num(0), c.d.select(`${f} == ${m}`, c.d.num(1), c.d.call('exp', `${f} - ${m}`)));

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
    (c) => [
      { base: 'm', n: c.gDim > 0 ? 1 : c.fDim },
      { base: 's', n: c.gDim > 0 ? c.gDim : c.fDim },
    ],
    (c) => [
      ...declAcc(c, 'm', c.gDim > 0 ? 1 : c.fDim, c.d.num(-Infinity)),
      ...declAcc(c, 's', c.gDim > 0 ? c.gDim : c.fDim, c.d.num(0)),
      ...declAcc(c, 'r', 0, c.d.num(0)),
    ],
  ),
  // (m, s) and (m', s'): rescale the pair with the smaller maximum to the larger one.
  merge: (c, q) => {
    const e = c.d;
    if (c.gDim === 0) {
      const [m, s] = [acc(c, 'm', c.fDim), acc(c, 's', c.fDim)];
      return coords(c, c.fDim, (k) => [
        `if (${m(k, q)} > ${m(k)}) { ${s(k)} = ${s(k)} * ${e.call('exp', `${m(k)} - ${m(k, q)}`)} + ${s(k, q)}; ${m(k)} = ${m(k, q)}; } else { ${s(k)} = ${s(k)} + ${s(k, q)} * ${expBelow(c, m(k, q), m(k))}; }`,
      ]);
    }
    const [m, s, r] = [acc(c, 'm', 1)(0), acc(c, 's', c.gDim), one(c, 'r')()];
    const mq = acc(c, 'm', 1)(0, q);
    const up = coords(c, c.gDim, (k) => [`${s(k)} = ${s(k)} * ${r} + ${s(k, q)};`]).join(' ');
    const add = coords(c, c.gDim, (k) => [`${s(k)} = ${s(k)} + ${r} * ${s(k, q)};`]).join(' ');
    return [`if (${mq} > ${m}) { ${r} = ${e.call('exp', `${m} - ${mq}`)}; ${up} ${m} = ${mq}; } else { ${r} = ${expBelow(c, mq, m)}; ${add} }`];
  },
  combine: (c, f, g) => {
    const e = c.d;
    if (c.gDim === 0) {
      const [m, s] = [acc(c, 'm', c.fDim), acc(c, 's', c.fDim)];
      return coords(c, c.fDim, (k) => [
        `if (${f.at(k)} > ${m(k)}) { ${s(k)} = ${s(k)} * ${e.call('exp', `${m(k)} - ${f.at(k)}`)} + ${e.num(1)}; ${m(k)} = ${f.at(k)}; } else { ${s(k)} = ${s(k)} + ${expBelow(c, f.at(k), m(k))}; }`,
      ]);
    }
    const [m, s, r, f0] = [acc(c, 'm', 1)(0), acc(c, 's', c.gDim), one(c, 'r')(), f.at(0)];
    const up = coords(c, c.gDim, (k) => [`${s(k)} = ${s(k)} * ${r} + ${g.at(k)};`]).join(' ');
    const add = coords(c, c.gDim, (k) => [`${s(k)} = ${s(k)} + ${r} * ${g.at(k)};`]).join(' ');
    return [`if (${f0} > ${m}) { ${r} = ${e.call('exp', `${m} - ${f0}`)}; ${up} ${m} = ${f0}; } else { ${r} = ${expBelow(c, f0, m)}; ${add} }`];
  },
  // m + log s: every term -inf (or none) leaves m = -inf and s = 0: -inf; a NaN term leaves s = NaN.
  finalize: (c, w) => {
    const lse = (m: string, s: string): string => `${m} + ${c.d.call('log', s)}`;
    if (c.gDim === 0) {
      const [m, s] = [acc(c, 'm', c.fDim), acc(c, 's', c.fDim)];
      return coords(c, c.fDim, (k) => [w(0, k, lse(m(k), s(k)))]);
    }
    const [m, s] = [acc(c, 'm', 1)(0), acc(c, 's', c.gDim)];
    return coords(c, c.gDim, (k) => [w(0, k, lse(m, s(k)))]);
  },
  ref: (terms, fDim, gDim) => {
    if (gDim === 0) {
      return [
        range(fDim).map((k) => {
          const m = Math.max(...terms.map((t) => t.f[k]!));
          return m === -Infinity ? -Infinity : m + Math.log(terms.reduce((s, t) => s + (t.f[k] === m ? 1 : Math.exp(t.f[k]! - m)), 0));
        }),
      ];
    }
    const m = Math.max(...terms.map((t) => t.f[0]!));
    if (m === -Infinity) return [range(gDim).map(() => -Infinity)];
    return [range(gDim).map((k) => m + Math.log(terms.reduce((s, t) => s + (t.f[0] === m ? 1 : Math.exp(t.f[0]! - m)) * t.g[k]!, 0)))];
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
    (c) => [
      { base: 'm', n: 0 },
      { base: 'z', n: 0 },
      { base: 's', n: c.gDim },
    ],
    (c) => [...declAcc(c, 'm', 0, c.d.num(-Infinity)), ...declAcc(c, 'z', 0, c.d.num(0)), ...declAcc(c, 'r', 0, c.d.num(0)), ...declAcc(c, 's', c.gDim, c.d.num(0))],
  ),
  merge: (c, q) => {
    const e = c.d;
    const [m, z, r, s] = [one(c, 'm'), one(c, 'z'), one(c, 'r')(), acc(c, 's', c.gDim)];
    const up = coords(c, c.gDim, (k) => [`${s(k)} = ${s(k)} * ${r} + ${s(k, q)};`]).join(' ');
    const add = coords(c, c.gDim, (k) => [`${s(k)} = ${s(k)} + ${r} * ${s(k, q)};`]).join(' ');
    return [
      `if (${m(q)} > ${m()}) { ${r} = ${e.call('exp', `${m()} - ${m(q)}`)}; ${z()} = ${z()} * ${r} + ${z(q)}; ${up} ${m()} = ${m(q)}; } else { ${r} = ${e.call('exp', `${m(q)} - ${m()}`)}; ${z()} = ${z()} + ${r} * ${z(q)}; ${add} }`,
    ];
  },
  combine: (c, f, g) => {
    const e = c.d;
    const [m, z, r, s, f0] = [one(c, 'm')(), one(c, 'z')(), one(c, 'r')(), acc(c, 's', c.gDim), f.at(0)];
    const up = coords(c, c.gDim, (k) => [`${s(k)} = ${s(k)} * ${r} + ${g.at(k)};`]).join(' ');
    const add = coords(c, c.gDim, (k) => [`${s(k)} = ${s(k)} + ${r} * ${g.at(k)};`]).join(' ');
    return [
      `if (${f0} > ${m}) { ${r} = ${e.call('exp', `${m} - ${f0}`)}; ${z} = ${z} * ${r} + ${e.num(1)}; ${up} ${m} = ${f0}; } else { ${r} = ${e.call('exp', `${f0} - ${m}`)}; ${z} = ${z} + ${r}; ${add} }`,
    ];
  },
  finalize: (c, w) => {
    const s = acc(c, 's', c.gDim);
    return coords(c, c.gDim, (k) => [w(0, k, `${s(k)} / ${one(c, 'z')()}`)]);
  },
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
