// End to end on a real (tiny, random) Llama through the native Classifier: fold adapters trained a
// few steps and saved by the Classifier, then `mentallam infer` in its three modes, the merged
// model against the unmerged one, determinism, the ensemble, and a real (short) bench.
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { createProgram } from '../../../src/cli/program.js';
import { configToYaml, type Config } from '../../../src/config/index.js';
import { loadCriteria, loadTokenizer, trainTinyTokenizer } from '../../../src/data/index.js';
import { bench } from '../../../src/bench/index.js';
import { collateBatch, packExamples } from '../../../src/engine/examples.js';
import { encodePost, sharesPrefix } from '../../../src/engine/index.js';
import { encodePair, infer, type Prediction } from '../../../src/infer/index.js';
import { Classifier } from '../../../src/native.js';
import {
  captureIo,
  corpus,
  runProgram,
  testConfig,
  metricsFile,
  thresholdsFile,
} from '../../unit/infer/fixtures.js';

const dora = { r: 4, alpha: 8, dropout: 0, targetModules: ['q_proj', 'v_proj'], useRslora: false };
let root: string;
let baseDir: string;
let runDir: string;
let config: Config;
const criteria = loadCriteria('data/dsm5/criteria.json');

beforeAll(async () => {
  root = mkdtempSync(join(tmpdir(), 'mentallam-infer-tiny-'));
  baseDir = join(root, 'base');
  const { vocabSize } = await trainTinyTokenizer({
    corpus: [...corpus, ...corpus, ...criteria.map((c) => c.description)],
    vocabSize: 400,
    outDir: baseDir,
  });
  await Classifier.createRandom(
    {
      vocab_size: vocabSize,
      hidden_size: 32,
      intermediate_size: 64,
      num_hidden_layers: 2,
      num_attention_heads: 4,
      num_key_value_heads: 2,
      num_labels: 1,
    },
    baseDir,
    11,
  );
  config = await testConfig([
    'inference.batch_size=3',
    'model.num_labels=1',
    `model.path=${baseDir}`,
    'seed=5',
  ]);

  // Three folds: adapters from different seeds, moved off their identity init by a few steps.
  runDir = join(root, 'run');
  mkdirSync(runDir, { recursive: true });
  writeFileSync(join(runDir, 'config.yaml'), configToYaml(config));
  const tokenizer = loadTokenizer(baseDir, { paddingSide: 'right' });
  const sequences = await Promise.all(
    corpus.map((post, i) => encodePair(tokenizer, config.data.prompt, post, criteria[i % 9]!)),
  );
  const examples = packExamples(sequences);
  const clf = await Classifier.load({
    modelDir: baseDir,
    dora,
    numLabels: 1,
    seed: 1,
    padTokenId: tokenizer.padTokenId,
  });
  try {
    for (let fold = 0; fold < 3; fold++) {
      await clf.resetAdapter(100 + fold);
      for (let step = 0; step < 3; step++) {
        const batch = collateBatch(examples, [0, 1, 2, 3, 4, 5], {
          padTokenId: tokenizer.padTokenId,
          paddingSide: 'right',
          labels: [1, 0, fold % 2, 1, 0, 1],
        });
        await clf.trainStep(batch, { lr: 0.05 });
      }
      const foldDir = join(runDir, `fold_${fold}`);
      await clf.saveAdapter(join(foldDir, 'best_adapter'));
      writeFileSync(join(foldDir, 'thresholds.json'), thresholdsFile(0.5, { A4: 0.45 }, fold));
      writeFileSync(join(foldDir, 'metrics.json'), metricsFile(fold === 1 ? 0.9 : 0.5));
    }
  } finally {
    clf.dispose();
  }
}, 300_000);

afterAll(() => rmSync(root, { recursive: true, force: true }));

