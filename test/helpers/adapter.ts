import { spawnSync } from 'node:child_process';

/**
 * Whether a WebGPU adapter exists, answered synchronously (so test files can decide which tests
 * to register before `test.run()`; uvu's CLI loads test files with require, where top-level await
 * is not available). A child Node process asks the `webgpu` package and exits.
 */
export function adapterAvailableSync(): boolean {
  const probe = `
    const { create } = await import('webgpu');
    let gpu = create([]);
    const adapter = await gpu.requestAdapter().catch(() => null);
    process.stdout.write(adapter ? 'yes' : 'no');
    gpu = undefined;
    process.exit(0);
  `;
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', probe], { encoding: 'utf8', timeout: 60_000 });
  return r.status === 0 && r.stdout.trim().endsWith('yes');
}
