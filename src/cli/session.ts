/**
 * What every command does first: read and validate the pipeline file, read the input files, build
 * the graph, feed the sources, choose the backend; and computing every result with a progress line.
 */
import { readFile } from 'node:fs/promises';
import { batch, init, type Tensor, type TensorLike } from '../index.js';
import type { Args } from './args.js';
import { PipelineFileError } from './errors.js';
import { buildGraph, inputsOf, type Built } from './graph.js';
import { describeOrigin, loadInput, planInputs, type Loaded, type Planned } from './inputs.js';
import { parsePipeline, type PipelineSpec } from './pipeline-file.js';

/** Where the command writes: stdout for results and reports, stderr for progress and errors. */
export interface IO {
  out(line: string): void;
  err(line: string): void;
  /** Rewrites the current stderr line (a terminal), or undefined where stderr is not one. */
  status?: (line: string) => void;
}

/**
 * A progress line on stderr for long runs: on a terminal one line rewritten in place with the
 * elapsed time; elsewhere (`--progress`) one line per step.
 */
export class Progress {
  private timer: ReturnType<typeof setInterval> | undefined;
  private msg = '';
  private t0 = performance.now();
  constructor(private readonly io: IO, private readonly enabled: boolean) {}

  /** Shows a step. */
  step(msg: string): void {
    if (!this.enabled) return;
    this.msg = msg;
    this.t0 = performance.now();
    if (this.io.status === undefined) {
      this.io.err(`kernelflow: ${msg}`);
      return;
    }
    this.render();
    this.timer ??= setInterval(() => this.render(), 250);
    this.timer.unref?.();
  }

  private render(): void {
    const s = (performance.now() - this.t0) / 1000;
    this.io.status?.(`kernelflow: ${this.msg}${s >= 0.5 ? ` ${s.toFixed(1)} s` : ''}`);
  }

  /** Clears the line. */
  done(): void {
    if (this.timer !== undefined) clearInterval(this.timer);
    this.timer = undefined;
    if (this.enabled) this.io.status?.('');
  }
}

/** A prepared pipeline: its spec, graph, inputs and their data. */
export interface Session {
  readonly spec: PipelineSpec;
  readonly built: Built;
  readonly planned: readonly Planned[];
  /** Input data by name (what was read; a saved pipeline's own data is not listed). */
  readonly loaded: Map<string, Loaded>;
}

/** Reads the pipeline file; a missing file is a PipelineFileError. */
export async function readPipeline(file: string): Promise<PipelineSpec> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new PipelineFileError(file, '$', code === 'ENOENT' ? 'no such file' : `cannot read: ${(e as Error).message}`);
  }
  return parsePipeline(file, text);
}

/** Prepares a command: validates everything it can (`check`: the command's own checks) before the backend starts. */
export async function prepare(args: Args, progress: Progress, need: 'all' | 'any', check?: (built: Built) => void): Promise<Session> {
  const spec = await readPipeline(args.pipeline);
  const planned = planInputs(args.pipeline, inputsOf(spec), args.inputs, args.params, need);
  const loaded = new Map<string, Loaded>();
  for (const p of planned) {
    if (p.origin.kind === 'file') progress.step(`reading ${describeOrigin(p.origin)}`);
    const l = await loadInput(p, args.pipeline);
    if (l !== undefined) loaded.set(l.name, l);
  }
  const dims = new Map([...loaded].map(([n, l]) => [n, l.tensor.shape[1]!]));
  const built = buildGraph(spec, dims, args.backend);
  try {
    check?.(built);
    feed(built, [...loaded.values()]);
    await init({ backend: args.backend });
  } catch (e) {
    built.dispose();
    throw e;
  }
  return { spec, built, planned, loaded };
}

/** Sets the sources' data, all in one batch (one recompute). */
export function feed(built: Built, data: readonly { readonly name: string; readonly tensor: TensorLike }[]): void {
  batch(() => {
    for (const d of data) built.sources.get(d.name)?.set(d.tensor);
  });
}

/** Computes every result (each shared node once), with a progress line; the values by result name. */
export async function computeAll(built: Built, progress: Progress): Promise<Map<string, Tensor>> {
  const total = built.results.length;
  let finished = 0;
  progress.step(`computing ${total} result${total === 1 ? '' : 's'}`);
  const values = await Promise.all(
    built.results.map(async (r) => {
      const t = await r.node.read();
      finished++;
      if (finished < total) progress.step(`computing: ${finished} of ${total} results done (${r.name})`);
      return [r.name, t] as const;
    }),
  );
  progress.done();
  return new Map(values);
}

/** Input tensors by name, for writers (`--points`) and reports. */
export function inputTensors(s: Session): Map<string, TensorLike> {
  const m = new Map<string, TensorLike>();
  for (const [n, l] of s.loaded) m.set(n, l.tensor);
  for (const [n, src] of s.built.sources) if (!m.has(n) && src.value !== undefined) m.set(n, src.value);
  return m;
}
