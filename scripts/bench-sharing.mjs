#!/usr/bin/env node
// The whole k-fold job on the synthetic data, side by side (issue 13): plain (post, criterion)
// pairs; shared-prefix rows (each post's part of the prompt computed once for its criteria);
// shared-prefix rows + the frozen-bottom cache with adapters on the top quarter of the layers;
// and transformers + peft in a plain PyTorch loop over pairs (scripts/bench_sharing_peer.py)
// with the same epochs, the same micro-batches of pairs and the same prompt token ids. Each arm
// runs in its own process, so its peak RSS is its own. Reports wall time, tokens actually
// computed, peak RSS and the ratios; the figures are the lead's to take on a quiet machine.
//
//   npm run bench:sharing -- [--model models/smollm2/SmolLM2-135M-Instruct.Q4_1.gguf]
//     [--folds 5] [--splits 5] [--epochs 3] [--posts 240] [--max-length 128]
//     [--micro-batch 16] [--effective-batch 16] [--inference-batch 64] [--lr 1e-3]
//     [--r 8] [--top-fraction 0.25] [--attention block_mask|prefix_kv] [--threads N]
//     [--arms plain,shared,cached,peft] [--out report.json] [--work DIR] [--keep] [--quick]
//
// --quick: a smoke run that proves every arm runs end to end (1 fold of 2 splits, 1 epoch, 20
// posts, 96 tokens); options given with it still win. Its figures mean nothing.
//
// Building blocks come from dist/ (npm run build) and the addon from build/ (npm run
// build:native). The tokenization is done once, before any arm starts, and is not timed.
import { execFile } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { promisify } from 'node:util';

const run = promisify(execFile);
const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const self = fileURLToPath(import.meta.url);
const python = join(root, '.venv', 'bin', 'python');
const ARMS = ['plain', 'shared', 'cached', 'peft'];

const DEFAULTS = {
  model: 'models/smollm2/SmolLM2-135M-Instruct.Q4_1.gguf',
  folds: 5,
  splits: 5,
  epochs: 3,
  posts: 240,
  'max-length': 128,
  'micro-batch': 16,
  'effective-batch': 16,
  'inference-batch': 64,
  lr: 1e-3,
  r: 8,
  'top-fraction': 0.25,
  attention: 'block_mask',
  threads: 0,
  arms: ARMS.join(','),
  out: '',
  work: '',
  keep: false,
  seed: 42,
};
/** --quick: the smallest job that still runs every arm through a whole fold. */
const QUICK = { folds: 1, splits: 2, epochs: 1, posts: 20, 'max-length': 96 };
const NUMERIC = new Set([
  'folds',
  'splits',
  'epochs',
  'posts',
  'max-length',
  'micro-batch',
  'effective-batch',
  'inference-batch',
  'lr',
  'r',
  'top-fraction',
  'threads',
  'seed',
]);

function usage(message) {
  const lines = Object.entries(DEFAULTS).map(([key, value]) => `  --${key} ${value}`);
  return (
    `${message}\nusage: npm run bench:sharing -- [--quick] [options]\n${lines.join('\n')}\n` +
    `  --quick (${Object.entries(QUICK)
      .map(([key, value]) => `--${key} ${value}`)
      .join(' ')})`
  );
}

function parseArgs(argv) {
  const options = { ...DEFAULTS, ...(argv.includes('--quick') ? QUICK : {}) };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (!arg.startsWith('--')) throw new Error(usage(`unexpected argument ${arg}`));
    const key = arg.slice(2);
    if (key === 'keep') {
      options.keep = true;
      continue;
    }
    if (key === 'quick') continue;
    if (key === 'child') {
      options.child = argv[++i];
      continue;
    }
    if (!(key in DEFAULTS)) throw new Error(usage(`unknown option --${key}`));
    const value = argv[++i];
    if (value === undefined) throw new Error(usage(`--${key} needs a value`));
    if (NUMERIC.has(key)) {
      const number = Number(value);
      if (!Number.isFinite(number) || number < 0) {
        throw new Error(usage(`--${key} must be a non-negative number, got ${value}`));
      }
      options[key] = number;
    } else {
      options[key] = value;
    }
  }
  const arms = options.arms.split(',').filter((a) => a !== '');
  for (const arm of arms) {
    if (!ARMS.includes(arm)) throw new Error(usage(`unknown arm ${arm} (${ARMS.join(', ')})`));
  }
  options.arms = arms;
  if (options.folds < 1 || options.folds > options.splits) {
    throw new Error(usage(`--folds must be between 1 and --splits (${options.splits})`));
  }
  if (!['block_mask', 'prefix_kv'].includes(options.attention)) {
    throw new Error(usage(`--attention must be block_mask or prefix_kv`));
  }
  return options;
}

