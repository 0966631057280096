/**
 * The two LAZ decoders bundled in `@loaders.gl/las` (laz-perf compiled to wasm, and laz-rs), used
 * raw: they give back each point record's bytes, so a test can check every field of what our
 * encoder (scripts/laz) wrote, not only the columns loaders.gl exposes. The package's exports do
 * not list these files, so they are imported by path (the same module instances loaders.gl uses).
 */
import { readFileSync, realpathSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { pathToFileURL } from 'node:url';

const LIBS = join(dirname(realpathSync(createRequire(import.meta.url).resolve('@loaders.gl/las'))), 'libs');

interface LazPerfModule {
  HEAPU8: Uint8Array;
  _malloc(n: number): number;
  _free(p: number): void;
  LASZip: new () => { open(p: number, n: number): void; getPoint(p: number): void; delete(): void };
}

interface LazRs {
  initSync(o: { module: Uint8Array }): unknown;
  WasmLasZipDecompressor: new (b: Uint8Array) => { decompress_many(out: Uint8Array): void; free(): void };
}

let lazPerf: LazPerfModule | undefined;
let lazRs: LazRs | undefined;

/** Decodes `count` records of `recordLength` bytes from a LAZ file with laz-perf. */
export async function lazPerfRecords(laz: Uint8Array, count: number, recordLength: number): Promise<Uint8Array> {
  if (lazPerf === undefined) {
    const mod = (await import(pathToFileURL(join(LIBS, 'laz-perf/laz-perf.js')).href)) as { default: () => LazPerfModule };
    lazPerf = mod.default();
  }
  const M = lazPerf;
  const file = M._malloc(laz.length);
  const point = M._malloc(recordLength);
  const out = new Uint8Array(count * recordLength);
  const z = new M.LASZip();
  try {
    M.HEAPU8.set(laz, file);
    z.open(file, laz.length);
    for (let i = 0; i < count; i++) {
      z.getPoint(point);
      out.set(M.HEAPU8.subarray(point, point + recordLength), i * recordLength);
    }
  } finally {
    z.delete();
    M._free(point);
    M._free(file);
  }
  return out;
}

/** Decodes `count` records of `recordLength` bytes from a LAZ file with laz-rs. */
export async function lazRsRecords(laz: Uint8Array, count: number, recordLength: number): Promise<Uint8Array> {
  if (lazRs === undefined) {
    lazRs = (await import(pathToFileURL(join(LIBS, 'laz-rs-wasm/laz_rs_wasm.js')).href)) as LazRs;
    // Its default loader fetches the wasm by URL, which Node cannot do for files: give it the bytes.
    lazRs.initSync({ module: readFileSync(join(LIBS, 'laz-rs-wasm/laz_rs_wasm_bg.wasm')) });
  }
  const d = new lazRs.WasmLasZipDecompressor(laz);
  const out = new Uint8Array(count * recordLength);
  try {
    for (let i = 0; i < count; i++) {
      const rec = new Uint8Array(recordLength);
      d.decompress_many(rec);
      out.set(rec, i * recordLength);
    }
  } finally {
    d.free();
  }
  return out;
}
