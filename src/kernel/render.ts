import { LimitError } from '../errors.js';
import type { VarNode } from '../graph/formula.js';
import type { Level, Linearized, Temp } from '../graph/lower.js';
import { isWide, ix, UNROLLED_OP_MAX, type Ix, type Operand } from '../ops/loop.js';
import type { Dialect, EmitCtx, VecCtx, VecEmitted } from '../ops/op.js';
import { opDef } from '../ops/table.js';

type PerLevel = [string[], string[], string[], string[]];

/** Code for a linearised formula: statements per loop level and every temp as an operand. */
export interface RenderedTemps {
  /** Statements to run once (level 0), per i (1), per j (2), per (i, j) pair (3). */
  readonly stmts: readonly [string[], string[], string[], string[]];
  /** Declarations of the arrays the wide temps of each level live in (a kernel hoists them out of its loops). */
  readonly arrays: readonly [string[], string[], string[], string[]];
  /** `values[t]`: temp t, readable at any index (named scalars when narrow, an array or loads when wide). */
  readonly values: readonly Operand[];
}

/** A temp's value: an operand, plus its component names when it is narrow. */
interface Value extends Operand {
  readonly names?: readonly string[];
}

const IDENT = /^[A-Za-z_][A-Za-z0-9_]*$/;
const indent = (lines: readonly string[]): string[] => lines.map((l) => `  ${l}`);

/** Named scalar components; a dimension-1 value reads the same at every index (broadcasting). */
const scalars = (names: readonly string[]): Value => ({
  dim: names.length,
  names,
  at: (i) => {
    if (names.length === 1) return names[0]!;
    if (typeof i !== 'number') throw new Error('internal: a narrow value read at a loop index');
    return names[i]!;
  },
});

/**
 * How an op reads an argument: a narrow one read at a loop index is first copied into an array
 * (`name`), by statements added to `pre` and an array declaration added to `arrays`.
 */
function argView(v: Value, d: Dialect, name: string, pre: string[], arrays: string[]): Operand {
  const names = v.names;
  if (names === undefined || names.length === 1) return v;
  let copied = false;
  return {
    dim: v.dim,
    at: (i: Ix) => {
      if (typeof i === 'number') return names[i]!;
      if (!copied) {
        copied = true;
        arrays.push(d.declArray(name, names.length));
        names.forEach((n, k) => pre.push(`${name}[${d.int(k)}] = ${n};`));
      }
      return `${name}[${i}]`;
    },
  };
}

/** Ops that place their arguments' values without computing with them: nothing to simplify, and a barrier on a barrier is none (OR is idempotent). */
const PLACES_ONLY: ReadonlySet<string> = new Set(['Concat']);

/**
 * Per temp, which of its arguments go through the dialect's barrier: each one reading a variable
 * an earlier argument reads too. WGSL lets the driver assume finite values, and lavapipe
 * simplifies x - x, x + (-x), (x + y) - x, x*y - y*x, (x == x) by algebra where IEEE (and the
 * CPU) gives NaN for an infinite or NaN x (measured; issue 12). Arguments over disjoint variables
 * cannot cancel by algebra, so ordinary kernels (x_i - y_j) compile as before. The variables each
 * temp reads are collected in the lowering's order (arguments come first), without recursion.
 */
function hiddenArgs(lin: Linearized): (readonly boolean[])[] {
  const reads: ReadonlySet<number>[] = [];
  return lin.temps.map((t) => {
    const node = t.node;
    reads[t.id] = node.kind === 'var' ? new Set([node.index]) : new Set(t.args.flatMap((a) => [...reads[a]!]));
    if (node.kind !== 'op' || t.args.length < 2 || PLACES_ONLY.has(node.op)) return [];
    const seen = new Set<number>();
    return t.args.map((a) => {
      const mine = reads[a]!;
      const shares = [...mine].some((v) => seen.has(v));
      for (const v of mine) seen.add(v);
      return shares;
    });
  });
}

/** An operand read through the dialect's barrier (see `hiddenArgs`). */
const hidden = (v: Value, barrier: (e: string) => string): Value => ({ dim: v.dim, at: (i) => barrier(v.at(i)) });

