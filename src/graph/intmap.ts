/**
 * A persistent map from small non-negative integer keys (node ids) to values: a 32-way bitmapped
 * trie, most significant bits first, updated by path copying. `set` and `delete` copy one path
 * (depth log32 of the largest key: 3 levels up to 32 768 ids, 4 up to a million) and return a new
 * map; every earlier map is unchanged and frozen. Iteration is in ascending key order, which for
 * node ids is wiring order.
 */

/** One trie level: `bitmap` says which of the 32 slots are present, `items` holds them densely. */
interface Trie {
  readonly bitmap: number;
  /** Child tries above level 0, values at level 0. */
  readonly items: readonly unknown[];
}

const BITS = 5;
const MASK = 31;

function popcount(x: number): number {
  x -= (x >>> 1) & 0x55555555;
  x = (x & 0x33333333) + ((x >>> 2) & 0x33333333);
  return (Math.imul((x + (x >>> 4)) & 0x0f0f0f0f, 0x01010101) >>> 24) & 0xff;
}

/** Position of slot `bit` in a node's dense item list. */
const slotIndex = (bitmap: number, bit: number): number => popcount(bitmap & (bit - 1));

let made = 0;

/** @internal How many trie nodes were made so far (tests count the cost of an update with it). */
export function trieNodesMade(): number {
  return made;
}

function node(bitmap: number, items: unknown[]): Trie {
  made++;
  return Object.freeze({ bitmap, items: Object.freeze(items) });
}

function checkKey(k: number): void {
  if (!Number.isInteger(k) || k < 0 || k > 0x7fffffff) throw new RangeError(`IntMap: key ${k} is not an integer in [0, 2^31)`);
}

export class IntMap<V> {
  private static readonly EMPTY = new IntMap<never>(undefined, 0, 0);

  private constructor(
    private readonly root: Trie | undefined,
    /** Shift of the root level: keys below 2^(shift + 5) fit. */
    private readonly shift: number,
    /** Number of entries. */
    readonly size: number,
  ) {
    Object.freeze(this);
  }

  /** The empty map. */
  static empty<V>(): IntMap<V> {
    return IntMap.EMPTY;
  }

  /** A map of the given entries. */
  static of<V>(entries: Iterable<readonly [number, V]>): IntMap<V> {
    let m = IntMap.empty<V>();
    for (const [k, v] of entries) m = m.set(k, v);
    return m;
  }

  get(k: number): V | undefined {
    let t = this.root;
    if (t === undefined || k < 0 || !Number.isInteger(k) || k >= 2 ** (this.shift + BITS)) return undefined;
    for (let s = this.shift; ; s -= BITS) {
      const bit = 1 << ((k >>> s) & MASK);
      if ((t.bitmap & bit) === 0) return undefined;
      const item = t.items[slotIndex(t.bitmap, bit)];
      if (s === 0) return item as V;
      t = item as Trie;
    }
  }

  has(k: number): boolean {
    return this.get(k) !== undefined;
  }

  /** A map with `k` bound to `v` (`this` when it already is). Values must not be undefined. */
  set(k: number, v: V): IntMap<V> {
    checkKey(k);
    if (v === undefined) throw new TypeError('IntMap: undefined is not a value (use delete)');
    let root = this.root;
    let shift = this.shift;
    // Grow upwards until the key fits: the old root becomes slot 0 of a new one.
    while (k >= 2 ** (shift + BITS)) {
      if (root !== undefined) root = node(1, [root]);
      shift += BITS;
    }
    const had = this.has(k);
    const next = insert(root, shift, k, v);
    if (next === root) return this;
    return new IntMap<V>(next, shift, had ? this.size : this.size + 1);
  }

  /** A map without `k` (`this` when it has no such key). */
  delete(k: number): IntMap<V> {
    if (!this.has(k)) return this;
    const next = remove(this.root!, this.shift, k);
    return next === undefined ? IntMap.empty<V>() : new IntMap<V>(next, this.shift, this.size - 1);
  }

  /** Entries in ascending key order. */
  *entries(): IterableIterator<[number, V]> {
    if (this.root !== undefined) yield* walk<V>(this.root, this.shift, 0);
  }

  *keys(): IterableIterator<number> {
    for (const [k] of this.entries()) yield k;
  }

  *values(): IterableIterator<V> {
    for (const [, v] of this.entries()) yield v;
  }

  [Symbol.iterator](): IterableIterator<[number, V]> {
    return this.entries();
  }
}

function insert(t: Trie | undefined, s: number, k: number, v: unknown): Trie {
  const bit = 1 << ((k >>> s) & MASK);
  const bitmap = t?.bitmap ?? 0;
  const at = slotIndex(bitmap, bit);
  const items = t === undefined ? [] : [...t.items];
  const present = (bitmap & bit) !== 0;
  if (s === 0) {
    if (present && items[at] === v) return t!;
    if (present) items[at] = v;
    else items.splice(at, 0, v);
  } else {
    const child = present ? (items[at] as Trie) : undefined;
    const next = insert(child, s - BITS, k, v);
    if (next === child) return t!;
    if (present) items[at] = next;
    else items.splice(at, 0, next);
  }
  return node(bitmap | bit, items);
}

/** `t` without key `k` (which it holds); undefined when nothing is left. */
function remove(t: Trie, s: number, k: number): Trie | undefined {
  const bit = 1 << ((k >>> s) & MASK);
  const at = slotIndex(t.bitmap, bit);
  const items = [...t.items];
  const child = s === 0 ? undefined : remove(items[at] as Trie, s - BITS, k);
  if (child !== undefined) {
    items[at] = child;
    return node(t.bitmap, items);
  }
  items.splice(at, 1);
  const bitmap = t.bitmap & ~bit;
  return bitmap === 0 ? undefined : node(bitmap, items);
}

function* walk<V>(t: Trie, s: number, prefix: number): IterableIterator<[number, V]> {
  let at = 0;
  for (let slot = 0; slot < 32; slot++) {
    if ((t.bitmap & (1 << slot)) === 0) continue;
    const item = t.items[at++];
    const key = prefix + slot * 2 ** s;
    if (s === 0) yield [key, item as V];
    else yield* walk<V>(item as Trie, s - BITS, key);
  }
}
