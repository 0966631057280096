/** Tiny command-line helpers shared by the examples: `--name value` flags and a seeded generator. */
import type { BackendChoice } from '../../src/index.js';

/** The value after `--name`, or undefined. */
export function flag(name: string): string | undefined {
  const at = process.argv.indexOf(`--${name}`);
  if (at < 0) return undefined;
  const v = process.argv[at + 1];
  if (v === undefined || v.startsWith('--')) throw new Error(`--${name} needs a value`);
  return v;
}

/** A positive integer flag (`--N 500`), or `dflt`. */
export function intFlag(name: string, dflt: number): number {
  const v = flag(name);
  if (v === undefined) return dflt;
  const n = Number(v);
  if (!Number.isInteger(n) || n <= 0) throw new Error(`--${name} must be a positive integer, got '${v}'`);
  return n;
}

/** The backend to ask `init` for: `--backend cpu|webgpu|auto`, else `$KF_BACKEND`, else 'auto'. */
export function backendFlag(): BackendChoice {
  const v = flag('backend') ?? process.env.KF_BACKEND ?? 'auto';
  if (v !== 'auto' && v !== 'cpu' && v !== 'webgpu') throw new Error(`--backend must be auto, cpu or webgpu, got '${v}'`);
  return v;
}

/**
 * A seeded pseudo-random generator (mulberry32 for uniforms, Box-Muller for normals), so that an
 * example prints the same numbers on every run: `--seed` changes the draw.
 */
export class Rng {
  private s: number;
  private spare: number | undefined;

  constructor(seed: number) {
    this.s = seed >>> 0;
  }

  /** Uniform in [0, 1). */
  uniform(): number {
    let t = (this.s = (this.s + 0x6d2b79f5) >>> 0);
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }

  /** Standard normal. */
  normal(): number {
    if (this.spare !== undefined) {
      const s = this.spare;
      this.spare = undefined;
      return s;
    }
    const u = 1 - this.uniform();
    const v = this.uniform();
    const r = Math.sqrt(-2 * Math.log(u));
    this.spare = r * Math.sin(2 * Math.PI * v);
    return r * Math.cos(2 * Math.PI * v);
  }

  /** `torch.rand(n)`. */
  rand(n: number): Float32Array {
    return Float32Array.from({ length: n }, () => this.uniform());
  }

  /** `torch.randn(n)`. */
  randn(n: number): Float32Array {
    return Float32Array.from({ length: n }, () => this.normal());
  }
}

/** Seconds since `t0` (a `performance.now()` value), rounded like the pykeops tutorials print them. */
export function seconds(t0: number): number {
  return Math.round((performance.now() - t0) * 100) / 1e5;
}