/** A fused temp's expression is inlined at every read: bounded, so chains of fused ops cannot grow without limit. */
const FUSED_MAX_CHARS = 400;

/** For each temp, the temps reading it (once per argument slot). */
function readersOf(lin: Linearized): number[][] {
  const readers: number[][] = lin.temps.map(() => []);
  for (const t of lin.temps) for (const a of t.args) readers[a]!.push(t.id);
  return readers;
}

/** Component k of a fused op: an expression only (fusion is decided on a probe that needed no statements). */
function fusedAt(op: string, each: (k: Ix, pre: string[]) => string, k: Ix): string {
  const pre: string[] = [];
  const e = each(k, pre);
  if (pre.length > 0) throw new Error(`internal: fused ${op} emitted statements`);
  return e;
}

/** Refuses an op without a loop form on vectors too wide to unroll. */
function checkUnrolled(t: Temp): void {
  const node = t.node;
  if (node.kind !== 'op') return;
  const widest = Math.max(node.dim, ...node.args.map((a) => a.dim));
  if (widest > UNROLLED_OP_MAX) {
    throw new LimitError('unrolledDim', `${node.op}: dimension ${widest} exceeds the limit of ${UNROLLED_OP_MAX} for an op printed unrolled, one expression per component (it has no loop form)`);
  }
}

/**
 * Prints the list of temporaries with a dialect. `loadVar(v, k)` gives the expression that reads
 * component k (a constant or a loop index) of variable v at the current (i, j). Narrow temps are
 * named scalars (simple results alias instead of copying); wide ones (above the dialect's unrollMax) are
 * arrays filled by loops, except wide variables, which are read in place.
 * For a block of rows, render once per row with a name `suffix`, sharing the first rendering's
 * temps of the given levels (those that do not depend on i) instead of repeating them.
 */
