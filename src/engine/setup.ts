/**
 * Run set-up steps shared by training, inference and the bench: the model directory (creating
 * the tiny model on first use), the data set (generating the synthetic one on first use), the
 * tokenized prompts (cached on disk) and the native classifier.
 */
import { createHash } from 'node:crypto';
import { existsSync, readdirSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';

import type { Config } from '../config/index.js';
import {
  generateSyntheticDataset,
  loadCriteria,
  loadRedsm5,
  openTokenizer,
  trainTinyTokenizer,
  writeSyntheticDataset,
  type Dataset,
  type LoadTokenizerOptions,
  type Tokenizer,
} from '../data/index.js';
import { camelCaseKeys, writeFileAtomic, writeJsonAtomic, type Logger } from '../infra/index.js';
import { resolveTracking, type ResolvedTracking } from '../tracking/index.js';
import { Classifier, loadLlamaConfig, nativeInfo } from '../native.js';
import { packExamples, type TokenizedExamples } from './examples.js';
import { findModel, installHint, modelPathExpectation } from './modelLocation.js';
import { encodePost, encodePrompt, sharesPrefix } from './prompts.js';

/** ReDSM5's post count; a synthetic set of another size needs (and records) a count override. */
const redsm5Posts = 1484;

export class SetupError extends Error {}

/**
 * The file the tiny model's folder carries, written before anything else: a folder holding it is
 * the project's own and may be generated into again (a generation that died half-way is redone).
 */
export const generatedModelMarker = 'mentallam-generated.json';

const tinyModelRefusal =
  'point model.path at a Hugging Face checkpoint directory (config.json, model.safetensors, ' +
  'tokenizer.json), or at a new or empty folder for the generated tiny model';

/** The synthetic data set's marker: its seed and size, so a change regenerates it. */
export const syntheticDataMarker = 'synthetic.json';

/**
 * Refuses to generate into a folder that holds anything but the project's own files: it must
 * not exist, be empty, or carry `marker`. The error starts with `subject` (the setting and the
 * folder) and ends with `refusal`, what to do instead.
 */
function checkGeneratedFolder(dir: string, marker: string, subject: string, refusal: string): void {
  if (!existsSync(dir)) return;
  const entries = readdirSync(dir);
  if (entries.length === 0 || entries.includes(marker)) return;
  const shown = entries.slice(0, 5).join(', ') + (entries.length > 5 ? ', ...' : '');
  throw new SetupError(
    `${subject} holds files mentallam did not generate (${shown}; no ${marker}), so nothing ` +
      `is generated there: ${refusal}`,
  );
}

export function resolveDevice(config: Config): string {
  if (config.model.device !== 'auto') return config.model.device;
  return nativeInfo().cudaAvailable ? 'cuda' : 'cpu';
}

/** bf16 base weights on CUDA (adapters stay fp32 in the addon), fp32 on the CPU. */
export function resolveDtype(config: Config, device: string): string {
  if (config.model.dtype !== 'auto') return config.model.dtype;
  return device.startsWith('cuda') ? 'bfloat16' : 'float32';
}

/**
 * The model from model.path: a Hugging Face checkpoint directory, a .gguf file or a directory
 * holding one (modelLocation.ts); the tiny model is created there when missing and
 * model.create_if_missing is set. Anything else is an error naming the path and, for a model the
 * set-up installs, how to install it: there is no fallback to another model.
 */
export async function modelDirectory(config: Config, cwd: string, logger: Logger): Promise<string> {
  const dir = resolve(cwd, config.model.path);
  if (findModel(dir)) return dir;
  if (config.model.create_if_missing && config.model.tiny) {
    checkGeneratedFolder(
      dir,
      generatedModelMarker,
      `model.path ${dir} has no config.json or .gguf and`,
      tinyModelRefusal,
    );
    logger.info('creating the tiny model (first use)', { dir });
    await createTinyModel(config, dir, cwd);
    return dir;
  }
  const hint = await installHint(dir);
  throw new SetupError(
    `model.path ${dir} holds no model: expected ${modelPathExpectation}` +
      (hint ? `. ${hint}` : ''),
  );
}

/**
 * Writes a deterministic tiny Llama: a SentencePiece-style BPE tokenizer trained on the synthetic
 * corpus, then random weights whose vocabulary matches the tokenizer.
 */
export async function createTinyModel(
  config: Config,
  dir: string,
  cwd: string = process.cwd(),
): Promise<{ vocabSize: number }> {
  const tiny = config.model.tiny;
  if (!tiny) throw new SetupError('model.tiny is not set: only the tiny model can be generated');
  checkGeneratedFolder(dir, generatedModelMarker, `model.path ${dir}`, tinyModelRefusal);
  await mkdir(dir, { recursive: true });
  await writeFileAtomic(
    join(dir, generatedModelMarker),
    `${JSON.stringify({ generatedBy: 'mentallam', what: 'tiny random Llama (model.tiny)', seed: config.seed })}\n`,
  );
  const synthetic = generateSyntheticDataset({
    seed: config.data.synthetic.seed,
    nPosts: redsm5Posts,
  });
  const criteria = loadCriteria(resolve(cwd, config.data.criteria_path));
  const corpus = [
    ...synthetic.posts.map((post) => post.text),
    ...criteria.map((criterion) => criterion.description),
    config.data.prompt.template,
  ];
  const trained = await trainTinyTokenizer({
    corpus,
    vocabSize: tiny.vocab_size,
    outDir: dir,
    modelMaxLength: tiny.max_position_embeddings,
  });
  await Classifier.createRandom(
    {
      hidden_size: tiny.hidden_size,
      intermediate_size: tiny.intermediate_size,
      num_hidden_layers: tiny.num_hidden_layers,
      num_attention_heads: tiny.num_attention_heads,
      num_key_value_heads: tiny.num_key_value_heads,
      vocab_size: trained.vocabSize,
      max_position_embeddings: tiny.max_position_embeddings,
      num_labels: config.model.num_labels,
      pad_token_id: 0,
      bos_token_id: 1,
      eos_token_id: 2,
    },
    dir,
    config.seed,
  );
  return { vocabSize: trained.vocabSize };
}

/**
 * The synthetic data set in `dir`, generated unless its marker says it is there with this seed
 * and size (then null). Only into a folder that is new, empty or marked as ours; marked first and completed
 * last, so a generation that dies half-way is redone, never mistaken for the user's files.
 */
export async function generateSyntheticData(options: {
  dir: string;
  seed: number;
  nPosts: number;
  logger?: Logger;
  /** Regenerate even when the marker matches. */
  force?: boolean;
}): Promise<Awaited<ReturnType<typeof writeSyntheticDataset>> | null> {
  const { dir, seed, nPosts } = options;
  const markerPath = join(dir, syntheticDataMarker);
  const marker = JSON.stringify({ seed, nPosts });
  const current = existsSync(markerPath) ? await readFile(markerPath, 'utf8') : null;
  if (current === marker && !options.force) return null;
  checkGeneratedFolder(
    dir,
    syntheticDataMarker,
    `data.dir ${dir}`,
    'to train on the ReDSM5 files there, select data=redsm5; to generate the synthetic data ' +
      'set, point data.dir at a new or empty folder',
  );
  options.logger?.info('generating the synthetic data set', { dir, seed, nPosts });
  await mkdir(dir, { recursive: true });
  await writeFileAtomic(markerPath, JSON.stringify({ generating: { seed, nPosts } }));
  const written = await writeSyntheticDataset({ outDir: dir, seed, nPosts });
  await writeFileAtomic(markerPath, marker);
  return written;
}

/** The data set of config.data; the synthetic one is generated on first use. */
export async function loadDataset(config: Config, cwd: string, logger: Logger): Promise<Dataset> {
  const dir = resolve(cwd, config.data.dir);
  const criteriaPath = resolve(cwd, config.data.criteria_path);
  let countOverrideReason = config.data.count_override.reason;
  if (config.data.name === 'synthetic') {
    const { seed, n_posts: nPosts } = config.data.synthetic;
    await generateSyntheticData({ dir, seed, nPosts, logger });
    if (nPosts !== redsm5Posts && !countOverrideReason) {
      countOverrideReason = `synthetic data set with ${nPosts} posts (data.synthetic.n_posts)`;
    }
  } else if (!existsSync(dir)) {
    throw new SetupError(
      `data.dir ${dir} does not exist: put the ReDSM5 files (redsm5_posts.csv, redsm5_annotations.csv) there`,
    );
  }
  return loadRedsm5({ dir, criteriaPath, countOverrideReason });
}

/** The tokenizer as model.* configures it, for training and inference alike. */
export function tokenizerOptions(config: Config): LoadTokenizerOptions {
  return {
    ...(config.model.pad_token_id !== null ? { padTokenId: config.model.pad_token_id } : {}),
    paddingSide: config.model.padding_side,
  };
}

export interface PreparedExamples {
  /** One tokenized prompt per dataset pair, in dataset.pairs order. */
  examples: TokenizedExamples;
  tokenizer: Tokenizer;
  padTokenId: number;
  truncatedPairs: number;
  cacheHit: boolean;
}

/**
 * Builds and tokenizes every (post, criterion) prompt once. With a template that shares a prefix
 * (data.prompt.share_prefix auto, {post} before the criterion), each post is encoded once for
 * its criteria (encodePost): its pairs share their first ids, and the examples carry
 * prefixLengths and posts so batches can compute that part once. The ids are cached under
 * .cache/tokens keyed by dataset hash, tokenizer hash, template, truncation, max_length and the
 * encoding, so a second run (or fold) reads them instead of tokenizing 13k prompts again.
 */
export async function prepareExamples(
  config: Config,
  dataset: Dataset,
  modelDir: string,
  cwd: string,
  logger: Logger,
): Promise<PreparedExamples> {
  const tokenizer = await openTokenizer(modelDir, tokenizerOptions(config));
  await checkVocabulary(modelDir, tokenizer);
  const { template, truncation, max_length: maxLength } = config.data.prompt;
  const shared = sharesPrefix(config.data.prompt);
  const encoding = shared ? 'shared-prefix-v1' : 'pair-v1';
  const key = createHash('sha256')
    .update(
      JSON.stringify([dataset.hash, tokenizer.hash, template, truncation, maxLength, encoding]),
    )
    .digest('hex')
    .slice(0, 32);
  const cacheDir = resolve(cwd, '.cache', 'tokens');
  const path = (part: string) => join(cacheDir, `${key}.${part}`);
  const parts = shared ? ['ids', 'offsets', 'prefix', 'posts'] : ['ids', 'offsets'];
  const metaPath = path('json');
  if (parts.every((part) => existsSync(path(`${part}.bin`))) && existsSync(metaPath)) {
    const meta = JSON.parse(await readFile(metaPath, 'utf8')) as {
      pairs: number;
      truncated: number;
    };
    if (meta.pairs === dataset.pairs.length) {
      const read = async (part: string) => {
        const bytes = await readFile(path(`${part}.bin`));
        return new Int32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4).slice();
      };
      const examples: TokenizedExamples = {
        ids: await read('ids'),
        offsets: await read('offsets'),
      };
      if (shared) {
        examples.prefixLengths = await read('prefix');
        examples.posts = await read('posts');
      }
      return {
        examples,
        tokenizer,
        padTokenId: tokenizer.padTokenId,
        truncatedPairs: meta.truncated,
        cacheHit: true,
      };
    }
  }
  const postText = new Map(dataset.posts.map((post) => [post.postId, post.text]));
  const criteria = new Map(dataset.criteria.map((criterion) => [criterion.id, criterion]));
  const sequences: number[][] = new Array<number[]>(dataset.pairs.length);
  let truncated = 0;
  let examples: TokenizedExamples;
  if (shared) {
    // Each post once, against the criteria of its pairs (all nine in ReDSM5).
    const pairsOfPost = new Map<string, number[]>();
    dataset.pairs.forEach((pair, index) => {
      const list = pairsOfPost.get(pair.postId);
      if (list) list.push(index);
      else pairsOfPost.set(pair.postId, [index]);
    });
    const prefixLengths = new Int32Array(dataset.pairs.length);
    const posts = new Int32Array(dataset.pairs.length);
    let mismatches = 0;
    let post = 0;
    for (const [postId, indices] of pairsOfPost) {
      const encoded = await encodePost(
        tokenizer,
        config.data.prompt,
        postText.get(postId)!,
        indices.map((i) => criteria.get(dataset.pairs[i]!.criterionId)!),
      );
      indices.forEach((pairIndex, k) => {
        sequences[pairIndex] = encoded.ids[k]!;
        prefixLengths[pairIndex] = encoded.prefixLength;
        posts[pairIndex] = post;
      });
      if (encoded.truncated) truncated += indices.length;
      mismatches += encoded.splitMismatches;
      post += 1;
    }
    if (mismatches > 0) {
      logger.warn(
        'the shared part of some prompts does not end on a token boundary; their suffixes were ' +
          'tokenized on their own (still exact between shared and plain batches)',
        { pairs: mismatches },
      );
    }
    examples = { ...packExamples(sequences), prefixLengths, posts };
  } else {
    for (const [index, pair] of dataset.pairs.entries()) {
      const encoded = await encodePrompt(
        tokenizer,
        config.data.prompt,
        postText.get(pair.postId)!,
        criteria.get(pair.criterionId)!,
      );
      if (encoded.truncated) truncated += 1;
      sequences[index] = encoded.ids;
    }
    examples = packExamples(sequences);
  }
  await mkdir(cacheDir, { recursive: true });
  const arrays: Record<string, Int32Array | undefined> = {
    ids: examples.ids,
    offsets: examples.offsets,
    prefix: examples.prefixLengths,
    posts: examples.posts,
  };
  for (const part of parts) {
    const array = arrays[part]!;
    await writeFile(
      path(`${part}.bin`),
      Buffer.from(array.buffer, array.byteOffset, array.byteLength),
    );
  }
  await writeJsonAtomic(metaPath, { pairs: dataset.pairs.length, truncated });
  logger.info('tokenized prompts', {
    pairs: sequences.length,
    truncated,
    maxLength,
    sharedPrefix: shared,
  });
  return {
    examples,
    tokenizer,
    padTokenId: tokenizer.padTokenId,
    truncatedPairs: truncated,
    cacheHit: false,
  };
}

