/** The one scheduler every live node registers with (src/scheduler/engine.ts), and its queries for printGraph, toJSON and tests. */
import { KernelflowError } from '../errors.js';
import type { GraphState } from '../graph/state.js';
import { Engine } from '../scheduler/engine.js';
import type { Tensor } from '../tensor.js';

/** The one scheduler all nodes live in. */
export const engine = new Engine<Tensor>({
  bytesOf: (t) => t.data.byteLength,
  disposedError: (id) => new KernelflowError('DISPOSED', `node #${id} was disposed`),
});

/** @internal The current graph state (immutable; for printGraph, toJSON and tests). */
export function graphState(): GraphState {
  return engine.state;
}

/** @internal Resolves when no recompute is scheduled or running. */
export function whenIdle(): Promise<void> {
  return engine.idle();
}

/** @internal Disposes every live node (tests use it to leave `bytesAllocated` as they found it). */
export function disposeAll(): void {
  engine.disposeAll();
}
