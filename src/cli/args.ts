/**
 * The command line: `kernelflow COMMAND PIPELINE [options]`. Options take their value as the next
 * argument or after `=` (`--backend cpu`, `--backend=cpu`); `--input` and `--output` repeat.
 */
import { UsageError } from './errors.js';

/** The commands. */
export type Command = 'run' | 'inspect' | 'bench';

/** `--input NAME=FILE[:ATTRIBUTE]`. */
export interface InputArg {
  readonly name: string;
  readonly file: string;
  readonly attribute?: string;
}

/** `--output [NAME,NAME=]FILE`: which results (all when absent) go to which file. */
export interface OutputArg {
  readonly names?: readonly string[];
  readonly file: string;
}

/** `--param NAME=V[,V...]`: a constant input's value. */
export interface ParamArg {
  readonly name: string;
  readonly values: readonly number[];
}

/** A parsed command line. */
export interface Args {
  readonly command: Command;
  readonly pipeline: string;
  readonly inputs: readonly InputArg[];
  readonly params: readonly ParamArg[];
  readonly outputs: readonly OutputArg[];
  /** The input whose points go first in PLY, PCD and CSV outputs. */
  readonly points?: string;
  readonly backend: 'auto' | 'cpu' | 'webgpu';
  readonly watch: boolean;
  /** Progress lines on stderr: default when stderr is a terminal. */
  readonly progress: boolean;
  readonly quiet: boolean;
  /** bench: timed runs after the first. */
  readonly repeat: number;
}

/** What `parseArgs` returns: a command to run, or help / version text to print. */
export type Parsed = { readonly kind: 'command'; readonly args: Args } | { readonly kind: 'help'; readonly text: string } | { readonly kind: 'version' };

export const USAGE = `Usage:
  kernelflow run PIPELINE.json [--input NAME=FILE[:ATTRIBUTE]]... [--output [NAMES=]FILE]...
                 [--param NAME=V[,V...]]... [--points NAME] [--backend auto|cpu|webgpu] [--watch]
  kernelflow inspect PIPELINE.json [--input NAME=FILE[:ATTRIBUTE]]...
  kernelflow bench PIPELINE.json [--input NAME=FILE[:ATTRIBUTE]]... [--repeat N] [--backend ...]

Commands:
  run      compute the pipeline's outputs from the input files and write them
  inspect  print the graph (as printGraph does) and the kernels it compiles
  bench    time the pipeline: load, first run (with compilation), then --repeat runs

Options:
  --input NAME=FILE[:ATTR]  feed input NAME (a source label) from FILE: .ply .pcd .las .laz .npy .csv;
                            ATTR is position (default), normal, color, intensity, or columns a,b,c
  --output [NAMES=]FILE     write results (all, or the comma-separated NAMES) to FILE: .npy (one
                            result), .csv, .ply, .pcd (points of --points first, then the results)
  --param NAME=V[,V...]     set a constant input (e.g. a bandwidth) from the command line
  --points NAME             the input whose points PLY/PCD/CSV outputs carry (default: the first
                            3-D input with as many rows as the results)
  --backend B               auto (default, or $KF_BACKEND), cpu or webgpu
  --watch                   keep running: re-read an input file when it changes, recompute, rewrite
  --repeat N                bench: timed runs after the first (default 5)
  --progress / --quiet      force progress lines on stderr / print only errors
  -h, --help                this text;  --version  the version

Exit codes: 0 ok, 1 runtime failure, 2 usage error, 3 invalid pipeline file, 4 bad input data file.
`;

const VALUE_OPTS = new Set(['input', 'output', 'param', 'points', 'backend', 'repeat']);
const FLAG_OPTS = new Set(['watch', 'progress', 'quiet', 'help', 'version']);
const ALLOWED: Readonly<Record<Command, readonly string[]>> = {
  run: ['input', 'output', 'param', 'points', 'backend', 'watch', 'progress', 'quiet'],
  inspect: ['input', 'param', 'backend', 'quiet'],
  bench: ['input', 'param', 'backend', 'repeat', 'progress', 'quiet'],
};

/** Splits `NAME=FILE[:ATTRIBUTE]`; the attribute is the part after the last ':' when it is a name list. */
export function parseInput(v: string): InputArg {
  const eq = v.indexOf('=');
  if (eq <= 0 || eq === v.length - 1) throw new UsageError(`--input '${v}': expected NAME=FILE or NAME=FILE:ATTRIBUTE`);
  const name = v.slice(0, eq);
  const rest = v.slice(eq + 1);
  const m = /^(.+):([A-Za-z_][\w]*(?:,[A-Za-z_0-9][\w]*)*|\d+(?:,\d+)*)$/.exec(rest);
  if (m !== null && !/^[A-Za-z]$/.test(m[1]!)) return { name, file: m[1]!, attribute: m[2]! };
  return { name, file: rest };
}

