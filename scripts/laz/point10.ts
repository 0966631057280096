/**
 * The POINT10 item, version 2 (the 20 bytes common to LAS point formats 0 to 5): the first point
 * of a chunk raw, then per point a 6-bit mask of which non-coordinate fields changed, those
 * fields, and x, y, z as integers predicted from the previous point: x and y deltas against a
 * running median of the last five deltas, z against the last z of the same return level. The
 * contexts (return number / number of returns, the k of the previous coordinate) are the format's.
 */
import { ArithmeticEncoder, SymbolModel } from './arithmetic.js';
import { IntegerCompressor } from './integer.js';

/** The fields of a point record's first 20 bytes. */
export interface Point10 {
  x: number;
  y: number;
  z: number;
  intensity: number;
  /** Return number (bits 0-2), number of returns (3-5), scan direction (6), edge of flight line (7). */
  flags: number;
  classification: number;
  /** The scan angle rank as its unsigned byte. */
  scanAngle: number;
  userData: number;
  pointSourceId: number;
}

/** Reads the POINT10 fields of the record at `o`. */
export function readPoint10(v: DataView, o: number): Point10 {
  return {
    x: v.getInt32(o, true),
    y: v.getInt32(o + 4, true),
    z: v.getInt32(o + 8, true),
    intensity: v.getUint16(o + 12, true),
    flags: v.getUint8(o + 14),
    classification: v.getUint8(o + 15),
    scanAngle: v.getUint8(o + 16),
    userData: v.getUint8(o + 17),
    pointSourceId: v.getUint16(o + 18, true),
  };
}

/**
 * Context of a (number of returns n, return number r) pair: 0 ... 14 for valid pairs, the rest
 * spread over the table so that files numbering returns oddly still get distinct contexts.
 */
const RETURN_MAP = [
  [15, 14, 13, 12, 11, 10, 9, 8],
  [14, 0, 1, 3, 6, 10, 10, 9],
  [13, 1, 2, 4, 7, 11, 11, 10],
  [12, 3, 4, 5, 8, 12, 12, 11],
  [11, 6, 7, 8, 9, 13, 13, 12],
  [10, 10, 11, 12, 13, 14, 14, 13],
  [9, 10, 11, 12, 13, 14, 15, 14],
  [8, 9, 10, 11, 12, 13, 14, 15],
] as const;

/** The z context: |n - r|, how far the return is from the last one of its pulse. */
const returnLevel = (n: number, r: number): number => Math.abs(n - r);

/** The median of the last five values, kept sorted with LASzip's alternating insertion. */
export class StreamingMedian5 {
  private readonly v = [0, 0, 0, 0, 0];
  private high = true;

  get(): number {
    return this.v[2]!;
  }

  /** Inserts `x`, dropping the largest or the smallest value in turn (the format's rule). */
  add(x: number): void {
    const v = this.v;
    if (this.high) {
      if (x < v[2]!) {
        v[4] = v[3]!;
        v[3] = v[2]!;
        if (x < v[0]!) [v[2], v[1], v[0]] = [v[1]!, v[0]!, x];
        else if (x < v[1]!) [v[2], v[1]] = [v[1]!, x];
        else v[2] = x;
      } else {
        if (x < v[3]!) [v[4], v[3]] = [v[3]!, x];
        else v[4] = x;
        this.high = false;
      }
    } else if (v[2]! < x) {
      v[0] = v[1]!;
      v[1] = v[2]!;
      if (v[4]! < x) [v[2], v[3], v[4]] = [v[3]!, v[4]!, x];
      else if (v[3]! < x) [v[2], v[3]] = [v[3]!, x];
      else v[2] = x;
    } else {
      if (v[1]! < x) [v[0], v[1]] = [v[1]!, x];
      else v[0] = x;
      this.high = true;
    }
  }
}

/** Even part of k, capped: the coordinate contexts group k values in pairs. */
const kContext = (k: number, cap: number): number => (k < cap ? k & ~1 : cap);

