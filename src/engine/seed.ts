/**
 * One seed for everything random in a process: libtorch's generators (weight init, dropout) and
 * a JS RNG for data order. Lives in the engine because infra must not load the native addon.
 */
import { createRng } from '../infra/index.js';
import { manualSeed } from '../native.js';

/** Seeds libtorch and returns a JS RNG (uniform [0, 1)) from the same seed. */
export function setSeed(seed: number): () => number {
  if (!Number.isInteger(seed) || seed < 0) {
    throw new RangeError(`seed must be a non-negative integer, got ${seed}`);
  }
  manualSeed(seed);
  return createRng(seed);
}
