import type {
  AddonClassifier,
  Batch as AddonBatch,
  CachedRows,
  GradientSyncStats,
  ClassifierGradients,
  ClassifierInfo,
  ClassifierLoadOptions,
  LlamaConfigInput,
  TrainStepOptions,
  TrainStepResult,
} from './addonTypes.js';
import type { HiddenStateCache } from './hiddenStateCache.js';
import { addon } from './loadAddon.js';
import type { ProcessGroup } from './processGroup.js';

/**
 * A batch for Classifier: the addon's Batch, whose hiddenStates (rows read from the frozen-bottom
 * cache) name a HiddenStateCache.
 */
export type Batch = Omit<AddonBatch, 'hiddenStates'> & {
  hiddenStates?: CachedRows<HiddenStateCache>;
};

function toAddon(batch: Batch): AddonBatch {
  if (!batch.hiddenStates) return batch as AddonBatch;
  return {
    ...batch,
    hiddenStates: { ...batch.hiddenStates, cache: batch.hiddenStates.cache.native },
  };
}

/**
 * The tiny Llama createRandom makes unless told otherwise (config.json keys). Only sizes: the
 * addon derives the rest (num_key_value_heads = num_attention_heads, head_dim, labels).
 */
const TINY_LLAMA: LlamaConfigInput = {
  vocab_size: 1000,
  hidden_size: 64,
  intermediate_size: 128,
  num_hidden_layers: 2,
  num_attention_heads: 4,
  max_position_embeddings: 512,
  rms_norm_eps: 1e-6,
  pad_token_id: 0,
  bos_token_id: 1,
  eos_token_id: 2,
  num_labels: 2,
};

/**
 * A Llama sequence classifier with DoRA adapters, trained and run by the native addon. Every
 * computing method runs on a worker thread; one call at a time per instance (a second one
 * rejects with "Classifier is busy with <method>"). Call dispose() to free the native memory.
 */
export class Classifier {
  private constructor(private readonly native: AddonClassifier) {}

  /**
   * Checks the checkpoint (every weight present with the config's shape), loads the base weights
   * and attaches a fresh DoRA adapter (peft's init).
   */
  static async load(options: ClassifierLoadOptions): Promise<Classifier> {
    const native = new (addon().NativeClassifier)();
    await native.load(options);
    return new Classifier(native);
  }

  /**
   * Writes <dir>/config.json (a tiny Llama: TINY_LLAMA's sizes overridden by `config`) and
   * <dir>/model.safetensors with weights drawn as transformers initialises them, from `seed`.
   */
  static async createRandom(config: LlamaConfigInput, dir: string, seed: number): Promise<void> {
    await addon().createRandomModel(dir, { ...TINY_LLAMA, ...config }, seed);
  }

  /** One micro-batch forward/backward and, unless accumulate, one AdamW step. */
  async trainStep(batch: Batch, options: TrainStepOptions): Promise<TrainStepResult> {
    return this.native.trainStep(toAddon(batch), options);
  }

  /** P(label = 1) per example (row, or segment): softmax[:, 1] for 2 labels, sigmoid for 1. */
  async predictProba(batch: Batch): Promise<Float32Array> {
    return this.native.predictProba(toAddon(batch));
  }

  /** Pooled logits, row-major (examples, numLabels): one per row, or per segment. */
  async predictLogits(batch: Batch): Promise<Float32Array> {
    return this.native.predictLogits(toAddon(batch));
  }

  /** Loss and gradients by peft key for one forward/backward, without a step (tests, debugging). */
  async gradients(
    batch: Batch,
    options: { checkpointing?: boolean } = {},
  ): Promise<ClassifierGradients> {
    return this.native.gradients(toAddon(batch), options.checkpointing ?? false);
  }

  /**
   * Computes, in inference mode, the hidden states entering cache's layer for a batch of
   * shared-prefix rows (every segment of each unit) and stores row b as unit units[b].
   */
  async fillHiddenStateCache(
    cache: HiddenStateCache,
    batch: Batch,
    units: Int32Array,
  ): Promise<void> {
    return this.native.fillHiddenStateCache(cache.native, toAddon(batch), units);
  }

  /** peft layout: adapter_config.json + adapter_model.safetensors (+ optimizer.safetensors). */
  async saveAdapter(dir: string): Promise<void> {
    return this.native.saveAdapter(dir);
  }

  /** Reads an adapter saved by saveAdapter or by peft; restores optimizer state when present. */
  async loadAdapter(dir: string): Promise<void> {
    return this.native.loadAdapter(dir);
  }

  /** A fresh adapter (peft's init from `seed`), the initial score head, no optimizer state. */
  async resetAdapter(seed: number): Promise<void> {
    return this.native.resetAdapter(seed);
  }

  /** Drops gradients accumulated since the last optimizer step (out-of-memory retry). */
  async discardGradients(): Promise<void> {
    return this.native.discardGradients();
  }

  /** Folds DoRA into the base weights (W' = m/n (W + sBA)); training is then refused. */
  async merge(): Promise<void> {
    return this.native.merge();
  }

  info(): ClassifierInfo {
    return this.native.info();
  }

  /**
   * Data-parallel training over `group`: the last micro-batch of each step all-reduces the
   * trainable gradients in buckets of `bucketBytes` during its backward, and the step averages
   * over every rank's micro-batches. null: this process alone.
   */
  async setGradientSync(
    group: ProcessGroup | null,
    options: { bucketBytes: number },
  ): Promise<void> {
    return this.native.setGradientSync(
      group?.native ?? null,
      Math.max(1, Math.round(options.bucketBytes)),
    );
  }

  /** A data-parallel optimizer step in which this rank has no micro-batch of its own. */
  async syncStep(options: TrainStepOptions): Promise<TrainStepResult> {
    return this.native.syncStep(options);
  }

  /** How the last data-parallel step's buckets went (null without a gradient sync). */
  gradientSyncStats(): GradientSyncStats | null {
    return this.native.gradientSyncStats();
  }

  /** Frees the native model now, or when a running call ends; later calls reject. */
  dispose(): void {
    this.native.dispose();
  }
}
