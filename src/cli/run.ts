/**
 * `kernelflow run`: compute the results and write them; with `--watch`, keep the graph live and,
 * when an input file changes, set that source (the reactive engine recomputes what depends on
 * it, once per batch of changes) and rewrite the outputs.
 */
import { watch, type FSWatcher } from 'node:fs';
import { basename, dirname, resolve } from 'node:path';
import { stats, type Tensor } from '../index.js';
import type { Args } from './args.js';
import { EXIT, UsageError } from './errors.js';
import { loadInput, type Loaded } from './inputs.js';
import { planOutputs, writeOutput, type OutputPlan } from './outputs.js';
import { computeAll, feed, inputTensors, prepare, Progress, type IO, type Session } from './session.js';

/** Writes every output file (or, without `--output`, prints a summary of each result). */
async function writeAll(s: Session, plans: readonly OutputPlan[], values: ReadonlyMap<string, Tensor>, args: Args, io: IO): Promise<string[]> {
  const lines: string[] = [];
  if (plans.length === 0) {
    for (const [name, t] of values) {
      const head = Array.from(t.data.subarray(0, 6), (x) => (Number.isInteger(x) ? String(x) : x.toPrecision(6))).join(', ');
      lines.push(`${name} [${t.shape.join(', ')}] ${t.data instanceof Int32Array ? 'int32' : 'float32'}: ${head}${t.data.length > 6 ? ', ...' : ''}`);
    }
    return lines;
  }
  const inputs = inputTensors(s);
  for (const p of plans) lines.push(await writeOutput(p, values, inputs, args.points));
  return lines;
}

/** Runs the pipeline once, or until SIGINT/SIGTERM with --watch. Resolves to the exit code. */
export async function run(args: Args, io: IO): Promise<number> {
  const progress = new Progress(io, args.progress);
  let plans: OutputPlan[] = [];
  const s = await prepare(args, progress, 'all', (built) => {
    plans = planOutputs(args.outputs, built.results.map((r) => r.name));
  });
  if (args.watch) {
    for (const p of plans) {
      const same = s.planned.find((q) => q.origin.kind === 'file' && resolve(q.origin.file) === resolve(p.file));
      if (same !== undefined) {
        s.built.dispose();
        throw new UsageError(`--watch: output ${p.file} is also the file of input '${same.info.name}': each write would trigger another recompute`);
      }
    }
  }
  try {
    const before = stats().dispatches;
    const t0 = performance.now();
    const values = await computeAll(s.built, progress);
    const ms = performance.now() - t0;
    const lines = await writeAll(s, plans, values, args, io);
    if (!args.quiet) {
      for (const l of lines) io.out(l);
      io.out(`computed ${values.size} result${values.size === 1 ? '' : 's'} in ${ms.toFixed(1)} ms (${stats().dispatches - before} dispatches)`);
    }
    if (!args.watch) return EXIT.ok;
    return await watchLoop(s, plans, args, io);
  } finally {
    s.built.dispose();
  }
}

/** Watches the input files until SIGINT or SIGTERM; one recompute per batch of changed files. */
async function watchLoop(s: Session, plans: readonly OutputPlan[], args: Args, io: IO): Promise<number> {
  const files = s.planned.filter((p) => p.origin.kind === 'file');
  if (files.length === 0) {
    io.err('kernelflow: --watch: no input comes from a file, nothing to watch');
    return EXIT.ok;
  }
  const watchers: FSWatcher[] = [];
  const timers = new Map<string, ReturnType<typeof setTimeout>>();
  const pending = new Set<string>();
  let busy: Promise<void> = Promise.resolve();

  /** Re-reads the changed inputs, sets them in one batch, recomputes and rewrites. */
  const recompute = async (): Promise<void> => {
    const names = [...pending];
    pending.clear();
    const fresh: Loaded[] = [];
    for (const name of names) {
      const p = s.planned.find((q) => q.info.name === name)!;
      try {
        const l = await loadInput(p, args.pipeline);
        const old = s.loaded.get(name);
        if (l === undefined || (old !== undefined && sameData(old, l))) continue;
        fresh.push(l);
      } catch (e) {
        io.err(`kernelflow: ${e instanceof Error ? e.message : String(e)} (keeping the previous data of '${name}')`);
      }
    }
    if (fresh.length === 0) return;
    for (const l of fresh) s.loaded.set(l.name, l);
    const before = stats().dispatches;
    const t0 = performance.now();
    try {
      feed(s.built, fresh);
      const values = await computeAll(s.built, new Progress(io, false));
      const lines = await writeAll(s, plans, values, args, io);
      const what = fresh.map((l) => `${l.name} (${basename(l.origin.kind === 'file' ? l.origin.file : '')}, ${l.tensor.shape[0]} points)`).join(', ');
      io.out(`recomputed after ${what} changed: ${stats().dispatches - before} dispatches, ${(performance.now() - t0).toFixed(1)} ms`);
      if (!args.quiet) for (const l of lines) io.out(l);
    } catch (e) {
      io.err(`kernelflow: recompute failed: ${e instanceof Error ? e.message : String(e)}`);
    }
  };

  const changed = (name: string): void => {
    clearTimeout(timers.get(name));
    timers.set(name, setTimeout(() => {
      timers.delete(name);
      pending.add(name);
      busy = busy.then(recompute);
    }, 100));
  };

  const byDir = new Map<string, { file: string; name: string }[]>();
  for (const p of files) {
    if (p.origin.kind !== 'file') continue;
    const abs = resolve(p.origin.file);
    const list = byDir.get(dirname(abs)) ?? [];
    list.push({ file: basename(abs), name: p.info.name });
    byDir.set(dirname(abs), list);
  }
  // Watch the folders, not the files: editors and atomic writers replace a file by renaming over it.
  for (const [dir, list] of byDir) {
    watchers.push(watch(dir, (_event, f) => {
      for (const w of list) if (f === w.file) changed(w.name);
    }));
  }
  io.out(`watching ${files.length} input file${files.length === 1 ? '' : 's'} (Ctrl-C to stop)`);
  await new Promise<void>((done) => {
    const stop = (): void => {
      process.off('SIGINT', stop);
      process.off('SIGTERM', stop);
      done();
    };
    process.on('SIGINT', stop);
    process.on('SIGTERM', stop);
  });
  for (const w of watchers) w.close();
  for (const t of timers.values()) clearTimeout(t);
  await busy;
  return EXIT.ok;
}

function sameData(a: Loaded, b: Loaded): boolean {
  if (a.tensor.shape.join() !== b.tensor.shape.join()) return false;
  const x = a.tensor.data;
  const y = b.tensor.data;
  for (let i = 0; i < x.length; i++) if (!Object.is(x[i], y[i])) return false;
  return true;
}
