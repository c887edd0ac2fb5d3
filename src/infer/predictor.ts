// Scores (post, criterion) pairs with a resolved model: prompt -> token ids exactly as training
// built them -> length-sorted batches -> P(yes), averaged over the fold adapters of an ensemble.
import type { Config } from '../config/index.js';
import { openTokenizer, type Criterion, type Tokenizer } from '../data/index.js';
import type { Logger } from '../infra/index.js';
import {
  collateBatch,
  collateSharedBatch,
  encodePost,
  encodePrompt,
  packExamples,
  resolveDevice,
  resolveDtype,
  sharesPrefix,
  tokenizerOptions,
  type ModelBatch,
  type TokenizedExamples,
} from '../engine/index.js';
import { LatencyRecorder } from './latency.js';
import type { AdapterSettings, ResolvedModel } from './model.js';

/** What inference needs from the native Classifier. */
export interface InferenceModel {
  predictProba(batch: ModelBatch): Promise<Float32Array>;
  loadAdapter(dir: string): Promise<void>;
  merge(): unknown;
  dispose(): void;
}

export interface LoadModelSpec {
  modelDir: string;
  dora: {
    r: number;
    alpha: number;
    dropout: number;
    targetModules: string[];
    useRslora: boolean;
  };
  numLabels: 1 | 2;
  device: string;
  dtype: string;
  seed: number;
  padTokenId: number;
}

/** Builds a model (base weights + freshly initialised DoRA adapters); injectable for tests. */
export type ModelLoader = (spec: LoadModelSpec) => Promise<InferenceModel>;

interface NativeClassifierStatic {
  load(options: LoadModelSpec & { gradientCheckpointing?: boolean }): Promise<InferenceModel>;
}

interface NativeModule {
  Classifier?: NativeClassifierStatic;
  nativeInfo(): { cudaAvailable: boolean };
}

async function nativeModule(): Promise<NativeModule> {
  // Imported lazily so that everything else here (and its tests) works without the addon.
  return (await import('../native.js')) as unknown as NativeModule;
}

/** The native Classifier as an InferenceModel. */
export const loadNativeModel: ModelLoader = async (spec) => {
  const native = await nativeModule();
  if (!native.Classifier) throw new Error('the native Classifier is not available in this build');
  return native.Classifier.load({ ...spec, gradientCheckpointing: false });
};

/** 'auto' resolved exactly as training resolves it (the engine's set-up). */
export async function resolveDeviceAndDtype(
  config: Config,
): Promise<{ device: string; dtype: string }> {
  const device = resolveDevice(config);
  return { device, dtype: resolveDtype(config, device) };
}

/**
 * A pair's token ids, built the way training's prepareExamples builds them (prompt with the post
 * truncated to the budget, encoded with BOS, capped at max_length), so scores match training's.
 */
export async function encodePair(
  tokenizer: Tokenizer,
  prompt: Config['data']['prompt'],
  post: string,
  criterion: Criterion,
): Promise<number[]> {
  return (await encodePrompt(tokenizer, prompt, post, criterion)).ids;
}

/** A post's sequences for some criteria; with a shared part, its length (else 0). */
export interface EncodedPostPairs {
  ids: number[][];
  prefixLength: number;
}

export interface PredictorOptions {
  resolved: ResolvedModel;
  /** The effective config: the training run's for prompt and padding, the current one otherwise. */
  config: Config;
  batchSize: number;
  loadModel?: ModelLoader;
  logger?: Logger;
  /** Milliseconds clock for the per-batch latency figures. */
  now?: () => number;
  /**
   * Every criterion of the task. With a shared-prefix prompt the post's budget depends on the
   * longest criterion suffix, so a post is encoded against all of them, as in training, whatever
   * criteria are asked for; without them, against the asked ones only.
   */
  criteria?: readonly Criterion[];
}

