import type { Formula } from '../graph/formula.js';
import { GpuBackend } from '../gpu/backend.js';
import { unbindable, type BoundReduction } from '../gpu/bound.js';
import type { ReductionSpec } from '../ops/reductions.js';
import type { TensorLike } from '../tensor.js';
import { resolveBackend } from './backends.js';
import { prepareReduction, type ExecuteOptions, type ReductionArguments } from './execute.js';

/** A bound reduction, or why the reduction cannot be bound to a device. */
export type Binding = { readonly bound: BoundReduction; readonly why?: undefined } | { readonly bound?: undefined; readonly why: string };

/**
 * Binds a reduction linear in argument `p` to the device (issue 19: a resident solve applies it
 * to device vectors): checked and planned as `executeReduction` would (`args[p]` gives p's shape;
 * its values are not read), then uploaded once by the WebGPU backend. Resolves to why not when
 * the backend is not WebGPU or the reduction is batched, block-sparse, float64 or has other than
 * one float output; errors of the arguments throw as in `executeReduction`.
 */
export async function bindReduction(
  formula: Formula,
  opts: ReductionSpec & Pick<ExecuteOptions, 'backend'>,
  args: readonly (TensorLike | undefined)[],
  info: ReductionArguments,
  p: number,
): Promise<Binding> {
  await resolveBackend(opts.backend); // the first computation chooses the backend (init 'auto')
  const prep = await prepareReduction(formula, opts, args, info);
  if (!(prep.backend instanceof GpuBackend)) return { why: `the reductions run on the ${prep.backend.name} backend` };
  if (prep.batchShape.length > 0) return { why: 'the reduction has batch dimensions' };
  if (prep.ranges !== undefined) return { why: 'the reduction is block-sparse' };
  const why = unbindable(prep.plan, p);
  if (why !== undefined) return { why };
  return { bound: await prep.backend.bind(prep.plan, prep.ins, prep.M, prep.N, p) };
}
