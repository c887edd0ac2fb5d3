// The only file that loads the native addon. Everything else imports the typed wrappers below.
import { createRequire } from 'node:module';
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/** Facts about the libtorch the addon runs on. */
export interface NativeInfo {
  torchVersion: string;
  cudaAvailable: boolean;
  cudaDeviceCount: number;
  threads: number;
  builtWithCuda: boolean;
}

/** The raw binding as addon.cc exports it. Not exported: use the wrappers. */
interface AddonBinding {
  info(): NativeInfo;
  setNumThreads(threads: number): void;
  checkDevice(device: string): string;
  matmul(
    a: Float32Array,
    m: number,
    k: number,
    b: Float32Array,
    k2: number,
    n: number,
  ): Promise<Float32Array>;
}

// src/native.ts and dist/native.js both sit one level below the package root.
const packageRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..');

let binding: AddonBinding | undefined;

/** Loads the addon once; a clear error when it has not been built. */
export function addon(): AddonBinding {
  if (binding) return binding;
  const path = join(packageRoot, 'build', 'Release', 'mentallam.node');
  if (!existsSync(path)) {
    throw new Error(`the native addon is not built (${path} is missing): run npm run build:native`);
  }
  const require = createRequire(import.meta.url);
  binding = require(path) as AddonBinding;
  return binding;
}

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

/** Row-major [m,k] x [k2,n] product on a worker thread; rejects on a shape mismatch. */
export function matmul(
  a: Float32Array,
  m: number,
  k: number,
  b: Float32Array,
  k2: number,
  n: number,
): Promise<Float32Array> {
  return addon().matmul(a, m, k, b, k2, n);
}
