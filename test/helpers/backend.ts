import { init, type BackendName } from '../../src/scheduler/backends.js';
import { adapterAvailableSync } from './adapter.js';

/**
 * The backend a suite runs on: `KF_TEST_BACKEND=webgpu npm test`'s second pass reruns the gradient,
 * solve and fusion suites on WebGPU. Without an adapter that is a failure in CI and a notice elsewhere.
 */
export function testBackend(): BackendName {
  const want = process.env.KF_TEST_BACKEND === 'webgpu' ? 'webgpu' : 'cpu';
  if (want === 'webgpu' && process.env.CI !== 'true' && !adapterAvailableSync()) {
    process.stderr.write('no WebGPU adapter: this pass runs on the CPU backend (install lavapipe: .ci/install-lavapipe.sh)\n');
    return 'cpu';
  }
  return want;
}

/** `test.before` hook: selects the suite's backend. */
export async function useTestBackend(): Promise<void> {
  await init({ backend: testBackend() });
}

/**
 * The CPU kernels the suites expect: WASM (the default where the engine has SIMD, as in Node 20),
 * or JavaScript in the `KERNELFLOW_CPU_KERNELS=js` pass of `npm test`.
 */
export function expectedCpuKernels(): 'wasm' | 'js' {
  return process.env.KERNELFLOW_CPU_KERNELS === 'js' ? 'js' : 'wasm';
}

/** Checks that a CPU backend ran the expected kernels: on the WASM pass, every kernel compiled to WASM (none fell back to JavaScript). */
export function assertCpuKernelsRan(info: { kernels: string; wasmCompiled: number; jsFallbacks: number }, what: string): void {
  const want = expectedCpuKernels();
  if (info.kernels !== want) throw new Error(`${what}: the CPU backend ran ${info.kernels} kernels, expected ${want}`);
  if (want === 'wasm' && (info.wasmCompiled === 0 || info.jsFallbacks !== 0)) {
    throw new Error(`${what}: ${info.wasmCompiled} kernels compiled to WASM, ${info.jsFallbacks} fell back to JavaScript`);
  }
}
