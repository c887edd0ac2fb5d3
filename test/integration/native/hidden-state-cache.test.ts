// Shared-prefix batches and the frozen-bottom cache in the addon, without Python: clear errors for
// bad segment layouts and cache references; a cache filled once gives, for any subset of a unit's
// segments and in memory or in a mapped file (unlinked at once), the logits and gradients of the
// same batch computed from input ids; it is refused when an adapter sits below its layer.
import { existsSync } from 'node:fs';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import {
  Classifier,
  HiddenStateCache,
  type Batch,
  type DoraOptions,
} from '../../../src/native/index.js';

const DORA: DoraOptions = {
  r: 4,
  alpha: 8,
  dropout: 0,
  targetModules: ['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj'],
  useRslora: false,
};

let work: string;
let modelDir: string;
beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'mentallam-cache-'));
  modelDir = join(work, 'model');
  await Classifier.createRandom(
    { num_hidden_layers: 4, num_key_value_heads: 2, initializer_range: 0.2 },
    modelDir,
    4,
  );
});
afterAll(async () => {
  await rm(work, { recursive: true, force: true });
});

interface Unit {
  prefix: number[];
  suffixes: number[][];
}

function ids(count: number, state: { seed: number }): number[] {
  return Array.from({ length: count }, () => {
    state.seed = (Math.imul(state.seed, 1664525) + 1013904223) >>> 0;
    return 3 + (state.seed % 997);
  });
}

const state = { seed: 3 };
const UNITS: Unit[] = [
  { prefix: ids(9, state), suffixes: [4, 2, 6, 1, 3].map((n) => ids(n, state)) },
  { prefix: ids(4, state), suffixes: [5, 2].map((n) => ids(n, state)) },
  { prefix: ids(12, state), suffixes: [3, 3, 7].map((n) => ids(n, state)) },
];

/** Rows of (unit, chosen segment indices), right-padded, labels alternating. */
function rowsBatch(rows: [number, number[]][]): Batch & { units: Int32Array; segs: Int32Array } {
  const packed = rows.map(([u, segs]) => [
    ...UNITS[u]!.prefix,
    ...segs.flatMap((s) => UNITS[u]!.suffixes[s]!),
  ]);
  const seqLen = Math.max(...packed.map((r) => r.length));
  const inputIds = new Int32Array(rows.length * seqLen);
  const attentionMask = new Uint8Array(rows.length * seqLen);
  packed.forEach((row, b) => {
    inputIds.set(row, b * seqLen);
    attentionMask.fill(1, b * seqLen, b * seqLen + row.length);
  });
  const segs = rows.flatMap(([, s]) => s);
  return {
    inputIds,
    attentionMask,
    batchSize: rows.length,
    seqLen,
    labels: Int32Array.from(segs, (_, i) => i % 2),
    segments: {
      prefixLengths: Int32Array.from(rows, ([u]) => UNITS[u]!.prefix.length),
      segmentCounts: Int32Array.from(rows, ([, s]) => s.length),
      segmentLengths: Int32Array.from(
        rows.flatMap(([u, s]) => s.map((k) => UNITS[u]!.suffixes[k]!.length)),
      ),
    },
    units: Int32Array.from(rows, ([u]) => u),
    segs: Int32Array.from(segs),
  };
}

const ALL: [number, number[]][] = UNITS.map((unit, u) => [u, unit.suffixes.map((_, k) => k)]);

function cacheFor(
  clf: Classifier,
  maxMemoryBytes: number,
  filePath?: string,
  layer = clf.info().firstAdaptedLayer,
): HiddenStateCache {
  const info = clf.info();
  const tokens = UNITS.reduce((sum, u) => sum + u.prefix.length + u.suffixes.flat().length, 0);
  return new HiddenStateCache({
    layer,
    hiddenSize: info.hiddenSize,
    dtype: info.dtype,
    units: UNITS.length,
    tokens,
    maxMemoryBytes,
    ...(filePath ? { filePath } : {}),
  });
}

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  expect(a.length).toBe(b.length);
  let max = 0;
  for (let i = 0; i < a.length; i++) max = Math.max(max, Math.abs(a[i]! - b[i]!));
  return max;
}

