/**
 * LASzip's integer compressor: codes `real` against a prediction `pred` as a corrector
 * c = real - pred. First k, the bit length of c's interval [-(2^k - 1), 2^k] (one adaptive model
 * per context), then c's place in that interval: with a model of 2^k symbols when k <= 8, else its
 * top 8 bits with a model and the rest raw. k = 0 (c is 0 or 1) is one modelled bit.
 */
import { BitModel, SymbolModel, type ArithmeticEncoder } from './arithmetic.js';

/** Above this many bits, the low bits of a corrector are written raw. */
const BITS_HIGH = 8;

export class IntegerCompressor {
  /** The k of the last corrector: the point items use it as a context for the next coordinate. */
  k = 0;
  private readonly corrBits: number;
  private readonly corrRange: number;
  private readonly corrMin: number;
  private readonly corrMax: number;
  private readonly kModels: SymbolModel[];
  private readonly bit0 = new BitModel();
  private readonly correctors: SymbolModel[];

  constructor(bits: number, contexts = 1) {
    // 32 bits: no folding (the corrector is a wrapped int32 difference).
    this.corrBits = bits > 0 && bits < 32 ? bits : 32;
    this.corrRange = this.corrBits < 32 ? 2 ** this.corrBits : 0;
    this.corrMin = this.corrBits < 32 ? -(this.corrRange / 2) : -(2 ** 31);
    this.corrMax = this.corrBits < 32 ? this.corrMin + this.corrRange - 1 : 2 ** 31 - 1;
    this.kModels = Array.from({ length: contexts }, () => new SymbolModel(this.corrBits + 1));
    // correctors[k - 1] codes the position inside a k-bit interval.
    this.correctors = Array.from({ length: this.corrBits }, (_, i) => new SymbolModel(2 ** Math.min(i + 1, BITS_HIGH)));
  }

  /** Codes `real` given the prediction `pred` in context `context`. */
  compress(enc: ArithmeticEncoder, pred: number, real: number, context: number): void {
    let c = (real - pred) | 0;
    // Fold into [corrMin, corrMax] (a no-op at 32 bits).
    if (c < this.corrMin) c += this.corrRange;
    else if (c > this.corrMax) c -= this.corrRange;
    this.writeCorrector(enc, c, this.kModels[context]!);
  }

  private writeCorrector(enc: ArithmeticEncoder, c: number, kModel: SymbolModel): void {
    // |c| for c <= 0, c - 1 above: the smallest k with c in [-(2^k - 1), 2^k].
    let c1 = c <= 0 ? -c : c - 1;
    let k = 0;
    while (c1 > 0) {
      c1 = Math.floor(c1 / 2);
      k++;
    }
    this.k = k;
    enc.encodeSymbol(kModel, k);
    if (k === 0) {
      enc.encodeBit(this.bit0, c);
      return;
    }
    // k = 32 only for c = -2^31, which k alone identifies.
    if (k === 32) return;
    // Map the interval onto [0, 2^k - 1]: negatives to the lower half, positives to the upper.
    const u = c < 0 ? c + (2 ** k - 1) : c - 1;
    if (k <= BITS_HIGH) enc.encodeSymbol(this.correctors[k - 1]!, u);
    else {
      const low = k - BITS_HIGH;
      enc.encodeSymbol(this.correctors[k - 1]!, Math.floor(u / 2 ** low));
      enc.writeBits(low, u % 2 ** low);
    }
  }
}
