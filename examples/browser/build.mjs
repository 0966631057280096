// Bundles the browser demo: examples/browser/main.ts -> examples/browser/dist/main.js (ESM, browser).
// Run: node examples/browser/build.mjs [--watch], then serve examples/browser/ and open index.html
// (any static server, e.g. `npx http-server examples/browser`; file:// cannot load ES modules).
import { build, context } from 'esbuild';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));

/** esbuild options of the demo bundle. */
export const options = {
  entryPoints: [join(here, 'main.ts')],
  outfile: join(here, 'dist', 'main.js'),
  bundle: true,
  format: 'esm',
  platform: 'browser',
  target: ['es2022'],
  sourcemap: true,
  logLevel: 'warning',
};

/** Builds the bundle; resolves with its path and the build time in milliseconds. */
export async function buildDemo() {
  const t0 = performance.now();
  const result = await build(options);
  return { outfile: options.outfile, ms: performance.now() - t0, warnings: result.warnings };
}

/** Command line: build once, or `--watch`. (No top-level await: test runners may load this as CommonJS.) */
async function cli() {
  if (process.argv.includes('--watch')) {
    const ctx = await context(options);
    await ctx.watch();
    console.log(`watching; bundle at ${relative(process.cwd(), options.outfile)}`);
  } else {
    const { outfile, ms } = await buildDemo();
    console.log(`built ${relative(process.cwd(), outfile)} in ${ms.toFixed(0)} ms`);
  }
}

if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === process.argv[1]) {
  cli().catch((e) => {
    console.error(e);
    process.exit(1);
  });
}
