/**
 * Streams over NATS: frames published on a subject become a source node (`natsSource`), and a
 * node's results are published on a subject (`natsSink`), so that a pipeline can be fed by, and
 * feed, other services.
 *
 * A frame is one NATS message: the body is the raw little-endian values, the headers say what
 * they are: `Kf-Shape: 100,3` (row-major shape), `Kf-Dtype: float32` (or `int32`). A message
 * without headers is float32 values of rows of the source's declared trailing dimension. A sink
 * publishes each result the same way, and a failed computation as an empty message with a
 * `Kf-Error` header (the message).
 */
import { Observable, retry, type Subscription as RxSubscription } from 'rxjs';
import type { MsgHdrs, Subscription } from '@nats-io/transport-node';
import { natsConnection, natsModules } from '../cluster/connection.js';
import { BackendError, KernelflowError } from '../errors.js';
import type { Node } from '../nodes/node.js';
import type { SourceNode } from '../nodes/source.js';
import { clusterServers } from '../scheduler/backends.js';
import { checkOptions, isString, type OptionCheck } from '../options.js';
import type { Tensor, TensorLike } from '../tensor.js';
import { source } from './source.js';

/**
 * Where a NATS stream connects: `servers` (default: those given to `init`, else the
 * KERNELFLOW_SERVERS environment variable, else `nats://127.0.0.1:4222`) and a label.
 * @example
 * ```ts
 * import { natsSource, type NatsStreamOptions } from 'kernelflow';
 * const opts: NatsStreamOptions = { servers: 'nats://127.0.0.1:4222', label: 'lidar' };
 * const scan = natsSource('sensors.lidar', [0, 3], opts);
 * ```
 */
export interface NatsStreamOptions {
  /** NATS server URL(s). */
  readonly servers?: string | readonly string[];
  /** The source node's label (default: the subject). */
  readonly label?: string;
}

/** Header names of a frame. */
export const FRAME_HEADERS = { shape: 'Kf-Shape', dtype: 'Kf-Dtype', error: 'Kf-Error' } as const;

const isServers: OptionCheck = (v) =>
  typeof v === 'string' || (Array.isArray(v) && v.every((s) => typeof s === 'string')) ? undefined : "must be a NATS URL ('nats://HOST:PORT') or a list of them";

function serversOf(where: string, opts: NatsStreamOptions, label: boolean): string | readonly string[] {
  checkOptions(where, opts, label ? { servers: isServers, label: isString } : { servers: isServers });
  const env = typeof process !== 'undefined' ? process.env.KERNELFLOW_SERVERS : undefined;
  return opts.servers ?? clusterServers() ?? (env === undefined || env === '' ? 'nats://127.0.0.1:4222' : env);
}

/** A frame's tensor from a message (a copy: message bytes may share a larger buffer). */
function decodeFrame(data: Uint8Array, headers: MsgHdrs | undefined, shape: readonly number[] | undefined): TensorLike {
  const dtype = headers?.get(FRAME_HEADERS.dtype) || 'float32';
  if (dtype !== 'float32' && dtype !== 'float64' && dtype !== 'int32') throw new KernelflowError('DATA', `NATS frame: ${FRAME_HEADERS.dtype} must be float32, float64 or int32, got '${dtype}'`);
  const size = dtype === 'float64' ? 8 : 4;
  const own = new Uint8Array(data.byteLength - (data.byteLength % size));
  own.set(data.subarray(0, own.byteLength));
  const values = dtype === 'int32' ? new Int32Array(own.buffer) : dtype === 'float64' ? new Float64Array(own.buffer) : new Float32Array(own.buffer);
  const text = headers?.get(FRAME_HEADERS.shape) ?? '';
  if (text !== '') return { data: values, shape: text.split(',').map((s) => Number(s.trim())) };
  const D = shape !== undefined && shape.length > 1 ? shape[shape.length - 1]! : 1;
  return { data: values, shape: [Math.floor(values.length / D), D] };
}

/**
 * A source node fed by the frames published on a NATS subject (see the file comment for the
 * frame format). Like `source(observable, shape)`: sampled (the latest frame wins), no value
 * until the first frame; give the frames' shape (`[0, D]`) to lift it with `Vi`/`Vj` before then.
 * Disposing the node unsubscribes.
 * @example
 * ```ts
 * import { natsSource, natsSink, source, Vi, Vj } from 'kernelflow';
 * const scan = natsSource('sensors.lidar', [0, 3], { servers: 'nats://127.0.0.1:4222' });
 * const map = source(new Float32Array(3000), [1000, 3]);
 * const nearest = Vi(scan).sqdist(Vj(map)).min(1);     // [n, 1] per frame
 * const sink = natsSink(nearest, 'sensors.lidar.nearest');
 * // ... later
 * await sink.close();
 * scan.dispose();
 * ```
 */
