/**
 * The cluster backend's options, apart from the backend itself so that the public declarations
 * (InitOptions) never reach the NATS client's types: the NATS packages are optional.
 */
import { finiteAtLeast, integerAtLeast, oneOf } from '../options.js';

/**
 * Options of the cluster backend (`init({ backend: 'cluster', servers, cluster: { ... } })`).
 * @example
 * ```ts
 * import { init, shutdown, type ClusterOptions } from 'kernelflow';
 * const cluster: ClusterOptions = { split: 'auto', stallTimeoutMs: 10_000 };
 * await init({ backend: 'cluster', servers: 'nats://127.0.0.1:4222', cluster });
 * await shutdown();
 * ```
 */
export interface ClusterOptions {
  /** `'rows'` (blocks of kept rows), `'reduced'` (blocks of the reduced axis) or `'auto'` (default: rows when the kept side is big). */
  readonly split?: 'auto' | 'rows' | 'reduced';
  /** Smallest shard, in (i, j) pairs: a smaller problem uses fewer workers (default 2^20; one shard below that). */
  readonly minShardPairs?: number;
  /** Shards per live worker (default 1); each worker takes one at a time, so more shards balance unequal workers. */
  readonly shardsPerWorker?: number;
  /** A worker that does not acknowledge a shard within this many ms is taken for dead (default 3000). */
  readonly ackTimeoutMs?: number;
  /** A worker silent (no heartbeat) for this many ms while working is taken for dead (default 5000). */
  readonly stallTimeoutMs?: number;
  /** Arrays up to this many bytes travel inside requests; larger ones through the object store (default 256 KiB). */
  readonly inlineBytes?: number;
  /** How long a discovered worker list is trusted before asking again (default 10000 ms). */
  readonly discoveryMs?: number;
}

/** The check of each cluster option. */
export const CLUSTER_OPTION_CHECKS = {
  split: oneOf('auto', 'rows', 'reduced'),
  minShardPairs: finiteAtLeast(1),
  shardsPerWorker: integerAtLeast(1),
  ackTimeoutMs: finiteAtLeast(0, true),
  stallTimeoutMs: finiteAtLeast(0, true),
  inlineBytes: finiteAtLeast(0),
  discoveryMs: finiteAtLeast(0),
};

