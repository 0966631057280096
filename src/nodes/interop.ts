import type { Observable } from 'rxjs';
import type { Node } from './node.js';

/** @internal Called with every new node (`scope` collects the nodes made inside it). */
export const nodeCreated: { hook?: (n: Node) => void } = {};

/** Where `Symbol.observable` exists (a polyfill), rxjs looks there instead of `'@@observable'`. */
export function aliasSymbolObservable(proto: { '@@observable'(): unknown }): void {
  const key = (Symbol as { observable?: symbol }).observable;
  if (typeof key === 'symbol') Object.defineProperty(proto, key, { value: proto['@@observable'], configurable: true, writable: true });
}

/**
 * An async iterator over an Observable's values, for `for await`: each `next()` resolves with the
 * latest value not yet taken (values that arrive while the consumer is busy replace each other, so
 * a slow consumer sees the newest), ends when the Observable completes and throws its error.
 * `return()` (a `break` out of the loop) unsubscribes.
 */
export function iterate<T>(source: Observable<T>): AsyncIterableIterator<T> {
  let latest: { value: T } | undefined;
  let failure: { error: unknown } | undefined;
  let done = false;
  let waiters: (() => void)[] = [];
  const wake = (): void => {
    const w = waiters;
    waiters = [];
    for (const f of w) f();
  };
  const sub = source.subscribe({
    next: (value) => {
      latest = { value };
      wake();
    },
    error: (error: unknown) => {
      failure = { error };
      wake();
    },
    complete: () => {
      done = true;
      wake();
    },
  });
  const finish = (): IteratorResult<T> => {
    done = true;
    latest = undefined;
    sub.unsubscribe();
    wake();
    return { value: undefined, done: true };
  };
  return {
    async next(): Promise<IteratorResult<T>> {
      for (;;) {
        if (latest !== undefined) {
          const { value } = latest;
          latest = undefined;
          return { value, done: false };
        }
        if (failure !== undefined) {
          const { error } = failure;
          failure = undefined;
          finish();
          throw error;
        }
        if (done) return finish();
        await new Promise<void>((resolve) => waiters.push(resolve));
      }
    },
    async return(): Promise<IteratorResult<T>> {
      return finish();
    },
    [Symbol.asyncIterator]() {
      return this;
    },
  };
}
