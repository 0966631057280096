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

/**
 * Whether a suite's WebGPU tests can run. Without an adapter, CI=true registers a failing test
 * (CI must install lavapipe, never skip); elsewhere a notice says what is not run.
 */
export function webgpuTestable(register: (name: string, fn: () => void) => void, what: string): boolean {
  if (adapterAvailableSync()) return true;
  if (process.env.CI === 'true') {
    register('a WebGPU adapter exists (CI=true: lavapipe must be installed by .ci/install-lavapipe.sh)', () => {
      throw new Error('no WebGPU adapter: with CI=true the WebGPU tests must run, not skip');
    });
  } else {
    console.warn(`no WebGPU adapter here, so ${what} are not run (run .ci/install-lavapipe.sh to get lavapipe)`);
  }
  return false;
}