const checkpoint = () => join(runDir, 'fold_1', 'best_adapter');
const common = () => [
  'logging.mlflow.enabled=false',
  'logging.level=error',
  `model.path=${baseDir}`,
  'model.num_labels=1',
  'seed=5',
];

async function cli(argv: string[]) {
  const captured = captureIo();
  const program = createProgram(captured.io);
  const code = await runProgram(program, argv, captured.io.stderr);
  return { code, stdout: captured.out(), stderr: captured.err() };
}

test('the saved adapter names its base model and loads as a checkpoint', () => {
  const adapterConfig = JSON.parse(readFileSync(join(checkpoint(), 'adapter_config.json'), 'utf8'));
  expect(adapterConfig).toMatchObject({ r: 4, lora_alpha: 8, base_model_name_or_path: baseDir });
});

test('the base model comes from adapter_config.json when the config names another one', async () => {
  const elsewhere = await testConfig(['model.path=/nonexistent/model', 'model.num_labels=1']);
  const result = await infer({
    config: elsewhere,
    checkpoint: checkpoint(),
    post: 'tired',
    criterion: 'A6',
  });
  expect(result.predictions).toHaveLength(1);
});

test('CLI single pair and post alone on the real model', async () => {
  const single = await cli([
    'infer',
    ...common(),
    '--checkpoint',
    checkpoint(),
    '--post',
    'I cannot sleep at night',
    '--criterion',
    'A4',
    '--json',
  ]);
  expect(single.stderr).toMatch(/scored 1 pairs/);
  expect(single.code).toBe(0);
  const [p] = single.stdout
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as Prediction);
  expect(p).toMatchObject({ criterion: 'A4', threshold: 0.45, thresholdOrigin: 'per_criterion' });
  expect(p!.probability).toBeGreaterThan(0);
  expect(p!.probability).toBeLessThan(1);
  const all = await cli([
    'infer',
    ...common(),
    '--checkpoint',
    checkpoint(),
    '--post',
    'I cannot sleep at night',
  ]);
  expect(all.code).toBe(0);
  expect(all.stdout.trim().split('\n')).toHaveLength(10);
});

test('CLI batch with bad lines on the real model: exit 1, every good line scored', async () => {
  const input = join(root, 'pairs.jsonl');
  const output = join(root, 'preds.jsonl');
  writeFileSync(
    input,
    [
      JSON.stringify({ id: 1, post: corpus[0], criterion: 'A4' }),
      '{oops',
      JSON.stringify({ id: 3, post: corpus[1] }),
      JSON.stringify({ id: 4, post: corpus[2], criterion: 'nope' }),
    ].join('\n'),
  );
  const { code } = await cli([
    'infer',
    ...common(),
    '--checkpoint',
    checkpoint(),
    '--input',
    input,
    '--output',
    output,
  ]);
  expect(code).toBe(1);
  const records = readFileSync(output, 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l));
  expect(records).toHaveLength(1 + 1 + 9 + 1);
  expect(records.filter((r) => 'error' in r).map((r) => r.line)).toEqual([2, 4]);
});

test('the merged model scores what the unmerged adapter scores; runs are deterministic', async () => {
  const posts = [corpus[0]!, corpus[3]!, 'short'];
  const merged = await infer({
    config,
    checkpoint: checkpoint(),
    inputs: posts.map((post) => ({ post, criterion: 'A2' })),
  });
  const again = await infer({
    config,
    checkpoint: checkpoint(),
    inputs: posts.map((post) => ({ post, criterion: 'A2' })),
  });
  expect(again.predictions).toEqual(merged.predictions);

  const tokenizer = loadTokenizer(baseDir, { paddingSide: 'right' });
  const clf = await Classifier.load({
    modelDir: baseDir,
    dora,
    numLabels: 1,
    seed: 5,
    padTokenId: tokenizer.padTokenId,
  });
  try {
    await clf.loadAdapter(checkpoint());
    for (const [i, post] of posts.entries()) {
      // As training encodes it: with a shared-prefix prompt, against all nine criteria.
      const ids = sharesPrefix(config.data.prompt)
        ? (await encodePost(tokenizer, config.data.prompt, post, criteria)).ids[1]!
        : await encodePair(tokenizer, config.data.prompt, post, criteria[1]!);
      const [p] = await clf.predictProba(
        collateBatch(packExamples([ids]), [0], {
          padTokenId: tokenizer.padTokenId,
          paddingSide: 'right',
        }),
      );
      expect(merged.predictions[i]!.probability).toBeCloseTo(p!, 4);
    }
  } finally {
    clf.dispose();
  }
});

