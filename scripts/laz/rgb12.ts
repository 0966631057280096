/**
 * The RGB12 item, version 2 (three 16-bit colour channels): the first point of a chunk raw, then a
 * 7-bit mask of which bytes changed (bit 6: green or blue differ from red, else they copy it), the
 * changed red bytes as differences, and green and blue bytes predicted from red's change.
 */
import { ArithmeticEncoder, SymbolModel } from './arithmetic.js';

export type Rgb = readonly [number, number, number];

/** Reads the colour at byte `o`. */
export function readRgb(v: DataView, o: number): Rgb {
  return [v.getUint16(o, true), v.getUint16(o + 2, true), v.getUint16(o + 4, true)];
}

const lo = (c: number): number => c & 0xff;
const hi = (c: number): number => c >> 8;
const clampByte = (x: number): number => Math.min(255, Math.max(0, x));

/** Compresses the colours of one chunk's points (a new instance per chunk). */
export class Rgb12Compressor {
  private last: Rgb | undefined;
  private readonly used = new SymbolModel(128);
  // One model per coded byte: red low/high, green low/high, blue low/high.
  private readonly diff = Array.from({ length: 6 }, () => new SymbolModel(256));

  constructor(private readonly enc: ArithmeticEncoder) {}

  /** Codes colour `c`; returns false for the chunk's first point, which the caller writes raw. */
  compress(c: Rgb): boolean {
    const last = this.last;
    this.last = c;
    if (last === undefined) return false;
    const [r, g, b] = c;
    const [lr, lg, lb] = last;
    const grey = lo(r) === lo(g) && lo(r) === lo(b) && hi(r) === hi(g) && hi(r) === hi(b);
    const sym =
      Number(lo(lr) !== lo(r)) |
      (Number(hi(lr) !== hi(r)) << 1) |
      (Number(lo(lg) !== lo(g)) << 2) |
      (Number(hi(lg) !== hi(g)) << 3) |
      (Number(lo(lb) !== lo(b)) << 4) |
      (Number(hi(lb) !== hi(b)) << 5) |
      (Number(!grey) << 6);
    const enc = this.enc;
    enc.encodeSymbol(this.used, sym);
    // Red's byte changes (0 when unchanged) predict green's and blue's.
    let dLo = 0;
    let dHi = 0;
    if (sym & 1) {
      dLo = lo(r) - lo(lr);
      enc.encodeSymbol(this.diff[0]!, dLo & 0xff);
    }
    if (sym & 2) {
      dHi = hi(r) - hi(lr);
      enc.encodeSymbol(this.diff[1]!, dHi & 0xff);
    }
    if (sym & 64) {
      if (sym & 4) enc.encodeSymbol(this.diff[2]!, (lo(g) - clampByte(dLo + lo(lg))) & 0xff);
      if (sym & 16) {
        // Blue is predicted from the mean of red's and green's changes (C division: toward zero).
        const d = Math.trunc((dLo + lo(g) - lo(lg)) / 2);
        enc.encodeSymbol(this.diff[4]!, (lo(b) - clampByte(d + lo(lb))) & 0xff);
      }
      if (sym & 8) enc.encodeSymbol(this.diff[3]!, (hi(g) - clampByte(dHi + hi(lg))) & 0xff);
      if (sym & 32) {
        const d = Math.trunc((dHi + hi(g) - hi(lg)) / 2);
        enc.encodeSymbol(this.diff[5]!, (hi(b) - clampByte(d + hi(lb))) & 0xff);
      }
    }
    return true;
  }
}