describe('shared-prefix batch errors', () => {
  let clf: Classifier;
  beforeAll(async () => {
    clf = await Classifier.load({ modelDir, dora: DORA, seed: 1 });
  });
  afterAll(() => clf.dispose());

  test('a bad layout is an ERR_NATIVE_USER error naming the field', async () => {
    const good = rowsBatch(ALL);
    const bad = (segments: Partial<NonNullable<Batch['segments']>>, extra: Partial<Batch> = {}) =>
      clf.predictLogits({ ...good, ...extra, segments: { ...good.segments!, ...segments } });
    await expect(bad({ prefixLengths: new Int32Array(2) })).rejects.toMatchObject({
      code: 'ERR_NATIVE_USER',
      message: expect.stringMatching(/batch\.segments\.prefixLengths must have batchSize = 3/),
    });
    await expect(bad({ segmentCounts: Int32Array.from([5, 0, 3]) })).rejects.toThrow(
      /segmentCounts\[1\] must be >= 1/,
    );
    await expect(bad({ segmentLengths: new Int32Array(3) })).rejects.toThrow(
      /segmentLengths must have sum\(segmentCounts\) = 10 entries \(got 3\)/,
    );
    await expect(
      bad({ segmentLengths: Int32Array.from([4, 2, 6, 1, 3, 5, 2, 3, 3, 70]) }),
    ).rejects.toThrow(/row 2 needs 88 columns \(prefix \+ segments\) but seqLen is/);
    const leftPadded = { ...good, attentionMask: Uint8Array.from(good.attentionMask).reverse() };
    await expect(clf.predictLogits(leftPadded)).rejects.toThrow(
      /batch\.attentionMask row 1 must be 1 on the row's 11 prefix \+ segment columns/,
    );
    await expect(bad({ prefixLengths: 'x' as unknown as Int32Array })).rejects.toMatchObject({
      name: 'TypeError',
      message: 'batch.segments.prefixLengths must be an Int32Array',
    });
    await expect(clf.trainStep({ ...good, labels: new Int32Array(3) }, { lr: 0 })).rejects.toThrow(
      /batch\.labels must have one entry per segment, sum\(segments\.segmentCounts\) = 10/,
    );
  });

  test('hiddenStates needs segments and a NativeHiddenStateCache', async () => {
    const good = rowsBatch(ALL);
    const { segments: _segments, labels: _labels, ...plain } = good;
    const cache = cacheFor(clf, 1 << 20, undefined, 1);
    try {
      const hiddenStates = { cache, units: good.units, segments: good.segs };
      await expect(clf.predictLogits({ ...plain, hiddenStates })).rejects.toThrow(
        /batch\.hiddenStates needs batch\.segments/,
      );
      await expect(
        clf.predictLogits({
          ...good,
          hiddenStates: { ...hiddenStates, cache: {} as unknown as HiddenStateCache },
        }),
      ).rejects.toThrow(/must be a NativeHiddenStateCache/);
    } finally {
      cache.dispose();
    }
  });
});

