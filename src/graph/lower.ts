import type { Formula } from './formula.js';

/**
 * One SSA temporary: a formula node whose arguments are earlier temporaries.
 * `level` says in which loop it can be computed: 0 outside both (parameters and constants),
 * 1 per i (depends on i-variables), 2 per (i, j) pair (depends on j-variables).
 */
export interface Temp {
  readonly id: number;
  readonly node: Formula;
  readonly args: readonly number[];
  readonly level: 0 | 1 | 2;
}

export interface Linearized {
  readonly temps: readonly Temp[];
  /** Temp id of each root, in the order the roots were given. */
  readonly roots: readonly number[];
}

const LEVEL_OF_CAT = [1, 2, 0] as const;

/** Linearises formulas into SSA temporaries in dependency order; common subexpressions appear once. */
export function linearize(roots: readonly Formula[]): Linearized {
  const ids = new Map<string, number>();
  const temps: Temp[] = [];
  const visit = (f: Formula): number => {
    const known = ids.get(f.key);
    if (known !== undefined) return known;
    const args = f.kind === 'op' ? f.args.map(visit) : [];
    let level: 0 | 1 | 2 = f.kind === 'var' ? LEVEL_OF_CAT[f.cat] : 0;
    for (const a of args) level = Math.max(level, temps[a]!.level) as 0 | 1 | 2;
    const id = temps.length;
    temps.push({ id, node: f, args, level });
    ids.set(f.key, id);
    return id;
  };
  return { temps, roots: roots.map(visit) };
}
