/**
 * The `kernelflow` command: parses the arguments, runs a command and maps its outcome to an exit
 * code (errors.ts `EXIT`). Every error is one message on stderr, never a stack trace, except an
 * unexpected internal error (exit 1), which also shows its stack.
 */
import { readFileSync } from 'node:fs';
import { KernelflowError, shutdown } from '../index.js';
import { parseArgs } from './args.js';
import { EXIT, exitCodeOf, UsageError } from './errors.js';
import { inspect, bench } from './report.js';
import { run } from './run.js';
import type { IO } from './session.js';

function version(): string {
  try {
    const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version?: string };
    return pkg.version ?? 'unknown';
  } catch {
    return 'unknown';
  }
}

/** Runs the command line `argv` (the arguments after `kernelflow`); resolves to the exit code. */
export async function main(argv: readonly string[], io: IO, env: Readonly<Record<string, string | undefined>> = {}): Promise<number> {
  let code: number;
  try {
    const parsed = parseArgs(argv, env, io.status !== undefined);
    if (parsed.kind === 'help') {
      io.out(parsed.text);
      return EXIT.ok;
    }
    if (parsed.kind === 'version') {
      io.out(`kernelflow ${version()}`);
      return EXIT.ok;
    }
    const args = parsed.args;
    code = await (args.command === 'run' ? run(args, io) : args.command === 'inspect' ? inspect(args, io) : bench(args, io));
  } catch (e) {
    code = exitCodeOf(e);
    if (e instanceof KernelflowError) {
      io.err(`kernelflow: error: ${e.message}`);
      if (e instanceof UsageError) io.err('(kernelflow --help for usage)');
    } else {
      io.err(`kernelflow: internal error: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`);
    }
  }
  await shutdown().catch(() => undefined);
  return code;
}