describe.each([
  ['memory', 1 << 30],
  ['file', 0],
])('a frozen-bottom cache in %s', (storage, maxMemoryBytes) => {
  test('gives the logits and gradients of the batch computed from ids, for any segments', async () => {
    const clf = await Classifier.load({
      modelDir,
      dora: { ...DORA, layers: { top: 2 } },
      seed: 2,
      gradientCheckpointing: storage === 'file',
    });
    const filePath = join(work, `cache-${storage}.bin`);
    const cache = cacheFor(clf, maxMemoryBytes, filePath);
    try {
      expect(clf.info().firstAdaptedLayer).toBe(2);
      const info = cache.info();
      expect(info).toMatchObject({ layer: 2, storage, units: 3, storedUnits: 0 });
      // A mapped file is unlinked as soon as it is mapped: nothing is left on disk.
      expect(info.path).toBe(storage === 'file' ? filePath : null);
      expect(existsSync(filePath)).toBe(false);

      const all = rowsBatch(ALL);
      await clf.fillHiddenStateCache(cache, all, all.units);
      expect(cache.info()).toMatchObject({ storedUnits: 3, storedTokens: info.tokens });
      await expect(clf.fillHiddenStateCache(cache, all, all.units)).rejects.toThrow(
        /unit 0 is stored already/,
      );

      // Move the adapters away from their fresh state so every term matters.
      await clf.trainStep(all, { lr: 5e-2 });
      for (const rows of [
        ALL,
        [
          [2, [2, 0]],
          [0, [3]],
          [1, [1]],
          [0, [0, 4, 1]],
        ] as [number, number[]][],
      ]) {
        const batch = rowsBatch(rows);
        const cached: Batch = {
          ...batch,
          hiddenStates: { cache, units: batch.units, segments: batch.segs },
        };
        const logitDiff = maxAbsDiff(
          await clf.predictLogits(cached),
          await clf.predictLogits(batch),
        );
        const fromIds = await clf.gradients(batch, { checkpointing: storage === 'file' });
        const fromCache = await clf.gradients(cached, { checkpointing: storage === 'file' });
        let gradDiff = 0;
        for (const [key, value] of Object.entries(fromIds.grads)) {
          gradDiff = Math.max(gradDiff, maxAbsDiff(fromCache.grads[key]!, value));
        }
        console.log(
          `cache in ${storage}, ${rows.length} rows: logits max |diff| ${logitDiff.toExponential(2)}, ` +
            `grads max |diff| ${gradDiff.toExponential(2)}`,
        );
        expect(logitDiff).toBeLessThan(1e-5);
        expect(gradDiff).toBeLessThan(1e-5);
        // Layers 0 and 1 have no adapter: no gradient key for them at all.
        expect(Object.keys(fromCache.grads).some((k) => /layers\.[01]\./.test(k))).toBe(false);
      }

      // A batch that does not match what was stored is refused, naming the row.
      const wrong = rowsBatch([[1, [0]]]);
      await expect(
        clf.predictLogits({
          ...wrong,
          hiddenStates: { cache, units: Int32Array.from([0]), segments: Int32Array.from([0]) },
        }),
      ).rejects.toThrow(
        /hiddenStates row 0 \(unit 0\): prefix length 4, but the cached unit's is 9/,
      );
      await expect(
        clf.predictLogits({
          ...wrong,
          hiddenStates: { cache, units: Int32Array.from([1]), segments: Int32Array.from([1]) },
        }),
      ).rejects.toThrow(/segment 1 has 5 tokens, but the cached one has 2/);
    } finally {
      cache.dispose();
      clf.dispose();
    }
    expect(await readdir(work)).not.toContain(`cache-${storage}.bin`);
  }, 120_000);
});

test('a cache is refused once an adapter sits below its layer', async () => {
  const top = await Classifier.load({ modelDir, dora: { ...DORA, layers: { top: 1 } }, seed: 3 });
  const all = await Classifier.load({ modelDir, dora: DORA, seed: 3 });
  const cache = cacheFor(top, 1 << 30);
  try {
    const batch = rowsBatch(ALL);
    await top.fillHiddenStateCache(cache, batch, batch.units);
    const cached: Batch = {
      ...batch,
      hiddenStates: { cache, units: batch.units, segments: batch.segs },
    };
    await expect(all.predictLogits(cached)).rejects.toMatchObject({
      code: 'ERR_NATIVE_USER',
      message: expect.stringMatching(
        /holds the input of layer 3, but layer 0 has an adapter: the cached states would not be/,
      ),
    });
    cache.dispose();
    await expect(top.predictLogits(cached)).rejects.toThrow(/is disposed/);
  } finally {
    cache.dispose();
    top.dispose();
    all.dispose();
  }
}, 120_000);
