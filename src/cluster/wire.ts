/**
 * The cluster's wire protocol: what a client (src/cluster/backend.ts) and a worker
 * (src/worker/) say to each other over NATS. A message is one binary frame: a little-endian u32
 * header length, the header as JSON (UTF-8), zero padding to a multiple of 4 bytes, then the
 * payload (raw little-endian float32/float64/int32 arrays at the offsets the header gives).
 *
 * Plans travel as data: each job is a reduction name, K, and its formula (and weight) printed in
 * KeOps syntax, which the worker parses back into the same interned formula. Arrays travel by
 * content id: a worker keeps an array under its id until it evicts it, so an array crosses the
 * network once per version, not once per call.
 */
import type { Formula } from '../graph/formula.js';
import { printFormulaExact } from '../graph/print.js';

/** The service name workers register under (NATS micro services discovery: `$SRV.PING.kernelflow`). */
export const SERVICE = 'kernelflow';
/** Subject every worker answers on, in one queue group (load-balanced by the server). */
export const SHARD_SUBJECT = 'kernelflow.shard';
/** A worker's own subject: `kernelflow.shard.<service id>` (the client spreads shards over workers with it). */
export const workerSubject = (id: string): string => `${SHARD_SUBJECT}.${id}`;
/** Queue group of the shared subject. */
export const QUEUE = 'kernelflow';
/** JetStream object store bucket for arrays larger than a message, and for large results. */
export const BUCKET = 'kernelflow';
/** Version of this protocol (a worker refuses others). */
export const PROTOCOL = 1;

/**
 * A formula printed so that a worker can parse it back (`parseFormula(text, [])`): the one place
 * the cluster prints formulas. KeOps text, never elided (a formula too long to print is a LimitError).
 */
export function printFormula(f: Formula): string {
  return printFormulaExact(f);
}

/** One reduction a shard runs over its block (several for a split that needs extra partial results). */
export interface JobSpec {
  readonly reduction: string;
  readonly K: number;
  /** The formula, printed (KeOps syntax, `Var(index,dim,cat)` variables), already over axis 1. */
  readonly f: string;
  /** The weight formula, printed, or null. */
  readonly g: string | null;
  /** 'float64' for a float64 plan (its inputs and value outputs are float64); absent: float32. */
  readonly dtype?: 'float64';
}

/** How a variable's data reaches the worker. */
export interface VarRef {
  readonly index: number;
  readonly dim: number;
  /** 0: i (kept rows), 1: j (reduced), 2: parameter. */
  readonly cat: 0 | 1 | 2;
  /** Content id of the whole array (all rows, not only the shard's block). */
  readonly id: string;
  /** Number of values. */
  readonly length: number;
  /** float64 values (the literal parameters, which the CPU backend keeps in float64); float32 otherwise. */
  readonly f64: boolean;
  /** Where the data is when the worker does not have `id` yet: in this message, or in the object store under `id`. */
  readonly at: { readonly inline: number } | 'store' | 'cached';
}

/** A shard: jobs over rows [i0, i1) and reduced terms [j0, j1) of an M x N problem. */
export interface ShardRequest {
  readonly v: number;
  readonly shard: string;
  readonly jobs: readonly JobSpec[];
  readonly M: number;
  readonly N: number;
  readonly i0: number;
  readonly i1: number;
  readonly j0: number;
  readonly j1: number;
  readonly vars: readonly VarRef[];
}

/** One output array of a job in a reply: `offset` into the payload, or stored in the object store under `stored`. */
export interface OutputRef {
  readonly int: boolean;
  /** float64 values (the output of a float64 plan). */
  readonly f64?: boolean;
  readonly length: number;
  readonly offset: number;
}

/**
 * Replies, all on the request's reply subject: `ack` at once, `beat` while working (the client's
 * stall timer), then exactly one of `ok`, `missing` (arrays the worker has neither cached nor
 * received: the client sends them and asks again) or `error`.
 */
