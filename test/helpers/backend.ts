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