function loadSpec(
  config: Config,
  modelDir: string,
  settings: AdapterSettings,
  padTokenId: number,
  device: { device: string; dtype: string },
): LoadModelSpec {
  return {
    modelDir,
    dora: {
      r: settings.r,
      alpha: settings.alpha,
      dropout: settings.dropout,
      targetModules: settings.targetModules,
      useRslora: settings.useRslora,
    },
    numLabels: config.model.num_labels,
    device: device.device,
    dtype: device.dtype,
    seed: config.seed,
    padTokenId,
  };
}

/**
 * A loaded model ready to score pairs. One adapter: loaded and merged into the base weights once
 * (no adapter cost per token). An ensemble: one base model whose unmerged adapter is swapped per
 * chunk, since merging is one-way and one base copy per fold would multiply memory (5 x 13 GB for
 * a 7B model in bf16).
 */
export class Predictor {
  readonly tokenizer: Tokenizer;
  /** Model-call latency, in bounded memory however many batches run. */
  readonly latency = new LatencyRecorder();
  /** Index of the adapter in the model's weights; -1 = none yet (ensemble before the first chunk). */
  private loadedAdapter: number;
  private constructor(
    private readonly model: InferenceModel,
    private readonly resolved: ResolvedModel,
    private readonly config: Config,
    private readonly batchSize: number,
    tokenizer: Tokenizer,
    private readonly now: () => number,
    private readonly criteria: readonly Criterion[],
  ) {
    this.tokenizer = tokenizer;
    this.loadedAdapter = resolved.adapters.length === 1 ? 0 : -1;
  }

  static async open(options: PredictorOptions): Promise<Predictor> {
    const { resolved, config } = options;
    const tokenizer = await openTokenizer(resolved.baseModelDir, tokenizerOptions(config));
    const loadModel = options.loadModel ?? loadNativeModel;
    const device = options.loadModel
      ? { device: config.model.device === 'auto' ? 'cpu' : config.model.device, dtype: 'float32' }
      : await resolveDeviceAndDtype(config);
    const first = resolved.adapters[0];
    if (!first) throw new Error('no adapter to load');
    const model = await loadModel(
      loadSpec(config, resolved.baseModelDir, first.settings, tokenizer.padTokenId, device),
    );
    try {
      if (resolved.adapters.length === 1) {
        await model.loadAdapter(first.dir);
        await model.merge();
      }
    } catch (error) {
      model.dispose();
      throw error;
    }
    options.logger?.info('model ready', {
      base: resolved.baseModelDir,
      adapters: resolved.adapters.length,
      merged: resolved.adapters.length === 1,
      device: device.device,
      dtype: device.dtype,
    });
    return new Predictor(
      model,
      resolved,
      config,
      options.batchSize,
      tokenizer,
      options.now ?? (() => performance.now()),
      options.criteria ?? [],
    );
  }

  /** Whether posts are encoded (and batched) with a shared part, as the model was trained. */
  get sharesPrefix(): boolean {
    return sharesPrefix(this.config.data.prompt);
  }

  async encode(post: string, criterion: Criterion): Promise<number[]> {
    return (await this.encodePost(post, [criterion])).ids[0]!;
  }

  /**
   * A post against some criteria, encoded exactly as training encoded it: with a shared-prefix
   * prompt, once against every criterion (one budget per post) and the asked ones picked out.
   */
  async encodePost(post: string, criteria: readonly Criterion[]): Promise<EncodedPostPairs> {
    const prompt = this.config.data.prompt;
    if (!this.sharesPrefix) {
      const ids: number[][] = [];
      for (const criterion of criteria) {
        ids.push(await encodePair(this.tokenizer, prompt, post, criterion));
      }
      return { ids, prefixLength: 0 };
    }
    const all = [...this.criteria];
    for (const criterion of criteria) {
      if (!all.some((c) => c.id === criterion.id)) all.push(criterion);
    }
    const encoded = await encodePost(this.tokenizer, prompt, post, all);
    return {
      ids: criteria.map((criterion) => encoded.ids[all.findIndex((c) => c.id === criterion.id)]!),
      prefixLength: encoded.prefixLength,
    };
  }

