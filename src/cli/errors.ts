/**
 * The command's errors and exit codes. Every failure a user can cause is a KernelflowError
 * subclass whose message names the culprit: a command-line argument, a JSON path in the pipeline
 * file, or a data file and what is wrong in it.
 */
import { KernelflowError } from '../index.js';

/**
 * Exit codes that scripts can rely on (docs/cli.md).
 * - 0: success (`--watch`: stopped by SIGINT or SIGTERM).
 * - 1: a runtime failure: a computation or backend failed, an output could not be written, or an
 *   unexpected internal error.
 * - 2: a usage error: a bad command line (unknown command or option, missing value).
 * - 3: an invalid pipeline file (the message gives the JSON path of the problem).
 * - 4: an input data file that cannot be read, is malformed or lacks the asked attribute (the
 *   message names the file and what is wrong).
 */
export const EXIT = { ok: 0, runtime: 1, usage: 2, pipeline: 3, data: 4 } as const;

/** A bad command line. */
export class UsageError extends KernelflowError {
  constructor(message: string) {
    super('USAGE', message);
  }
}

/** A pipeline file that does not validate; `path` is the JSON path of the problem (`outputs.nn.K`). */
export class PipelineFileError extends KernelflowError {
  /** The JSON path of the problem, `$` for the whole file. */
  readonly path: string;
  /** The pipeline file. */
  readonly file: string;
  constructor(file: string, path: string, message: string) {
    super('PIPELINE', `${file}: ${path}: ${message}`);
    this.path = path;
    this.file = file;
  }
}

/** A data file that cannot be read or is malformed (wrong header, truncated, missing attribute). */
export class DataFileError extends KernelflowError {
  /** The data file. */
  readonly file: string;
  constructor(file: string, message: string) {
    super('DATA_FILE', `${file}: ${message}`);
    this.file = file;
  }
}

/** The exit code for an error thrown by a command. */
export function exitCodeOf(e: unknown): number {
  if (e instanceof UsageError) return EXIT.usage;
  if (e instanceof PipelineFileError) return EXIT.pipeline;
  if (e instanceof DataFileError) return EXIT.data;
  return EXIT.runtime;
}
