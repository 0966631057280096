#!/usr/bin/env node
/**
 * Entry point of the `kernelflow` command (package.json `bin`, built to dist/cli/main.js; from
 * source: `npx tsx src/cli/main.ts`). See docs/cli.md.
 */
import { main } from './cli.js';

const tty = process.stderr.isTTY === true;
const code = await main(process.argv.slice(2), {
  out: (line) => process.stdout.write(`${line}\n`),
  err: (line) => process.stderr.write(`${line}\n`),
  ...(tty ? { status: (line: string) => process.stderr.write(`\r\x1b[K${line}`) } : {}),
}, process.env);
process.exitCode = code;
// Let pending writes drain; then leave even if a library left a handle open (worker threads are shut down).
setTimeout(() => process.exit(code), 50).unref();