/** A tokenizer that can emit ids the embedding table does not have is a setup error, not a crash. */
async function checkVocabulary(modelDir: string, tokenizer: Tokenizer): Promise<void> {
  // config.json's vocab_size, or llama.vocab_size (the token list's length) of a GGUF file.
  const { vocab_size: vocabSize } = await loadLlamaConfig(modelDir);
  if (tokenizer.vocabSize > vocabSize) {
    const model = findModel(modelDir)?.format === 'gguf' ? "the GGUF's" : "config.json's";
    throw new SetupError(
      `${modelDir}: the tokenizer (${tokenizer.source.path}) has ${tokenizer.vocabSize} tokens but ` +
        `${model} vocab_size is ${vocabSize}; the tokenizer does not belong to this model`,
    );
  }
}

export async function loadClassifier(
  config: Config,
  modelDir: string,
  prepared: PreparedExamples,
  device: string = resolveDevice(config),
): Promise<Classifier> {
  return Classifier.load({
    modelDir,
    dora: camelCaseKeys(config.model.dora),
    numLabels: config.model.num_labels,
    device,
    dtype: resolveDtype(config, device),
    gradientCheckpointing: config.model.gradient_checkpointing,
    seed: config.seed,
    padTokenId: prepared.padTokenId,
    sharedAttention: config.model.shared_attention,
  });
}

/**
 * MLflow tracking as logging.mlflow configures it (URI, retry policy, local server: host, port,
 * store and artifacts, relative paths from cwd), with the local server's lock and log files under
 * <cwd>/mlruns. `enabled` defaults to logging.mlflow.enabled; inference
 * and the bench pass true when a model source or --log-mlflow needs MLflow anyway.
 */
export function resolveConfiguredTracking(
  config: Config,
  options: { cwd: string; logger: Logger; env?: NodeJS.ProcessEnv; enabled?: boolean },
): Promise<ResolvedTracking | null> {
  const mlflow = config.logging.mlflow;
  return resolveTracking({
    enabled: options.enabled ?? mlflow.enabled,
    trackingUri: mlflow.tracking_uri,
    workDir: resolve(options.cwd, 'mlruns'),
    logger: options.logger,
    ...(options.env ? { env: options.env } : {}),
    retryPolicy: camelCaseKeys(mlflow.retry),
    cwd: options.cwd,
    localServer: camelCaseKeys(mlflow.local_server),
  });
}
