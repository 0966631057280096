/**
 * A one-line progress display for long work in the examples and benchmarks, on stderr: nothing for
 * the first second (short work prints nothing), then on a terminal one line rewritten in place
 * (`\r`), elsewhere (a pipe, a log file, CI) plain lines, at most one every two seconds.
 */
import type { SolveProgress } from '../../src/index.js';

export interface ProgressLine {
  /** Shows `text` (throttled) once the work has run for more than a second. */
  update(text: string): void;
  /** Ends the display: on a terminal, the last text stays on its line; nothing if nothing was shown. */
  done(text?: string): void;
}

export function progressLine(label: string, stream: NodeJS.WriteStream = process.stderr): ProgressLine {
  const start = performance.now();
  const tty = stream.isTTY === true;
  let shown = false;
  let last = -Infinity;
  let pending: string | undefined;
  const write = (text: string, final: boolean): void => {
    const line = `${label}: ${text}`;
    if (tty) stream.write(`\r${line}\x1b[K${final ? '\n' : ''}`);
    else stream.write(`${line}\n`);
    shown = true;
    last = performance.now();
  };
  return {
    update(text) {
      pending = text;
      const now = performance.now();
      if (now - start < 1000 || now - last < (tty ? 100 : 2000)) return;
      write(text, false);
      pending = undefined;
    },
    done(text) {
      const final = text ?? pending;
      if (shown && final !== undefined) write(final, true);
      else if (shown && tty) stream.write('\n');
    },
  };
}

/** One line for a solve's progress event. */
export function solveProgressText(p: SolveProgress): string {
  const s = (ms: number): string => `${(ms / 1000).toFixed(1)} s`;
  if (p.phase === 'setup') return `preconditioner: ${p.rank} landmarks, ${s(p.elapsedMs)}`;
  const res = Number.isNaN(p.residual) ? '' : `, residual ${p.residual.toExponential(2)}`;
  if (p.phase === 'matvec') return `CG iteration ${p.iter + 1}: K·p ${Math.round(p.fraction * 100)}%${res}, ${s(p.elapsedMs)}`;
  return `CG iteration ${p.iter}${res}, ${p.rank} landmarks, ${s(p.elapsedMs)}`;
}