  /**
   * P(yes) per sequence, in the given order; the mean over adapters for an ensemble. With
   * `posts` (one entry per sequence, sequences of a post consecutive) and `prefixLengths` from
   * encodePost, a post's sequences run as one shared-prefix row.
   */
  async predict(
    sequences: readonly number[][],
    shared?: { posts: readonly number[]; prefixLengths: readonly number[] },
  ): Promise<Float32Array> {
    const out = new Float32Array(sequences.length);
    if (sequences.length === 0) return out;
    const examples: TokenizedExamples = packExamples(sequences as number[][]);
    if (shared && this.sharesPrefix) {
      examples.posts = Int32Array.from(shared.posts);
      examples.prefixLengths = Int32Array.from(shared.prefixLengths);
    }
    const batches = this.batches(examples, sequences);
    const adapters = this.resolved.adapters;
    const perAdapter = adapters.map(() => new Float32Array(sequences.length));
    // Start with the adapter already in place (saves one load per chunk); sum in a fixed order
    // below so the result does not depend on which adapter that was.
    const visit = adapters.map(
      (_, i) => (i + this.loadedAdapter + adapters.length) % adapters.length,
    );
    for (const a of visit) {
      if (adapters.length > 1 && a !== this.loadedAdapter) {
        await this.model.loadAdapter(adapters[a]!.dir);
        this.loadedAdapter = a;
      }
      const scores = perAdapter[a]!;
      for (const indices of batches) {
        const batch: ModelBatch = examples.posts
          ? collateSharedBatch(examples, indices, { padTokenId: this.tokenizer.padTokenId })
          : collateBatch(examples, indices, {
              padTokenId: this.tokenizer.padTokenId,
              paddingSide: this.config.model.padding_side,
            });
        const began = this.now();
        const probabilities = await this.model.predictProba(batch);
        this.latency.add({ ms: this.now() - began, pairs: indices.length, seqLen: batch.seqLen });
        if (probabilities.length !== indices.length) {
          throw new Error(
            `the model returned ${probabilities.length} scores for ${indices.length} rows`,
          );
        }
        indices.forEach((index, row) => {
          scores[index] = probabilities[row]!;
        });
      }
    }
    for (let i = 0; i < out.length; i++) {
      let sum = 0;
      for (const scores of perAdapter) sum += scores[i]!;
      out[i] = sum / adapters.length;
    }
    return out;
  }

  /**
   * Length-sorted (stable) batches: little padding, and the same input always batches the same.
   * Shared-prefix examples: whole posts, sorted by packed length, about batchSize pairs each.
   */
  private batches(examples: TokenizedExamples, sequences: readonly number[][]): number[][] {
    const batches: number[][] = [];
    if (!examples.posts) {
      const order = sequences
        .map((_, i) => i)
        .sort((a, b) => sequences[a]!.length - sequences[b]!.length);
      for (let start = 0; start < order.length; start += this.batchSize) {
        batches.push(order.slice(start, start + this.batchSize));
      }
      return batches;
    }
    const runs: number[][] = [];
    examples.posts.forEach((post, i) => {
      const last = runs[runs.length - 1];
      if (last && examples.posts![last[0]!] === post) last.push(i);
      else runs.push([i]);
    });
    const prefix = (run: number[]) => examples.prefixLengths![run[0]!]!;
    const length = (run: number[]) =>
      run.reduce((sum, i) => sum + sequences[i]!.length - prefix(run), prefix(run));
    runs.sort((a, b) => length(a) - length(b) || a[0]! - b[0]!);
    const perPost = Math.max(...runs.map((run) => run.length));
    const postsPerBatch = Math.max(1, Math.round(this.batchSize / perPost));
    for (let start = 0; start < runs.length; start += postsPerBatch) {
      batches.push(runs.slice(start, start + postsPerBatch).flat());
    }
    return batches;
  }

  close(): void {
    this.model.dispose();
  }
}