/** Compresses the POINT10 parts of one chunk's points (a new instance per chunk). */
export class Point10Compressor {
  private last: Point10 | undefined;
  private readonly lastIntensity = new Array<number>(16).fill(0);
  private readonly xMedian = Array.from({ length: 16 }, () => new StreamingMedian5());
  private readonly yMedian = Array.from({ length: 16 }, () => new StreamingMedian5());
  private readonly lastHeight = new Array<number>(8).fill(0);
  private readonly changed = new SymbolModel(64);
  private readonly scanAngleModels = [new SymbolModel(256), new SymbolModel(256)];
  // 256 models each, created on first use (a fresh model's state is fixed, so this is invisible).
  private readonly flagModels = new Map<number, SymbolModel>();
  private readonly classModels = new Map<number, SymbolModel>();
  private readonly userModels = new Map<number, SymbolModel>();
  private readonly icIntensity = new IntegerCompressor(16, 4);
  private readonly icSource = new IntegerCompressor(16);
  private readonly icDx = new IntegerCompressor(32, 2);
  private readonly icDy = new IntegerCompressor(32, 22);
  private readonly icZ = new IntegerCompressor(32, 20);

  constructor(private readonly enc: ArithmeticEncoder) {}

  /** Codes point `p`; returns false for the chunk's first point, which the caller writes raw. */
  compress(p: Point10): boolean {
    const last = this.last;
    this.last = p;
    if (last === undefined) return false;
    const r = p.flags & 7;
    const n = (p.flags >> 3) & 7;
    const m = RETURN_MAP[n]![r]!;
    const l = returnLevel(n, r);
    // Intensity is compared with the last intensity of the same return context, not the last point's.
    const mask =
      (Number(last.flags !== p.flags) << 5) |
      (Number(this.lastIntensity[m] !== p.intensity) << 4) |
      (Number(last.classification !== p.classification) << 3) |
      (Number(last.scanAngle !== p.scanAngle) << 2) |
      (Number(last.userData !== p.userData) << 1) |
      Number(last.pointSourceId !== p.pointSourceId);
    const enc = this.enc;
    enc.encodeSymbol(this.changed, mask);
    if (mask & 32) enc.encodeSymbol(model(this.flagModels, last.flags), p.flags);
    if (mask & 16) {
      this.icIntensity.compress(enc, this.lastIntensity[m]!, p.intensity, Math.min(m, 3));
      this.lastIntensity[m] = p.intensity;
    }
    if (mask & 8) enc.encodeSymbol(model(this.classModels, last.classification), p.classification);
    if (mask & 4) enc.encodeSymbol(this.scanAngleModels[(p.flags >> 6) & 1]!, (p.scanAngle - last.scanAngle) & 0xff);
    if (mask & 2) enc.encodeSymbol(model(this.userModels, last.userData), p.userData);
    if (mask & 1) this.icSource.compress(enc, last.pointSourceId, p.pointSourceId, 0);
    const single = Number(n === 1);
    const dx = (p.x - last.x) | 0;
    this.icDx.compress(enc, this.xMedian[m]!.get(), dx, single);
    this.xMedian[m]!.add(dx);
    const dy = (p.y - last.y) | 0;
    this.icDy.compress(enc, this.yMedian[m]!.get(), dy, single + kContext(this.icDx.k, 20));
    this.yMedian[m]!.add(dy);
    this.icZ.compress(enc, this.lastHeight[l]!, p.z, single + kContext((this.icDx.k + this.icDy.k) >> 1, 18));
    this.lastHeight[l] = p.z;
    return true;
  }
}

/** The 256-symbol model for previous value `key`, created on first use. */
function model(models: Map<number, SymbolModel>, key: number): SymbolModel {
  let m = models.get(key);
  if (m === undefined) models.set(key, (m = new SymbolModel(256)));
  return m;
}
