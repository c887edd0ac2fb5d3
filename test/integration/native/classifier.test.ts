// The native Classifier without Python: gradient checkpointing, accumulation, resuming, the
// worker thread, busy/dispose behaviour and input errors. Models come from Classifier.createRandom.
import { execFile } from 'node:child_process';
import { copyFile, mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

import {
  Classifier,
  inspectSafetensors,
  manualSeed,
  nativeInfo,
  readSafetensorsTensor,
  writeSafetensors,
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
let tiny: string;
let noPad: string;
let larger: string;

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'mentallam-classifier-'));
  tiny = join(work, 'tiny');
  noPad = join(work, 'no-pad');
  larger = join(work, 'larger');
  await Classifier.createRandom(
    { num_hidden_layers: 3, num_key_value_heads: 2, initializer_range: 0.2 },
    tiny,
    1,
  );
  await Classifier.createRandom({ pad_token_id: null }, noPad, 2);
  await Classifier.createRandom(
    { num_hidden_layers: 4, hidden_size: 256, intermediate_size: 512, num_attention_heads: 4 },
    larger,
    3,
  );
});
afterAll(async () => {
  await rm(work, { recursive: true, force: true });
});

function batch(lengths: number[], seed: number, labels?: number[], side = 'right'): Batch {
  const batchSize = lengths.length;
  const seqLen = Math.max(...lengths);
  const inputIds = new Int32Array(batchSize * seqLen);
  const attentionMask = new Uint8Array(batchSize * seqLen);
  let state = seed;
  for (let b = 0; b < batchSize; b++) {
    const offset = side === 'right' ? 0 : seqLen - lengths[b]!;
    for (let t = 0; t < lengths[b]!; t++) {
      state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
      inputIds[b * seqLen + offset + t] = 3 + (state % 997);
      attentionMask[b * seqLen + offset + t] = 1;
    }
  }
  return {
    inputIds,
    attentionMask,
    batchSize,
    seqLen,
    ...(labels ? { labels: new Int32Array(labels) } : {}),
  };
}

function maxDiff(a: Record<string, Float32Array>, b: Record<string, Float32Array>): number {
  expect(Object.keys(a).sort()).toEqual(Object.keys(b).sort());
  let max = 0;
  for (const key of Object.keys(a)) {
    const x = a[key]!;
    const y = b[key]!;
    for (let i = 0; i < x.length; i++) max = Math.max(max, Math.abs(x[i]! - y[i]!));
  }
  return max;
}

