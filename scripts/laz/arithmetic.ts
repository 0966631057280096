/**
 * The LASzip range coder (encoder side): a 32-bit interval [base, base + length) narrowed by each
 * coded symbol, renormalised a byte at a time, with carries propagated back into the bytes
 * already written; and its adaptive models (symbols and bits), whose periodic updates are part of
 * the format (a decoder must see the same probabilities at the same time). Used only by the
 * sample-data generator to write LAZ (scripts/laz/laz.ts).
 */

/** Renormalise when the interval length falls below 2^24 (one byte of precision left). */
const MIN_LENGTH = 0x01000000;
/** 2^32: the interval's base and length are unsigned 32-bit integers, kept exact in doubles. */
const TWO32 = 0x100000000;
/** Bit models use 13-bit probabilities; symbol models 15-bit cumulative frequencies. */
const BIT_SHIFT = 13;
const BIT_MAX_COUNT = 1 << BIT_SHIFT;
const SYM_SHIFT = 15;
const SYM_MAX_COUNT = 1 << SYM_SHIFT;

/** An adaptive model of `symbols` symbols: counts, rescaled into a cumulative distribution. */
export class SymbolModel {
  readonly last: number;
  readonly distribution: Uint32Array;
  readonly counts: Uint32Array;
  private total = 0;
  private cycle: number;
  untilUpdate: number;

  constructor(readonly symbols: number) {
    if (symbols < 2 || symbols > 1 << 11) throw new RangeError(`a LASzip symbol model has 2 to 2048 symbols, not ${symbols}`);
    this.last = symbols - 1;
    this.distribution = new Uint32Array(symbols);
    this.counts = new Uint32Array(symbols).fill(1);
    this.cycle = symbols;
    this.update();
    // The first update comes early, after (symbols + 6) / 2 symbols, as LASzip's init sets.
    this.untilUpdate = this.cycle = (symbols + 6) >> 1;
  }

  /** Rescales the counts into the distribution and schedules the next update (5/4 later, capped). */
  update(): void {
    this.total += this.cycle;
    if (this.total > SYM_MAX_COUNT) {
      // Halve the counts so that the model keeps adapting.
      this.total = 0;
      for (let k = 0; k < this.symbols; k++) this.total += this.counts[k] = (this.counts[k]! + 1) >>> 1;
    }
    const scale = Math.floor(0x80000000 / this.total);
    let sum = 0;
    for (let k = 0; k < this.symbols; k++) {
      // scale * sum <= 2^31: exact in a double, and >>> keeps LASzip's unsigned shift.
      this.distribution[k] = (scale * sum) >>> (31 - SYM_SHIFT);
      sum += this.counts[k]!;
    }
    this.cycle = Math.min((5 * this.cycle) >>> 2, (this.symbols + 6) << 3);
    this.untilUpdate = this.cycle;
  }
}

/** An adaptive binary model: the probability of a 0, from counts. */
export class BitModel {
  prob0 = 1 << (BIT_SHIFT - 1);
  count0 = 1;
  count = 2;
  private cycle = 4;
  untilUpdate = 4;

  /** Recomputes the probability of a 0 and schedules the next update (5/4 later, at most 64). */
  update(): void {
    this.count += this.cycle;
    if (this.count > BIT_MAX_COUNT) {
      this.count = (this.count + 1) >>> 1;
      this.count0 = (this.count0 + 1) >>> 1;
      if (this.count0 === this.count) this.count++;
    }
    const scale = Math.floor(0x80000000 / this.count);
    this.prob0 = (this.count0 * scale) >>> (31 - BIT_SHIFT);
    this.cycle = Math.min((5 * this.cycle) >>> 2, 64);
    this.untilUpdate = this.cycle;
  }
}

/** Writes one arithmetic-coded stream (a LAZ chunk's body, or the chunk table). */
export class ArithmeticEncoder {
  private base = 0;
  private length = TWO32 - 1;
  private out = new Uint8Array(1024);
  private size = 0;

  /** Codes bit `sym` (0 or 1) with model `m`. */
  encodeBit(m: BitModel, sym: number): void {
    const x = m.prob0 * (this.length >>> BIT_SHIFT);
    if (sym === 0) {
      this.length = x;
      m.count0++;
    } else {
      this.advance(x);
      this.length -= x;
    }
    if (this.length < MIN_LENGTH) this.renormalise();
    if (--m.untilUpdate === 0) m.update();
  }

  /** Codes symbol `sym` (0 ... symbols - 1) with model `m`. */
  encodeSymbol(m: SymbolModel, sym: number): void {
    if (!(sym >= 0 && sym <= m.last && Number.isInteger(sym))) throw new RangeError(`symbol ${sym} is outside model 0..${m.last}`);
    let x: number;
    if (sym === m.last) {
      // The last symbol takes the rest of the interval: no second product.
      x = m.distribution[sym]! * (this.length >>> SYM_SHIFT);
      this.advance(x);
      this.length -= x;
    } else {
      const l = this.length >>> SYM_SHIFT;
      x = m.distribution[sym]! * l;
      this.advance(x);
      this.length = m.distribution[sym + 1]! * l - x;
    }
    if (this.length < MIN_LENGTH) this.renormalise();
    m.counts[sym]!++;
    if (--m.untilUpdate === 0) m.update();
  }

  /** Writes the low `bits` bits of `sym` uniformly (no model); above 19 bits in two steps. */
  writeBits(bits: number, sym: number): void {
    if (bits > 19) {
      this.writeUniform(16, sym & 0xffff);
      sym = sym >>> 16;
      bits -= 16;
    }
    this.writeUniform(bits, sym);
  }

  /** Ends the stream: settles the interval, flushes, and pads so a decoder's reads stay in bounds. */
  done(): Uint8Array {
    let anotherByte = true;
    if (this.length > 2 * MIN_LENGTH) {
      this.advance(MIN_LENGTH);
      this.length = MIN_LENGTH >>> 1;
    } else {
      this.advance(MIN_LENGTH >>> 1);
      this.length = MIN_LENGTH >>> 9;
      anotherByte = false;
    }
    this.renormalise();
    this.push(0);
    this.push(0);
    if (anotherByte) this.push(0);
    return this.out.slice(0, this.size);
  }

  private writeUniform(bits: number, sym: number): void {
    this.length = this.length >>> bits;
    this.advance(sym * this.length);
    if (this.length < MIN_LENGTH) this.renormalise();
  }

  /** base += x modulo 2^32, carrying into the bytes already written on overflow. */
  private advance(x: number): void {
    const b = this.base + x;
    if (b >= TWO32) {
      this.base = b - TWO32;
      this.carry();
    } else this.base = b;
  }

  /** Adds one to the written bytes as a big number (0xff bytes roll over to 0). */
  private carry(): void {
    let i = this.size - 1;
    while (i >= 0 && this.out[i] === 0xff) this.out[i--] = 0;
    if (i < 0) throw new Error('LAZ encoder: carry past the start of the stream');
    this.out[i]!++;
  }

  /** Outputs the top byte of base until the length is at least 2^24 again. */
  private renormalise(): void {
    do {
      this.push(this.base >>> 24);
      this.base = (this.base * 256) % TWO32;
      this.length *= 256;
    } while (this.length < MIN_LENGTH);
  }

  private push(byte: number): void {
    if (this.size === this.out.length) {
      const grown = new Uint8Array(2 * this.out.length);
      grown.set(this.out);
      this.out = grown;
    }
    this.out[this.size++] = byte;
  }
}
