import type { TestingBinding } from './addonTypes.js';
import { addon } from './loadAddon.js';

/**
 * The addon's test-only exports (native/addon_testing.cc). cudaSetMemoryFraction throws on a CPU
 * build, where the addon does not have it.
 */
export const testing: Required<TestingBinding> = {
  matmul: (a, m, k, b, k2, n) => addon().testing.matmul(a, m, k, b, k2, n),
  startProfiler: (options) => addon().testing.startProfiler(options),
  stopProfiler: (options) => addon().testing.stopProfiler(options),
  cudaSetMemoryFraction: (fraction, device) => {
    const set = addon().testing.cudaSetMemoryFraction;
    if (!set) throw new Error('cudaSetMemoryFraction needs an addon built against a CUDA libtorch');
    set(fraction, device);
  },
};
