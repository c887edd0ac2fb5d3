// The binding's argument rules (native/js_values.h) and the error codes every native error
// carries (native/errors.h), through the real addon: integers that are not integers (NaN,
// +-Infinity, 1.5, 2^63) never reach C++ as int64, and each failure names its argument.
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

import {
  Classifier,
  checkDevice,
  inspectSafetensors,
  isNativeError,
  loadLlamaConfig,
  manualSeed,
  nativeErrorCode,
  nativeInfo,
  setNumThreads,
  testing,
  writeLlamaConfig,
  writeSafetensors,
  type DoraOptions,
} from '../../../src/native/index.js';

const DORA: DoraOptions = {
  r: 2,
  alpha: 4,
  dropout: 0,
  targetModules: ['q_proj', 'v_proj'],
  useRslora: false,
};

let work: string;
let tiny: string;

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'mentallam-binding-'));
  tiny = join(work, 'tiny');
  await Classifier.createRandom({ num_hidden_layers: 1 }, tiny, 1);
});
afterAll(async () => {
  await rm(work, { recursive: true, force: true });
});

interface Caught {
  name: string;
  message: string;
  code: unknown;
}

/** What a synchronous call threw (errors come from the addon's realm: compare fields only). */
function thrown(call: () => unknown): Caught {
  try {
    call();
  } catch (error) {
    const { name, message, code } = error as Error & { code?: unknown };
    return { name, message, code };
  }
  throw new Error('expected the call to throw');
}

/** What a Promise rejected with. */
async function rejected(promise: Promise<unknown>): Promise<Caught> {
  return promise.then(
    () => {
      throw new Error('expected a rejection');
    },
    (error: Error & { code?: unknown }) => ({
      name: error.name,
      message: error.message,
      code: error.code,
    }),
  );
}

describe('integer arguments', () => {
  test.each([
    [Infinity, 'RangeError', 'threads must be an integer, got Infinity'],
    [-Infinity, 'RangeError', 'threads must be an integer, got -Infinity'],
    [NaN, 'RangeError', 'threads must be an integer, got NaN'],
    [1.5, 'RangeError', 'threads must be an integer, got 1.5'],
    [2 ** 63, 'RangeError', 'threads must be >= 1, got 9223372036854775808'],
    [0, 'RangeError', 'threads must be >= 1, got 0'],
    [-3, 'RangeError', 'threads must be >= 1, got -3'],
    ['2', 'TypeError', 'threads must be an integer, got a string'],
    [undefined, 'TypeError', 'threads must be an integer, got undefined'],
  ])('setNumThreads(%p) is a %s naming the argument', (value, name, message) => {
    const before = nativeInfo().threads;
    expect(thrown(() => setNumThreads(value as number))).toEqual({
      name,
      message,
      code: 'ERR_NATIVE_USER',
    });
    expect(nativeInfo().threads).toBe(before);
  });

  test('a seed must be a safe non-negative integer', () => {
    expect(thrown(() => manualSeed(2 ** 53))).toEqual({
      name: 'RangeError',
      message: 'seed must be >= 0, got 9007199254740992',
      code: 'ERR_NATIVE_USER',
    });
    expect(thrown(() => manualSeed(-1)).message).toBe('seed must be >= 0, got -1');
    expect(thrown(() => manualSeed(Infinity)).message).toBe(
      'seed must be an integer, got Infinity',
    );
    manualSeed(2 ** 53 - 1); // the largest accepted
  });

  test('matmul shapes: every dimension is checked before any product is formed', () => {
    const a = new Float32Array(4);
    expect(thrown(() => testing.matmul(a, Infinity, 2, a, 2, 2))).toMatchObject({
      name: 'RangeError',
      message: 'm must be an integer, got Infinity',
    });
    expect(thrown(() => testing.matmul(a, 2, 2, a, 2, -2)).message).toBe('n must be >= 0, got -2');
    // 2^26 * 2^27 fits a double exactly but is not the array's length.
    expect(thrown(() => testing.matmul(a, 2 ** 26, 2 ** 27, a, 2, 2)).message).toMatch(
      /array lengths do not match/,
    );
  });

  test('batch sizes, seeds and shapes inside option objects name their path', async () => {
    const clf = await Classifier.load({ modelDir: tiny, dora: DORA, seed: 0 });
    const batch = {
      inputIds: new Int32Array([5, 6]),
      attentionMask: new Uint8Array([1, 1]),
      batchSize: 1,
      seqLen: 2,
    };
    for (const [patch, message] of [
      [{ batchSize: NaN }, 'batch.batchSize must be an integer, got NaN'],
      [{ seqLen: Infinity }, 'batch.seqLen must be an integer, got Infinity'],
      [{ batchSize: 0 }, 'batch.batchSize must be >= 1, got 0'],
      [{ batchSize: 2 ** 40, seqLen: 2 ** 40 }, 'batch.inputIds and batch.attentionMask must'],
    ] as const) {
      const error = await rejected(clf.predictProba({ ...batch, ...patch }));
      expect(error.message.startsWith(message)).toBe(true);
      expect(error.code).toBe('ERR_NATIVE_USER');
    }
    expect(await rejected(clf.resetAdapter(2 ** 63))).toEqual({
      name: 'RangeError',
      message: 'seed must be >= 0, got 9223372036854775808',
      code: 'ERR_NATIVE_USER',
    });
    // The rejected calls left the instance usable.
    await expect(clf.predictProba(batch)).resolves.toHaveLength(1);
    clf.dispose();
    expect(
      await rejected(Classifier.load({ modelDir: tiny, dora: { ...DORA, r: 1.5 }, seed: 0 })),
    ).toMatchObject({ name: 'RangeError', message: 'dora.r must be an integer, got 1.5' });
    expect(
      await rejected(Classifier.load({ modelDir: tiny, dora: DORA, seed: -Infinity })),
    ).toMatchObject({ message: 'seed must be an integer, got -Infinity' });
    const path = join(work, 'never.safetensors');
    expect(
      thrown(() => writeSafetensors(path, [{ name: 'x', shape: [NaN], data: new Float32Array() }])),
    ).toMatchObject({
      name: 'RangeError',
      message: 'tensors[0].shape[0] must be an integer, got NaN',
    });
  });

  test('config.json values from JS must be JSON', () => {
    const path = join(work, 'never.json');
    expect(thrown(() => writeLlamaConfig(path, { rms_norm_eps: NaN }))).toEqual({
      name: 'RangeError',
      message: 'config.rms_norm_eps must be a finite number, got NaN',
      code: 'ERR_NATIVE_USER',
    });
    expect(thrown(() => writeLlamaConfig(path, { hidden_size: 64.5 })).message).toBe(
      'config: hidden_size must be an integer, got 64.5',
    );
    const cyclic: Record<string, unknown> = {};
    cyclic.self = cyclic;
    expect(thrown(() => writeLlamaConfig(path, cyclic)).message).toMatch(
      /^config(\.self)+ nests deeper than 64 levels/,
    );
  });
});