export function renderTemps(
  lin: Linearized,
  d: Dialect,
  loadVar: (v: VarNode, k: Ix) => string,
  suffix = '',
  shared?: { readonly from: RenderedTemps; readonly levels: readonly Level[] },
): RenderedTemps {
  const stmts: PerLevel = [[], [], [], []];
  const arrays: PerLevel = [[], [], [], []];
  const values: Value[] = [];
  const readers = readersOf(lin);
  /** A wide temp read by one op only, of its own level (so it is not moved into a deeper loop), and not a root (reductions read roots several times). */
  const fusable = (t: Temp): boolean => {
    const r = readers[t.id]!;
    return r.length === 1 && lin.temps[r[0]!]!.level === t.level && !lin.roots.includes(t.id);
  };
  const barrier = d.barrier;
  const hide = barrier === undefined ? undefined : hiddenArgs(lin);
  for (const t of lin.temps) {
    if (shared !== undefined && shared.levels.includes(t.level)) {
      values.push(shared.from.values[t.id]!);
      continue;
    }
    const node = t.node;
    if (node.kind === 'const') values.push(scalars([d.num(node.value)]));
    else if (node.kind === 'var') {
      const load = (k: Ix): string => loadVar(node, k);
      values.push(isWide(d, node.dim) ? { dim: node.dim, at: load } : scalars(name(t, Array.from({ length: node.dim }, (_, k) => load(k)))));
    } else values.push(renderOp(t));
  }
  return { stmts, arrays, values };

  /** Names the components that are not simple already, declaring them at the temp's level. */
  function name(t: Temp, exprs: readonly string[]): string[] {
    return exprs.map((e, k) => {
      if (IDENT.test(e)) return e;
      const n = `t${t.id}_${k}${suffix}`;
      stmts[t.level].push(d.decl(n, e));
      return n;
    });
  }

  function renderOp(t: Temp): Value {
    const node = t.node as Extract<Temp['node'], { kind: 'op' }>;
    const def = opDef(node.op);
    const out = stmts[t.level];
    let fresh = 0;
    const freshName = (hint: string): string => `${hint}_${t.id}_${fresh++}${suffix}`;
    const wide = isWide(d, node.dim);
    const arr = `t${t.id}${suffix}`;
    let declared = false;
    const declare = (): void => {
      if (wide && !declared) arrays[t.level].push(d.declArray(arr, node.dim));
      declared = true;
    };
    const slot = (k: Ix): string => `${arr}[${ix(d, k)}]`;
    const args = t.args.map((a, k) => (hide?.[t.id]![k] === true ? hidden(values[a]!, barrier!) : values[a]!));

    if (def.vec === undefined) {
      const emit = d.name === 'wgsl' && def.wgsl !== undefined ? def.wgsl : def.emit;
      if (emit === undefined) throw new Error(`internal: composite ${node.op} reached codegen unexpanded (plans expand composites)`);
      checkUnrolled(t);
      const ctx: EmitCtx = {
        d,
        args: args.map((a) => Array.from({ length: a.dim }, (_, k) => a.at(k))),
        argDims: node.args.map((a) => a.dim),
        params: node.params,
        dim: node.dim,
        fresh: freshName,
      };
      const emitted = emit(ctx);
      const exprs = 'stmts' in emitted ? emitted.out : (emitted as readonly string[]);
      if ('stmts' in emitted) out.push(...emitted.stmts);
      declare();
      return finish(t, exprs, wide ? slot : undefined);
    }

    const pre: string[] = [];
    const outNames = Array.from({ length: wide ? 0 : node.dim }, (_, k) => `t${t.id}_${k}${suffix}`);
    let written = false;
    const ctx: VecCtx = {
      d,
      args: args.map((a, k) => argView(a, d, `m${t.id}_${k}${suffix}`, pre, arrays[t.level])),
      argDims: node.args.map((a) => a.dim),
      params: node.params,
      dim: node.dim,
      fresh: freshName,
      out: (k) => {
        written = true;
        declare();
        if (wide) return slot(k);
        if (typeof k !== 'number') throw new Error(`internal: ${node.op} wrote a narrow output at a loop index`);
        return outNames[k]!;
      },
    };
    const emitted: VecEmitted = def.vec(ctx);
    const body: string[] = [...(emitted.stmts ?? [])];
    let result: Value | undefined;
    if ('written' in emitted) {
      if (!wide) result = scalars(outNames);
    } else if ('each' in emitted) {
      const each = emitted.each;
      if (wide && fusable(t) && pre.length === 0) {
        // Computed where it is read, inside the reader's loop: no array, no second loop.
        const probe: string[] = [];
        if (each('k', probe).length <= FUSED_MAX_CHARS && probe.length === 0 && pre.length === 0) {
          out.push(...body);
          return { dim: node.dim, at: (k) => fusedAt(node.op, each, k) };
        }
      }
      if (wide) {
        declare();
        const k = freshName('k');
        const inner: string[] = [];
        const e = emitted.each(k, inner);
        body.push(d.loop(k, node.dim), ...indent([...inner, `${slot(k)} = ${e};`]), '}');
      } else {
        const exprs = Array.from({ length: node.dim }, (_, k) => emitted.each(k, body));
        out.push(...pre, ...body);
        return finish(t, exprs);
      }
    } else {
      out.push(...pre, ...body);
      declare();
      return finish(t, emitted.out, wide ? slot : undefined);
    }
    out.push(...pre, ...(written && !wide ? outNames.map((n) => d.decl(n, d.num(0))) : []), ...body);
    return result ?? { dim: node.dim, at: slot };
  }

  /** The value of an op given its component expressions: named scalars, or stored into its array when wide. */
  function finish(t: Temp, exprs: readonly string[], slot?: (k: Ix) => string): Value {
    if (exprs.length !== t.node.dim) throw new Error(`internal: ${t.node.kind === 'op' ? t.node.op : ''} emitted ${exprs.length} components for dim ${t.node.dim}`);
    if (slot === undefined) return scalars(name(t, exprs));
    if (t.node.dim > UNROLLED_OP_MAX) checkUnrolled(t);
    stmts[t.level].push(...exprs.map((e, k) => `${slot(k)} = ${e};`));
    return { dim: t.node.dim, at: slot };
  }
}