function peakRssMb() {
  const line = readFileSync('/proc/self/status', 'utf8')
    .split('\n')
    .find((l) => l.startsWith('VmHWM:'));
  return line ? Number(line.split(/\s+/)[1]) / 1024 : NaN;
}

/** The built modules (dist/) the bench drives. */
async function modules() {
  const dist = join(root, 'dist');
  if (!existsSync(join(dist, 'engine', 'foldTrainer.js'))) {
    throw new Error(`${dist} is missing: run npm run build first`);
  }
  const load = (path) => import(pathToFileURL(join(dist, path)).href);
  return {
    engine: await load('engine/index.js'),
    evaluation: await load('engine/evaluation.js'),
    run: await load('run/index.js'),
    trainer: await load('engine/foldTrainer.js'),
    batching: await load('engine/batching.js'),
    examples: await load('engine/examples.js'),
    frozen: await load('engine/frozenCache.js'),
    prompts: await load('engine/prompts.js'),
    setup: await load('engine/setup.js'),
    data: await load('data/index.js'),
    infra: await load('infra/index.js'),
    native: await load('native/index.js'),
  };
}

/** The config every arm shares (the defaults' training recipe, early stopping that never stops). */
function overrides(options, work, sharePrefix) {
  return [
    `seed=${options.seed}`,
    `data.dir=${join(work, 'data')}`,
    `data.criteria_path=${join(root, 'data', 'dsm5', 'criteria.json')}`,
    `data.synthetic.n_posts=${options.posts}`,
    `data.splits.n_splits=${options.splits}`,
    `data.prompt.max_length=${options['max-length']}`,
    `data.prompt.share_prefix=${sharePrefix ? 'auto' : 'false'}`,
    `model.shared_attention=${options.attention}`,
    `model.dora.r=${options.r}`,
    `model.dora.alpha=${2 * options.r}`,
    'model.dora.dropout=0',
    `training.lr=${options.lr}`,
    `training.max_epochs=${options.epochs}`,
    `training.micro_batch_size=${options['micro-batch']}`,
    `training.effective_batch_size=${options['effective-batch']}`,
    `inference.batch_size=${options['inference-batch']}`,
    'training.early_stopping.patience=1000000',
    'logging.mlflow.enabled=false',
    'logging.level=warn',
  ];
}

/** Encodes every pair once per encoding (plain, shared) and writes the job files. */
async function prepare(options, work, m) {
  const { config } = await m.engine.resolveConfig({ overrides: overrides(options, work, true) });
  const logger = m.infra.createLogger({ level: 'warn' });
  const dataset = await m.engine.loadDataset(config, work, logger);
  const folds = m.data
    .buildFolds(dataset, m.infra.camelCaseKeys(config.data.splits))
    .slice(0, options.folds);
  const model = resolve(root, options.model);
  const tokenizer = await m.data.openTokenizer(model, m.engine.tokenizerOptions(config));
  const criteria = new Map(dataset.criteria.map((c) => [c.id, c]));
  const text = new Map(dataset.posts.map((p) => [p.postId, p.text]));
  const byPost = new Map();
  dataset.pairs.forEach((pair, i) => {
    if (!byPost.has(pair.postId)) byPost.set(pair.postId, []);
    byPost.get(pair.postId).push(i);
  });
  const plain = new Array(dataset.pairs.length);
  for (const [i, pair] of dataset.pairs.entries()) {
    plain[i] = (
      await m.prompts.encodePrompt(
        tokenizer,
        { ...config.data.prompt, share_prefix: false },
        text.get(pair.postId),
        criteria.get(pair.criterionId),
      )
    ).ids;
  }
  const shared = new Array(dataset.pairs.length);
  const prefixLengths = new Int32Array(dataset.pairs.length);
  const posts = new Int32Array(dataset.pairs.length);
  let post = 0;
  for (const [postId, indices] of byPost) {
    const encoded = await m.prompts.encodePost(
      tokenizer,
      config.data.prompt,
      text.get(postId),
      indices.map((i) => criteria.get(dataset.pairs[i].criterionId)),
    );
    indices.forEach((pairIndex, k) => {
      shared[pairIndex] = encoded.ids[k];
      prefixLengths[pairIndex] = encoded.prefixLength;
      posts[pairIndex] = post;
    });
    post += 1;
  }
  const job = {
    model,
    padTokenId: tokenizer.padTokenId,
    labels: dataset.pairs.map((p) => p.label),
    folds: folds.map((f) => ({
      index: f.index,
      train: f.train,
      validation: f.validation,
      test: f.test,
    })),
    plain,
    shared: { ids: shared, prefixLengths: [...prefixLengths], posts: [...posts] },
  };
  await writeFile(join(work, 'job.json'), JSON.stringify(job));
  return job;
}

