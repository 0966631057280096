import { ComputedNode, whenIdle, type Node } from '../../src/nodes/node.js';
import type { Tensor } from '../../src/tensor.js';

/** Lets timers, microtasks and every scheduled recompute run. */
export async function settle(ms = 0): Promise<void> {
  await new Promise((res) => setTimeout(res, ms));
  await whenIdle();
}

export const sleep = (ms: number): Promise<void> => new Promise((res) => setTimeout(res, ms));

/** A [1, 1] tensor holding v. */
export function scalar(v: number): Tensor {
  return { data: Float32Array.of(v), shape: [1, 1] };
}

/** A node computing `fn` of its inputs' first values, after `delay` ms (0: at once). */
export function mapNode(inputs: readonly Node[], fn: (...v: number[]) => number, delay = 0, label = 'map'): ComputedNode {
  return new ComputedNode(
    inputs,
    async (vals) => {
      if (delay > 0) await sleep(delay);
      return scalar(fn(...vals.map((t) => t.data[0]!)));
    },
    label,
  );
}

/** Collects what an observable emits. */
export function collect(node: Node): { values: number[]; errors: unknown[]; completed: boolean; stop(): void } {
  const out = { values: [] as number[], errors: [] as unknown[], completed: false, stop: () => undefined as void };
  const sub = node.observe().subscribe({
    next: (t) => out.values.push(t.data[0]!),
    error: (e: unknown) => out.errors.push(e),
    complete: () => {
      out.completed = true;
    },
  });
  out.stop = () => sub.unsubscribe();
  return out;
}

/** Asserts that a promise rejects with an error whose message matches `re`; returns the error. */
export async function rejects(p: Promise<unknown>, re: RegExp): Promise<unknown> {
  try {
    await p;
  } catch (e) {
    if (!re.test(String((e as Error)?.message ?? e))) throw new Error(`rejected with '${String(e)}', expected ${re}`);
    return e;
  }
  throw new Error(`resolved, expected a rejection matching ${re}`);
}