describe('native Classifier', () => {
  test('createRandom writes a loadable checkpoint; info describes the model', async () => {
    const config = JSON.parse(await readFile(join(tiny, 'config.json'), 'utf8'));
    expect(config.num_hidden_layers).toBe(3);
    const clf = await Classifier.load({ modelDir: tiny, dora: DORA, seed: 0 });
    const info = clf.info();
    expect(info).toMatchObject({
      numLayers: 3,
      hiddenSize: 64,
      numLabels: 2,
      padTokenId: 0,
      device: 'cpu',
      dtype: 'float32',
      merged: false,
      optimizerStep: 0,
    });
    // r (i + o) + o per module, 7 modules per layer, plus the 2 x 64 score head.
    const perLayer =
      4 * (64 + 64) +
      64 +
      4 * (64 + 32) +
      32 +
      4 * (64 + 32) +
      32 +
      4 * (64 + 64) +
      64 +
      2 * (4 * (64 + 128) + 128) +
      4 * (128 + 64) +
      64;
    expect(info.trainableParameters).toBe(3 * perLayer + 2 * 64);
    const proba = await clf.predictProba(batch([5, 3], 1));
    expect(proba).toHaveLength(2);
    for (const p of proba) expect(p > 0 && p < 1).toBe(true);
    clf.dispose();
  });

  test('a fresh adapter leaves the base model unchanged; resetAdapter is deterministic', async () => {
    const clf = await Classifier.load({ modelDir: tiny, dora: DORA, seed: 5 });
    const b = batch([6, 4, 2], 2, [1, 0, 1]);
    const before = await clf.predictLogits(b);
    const first = await clf.gradients(b);
    await clf.trainStep(b, { lr: 1e-2 });
    expect(Array.from(await clf.predictLogits(b))).not.toEqual(Array.from(before));
    await clf.resetAdapter(5);
    expect(Array.from(await clf.predictLogits(b))).toEqual(Array.from(before));
    expect(maxDiff((await clf.gradients(b)).grads, first.grads)).toBe(0);
    // Merging a fresh adapter (g = 1, B = 0) gives the base weights back.
    await clf.merge();
    const merged = await clf.predictLogits(b);
    for (let i = 0; i < merged.length; i++)
      expect(Math.abs(merged[i]! - before[i]!)).toBeLessThan(1e-5);
    await expect(clf.trainStep(b, { lr: 1e-3 })).rejects.toThrow(/merged/);
    clf.dispose();
  });

  test('gradient checkpointing gives the same gradients (dropout 0 and dropout 0.1)', async () => {
    for (const dropout of [0, 0.1]) {
      const clf = await Classifier.load({ modelDir: tiny, dora: { ...DORA, dropout }, seed: 9 });
      // Move B away from 0 so every term of the DoRA gradient is exercised.
      const b = batch([7, 3, 5], 4, [0, 1, 1], 'left');
      await clf.trainStep(b, { lr: 1e-2 });
      manualSeed(123);
      const plain = await clf.gradients(b, { checkpointing: false });
      manualSeed(123);
      const checkpointed = await clf.gradients(b, { checkpointing: true });
      const diff = maxDiff(plain.grads, checkpointed.grads);
      console.log(`checkpointing, dropout ${dropout}: max |grad diff| ${diff.toExponential(2)}`);
      expect(diff).toBeLessThanOrEqual(1e-6);
      expect(checkpointed.loss).toBe(plain.loss);
      if (dropout > 0) {
        // Different masks do change the gradients, so the equality above is not vacuous.
        manualSeed(124);
        const other = await clf.gradients(b, { checkpointing: true });
        expect(maxDiff(plain.grads, other.grads)).toBeGreaterThan(1e-4);
      }
      clf.dispose();
    }
  });

  test('a checkpointed train step equals a plain one', async () => {
    const b = batch([6, 6, 2, 4], 8, [1, 0, 0, 1]);
    const results = [];
    for (const gradientCheckpointing of [false, true]) {
      const clf = await Classifier.load({
        modelDir: tiny,
        dora: DORA,
        seed: 3,
        gradientCheckpointing,
      });
      const steps = [];
      for (let i = 0; i < 2; i++) steps.push(await clf.trainStep(b, { lr: 1e-2, maxGradNorm: 1 }));
      steps.push({ logits: Array.from(await clf.predictLogits(b)) });
      results.push(steps);
      clf.dispose();
    }
    expect(results[1]).toEqual(results[0]);
  });

  test('accumulating two halves equals one step on the whole batch', async () => {
    const whole = batch([5, 5, 5, 5], 10, [1, 0, 1, 0]);
    const half = (from: number): Batch => ({
      inputIds: whole.inputIds.slice(from * 5, (from + 2) * 5),
      attentionMask: whole.attentionMask.slice(from * 5, (from + 2) * 5),
      labels: (whole.labels as Int32Array).slice(from, from + 2),
      batchSize: 2,
      seqLen: 5,
    });
    const a = await Classifier.load({ modelDir: tiny, dora: DORA, seed: 4 });
    const b = await Classifier.load({ modelDir: tiny, dora: DORA, seed: 4 });
    const one = await a.trainStep(whole, { lr: 1e-2, weightDecay: 0.1, maxGradNorm: 0.5 });
    const first = await b.trainStep(half(0), { lr: 1e-2, accumulate: true });
    expect(Number.isNaN(first.gradNorm)).toBe(true);
    expect(b.info().accumulatedMicroBatches).toBe(1);
    const second = await b.trainStep(half(2), { lr: 1e-2, weightDecay: 0.1, maxGradNorm: 0.5 });
    expect(Math.abs(second.gradNorm - one.gradNorm)).toBeLessThan(1e-5);
    const la = await a.predictLogits(whole);
    const lb = await b.predictLogits(whole);
    for (let i = 0; i < la.length; i++) expect(Math.abs(la[i]! - lb[i]!)).toBeLessThan(1e-5);
    a.dispose();
    b.dispose();
  });

  test('saveAdapter + loadAdapter resume training exactly (optimizer state included)', async () => {
    const b = batch([6, 4, 5], 12, [1, 0, 1]);
    const straight = await Classifier.load({ modelDir: tiny, dora: DORA, seed: 6 });
    for (let i = 0; i < 4; i++) await straight.trainStep(b, { lr: 1e-2, weightDecay: 0.01 });
    const expected = await straight.predictLogits(b);

    const first = await Classifier.load({ modelDir: tiny, dora: DORA, seed: 6 });
    for (let i = 0; i < 2; i++) await first.trainStep(b, { lr: 1e-2, weightDecay: 0.01 });
    const dir = join(work, 'resume');
    await first.saveAdapter(dir);
    first.dispose();
    const config = JSON.parse(await readFile(join(dir, 'adapter_config.json'), 'utf8'));
    expect(config).toMatchObject({ peft_type: 'LORA', use_dora: true, r: 4, lora_alpha: 8 });
    const resumed = await Classifier.load({ modelDir: tiny, dora: DORA, seed: 99 });
    await resumed.loadAdapter(dir);
    expect(resumed.info().optimizerStep).toBe(2);
    for (let i = 0; i < 2; i++) await resumed.trainStep(b, { lr: 1e-2, weightDecay: 0.01 });
    expect(Array.from(await resumed.predictLogits(b))).toEqual(Array.from(expected));
    straight.dispose();
    resumed.dispose();
  });

  test('posWeight and a single-logit (BCE) head train', async () => {
    const clf = await Classifier.load({ modelDir: tiny, dora: DORA, seed: 1, numLabels: 1 });
    const b = { ...batch([4, 4], 3), labels: new Float32Array([1, 0]) };
    const plain = await clf.gradients(b);
    const r = await clf.trainStep(b, { lr: 1e-3, posWeight: 3 });
    expect(r.loss).toBeGreaterThan(plain.loss);
    expect((await clf.predictProba(b)).length).toBe(2);
    clf.dispose();
  });

  test('the event loop stays free during a train step', async () => {
    const clf = await Classifier.load({
      modelDir: larger,
      dora: DORA,
      seed: 0,
      gradientCheckpointing: true,
    });
    const b = batch(Array(8).fill(128), 5, [0, 1, 0, 1, 0, 1, 0, 1]);
    let ticks = 0;
    const timer = setInterval(() => (ticks += 1), 5);
    const started = Date.now();
    try {
      await clf.trainStep(b, { lr: 1e-4 });
    } finally {
      clearInterval(timer);
    }
    const elapsed = Date.now() - started;
    console.log(`train step ${elapsed} ms, ${ticks} timer ticks`);
    expect(elapsed).toBeGreaterThan(50);
    expect(ticks).toBeGreaterThanOrEqual(Math.floor(elapsed / 5 / 4));
    clf.dispose();
  });

  test('two models in flight at once share the compute thread and give their solo results', async () => {
    const b = batch([6, 6, 2, 4], 9, [1, 0, 0, 1]);
    const run = async (clf: Classifier) => {
      const loss = (await clf.trainStep(b, { lr: 1e-2 })).loss;
      return { loss, logits: Array.from(await clf.predictLogits(b)) };
    };
    const load = (seed: number) => Classifier.load({ modelDir: tiny, dora: DORA, seed });
    const solo = [];
    for (const seed of [4, 5]) {
      const clf = await load(seed);
      solo.push(await run(clf));
      clf.dispose();
    }
    const [first, second] = [await load(4), await load(5)];
    // A failing call queued between them must not disturb either.
    const failing = first.predictProba({ ...b, inputIds: new Int32Array(24).fill(5000) });
    const together = await Promise.all([run(second), failing.catch((e: Error) => e.message)]);
    expect(together[1]).toMatch(/out of range/);
    expect(await run(first)).toEqual(solo[0]);
    expect(together[0]).toEqual(solo[1]);
    first.dispose();
    second.dispose();
  });

  test('large CPU buffers are reused from step to step and given back on dispose', async () => {
    expect(nativeInfo().cpuCache.enabled).toBe(true);
    const clf = await Classifier.load({ modelDir: larger, dora: DORA, seed: 0 });
    const b = batch(Array(8).fill(128), 5, [0, 1, 0, 1, 0, 1, 0, 1]);
    await clf.trainStep(b, { lr: 1e-4 });
    const afterFirst = nativeInfo().cpuCache;
    await clf.trainStep(b, { lr: 1e-4 });
    const afterSecond = nativeInfo().cpuCache;
    // The second step of the same shape maps no new memory: every large buffer is a cache hit.
    expect(afterSecond.misses).toBe(afterFirst.misses);
    expect(afterSecond.hits).toBeGreaterThan(afterFirst.hits + 50);
    expect(afterSecond.cachedBytes).toBeGreaterThan(0);
    expect(afterSecond.cachedBytes).toBeLessThanOrEqual(afterSecond.peakLiveBytes);
    clf.dispose();
    expect(nativeInfo().cpuCache.cachedBytes).toBe(0);
  });

  test("MENTALLAM_CPU_CACHE=0 keeps libtorch's allocator", async () => {
    const addonPath = join(process.cwd(), 'build', 'Release', 'mentallam.node');
    const script =
      `const a = require(${JSON.stringify(addonPath)});` +
      'process.stdout.write(JSON.stringify(a.info().cpuCache.enabled));';
    const { stdout } = await promisify(execFile)(process.execPath, ['-e', script], {
      env: { ...process.env, MENTALLAM_CPU_CACHE: '0' },
    });
    expect(stdout).toBe('false');
  });

  test('one call at a time; dispose frees and later calls reject', async () => {
    const clf = await Classifier.load({ modelDir: larger, dora: DORA, seed: 0 });
    const b = batch([64, 64, 64, 64], 6, [0, 1, 0, 1]);
    const running = clf.trainStep(b, { lr: 1e-4 });
    await expect(clf.predictProba(b)).rejects.toThrow('Classifier is busy with trainStep');
    expect(() => clf.info()).toThrow('Classifier is busy with trainStep');
    const result = await running;
    expect(Number.isFinite(result.loss)).toBe(true);
    await expect(clf.predictProba(b)).resolves.toHaveLength(4);
    // dispose during a call: the call still settles, later ones reject.
    const again = clf.predictProba(b);
    clf.dispose();
    await expect(again).resolves.toHaveLength(4);
    await expect(clf.predictProba(b)).rejects.toThrow('Classifier is disposed');
    expect(() => clf.info()).toThrow('Classifier is disposed');
    clf.dispose(); // twice is fine
  });

  test('load checks every weight against the weight table before using the checkpoint', async () => {
    const entries = await inspectSafetensors(tiny);
    const tensors = await Promise.all(
      entries.map(async (entry) => ({
        name: entry.name,
        shape: entry.shape,
        data: (await readSafetensorsTensor(tiny, entry.name)).data,
      })),
    );
    type Tensors = typeof tensors;
    /** Loads a copy of `tiny` whose weights went through `edit`: 'loaded' or the error. */
    const loadEdited = async (edit: (all: Tensors) => Tensors) => {
      const dir = await mkdtemp(join(work, 'edited-'));
      const weights = join(dir, 'model.safetensors');
      await copyFile(join(tiny, 'config.json'), join(dir, 'config.json'));
      await writeSafetensors(weights, edit(tensors));
      const outcome = await Classifier.load({ modelDir: dir, dora: DORA, seed: 0 }).then(
        (clf) => {
          clf.dispose();
          return 'loaded';
        },
        (error: Error & { code?: string }) => ({ message: error.message, code: error.code }),
      );
      return { weights, outcome };
    };
    expect((await loadEdited((all) => all)).outcome).toBe('loaded');
    const missing = await loadEdited((all) =>
      all.filter((t) => t.name !== 'model.layers.2.mlp.up_proj.weight'),
    );
    expect(missing.outcome).toEqual({
      message: `${missing.weights}: tensor 'model.layers.2.mlp.up_proj.weight' is missing`,
      code: 'ERR_NATIVE_USER',
    });
    const reshaped = await loadEdited((all) =>
      all.map((t) =>
        t.name === 'model.layers.1.self_attn.k_proj.weight' ? { ...t, shape: [64, 32] } : t,
      ),
    );
    expect(reshaped.outcome).toEqual({
      message:
        `${reshaped.weights}: tensor 'model.layers.1.self_attn.k_proj.weight' has shape ` +
        '[64, 32], config.json says [32, 64]',
      code: 'ERR_NATIVE_USER',
    });
    // A checkpoint without a score head (a CausalLM) still loads: the head starts fresh.
    const headless = await loadEdited((all) => all.filter((t) => t.name !== 'score.weight'));
    expect(headless.outcome).toBe('loaded');
  });

  test('bad inputs are Errors with clear messages', async () => {
    await expect(
      Classifier.load({ modelDir: join(work, 'missing'), dora: DORA, seed: 0 }),
    ).rejects.toThrow(/missing/);
    await expect(
      Classifier.load({ modelDir: tiny, dora: { ...DORA, targetModules: ['nope'] }, seed: 0 }),
    ).rejects.toThrow(/match no Linear/);
    await expect(
      Classifier.load({ modelDir: tiny, dora: { ...DORA, r: 0 }, seed: 0 }),
    ).rejects.toThrow(/dora\.r/);
    const clf = await Classifier.load({ modelDir: tiny, dora: DORA, seed: 0 });
    const good = batch([3, 2], 1, [0, 1]);
    await expect(clf.predictProba({ ...good, seqLen: 4 })).rejects.toThrow(/batchSize \* seqLen/);
    await expect(
      clf.predictProba({ ...good, inputIds: new Int32Array(6).fill(5000) }),
    ).rejects.toThrow(/out of range/);
    await expect(
      clf.predictProba({ ...good, attentionMask: new Int32Array(6) as unknown as Uint8Array }),
    ).rejects.toThrow(/Uint8Array/);
    await expect(
      clf.trainStep({ ...good, labels: new Int32Array([0, 1, 1]) }, { lr: 1e-3 }),
    ).rejects.toThrow(/labels must have batchSize/);
    await expect(
      clf.trainStep({ ...good, labels: new Int32Array([0, 7]) }, { lr: 1e-3 }),
    ).rejects.toThrow(/labels must be in/);
    const { labels: _unused, ...unlabelled } = good;
    await expect(clf.trainStep(unlabelled, { lr: 1e-3 })).rejects.toThrow(/needs labels/);
    await expect(clf.loadAdapter(join(work, 'nothing-here'))).rejects.toThrow(
      /adapter_config\.json/,
    );
    // The model still works after all of that.
    await expect(clf.predictProba(good)).resolves.toHaveLength(2);
    clf.dispose();

    const unpadded = await Classifier.load({ modelDir: noPad, dora: DORA, seed: 0 });
    await expect(unpadded.predictProba(good)).rejects.toThrow(/pad token/);
    await expect(
      unpadded.predictProba({
        ...unlabelled,
        inputIds: good.inputIds.slice(0, 3),
        attentionMask: good.attentionMask.slice(0, 3),
        batchSize: 1,
        seqLen: 3,
      }),
    ).resolves.toHaveLength(1);
    unpadded.dispose();
    const overridden = await Classifier.load({
      modelDir: noPad,
      dora: DORA,
      seed: 0,
      padTokenId: 0,
    });
    await expect(overridden.predictProba(good)).resolves.toHaveLength(2);
    overridden.dispose();
  });
});
