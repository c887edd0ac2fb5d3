import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';

import {
  checkDevice,
  cudaMemory,
  nativeInfo,
  setNumThreads,
  testing,
} from '../../../src/native/index.js';

const { matmul } = testing;

function jsMatmul(a: Float32Array, m: number, k: number, b: Float32Array, n: number): Float64Array {
  const out = new Float64Array(m * n);
  for (let i = 0; i < m; i++)
    for (let j = 0; j < n; j++) {
      let sum = 0;
      for (let p = 0; p < k; p++) sum += a[i * k + p]! * b[p * n + j]!;
      out[i * n + j] = sum;
    }
  return out;
}

function randomArray(length: number, seed: number): Float32Array {
  let state = seed;
  const out = new Float32Array(length);
  for (let i = 0; i < length; i++) {
    state = (state * 1103515245 + 12345) % 2147483648;
    out[i] = state / 2147483648 - 0.5;
  }
  return out;
}

const root = resolve(import.meta.dirname ?? '.', '../../..');

/**
 * The libtorch build/ was configured with (CMakeCache.txt's TORCH_ROOT): its version without the
 * local part ("2.13.0" for "2.13.0+cu130"), and whether the addon was built for CUDA.
 */
function builtAgainst(): { version: string; cuda: boolean } | undefined {
  const cache = join(root, 'build', 'CMakeCache.txt');
  if (process.env.MENTALLAM_ADDON || !existsSync(cache)) return undefined;
  const text = readFileSync(cache, 'utf8');
  const torchRoot = /^TORCH_ROOT:\w+=(.*)$/m.exec(text)?.[1];
  if (!torchRoot) return undefined;
  const versionPy = join(torchRoot, 'version.py');
  const buildVersion = join(torchRoot, 'build-version');
  const full = existsSync(versionPy)
    ? /^__version__\s*=\s*'([^']+)'/m.exec(readFileSync(versionPy, 'utf8'))?.[1]
    : existsSync(buildVersion)
      ? readFileSync(buildVersion, 'utf8').trim()
      : undefined;
  if (!full) return undefined;
  const cudaLibraries = existsSync(join(torchRoot, 'lib', 'libtorch_cuda.so'));
  const mode = /^MENTALLAM_CUDA:\w+=(.*)$/m.exec(text)?.[1] ?? 'AUTO';
  return { version: full.split('+')[0]!, cuda: cudaLibraries && mode !== 'OFF' };
}

describe('native addon skeleton', () => {
  test('info reports the libtorch it was built against, CPU or CUDA build', () => {
    const info = nativeInfo();
    expect(info.torchVersion).toMatch(/^\d+\.\d+\.\d+/);
    const built = builtAgainst();
    if (built) {
      expect(info.torchVersion).toBe(built.version);
      expect(info.builtWithCuda).toBe(built.cuda);
    }
    // A CUDA build exports the allocator's figures; a CPU build has neither them nor a device.
    expect(cudaMemory() !== undefined).toBe(info.builtWithCuda);
    if (!info.builtWithCuda) expect(info.cudaAvailable).toBe(false);
    expect(info.cudaAvailable).toBe(info.cudaDeviceCount > 0);
    expect(info.threads).toBeGreaterThanOrEqual(1);
  });

  test('setNumThreads changes the thread count and rejects nonsense', () => {
    const before = nativeInfo().threads;
    setNumThreads(1);
    expect(nativeInfo().threads).toBe(1);
    setNumThreads(before);
    expect(() => setNumThreads(0)).toThrow(/threads must be >= 1/);
  });

  test('matmul on a worker thread equals a JS computation', async () => {
    const [m, k, n] = [7, 13, 5];
    const a = randomArray(m * k, 1);
    const b = randomArray(k * n, 2);
    const product = await matmul(a, m, k, b, k, n);
    const expected = jsMatmul(a, m, k, b, n);
    expect(product).toHaveLength(m * n);
    for (let i = 0; i < m * n; i++) expect(Math.abs(product[i]! - expected[i]!)).toBeLessThan(1e-5);
  });

  test('a libtorch shape error rejects with a one-line message and the process lives on', async () => {
    const a = randomArray(6, 3);
    const b = randomArray(12, 4);
    const failure = matmul(a, 2, 3, b, 4, 3);
    await expect(failure).rejects.toThrow(/mat1 and mat2 shapes cannot be multiplied/);
    const message: string = await failure.then(
      () => '',
      (error: Error) => error.message,
    );
    expect(message).not.toMatch(/frame #|Exception raised from/);
    expect(message.split('\n')).toHaveLength(1);
    // libtorch refusing its input is not a user error here: the binding should have caught it.
    expect(await failure.catch((error: unknown) => error)).toHaveProperty(
      'code',
      'ERR_NATIVE_INTERNAL',
    );
    // Still alive and computing.
    const product = await matmul(a, 2, 3, randomArray(9, 5), 3, 3);
    expect(product).toHaveLength(6);
  });

  test('shape arguments that disagree with the arrays are a RangeError', () => {
    expect(() => matmul(new Float32Array(3), 2, 2, new Float32Array(4), 2, 2)).toThrow(
      /array lengths do not match/,
    );
  });

  test('cuda is usable exactly when the build and the machine have it, else a clear error', () => {
    const info = nativeInfo();
    expect(checkDevice('cpu')).toBe('cpu');
    expect(() => checkDevice('tpu')).toThrow(/unknown device 'tpu'/);
    if (!info.builtWithCuda) {
      expect(() => checkDevice('cuda')).toThrow(/CPU-only libtorch/);
    } else if (!info.cudaAvailable) {
      expect(() => checkDevice('cuda')).toThrow(/no CUDA device is available/);
    } else {
      expect(checkDevice('cuda')).toBe('cuda:0');
      expect(() => checkDevice(`cuda:${info.cudaDeviceCount}`)).toThrow(/does not exist/);
    }
  });
});
