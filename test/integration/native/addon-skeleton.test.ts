import { checkDevice, nativeInfo, setNumThreads, testing } from '../../../src/native/index.js';

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

describe('native addon skeleton', () => {
  test('info reports the libtorch it was built against', () => {
    const info = nativeInfo();
    expect(info.torchVersion).toMatch(/^2\.13\.0/);
    expect(info.cudaAvailable).toBe(false);
    expect(info.cudaDeviceCount).toBe(0);
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

  test('asking for cuda on a CPU libtorch is a clear error', () => {
    expect(checkDevice('cpu')).toBe('cpu');
    expect(() => checkDevice('cuda')).toThrow(/CPU-only libtorch/);
    expect(() => checkDevice('tpu')).toThrow(/unknown device 'tpu'/);
  });
});