describe('error codes', () => {
  test('a bad or missing file is ERR_NATIVE_USER', async () => {
    const missing = await rejected(loadLlamaConfig(join(work, 'absent')));
    expect(missing.code).toBe('ERR_NATIVE_USER');
    expect(missing.message).toBe(`${join(work, 'absent')}: no such file`);
    const config = join(tiny, 'config.json');
    const bad = await rejected(inspectSafetensors(config));
    expect(bad).toMatchObject({ name: 'Error', code: 'ERR_NATIVE_USER' });
    expect(bad.message.startsWith(`${config}: `)).toBe(true);
  });

  test('misuse of the API and unusable devices are ERR_NATIVE_USER, thrown synchronously', async () => {
    expect(thrown(() => checkDevice('tpu')).code).toBe('ERR_NATIVE_USER');
    const clf = await Classifier.load({ modelDir: tiny, dora: DORA, seed: 0 });
    clf.dispose();
    expect(thrown(() => clf.info())).toEqual({
      name: 'Error',
      message: 'Classifier is disposed',
      code: 'ERR_NATIVE_USER',
    });
  });

  test('an error libtorch raises on input the binding let through is ERR_NATIVE_INTERNAL', async () => {
    const error = await testing
      .matmul(new Float32Array(6), 2, 3, new Float32Array(8), 4, 2)
      .catch((caught: unknown) => caught);
    expect(nativeErrorCode(error)).toBe('ERR_NATIVE_INTERNAL');
    expect(isNativeError(error, 'ERR_NATIVE_INTERNAL')).toBe(true);
    expect(isNativeError(error, 'ERR_NATIVE_USER')).toBe(false);
  });

  // 2^30 x 2^20 float32 is 4 PiB: more than any address space, so the allocation fails at once.
  const hugeConfig = { vocab_size: 2 ** 30, hidden_size: 2 ** 20, num_attention_heads: 1 };

  test('running out of memory is ERR_NATIVE_OOM, and the addon carries on', async () => {
    const dir = join(work, 'huge');
    const error = await Classifier.createRandom(hugeConfig, dir, 0).catch(
      (caught: unknown) => caught,
    );
    expect(isNativeError(error, 'ERR_NATIVE_OOM')).toBe(true);
    expect((error as Error).message).toMatch(
      /^CPU out of memory: cannot map 4503599627370496 bytes for a tensor/,
    );
    // config.json was written, the weights were not.
    expect(JSON.parse(await readFile(join(dir, 'config.json'), 'utf8'))).toMatchObject(hugeConfig);
    await expect(readFile(join(dir, 'model.safetensors'))).rejects.toThrow(/ENOENT/);
    await Classifier.createRandom({ num_hidden_layers: 1 }, join(work, 'after-oom'), 0);
  });

  test("libtorch's own CPU allocator's failure is ERR_NATIVE_OOM too", async () => {
    const addonPath = join(process.cwd(), 'build', 'Release', 'mentallam.node');
    const script =
      `const a = require(${JSON.stringify(addonPath)});` +
      `a.createRandomModel(${JSON.stringify(join(work, 'huge-default'))}, ` +
      `${JSON.stringify({ ...hugeConfig, num_hidden_layers: 1 })}, 0).then(` +
      '() => process.stdout.write("resolved"), ' +
      '(e) => process.stdout.write(JSON.stringify([a.info().cpuCache.enabled, e.code])));';
    const { stdout } = await promisify(execFile)(process.execPath, ['-e', script], {
      env: { ...process.env, MENTALLAM_CPU_CACHE: '0' },
    });
    expect(JSON.parse(stdout)).toEqual([false, 'ERR_NATIVE_OOM']);
  });
});
