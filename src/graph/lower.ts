import { postOrder, type Formula } from './formula.js';

/**
 * One SSA temporary: a formula node whose arguments are earlier temporaries.
 * `level` is a bit mask of the indices it depends on, i.e. the loop it can be computed in:
 * 0 once (parameters, constants), 1 per i, 2 per j (shared by all rows of a block), 3 per (i, j).
 */
export interface Temp {
  readonly id: number;
  readonly node: Formula;
  readonly args: readonly number[];
  readonly level: Level;
}

export interface Linearized {
  readonly temps: readonly Temp[];
  /** Temp id of each root, in the order the roots were given. */
  readonly roots: readonly number[];
}

export type Level = 0 | 1 | 2 | 3;
const LEVEL_OF_CAT = [1, 2, 0] as const;

/** Linearises formulas into SSA temporaries in dependency order; common subexpressions appear once. */
export function linearize(roots: readonly Formula[]): Linearized {
  const ids = new Map<Formula, number>();
  const temps: Temp[] = [];
  for (const f of postOrder(roots)) {
    const args = f.kind === 'op' ? f.args.map((a) => ids.get(a)!) : [];
    let level: number = f.kind === 'var' ? LEVEL_OF_CAT[f.cat] : 0;
    for (const a of args) level |= temps[a]!.level;
    const id = temps.length;
    temps.push({ id, node: f, args, level: level as Level });
    ids.set(f, id);
  }
  return { temps, roots: roots.map((r) => ids.get(r)!) };
}
