import type { CudaBinding, NativeInfo } from './addonTypes.js';
import { addon } from './loadAddon.js';

export function nativeInfo(): NativeInfo {
  return addon().info();
}

/** Sets libtorch's intra-op thread count; call once at start-up, not per step. */
export function setNumThreads(threads: number): void {
  addon().setNumThreads(threads);
}

/** Returns the canonical device name, or throws when the device cannot be used here. */
export function checkDevice(device: string): string {
  return addon().checkDevice(device);
}

/** Seeds libtorch's global generators (dropout masks). */
export function manualSeed(seed: number): void {
  addon().manualSeed(seed);
}

/**
 * The CUDA caching allocator's memory figures and controls; undefined when the addon was built
 * against a CPU-only libtorch.
 */
export function cudaMemory(): CudaBinding | undefined {
  return addon().cuda;
}
