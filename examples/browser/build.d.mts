import type { BuildOptions, Message } from 'esbuild';

/** esbuild options of the demo bundle. */
export declare const options: BuildOptions & { outfile: string };
/** Builds examples/browser/dist/main.js; resolves with its path and the build time in milliseconds. */
export declare function buildDemo(): Promise<{ outfile: string; ms: number; warnings: Message[] }>;
