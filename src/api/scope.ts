import { nodeOf } from '../graph/state.js';
import { graphState, Node } from '../nodes/node.js';
import { nodeCreated } from '../nodes/interop.js';
import { checkFunction } from '../options.js';

/** The nodes made while one `scope` runs, and the scope it runs in. */
interface Frame {
  readonly made: Node[];
  readonly parent: Frame | undefined;
}

/**
 * Which scope is current. In Node, an AsyncLocalStorage follows an async `fn` across its awaits
 * (and keeps concurrent scopes apart); elsewhere only the synchronous part of `fn` is tracked.
 */
interface Store {
  getStore(): Frame | undefined;
  run<R>(frame: Frame, fn: () => R): R;
}
const asyncHooks = (globalThis as { process?: { getBuiltinModule?: (id: string) => unknown } }).process?.getBuiltinModule?.('node:async_hooks') as
  | { AsyncLocalStorage: new () => Store }
  | undefined;
const als: Store | undefined = asyncHooks === undefined ? undefined : new asyncHooks.AsyncLocalStorage();
let syncFrame: Frame | undefined;
const current = (): Frame | undefined => (als === undefined ? syncFrame : als.getStore());
function runIn<R>(frame: Frame, fn: () => R): R {
  if (als !== undefined) return als.run(frame, fn);
  const saved = syncFrame;
  syncFrame = frame;
  try {
    return fn();
  } finally {
    syncFrame = saved;
  }
}

nodeCreated.hook = (n) => current()?.made.push(n);

/** The nodes in a returned value: a Node, or Nodes inside arrays and plain objects (any depth). */
function nodesIn(value: unknown, out: Set<Node>, seen = new Set<unknown>()): Set<Node> {
  if (value instanceof Node) out.add(value);
  else if (typeof value === 'object' && value !== null && !seen.has(value)) {
    seen.add(value);
    const proto = Object.getPrototypeOf(value) as unknown;
    if (Array.isArray(value)) for (const v of value) nodesIn(v, out, seen);
    else if (proto === Object.prototype || proto === null) for (const v of Object.values(value)) nodesIn(v, out, seen);
  }
  return out;
}

/** Disposes what `frame` made but `result` does not need; hands what it keeps to the parent scope. */
function close(frame: Frame, result: unknown): void {
  const g = graphState();
  const keep = new Set<number>();
  const todo = [...nodesIn(result, new Set())].map((n) => n.id);
  while (todo.length > 0) {
    const id = todo.pop()!;
    if (keep.has(id)) continue;
    keep.add(id);
    todo.push(...(nodeOf(g, id)?.inputs ?? []));
  }
  for (const n of frame.made) {
    if (keep.has(n.id)) frame.parent?.made.push(n);
    else n.dispose();
  }
}

/**
 * Runs `fn` and disposes the nodes made while it runs, except those it returns (a Node, or Nodes
 * in a returned array or plain object) and the nodes these read (tfjs's `tidy`). For an async `fn`
 * the nodes are disposed when its promise settles. Nested scopes hand what they return to the
 * enclosing one. If `fn` throws (or rejects), everything it made is disposed. In Node, the nodes
 * made by an async `fn` are tracked across its awaits and concurrent scopes are kept apart; where
 * there is no AsyncLocalStorage (a browser), only the nodes made before its first `await` are.
 * @example
 * ```ts
 * import { scope, source, Vi, Vj } from 'kernelflow';
 * const x = source(Float32Array.from({ length: 300 }, Math.random), [100, 3]);
 * for (let step = 0; step < 3; step++) {
 *   const total = await scope(async () => {
 *     const d = Vi(x).sqdist(Vj(x)).min(1);     // made and disposed at each step
 *     return (await d.sum().read()).data[0]!;
 *   });
 *   console.log(total);
 * }
 * const kept = scope(() => Vi(x).sqdist(Vj(x)).sum(1).mean()); // kept, with the sum it reads
 * console.log(await kept.array());
 * ```
 */
export function scope<R>(fn: () => R): R {
  checkFunction('scope', fn);
  const frame: Frame = { made: [], parent: current() };
  let result: R;
  try {
    result = runIn(frame, fn);
  } catch (e) {
    close(frame, undefined);
    throw e;
  }
  if (typeof (result as { then?: unknown } | null)?.then === 'function') {
    return (result as PromiseLike<unknown>).then(
      (value) => {
        close(frame, value);
        return value;
      },
      (e: unknown) => {
        close(frame, undefined);
        throw e;
      },
    ) as R;
  }
  close(frame, result);
  return result;
}