export type ShardReply =
  | { readonly status: 'ack'; readonly worker: string }
  | { readonly status: 'beat'; readonly worker: string }
  | { readonly status: 'missing'; readonly worker: string; readonly ids: readonly string[] }
  | { readonly status: 'error'; readonly worker: string; readonly code: string; readonly message: string }
  | {
      readonly status: 'ok';
      readonly worker: string;
      /** Per job, per output. */
      readonly outputs: readonly (readonly OutputRef[])[];
      /** Set when the payload was too large for a message: the object store name holding it. */
      readonly stored?: string;
      /** Milliseconds the worker spent computing (not fetching). */
      readonly ms: number;
    };

/** Encodes a header and the byte blocks that follow it (each padded to 4 bytes); `offsets` gives each block's payload offset. */
export function encodeFrame(header: unknown, blocks: readonly Uint8Array[] = []): Uint8Array {
  const head = new TextEncoder().encode(JSON.stringify(header));
  const start = align4(4 + head.length);
  let size = start;
  for (const b of blocks) size += align4(b.byteLength);
  const out = new Uint8Array(size);
  new DataView(out.buffer).setUint32(0, head.length, true);
  out.set(head, 4);
  let at = start;
  for (const b of blocks) {
    out.set(b, at);
    at += align4(b.byteLength);
  }
  return out;
}

/** Payload offsets `encodeFrame` gives blocks of these byte lengths. */
export function blockOffsets(lengths: readonly number[]): number[] {
  const out: number[] = [];
  let at = 0;
  for (const n of lengths) {
    out.push(at);
    at += align4(n);
  }
  return out;
}

/** Decodes a frame: the header, and the payload (a view, 4-byte aligned in the frame). */
export function decodeFrame<T>(frame: Uint8Array): { header: T; payload: Uint8Array } {
  if (frame.byteLength < 4) throw new Error(`kernelflow frame too short (${frame.byteLength} bytes)`);
  const n = new DataView(frame.buffer, frame.byteOffset, frame.byteLength).getUint32(0, true);
  if (4 + n > frame.byteLength) throw new Error('kernelflow frame header runs past the message');
  const header = JSON.parse(new TextDecoder().decode(frame.subarray(4, 4 + n))) as T;
  return { header, payload: frame.subarray(align4(4 + n)) };
}

/** The bytes of a typed array (a view). */
export const bytesOf = (a: Float32Array | Int32Array | Float64Array): Uint8Array => new Uint8Array(a.buffer, a.byteOffset, a.byteLength);

/** A float64 array of `length` values copied out of `bytes` at `offset`. */
export function float64At(bytes: Uint8Array, offset: number, length: number): Float64Array {
  if (offset < 0 || offset + length * 8 > bytes.byteLength) throw new Error(`kernelflow frame: array of ${length} float64 values at ${offset} runs past the payload (${bytes.byteLength} bytes)`);
  const own = new Uint8Array(length * 8);
  own.set(bytes.subarray(offset, offset + length * 8));
  return new Float64Array(own.buffer);
}

/** An output array of a reply: float64, float32 or int32 as its reference says. */
export function outputAt(bytes: Uint8Array, o: OutputRef): Float32Array | Float64Array | Int32Array {
  return o.f64 === true ? float64At(bytes, o.offset, o.length) : arrayAt(bytes, o.offset, o.length, o.int);
}

/**
 * A float32 or int32 array of `length` values copied out of `bytes` at `offset` (a message's
 * bytes may be a Node Buffer over a larger, shared chunk: nothing keeps a view of it).
 */
export function arrayAt(bytes: Uint8Array, offset: number, length: number, int: boolean): Float32Array | Int32Array {
  if (offset < 0 || offset + length * 4 > bytes.byteLength) throw new Error(`kernelflow frame: array of ${length} values at ${offset} runs past the payload (${bytes.byteLength} bytes)`);
  const own = new Uint8Array(length * 4);
  own.set(bytes.subarray(offset, offset + length * 4));
  return int ? new Int32Array(own.buffer) : new Float32Array(own.buffer);
}

const align4 = (n: number): number => (n + 3) & ~3;
