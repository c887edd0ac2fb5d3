import type { TestingBinding } from './addonTypes.js';
import { addon } from './loadAddon.js';

/** The addon's test-only exports (native/addon_testing.cc). */
export const testing: TestingBinding = {
  matmul: (a, m, k, b, k2, n) => addon().testing.matmul(a, m, k, b, k2, n),
  startProfiler: (options) => addon().testing.startProfiler(options),
  stopProfiler: (options) => addon().testing.stopProfiler(options),
};