export function natsSource(subject: string, shape?: readonly number[], opts: NatsStreamOptions = {}): SourceNode {
  const servers = serversOf('natsSource', opts, true);
  const frames = new Observable<TensorLike>((sub) => {
    let nsub: Subscription | undefined;
    let closed = false;
    natsConnection(servers).then(
      (nc) => {
        if (closed) return;
        nsub = nc.subscribe(subject, {
          callback: (err, m) => {
            if (err !== null) sub.error(new BackendError(`NATS subscription to '${subject}' failed: ${err.message}`));
            else {
              try {
                sub.next(decodeFrame(m.data, m.headers, shape));
              } catch {
                // An undecodable frame (unknown dtype) becomes one the source rejects (a DataError):
                // its dependents fail until the next good frame.
                sub.next({ data: new Float32Array(0), shape: [-1] });
              }
            }
          },
        });
      },
      (e: unknown) => sub.error(e),
    );
    return () => {
      closed = true;
      nsub?.unsubscribe();
    };
  });
  return source(frames, shape, opts.label ?? subject);
}

/**
 * A running sink: `published` counts the results sent; `close()` stops it (after flushing).
 * @example
 * ```ts
 * import { natsSink, source, Vi, type NatsSink } from 'kernelflow';
 * const x = source(new Float32Array([3, 4]), [1, 2]);
 * const sink: NatsSink = natsSink(Vi(x).sqnorm2().sum(1), 'results.norms');
 * await sink.close();
 * console.log(sink.published);
 * ```
 */
export interface NatsSink {
  readonly subject: string;
  /** Results published so far. */
  readonly published: number;
  /** Errors published so far (as `Kf-Error` messages). */
  readonly errors: number;
  /** Stops publishing and flushes what was published. */
  close(): Promise<void>;
}

/**
 * Publishes a node's results on a NATS subject: its current value, then one message per
 * recompute, each with `Kf-Shape` and `Kf-Dtype` headers (the frame format of `natsSource`);
 * a failed computation is an empty message with a `Kf-Error` header, and the sink goes on with
 * the next good value.
 * @example
 * ```ts
 * import { natsSink, source, Vi, Vj } from 'kernelflow';
 * const x = source(new Float32Array([0, 0, 1, 1]), [2, 2]);
 * const sink = natsSink(Vi(x).sqdist(Vj(x)).sum(1), 'results.spread', { servers: 'nats://127.0.0.1:4222' });
 * x.set(new Float32Array([0, 0, 2, 2]));                 // publishes the recomputed value too
 * await sink.close();
 * ```
 */
export function natsSink(node: Node, subject: string, opts: Omit<NatsStreamOptions, 'label'> = {}): NatsSink {
  const servers = serversOf('natsSink', opts, false);
  const conn = natsConnection(servers);
  const mods = natsModules();
  let published = 0;
  let errors = 0;
  let lastError: string | undefined;
  let chain: Promise<void> = Promise.resolve();
  const publish = (t: Tensor | null, error?: string): void => {
    chain = chain.then(async () => {
      const [nc, m] = await Promise.all([conn, mods]);
      const h = m.transport.headers();
      if (t === null) {
        h.set(FRAME_HEADERS.error, (error ?? 'error').replace(/[\r\n]+/g, ' '));
        nc.publish(subject, new Uint8Array(0), { headers: h });
        errors++;
        return;
      }
      const max = (nc.info?.max_payload ?? 1 << 20) - 4096;
      if (t.data.byteLength > max) {
        h.set(FRAME_HEADERS.error, `a result of ${t.data.byteLength} bytes exceeds the server's max_payload (${max + 4096})`);
        nc.publish(subject, new Uint8Array(0), { headers: h });
        errors++;
        return;
      }
      h.set(FRAME_HEADERS.shape, t.shape.join(','));
      h.set(FRAME_HEADERS.dtype, t.data instanceof Int32Array ? 'int32' : t.data instanceof Float64Array ? 'float64' : 'float32');
      nc.publish(subject, new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength), { headers: h });
      published++;
    }).catch(() => undefined);
  };
  const sub: RxSubscription = node
    .observe()
    .pipe(
      // Publish a failure once, then keep observing: the next good input recomputes the node.
      (src) =>
        new Observable<Tensor>((o) =>
          src.subscribe({
            next: (t) => {
              lastError = undefined;
              o.next(t);
            },
            error: (e: unknown) => {
              const msg = e instanceof Error ? e.message : String(e);
              if (msg !== lastError) publish(null, msg);
              lastError = msg;
              o.error(e);
            },
            complete: () => o.complete(),
          }),
        ),
      retry({ delay: 100 }),
    )
    .subscribe((t) => publish(t));
  return {
    subject,
    get published() {
      return published;
    },
    get errors() {
      return errors;
    },
    close: async () => {
      sub.unsubscribe();
      await chain;
      const nc = await conn.catch(() => undefined);
      if (nc !== undefined && !nc.isClosed()) await nc.flush();
    },
  };
}
