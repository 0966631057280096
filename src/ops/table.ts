import { KernelflowError } from '../errors.js';
import type { OpDef } from './op.js';
import { elementwiseOps } from './elementwise.js';
import { linalgOps } from './linalg.js';
import { specialOps } from './special.js';
import { vectorOps } from './vector.js';

/** The operation table: every op, keyed by its KeOps name. */
export const OPS: ReadonlyMap<string, OpDef> = new Map(
  [...elementwiseOps, ...vectorOps, ...linalgOps, ...specialOps].map((d) => [d.name, d] as const),
);

/** Looks an op up by name; unknown names are a KernelflowError naming them. */
export function opDef(name: string): OpDef {
  const def = OPS.get(name);
  if (def === undefined) throw new KernelflowError('UNKNOWN_OP', `unknown operation '${name}'`);
  return def;
}