function parseOutput(v: string): OutputArg {
  const eq = v.indexOf('=');
  if (eq < 0) return { file: v };
  const names = v.slice(0, eq).split(',').map((s) => s.trim());
  const file = v.slice(eq + 1);
  if (file === '' || names.some((n) => n === '')) throw new UsageError(`--output '${v}': expected FILE or NAME[,NAME...]=FILE`);
  return { names, file };
}

function parseParam(v: string): ParamArg {
  const eq = v.indexOf('=');
  const values = v.slice(eq + 1).split(',').map((s) => Number(s.trim()));
  if (eq <= 0 || values.some((x) => !Number.isFinite(x)) || v.slice(eq + 1).trim() === '') {
    throw new UsageError(`--param '${v}': expected NAME=NUMBER or NAME=N1,N2,...`);
  }
  return { name: v.slice(0, eq), values };
}

/** Parses the arguments after `kernelflow` (process.argv.slice(2)). */
export function parseArgs(argv: readonly string[], env: Readonly<Record<string, string | undefined>> = {}, isTTY = false): Parsed {
  if (argv.length === 0 || argv[0] === 'help' || argv[0] === '-h' || argv[0] === '--help') return { kind: 'help', text: USAGE };
  if (argv[0] === '--version') return { kind: 'version' };
  const command = argv[0]!;
  if (command !== 'run' && command !== 'inspect' && command !== 'bench') {
    throw new UsageError(`unknown command '${command}' (use run, inspect or bench; kernelflow --help)`);
  }
  const values = new Map<string, string[]>();
  const flags = new Set<string>();
  const positional: string[] = [];
  for (let k = 1; k < argv.length; k++) {
    const a = argv[k]!;
    if (a === '-h' || a === '--help') return { kind: 'help', text: USAGE };
    if (!a.startsWith('--')) {
      positional.push(a);
      continue;
    }
    const eq = a.indexOf('=');
    const name = eq < 0 ? a.slice(2) : a.slice(2, eq);
    if (!VALUE_OPTS.has(name) && !FLAG_OPTS.has(name)) throw new UsageError(`unknown option '--${name}' (kernelflow --help)`);
    if (!ALLOWED[command].includes(name)) throw new UsageError(`option '--${name}' does not apply to '${command}'`);
    if (FLAG_OPTS.has(name)) {
      if (eq >= 0) throw new UsageError(`option '--${name}' takes no value`);
      flags.add(name);
      continue;
    }
    let value: string | undefined;
    if (eq >= 0) value = a.slice(eq + 1);
    else {
      value = argv[++k];
      if (value === undefined || value.startsWith('--')) throw new UsageError(`option '--${name}' needs a value`);
    }
    values.set(name, [...(values.get(name) ?? []), value]);
  }
  if (positional.length !== 1) {
    throw new UsageError(positional.length === 0 ? `'${command}' needs a pipeline file: kernelflow ${command} PIPELINE.json` : `unexpected argument '${positional[1]}'`);
  }
  const single = (name: string): string | undefined => {
    const v = values.get(name);
    if (v !== undefined && v.length > 1) throw new UsageError(`option '--${name}' given ${v.length} times`);
    return v?.[0];
  };
  const backend = single('backend') ?? env.KF_BACKEND ?? 'auto';
  if (backend !== 'auto' && backend !== 'cpu' && backend !== 'webgpu') throw new UsageError(`--backend must be auto, cpu or webgpu, got '${backend}'`);
  const repeatText = single('repeat') ?? '5';
  const repeat = Number(repeatText);
  if (!Number.isInteger(repeat) || repeat < 1) throw new UsageError(`--repeat must be a positive integer, got '${repeatText}'`);
  const inputs = (values.get('input') ?? []).map(parseInput);
  const seen = new Set<string>();
  for (const i of inputs) {
    if (seen.has(i.name)) throw new UsageError(`--input ${i.name} given twice`);
    seen.add(i.name);
  }
  const quiet = flags.has('quiet');
  const points = single('points');
  return {
    kind: 'command',
    args: {
      command,
      pipeline: positional[0]!,
      inputs,
      params: (values.get('param') ?? []).map(parseParam),
      outputs: (values.get('output') ?? []).map(parseOutput),
      ...(points === undefined ? {} : { points }),
      backend,
      watch: flags.has('watch'),
      progress: !quiet && (flags.has('progress') || isTTY),
      quiet,
      repeat,
    },
  };
}