/** One mentallam arm: every fold trained, validated each epoch and tested, in this process. */
async function mentallamArm(arm, options, work) {
  const m = await modules();
  const job = JSON.parse(await readFile(join(work, 'job.json'), 'utf8'));
  const { config } = await m.engine.resolveConfig({
    overrides: overrides(options, work, arm !== 'plain'),
  });
  if (options.threads) m.native.setNumThreads(options.threads);
  const examples =
    arm === 'plain'
      ? m.examples.packExamples(job.plain)
      : {
          ...m.examples.packExamples(job.shared.ids),
          prefixLengths: Int32Array.from(job.shared.prefixLengths),
          posts: Int32Array.from(job.shared.posts),
        };
  const labels = Uint8Array.from(job.labels);
  const started = performance.now();
  const numLayers = (await m.native.loadLlamaConfig(job.model)).num_hidden_layers;
  const top = Math.max(1, Math.round(numLayers * options['top-fraction']));
  const classifier = await m.native.Classifier.load({
    modelDir: job.model,
    dora: {
      ...m.infra.camelCaseKeys(config.model.dora),
      layers: arm === 'cached' ? { top } : null,
    },
    numLabels: config.model.num_labels,
    device: 'cpu',
    dtype: 'float32',
    seed: config.seed,
    padTokenId: job.padTokenId,
    sharedAttention: options.attention,
  });
  // Tokens the model computes: every non-pad token of every call, and token x layers.
  const counts = { tokens: 0, tokenLayers: 0, cacheTokens: 0 };
  const count = (batch) => {
    const tokens = batch.attentionMask.reduce((sum, v) => sum + v, 0);
    counts.tokens += tokens;
    counts.tokenLayers += tokens * (batch.hiddenStates ? top : numLayers);
  };
  const model = {
    trainStep: (batch, stepOptions) => (count(batch), classifier.trainStep(batch, stepOptions)),
    predictProba: (batch) => (count(batch), classifier.predictProba(batch)),
    saveAdapter: (dir) => classifier.saveAdapter(dir),
    loadAdapter: (dir) => classifier.loadAdapter(dir),
    discardGradients: () => classifier.discardGradients(),
  };
  let frozen = null;
  let cacheSeconds = 0;
  if (arm === 'cached') {
    const built = await m.frozen.buildFrozenCache(classifier, examples, {
      maxMemoryBytes: 4096 * 2 ** 20,
      dir: work,
      padTokenId: job.padTokenId,
      batchSize: options['inference-batch'],
    });
    frozen = built.rows;
    cacheSeconds = built.report.seconds;
    counts.cacheTokens = built.report.tokens;
    counts.tokenLayers += built.report.tokens * (numLayers - top);
  }
  const trainer = {
    ...m.infra.camelCaseKeys(config.training),
    inferenceBatchSize: config.inference.batch_size,
    padTokenId: job.padTokenId,
    paddingSide: 'right',
    outOfMemoryBackoff: false,
  };
  let steps = 0;
  for (const fold of job.folds) {
    const seed = m.infra.deriveSeed(config.seed, fold.index);
    await classifier.resetAdapter(seed);
    const result = await m.trainer.trainFold(
      model,
      {
        examples,
        labels,
        trainIndices: fold.train,
        validationIndices: fold.validation,
        frozen,
      },
      trainer,
      new m.run.RunStore(join(work, arm)).fold(fold.index),
      (indices, scores) =>
        m.evaluation.validationScore(
          indices.map((i) => labels[i]),
          scores,
          config.training.early_stopping.metric,
        ),
      {
        fold: fold.index,
        seed,
        beforeStep: (step) => m.native.manualSeed(m.infra.deriveSeed(seed, 'step', step)),
      },
    );
    steps += result.steps;
    await m.trainer.predictIndices(model, examples, fold.test, trainer, frozen);
  }
  frozen?.cache.dispose();
  classifier.dispose();
  return {
    arm,
    wallSeconds: (performance.now() - started) / 1000,
    cacheSeconds,
    steps,
    ...counts,
    peakRssMb: peakRssMb(),
  };
}

/**
 * The micro-batches trainFold runs for the plain arm, per fold and epoch (the same seeded plan),
 * for the peer.
 */