test('a post alone is scored as one shared-prefix row: the probabilities of its nine pairs', async () => {
  const post = `${corpus[2]!} ${corpus[4]!}`;
  const alone = await infer({ config, checkpoint: checkpoint(), post });
  expect(sharesPrefix(config.data.prompt)).toBe(true);
  const tokenizer = loadTokenizer(baseDir, { paddingSide: 'right' });
  const encoded = await encodePost(tokenizer, config.data.prompt, post, criteria);
  const clf = await Classifier.load({
    modelDir: baseDir,
    dora,
    numLabels: 1,
    seed: 5,
    padTokenId: tokenizer.padTokenId,
  });
  try {
    await clf.loadAdapter(checkpoint());
    // The nine pairs as separate rows, unmerged: the reference.
    const separate = await clf.predictProba(
      collateBatch(
        packExamples(encoded.ids),
        criteria.map((_, k) => k),
        { padTokenId: tokenizer.padTokenId, paddingSide: 'right' },
      ),
    );
    expect(alone.predictions.map((p) => p.criterion)).toEqual(criteria.map((c) => c.id));
    alone.predictions.forEach((p, k) => expect(p.probability).toBeCloseTo(separate[k]!, 5));
  } finally {
    clf.dispose();
  }
});

test('run directory: best fold on validation; the ensemble is the mean of the folds', async () => {
  const inputs = corpus.slice(0, 4).map((post, i) => ({ id: i, post, criterion: `A${i + 1}` }));
  const best = await infer({ config, run: runDir, inputs });
  expect(best.model.folds).toEqual([1]);
  const singles = await Promise.all(
    [0, 1, 2].map((f) => infer({ config, run: `${runDir}/${f}`, inputs })),
  );
  const ensemble = await infer({ config, run: runDir, ensemble: true, inputs });
  expect(ensemble.model.folds).toEqual([0, 1, 2]);
  ensemble.predictions.forEach((p, i) => {
    const mean = singles.reduce((s, r) => s + r.predictions[i]!.probability, 0) / 3;
    expect(p.probability).toBeCloseTo(mean, 4);
  });
  // The folds really differ, so the mean is not trivially equal to each of them.
  expect(
    new Set(singles.map((r) => r.predictions[0]!.probability.toFixed(6))).size,
  ).toBeGreaterThan(1);
});

test('a real bench: timings measured, figures consistent, files written', async () => {
  const result = await bench({
    config,
    base: baseDir,
    lengths: [16, 32],
    warmup: 1,
    runs: 5,
    threads: 1,
    outDir: join(root, 'bench'),
  });
  expect(result.threads).toBe(1);
  for (const s of result.summaries) {
    expect(s.runs).toBe(5);
    expect(s.min).toBeGreaterThan(0);
    expect(s.min).toBeLessThanOrEqual(s.p50);
    expect(s.p50).toBeLessThanOrEqual(s.p95);
    expect(s.p95).toBeLessThanOrEqual(s.p99);
    expect(s.p99).toBeLessThanOrEqual(s.max);
  }
  expect(result.gate).toMatchObject({ length: 32, passed: true });
  expect(result.files.map((f) => f.split('/').pop())).toEqual([
    'bench.json',
    'latency_histogram.svg',
    'latency_histogram.png',
  ]);
});
