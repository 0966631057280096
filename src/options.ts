/**
 * The one options checker of every public entry (genred, kernelSolve and its per-call options,
 * LazyTensor reductions, solves, init, toJSON/fromJSON): an unknown key is an OptionError that
 * names it, suggests the closest known key and lists them all; a value out of range is an
 * OptionError that says what the option accepts. Each entry declares its keys with a check each.
 */
import { KernelflowError, OptionError } from './errors.js';

/**
 * Checks one option's value: returns what is wrong (completing "option 'k' ...", e.g. "must be an
 * integer >= 1") or undefined when the value is fine. A check may throw its own typed error instead
 * (an unknown backend name is a BackendError).
 */
export type OptionCheck = (value: unknown, where: string) => string | undefined;

/** The options an entry accepts: key -> check. */
export type OptionChecks = Readonly<Record<string, OptionCheck>>;

/**
 * Checks `opts` (undefined: no options) against `checks`. `hints` explain keys that are not options
 * of this entry but are easy to try (pykeops's `dim` where the axis is an argument).
 */
export function checkOptions(where: string, opts: unknown, checks: OptionChecks, hints: Readonly<Record<string, string>> = {}): void {
  if (opts === undefined) return;
  if (typeof opts !== 'object' || opts === null || Array.isArray(opts)) {
    throw new OptionError(`${where}: options must be an object, got ${show(opts)}`, '');
  }
  const known = Object.keys(checks);
  for (const [key, value] of Object.entries(opts)) {
    const check = checks[key];
    if (check === undefined) {
      const hint = hints[key] ?? suggestion(key, known);
      throw new OptionError(`${where}: unknown option '${key}'${hint === '' ? '' : ` (${hint})`}; the options are ${known.map((k) => `'${k}'`).join(', ')}`, key);
    }
    if (value === undefined) continue;
    const problem = check(value, where);
    if (problem !== undefined) throw new OptionError(`${where}: option '${key}' ${problem}, got ${show(value)}`, key);
  }
}

/** "did you mean 'axis'?" for a key within two edits of a known one. */
function suggestion(key: string, known: readonly string[]): string {
  let best = '';
  let bestD = 3;
  for (const k of known) {
    const d = editDistance(key.toLowerCase(), k.toLowerCase());
    if (d < bestD) [best, bestD] = [k, d];
  }
  return best === '' ? '' : `did you mean '${best}'?`;
}

/** Damerau-Levenshtein distance (adjacent transpositions count one: 'alhpa' is 1 from 'alpha'). */
function editDistance(a: string, b: string): number {
  const d = Array.from({ length: a.length + 1 }, (_, i) => Array.from({ length: b.length + 1 }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)));
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let v = Math.min(d[i - 1]![j]! + 1, d[i]![j - 1]! + 1, d[i - 1]![j - 1]! + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) v = Math.min(v, d[i - 2]![j - 2]! + 1);
      d[i]![j] = v;
    }
  }
  return d[a.length]![b.length]!;
}

/** A value as a message shows it: numbers and strings as written, NaN and Infinity by name, objects by kind. */
export function show(v: unknown): string {
  if (typeof v === 'number') return Number.isNaN(v) ? 'NaN' : String(v);
  if (typeof v === 'string') return `'${v}'`;
  if (v === null || typeof v === 'boolean' || v === undefined) return String(v);
  if (Array.isArray(v)) return `an array of ${v.length}`;
  return typeof v === 'object' ? `an object (${v.constructor?.name ?? 'Object'})` : typeof v;
}

// ---- checks ----

/** An integer >= `min`. */
export const integerAtLeast =
  (min: number): OptionCheck =>
  (v) =>
    typeof v === 'number' && Number.isInteger(v) && v >= min ? undefined : `must be an integer >= ${min}`;

/** A finite number >= `min` (or > `min` when `strict`). */
export const finiteAtLeast =
  (min: number, strict = false): OptionCheck =>
  (v) =>
    typeof v === 'number' && Number.isFinite(v) && (strict ? v > min : v >= min) ? undefined : `must be a finite number ${strict ? '>' : '>='} ${min}`;

/** One of the given values. */
export const oneOf =
  (...values: readonly unknown[]): OptionCheck =>
  (v) =>
    values.includes(v) ? undefined : `must be one of ${values.map(show).join(', ')}`;

export const isString: OptionCheck = (v) => (typeof v === 'string' ? undefined : 'must be a string');

export const isFunction: OptionCheck = (v) => (typeof v === 'function' ? undefined : 'must be a function');

/** A TensorLike-looking object (its data and shape are checked where it is used, with its name). */
export const isTensorLike: OptionCheck = (v) =>
  typeof v === 'object' && v !== null && 'data' in v && 'shape' in v ? undefined : 'must be a TensorLike { data, shape }';

/** Anything (checked where it is used). */
export const anything: OptionCheck = () => undefined;

/** The axis accepted as `axis` or as pykeops's `dim`: 0 or 1. */
export const isAxis: OptionCheck = oneOf(0, 1);

/**
 * The axis given as `axis` or as pykeops's `dim` (both: they must agree), else `fallback`.
 * Call after `checkOptions` has checked both keys with {@link isAxis}.
 */
export function axisOf(where: string, opts: { readonly axis?: unknown; readonly dim?: unknown }, fallback: 0 | 1): 0 | 1 {
  const { axis, dim } = opts;
  if (axis !== undefined && dim !== undefined && axis !== dim) {
    throw new OptionError(`${where}: 'axis' (${show(axis)}) and its pykeops name 'dim' (${show(dim)}) disagree`, 'dim');
  }
  return (axis ?? dim ?? fallback) as 0 | 1;
}

/** Throws a typed error unless `fn` is a function: `scope(5)` names the culprit instead of a TypeError from deep inside. */
export function checkFunction(where: string, fn: unknown): void {
  if (typeof fn !== 'function') throw new KernelflowError('ARGUMENT', `${where}: expected a function, got ${show(fn)}`);
}