async function peerPlan(options, work, job) {
  const m = await modules();
  const { config } = await m.engine.resolveConfig({ overrides: overrides(options, work, false) });
  const examples = m.examples.packExamples(job.plain);
  const bucketWindow = config.training.length_bucketing ? m.trainer.lengthBucketWindow : 0;
  return job.folds.map((fold) => {
    const rng = m.trainer.countingRng(m.infra.deriveSeed(config.seed, fold.index));
    const lengths = fold.train.map((i) => m.examples.exampleLength(examples, i));
    const epochs = [];
    for (let epoch = 0; epoch < options.epochs; epoch++) {
      const plan = m.batching.planEpochBatches(lengths, {
        microBatchSize: options['micro-batch'],
        bucketWindow,
        rng: rng.next,
      });
      epochs.push(plan.map((batch) => batch.map((position) => fold.train[position])));
    }
    return { index: fold.index, epochs, validation: fold.validation, test: fold.test };
  });
}

async function peerArm(options, work, job) {
  const plan = await peerPlan(options, work, job);
  const peerJob = {
    model: job.model,
    padTokenId: job.padTokenId,
    labels: job.labels,
    ids: job.plain,
    folds: plan,
    r: options.r,
    alpha: 2 * options.r,
    lr: options.lr,
    accumulation: Math.max(1, Math.round(options['effective-batch'] / options['micro-batch'])),
    inferenceBatch: options['inference-batch'],
    warmupRatio: 0.1,
    maxGradNorm: 1.0,
    threads: options.threads,
    seed: options.seed,
  };
  const path = join(work, 'peer-job.json');
  await writeFile(path, JSON.stringify(peerJob));
  const { stdout } = await run(python, [join(root, 'scripts', 'bench_sharing_peer.py'), path], {
    maxBuffer: 64 * 1024 * 1024,
    env: { ...process.env, TRANSFORMERS_VERBOSITY: 'error', TQDM_DISABLE: '1' },
  });
  const lines = stdout.trim().split('\n');
  return { arm: 'peft', ...JSON.parse(lines[lines.length - 1]) };
}

function table(results) {
  const plain = results.find((r) => r.arm === 'plain');
  const peft = results.find((r) => r.arm === 'peft');
  const ratio = (a, b) => (b ? (a / b).toFixed(3) : '-');
  const rows = results.map((r) => [
    r.arm,
    r.wallSeconds.toFixed(1),
    String(r.tokens),
    r.tokenLayers !== undefined ? String(r.tokenLayers) : '-',
    r.peakRssMb.toFixed(0),
    ratio(r.wallSeconds, plain?.wallSeconds),
    ratio(r.wallSeconds, peft?.wallSeconds),
  ]);
  const head = ['arm', 'wall s', 'tokens', 'token x layers', 'peak RSS MB', 'x plain', 'x peft'];
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i].length)));
  const line = (cells) => cells.map((c, i) => c.padStart(widths[i])).join('  ');
  return [line(head), ...rows.map(line)].join('\n');
}

async function main() {
  const options = parseArgs(process.argv.slice(2));
  if (options.child) {
    const result = await mentallamArm(options.child, options, options.work);
    process.stdout.write(`${JSON.stringify(result)}\n`);
    return;
  }
  const work = options.work
    ? resolve(options.work)
    : await mkdtemp(join(tmpdir(), 'mentallam-bench-sharing-'));
  await mkdir(work, { recursive: true });
  try {
    const m = await modules();
    console.error(`bench:sharing in ${work}: preparing the data and the token ids (not timed)`);
    const job = await prepare(options, work, m);
    const results = [];
    for (const arm of options.arms) {
      console.error(`bench:sharing: running ${arm}`);
      if (arm === 'peft') {
        results.push(await peerArm(options, work, job));
        continue;
      }
      const args = [self, '--child', arm, '--work', work];
      for (const [key, value] of Object.entries(options)) {
        if (['child', 'work', 'keep', 'arms', 'out'].includes(key)) continue;
        args.push(`--${key}`, String(value));
      }
      const { stdout } = await run(process.execPath, args, { maxBuffer: 64 * 1024 * 1024 });
      const lines = stdout.trim().split('\n');
      results.push(JSON.parse(lines[lines.length - 1]));
    }
    const report = {
      options: { ...options, work: undefined, child: undefined },
      pairs: job.labels.length,
      folds: job.folds.length,
      results,
    };
    console.log(table(results));
    if (options.out) await writeFile(resolve(options.out), `${JSON.stringify(report, null, 2)}\n`);
  } finally {
    if (!options.keep && !options.work) await rm(work, { recursive: true, force: true });
  }
}

main().catch((error) => {
  console.error(error instanceof Error ? error.message : error);
  process.exit(1);
});
