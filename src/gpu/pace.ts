/**
 * Pacing of waits on the device. dawn.node polls with setImmediate while a WebGPU promise is
 * pending, and on a CPU driver (lavapipe) that spinning main thread takes cores from the driver's
 * own workers: measured here 1.3-2.4x slower than sleeping through the work (DESIGN.md). So a
 * call sleeps for most of the duration predicted from earlier calls of the same pipeline, and
 * only then waits on the device. The prediction comes from GPU timestamps when the device has
 * them (the time of the compute pass itself), else from the call's own wall time.
 */
export interface PaceState {
  /** Estimated device milliseconds per (i, j) pair; undefined until a warm call was timed. */
  msPerPair?: number;
  /** Whether a call ran yet (the first includes the driver's shader compile, so it is not timed). */
  warm?: boolean;
}

/**
 * Calls this small are not timed: their fixed costs (submit, map, readback) dominate, and a
 * per-pair rate taken from them predicts seconds of sleep for a large call that takes milliseconds.
 */
const MIN_TIMED_PAIRS = 1 << 16;
/** Below this predicted duration (ms) a call does not sleep. */
const MIN_MS = 3;
/** Share of the predicted duration slept through (the rest is waited for by polling). */
const SHARE = 0.9;
const MAX_MS = 10_000;
/** Without timestamps, an unpaced wait overestimates the device's time by about this factor. */
const SPIN_INFLATION = 1.5;

export const isNode = typeof process !== 'undefined' && process.versions?.node !== undefined;

export const delay = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Sleeps `ms`, or less if `stop` settles first (no timer is left behind). */
export async function delayUnless(ms: number, stop: Promise<unknown>): Promise<void> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  await Promise.race([new Promise<void>((r) => (timer = setTimeout(r, ms))), stop.then(() => undefined, () => undefined)]);
  clearTimeout(timer);
}

/** How long to sleep before waiting on a call of `pairs` pairs. */
export function paceFor(s: PaceState, pairs: number): number {
  if (s.msPerPair === undefined) return 0;
  const predicted = s.msPerPair * pairs;
  return predicted < MIN_MS ? 0 : Math.min(MAX_MS, predicted * SHARE);
}

/**
 * Updates the estimate after a call: `total` ms from submit to mapped, of which `slept`;
 * `deviceMs` the compute pass's duration from timestamps (undefined when there are none).
 */
export function observePace(s: PaceState, pairs: number, slept: number, total: number, deviceMs: number | undefined): void {
  if (!s.warm) {
    s.warm = true;
    return;
  }
  if (pairs < MIN_TIMED_PAIRS) return;
  if (deviceMs !== undefined && deviceMs > 0) {
    // Down at once, up halfway: one call slowed by other load on the host must not make the next
    // (possibly long: a whole batch in one dispatch) sleep far past its work.
    // An unpaced call's device time is inflated by the spinning main thread (the timed kernel shares the cores).
    const rate = deviceMs / (slept === 0 ? SPIN_INFLATION : 1) / pairs;
    s.msPerPair = s.msPerPair === undefined || rate < s.msPerPair ? rate : (s.msPerPair + rate) / 2;
  } else if (slept === 0) {
    s.msPerPair = total / SPIN_INFLATION / pairs;
  } else if (total - slept < 2 + 0.02 * slept) {
    // Mapped right after waking: the work was done before, so probe lower.
    s.msPerPair = s.msPerPair! * 0.8;
  } else {
    s.msPerPair = total / pairs;
  }
}
