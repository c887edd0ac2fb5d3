// The only file that loads the native addon. Everything else imports the typed wrappers below.
import { createRequire } from 'node:module';
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/** Facts about the libtorch the addon runs on. */
export interface NativeInfo {
  torchVersion: string;
  cudaAvailable: boolean;
  cudaDeviceCount: number;
  threads: number;
  builtWithCuda: boolean;
  /** The caching allocator for large CPU tensors (native/cpu_allocator.h). */
  cpuCache: CpuCacheStats;
}

export interface CpuCacheStats {
  /** false when MENTALLAM_CPU_CACHE=0 kept libtorch's default allocator. */
  enabled: boolean;
  liveBytes: number;
  cachedBytes: number;
  peakLiveBytes: number;
  /** Large allocations served from the cache / mapped afresh. */
  hits: number;
  misses: number;
}

/** The raw binding as addon.cc exports it. Not exported: use the wrappers. */
interface AddonBinding {
  info(): NativeInfo;
  setNumThreads(threads: number): void;
  checkDevice(device: string): string;
  matmul(
    a: Float32Array,
    m: number,
    k: number,
    b: Float32Array,
    k2: number,
    n: number,
  ): Promise<Float32Array>;
}

// src/native.ts and dist/native.js both sit one level below the package root.
const packageRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..');

let binding: AddonBinding | undefined;

/** Loads the addon once; a clear error when it has not been built. */
export function addon(): AddonBinding {
  if (binding) return binding;
  const path = join(packageRoot, 'build', 'Release', 'mentallam.node');
  if (!existsSync(path)) {
    throw new Error(`the native addon is not built (${path} is missing): run npm run build:native`);
  }
  const require = createRequire(import.meta.url);
  binding = require(path) as AddonBinding;
  return binding;
}

export function nativeInfo(): NativeInfo {
  return addon().info();
}

/** Sets libtorch's intra-op thread count; call once at start-up, not per step. */
export function setNumThreads(threads: number): void {
  addon().setNumThreads(threads);
}

/** Returns the canonical device name, or throws when the device cannot be used here. */
export function checkDevice(device: string): string {
  return addon().checkDevice(device);
}

/** Row-major [m,k] x [k2,n] product on a worker thread; rejects on a shape mismatch. */
export function matmul(
  a: Float32Array,
  m: number,
  k: number,
  b: Float32Array,
  k2: number,
  n: number,
): Promise<Float32Array> {
  return addon().matmul(a, m, k, b, k2, n);
}

// ---------------------------------------------------------------------------------------------
// Checkpoint I/O (native/safetensors.h, native/model_config.h). The binding's methods are
// declared by interface merging so this section stays separate from the rest of the file.
// ---------------------------------------------------------------------------------------------

/** safetensors dtype names as they appear in a file header. */
export type SafetensorsDtype = string;

/** One tensor of a safetensors header; begin/end are byte offsets in the file's data section. */
export interface SafetensorsEntry {
  name: string;
  dtype: SafetensorsDtype;
  shape: number[];
  file: string;
  begin: number;
  end: number;
}

/** A tensor read as float32, whatever its dtype on disk. */
export interface SafetensorsTensor {
  shape: number[];
  dtype: SafetensorsDtype;
  data: Float32Array;
}

/** A tensor to write: float32 data, stored as `dtype` (F32 unless given). */
export interface SafetensorsTensorInput {
  name: string;
  shape: number[];
  data: Float32Array;
  dtype?: 'F32' | 'BF16' | 'F16';
}

/** RoPE variant; the factors only matter for the types that use them. */
export interface RopeScaling {
  type: 'default' | 'linear' | 'llama3';
  factor: number;
  lowFreqFactor: number;
  highFreqFactor: number;
  originalMaxPositionEmbeddings: number;
}

/** config.json of a Llama checkpoint after transformers' defaults are applied. */
export interface LlamaConfig {
  hiddenSize: number;
  intermediateSize: number;
  numHiddenLayers: number;
  numAttentionHeads: number;
  numKeyValueHeads: number;
  headDim: number;
  vocabSize: number;
  maxPositionEmbeddings: number;
  rmsNormEps: number;
  ropeTheta: number;
  ropeScaling: RopeScaling;
  padTokenId: number | null;
  bosTokenId: number | null;
  eosTokenId: number | null;
  numLabels: number;
  id2label: string[];
  attentionBias: boolean;
  mlpBias: boolean;
  tieWordEmbeddings: boolean;
  torchDtype: string;
  hiddenAct: string;
  initializerRange: number;
  attentionDropout: number;
  problemType: string | null;
}

interface AddonBinding {
  inspectSafetensors(pathOrDir: string): Promise<SafetensorsEntry[]>;
  readSafetensorsTensor(pathOrDir: string, name: string): Promise<SafetensorsTensor>;
  writeSafetensors(
    path: string,
    tensors: SafetensorsTensorInput[],
    metadata?: Record<string, string>,
  ): Promise<void>;
  loadLlamaConfig(dir: string): Promise<LlamaConfig>;
  checkLlamaCheckpoint(dir: string): Promise<CheckpointCheck>;
  writeLlamaConfig(path: string, config: Partial<LlamaConfig>): Promise<void>;
}

/** What checkLlamaCheckpoint found: shapes checked, whether a score head exists, unused keys. */
export interface CheckpointCheck {
  checked: number;
  hasScore: boolean;
  ignored: string[];
}

/**
 * Validates a .safetensors file, or a model directory (model.safetensors or an index with
 * shards), and lists its tensors sorted by name. Rejects with the file and the problem.
 */
export function inspectSafetensors(pathOrDir: string): Promise<SafetensorsEntry[]> {
  return addon().inspectSafetensors(pathOrDir);
}

/** Reads one tensor converted to float32; rejects when the file is bad or the name missing. */
export function readSafetensorsTensor(pathOrDir: string, name: string): Promise<SafetensorsTensor> {
  return addon().readSafetensorsTensor(pathOrDir, name);
}

/** Writes a .safetensors file atomically (temp file + rename). The arrays are copied at call. */
export function writeSafetensors(
  path: string,
  tensors: SafetensorsTensorInput[],
  metadata?: Record<string, string>,
): Promise<void> {
  return addon().writeSafetensors(path, tensors, metadata);
}

/**
 * Parses <dir>/config.json (or a .json path) with transformers' LlamaConfig defaults; for a GGUF
 * model, maps its llama.* metadata as transformers' GGUF loader does.
 */
export function loadLlamaConfig(dir: string): Promise<LlamaConfig> {
  return addon().loadLlamaConfig(dir);
}

/**
 * Checks a model directory before loading it: config.json parses, every base weight is present
 * with the shape the config implies (headers only). A CausalLM checkpoint has hasScore false.
 */
export function checkLlamaCheckpoint(dir: string): Promise<CheckpointCheck> {
  return addon().checkLlamaCheckpoint(dir);
}

/**
 * Writes a transformers-loadable config.json (LlamaForSequenceClassification) atomically. Absent
 * keys take LlamaConfig's defaults; headDim defaults to hiddenSize / numAttentionHeads.
 */
export function writeLlamaConfig(path: string, config: Partial<LlamaConfig>): Promise<void> {
  return addon().writeLlamaConfig(path, config);
}

// ---------------------------------------------------------------------------------------------
// Classifier (native/classifier.h, llama.h, dora.h, checkpointing.h, train_step.h,
// adapter_io.h): the Llama sequence classifier with DoRA adapters.
// ---------------------------------------------------------------------------------------------

/** DoRA settings, as peft's LoraConfig(use_dora=True) names them. */
export interface DoraOptions {
  r: number;
  alpha: number;
  dropout: number;
  /** Module names matched as peft does (equal, or ending in "." + name), e.g. "q_proj". */
  targetModules: string[];
  useRslora: boolean;
}

export interface ClassifierLoadOptions {
  /**
   * A Hugging Face Llama checkpoint directory (config.json + safetensors), a .gguf file, or a
   * directory holding exactly one .gguf and no config.json (dequantized at load).
   */
  modelDir: string;
  dora: DoraOptions;
  /** Overrides config.json; 1 = one logit (BCE), 2 = two logits (cross entropy). */
  numLabels?: number;
  /** "cpu" (default), "cuda", "cuda:N". */
  device?: string;
  /** Base weight dtype: "float32" | "bfloat16" | "float16"; default bf16 on CUDA, fp32 on CPU. */
  dtype?: string;
  gradientCheckpointing?: boolean;
  /** Seeds the adapter initialisation (and a fresh score head). */
  seed: number;
  /** Overrides config.json's pad_token_id; pooling uses it (rightmost non-pad token). */
  padTokenId?: number;
}

/** A micro-batch: row-major (batchSize, seqLen) ids and mask; labels 0/1 per row. */
export interface Batch {
  inputIds: Int32Array;
  attentionMask: Uint8Array;
  labels?: Float32Array | Int32Array;
  batchSize: number;
  seqLen: number;
}

export interface TrainStepOptions {
  lr: number;
  /** AdamW decoupled weight decay on matrices (A, B, score); never on magnitudes. Default 0. */
  weightDecay?: number;
  /** Clip the global gradient norm to this (0 or absent: no clipping). */
  maxGradNorm?: number;
  /** true: backward only; gradients add up until a call with accumulate false steps. */
  accumulate?: boolean;
  /** BCE pos_weight (numLabels 1) or class weights [1, posWeight] (numLabels 2). */
  posWeight?: number;
  /** AdamW betas; default [0.9, 0.999] as torch.optim.AdamW. */
  adamBetas?: [number, number];
  /** AdamW eps; default 1e-8 as torch.optim.AdamW. */
  adamEps?: number;
}

export interface TrainStepResult {
  loss: number;
  /** Global gradient norm before clipping (mean over the accumulated micro-batches); NaN for accumulate-only calls. */
  gradNorm: number;
}

export interface ClassifierInfo {
  numLayers: number;
  hiddenSize: number;
  numLabels: number;
  vocabSize: number;
  padTokenId: number | null;
  device: string;
  dtype: string;
  baseParameters: number;
  trainableParameters: number;
  optimizerStep: number;
  accumulatedMicroBatches: number;
  merged: boolean;
  gradientCheckpointing: boolean;
  parameterBytes: number;
  dora: DoraOptions;
}

/** Gradients by peft key after one forward/backward (for tests and debugging). */
export interface ClassifierGradients {
  loss: number;
  grads: Record<string, Float32Array>;
}

/** The NativeClassifier object addon.cc defines. */
interface NativeClassifierBinding {
  load(options: ClassifierLoadOptions): Promise<void>;
  trainStep(batch: Batch, options: TrainStepOptions): Promise<TrainStepResult>;
  predictLogits(batch: Batch): Promise<Float32Array>;
  predictProba(batch: Batch): Promise<Float32Array>;
  gradients(batch: Batch, checkpointing: boolean): Promise<ClassifierGradients>;
  saveAdapter(dir: string): Promise<void>;
  loadAdapter(dir: string): Promise<void>;
  resetAdapter(seed: number): Promise<void>;
  discardGradients(): Promise<void>;
  merge(): Promise<void>;
  info(): ClassifierInfo;
  dispose(): void;
}

interface AddonBinding {
  NativeClassifier: new () => NativeClassifierBinding;
  createRandomWeights(dir: string, seed: number): Promise<void>;
  manualSeed(seed: number): void;
}

/** Keys of a Hugging Face Llama config.json (snake_case), for createRandom. */
export type HfLlamaConfig = Record<string, unknown>;

/** A tiny Llama: the defaults createRandom fills in. */
const TINY_LLAMA_CONFIG: HfLlamaConfig = {
  architectures: ['LlamaForSequenceClassification'],
  model_type: 'llama',
  vocab_size: 1000,
  hidden_size: 64,
  intermediate_size: 128,
  num_hidden_layers: 2,
  num_attention_heads: 4,
  num_key_value_heads: 4,
  max_position_embeddings: 512,
  rms_norm_eps: 1e-6,
  rope_theta: 10000.0,
  hidden_act: 'silu',
  initializer_range: 0.02,
  attention_bias: false,
  mlp_bias: false,
  tie_word_embeddings: false,
  pad_token_id: 0,
  bos_token_id: 1,
  eos_token_id: 2,
  num_labels: 2,
  torch_dtype: 'float32',
};

/**
 * A Llama sequence classifier with DoRA adapters, trained and run by the native addon. Every
 * computing method runs on a worker thread; one call at a time per instance (a second one
 * rejects with "Classifier is busy with <method>"). Call dispose() to free the native memory.
 */
export class Classifier {
  private constructor(private readonly native: NativeClassifierBinding) {}

  /** Loads base weights from an HF checkpoint and attaches a fresh DoRA adapter (peft's init). */
  static async load(options: ClassifierLoadOptions): Promise<Classifier> {
    const native = new (addon().NativeClassifier)();
    await native.load(options);
    return new Classifier(native);
  }

  /**
   * Writes <dir>/config.json (a tiny Llama: TINY defaults overridden by `config`) and
   * <dir>/model.safetensors with weights drawn as transformers initialises them, from `seed`.
   */
  static async createRandom(
    config: Partial<HfLlamaConfig>,
    dir: string,
    seed: number,
  ): Promise<void> {
    const { mkdir, writeFile, rename } = await import('node:fs/promises');
    await mkdir(dir, { recursive: true });
    const merged: HfLlamaConfig = { ...TINY_LLAMA_CONFIG, ...config };
    if (config.num_attention_heads !== undefined && config.num_key_value_heads === undefined) {
      merged.num_key_value_heads = config.num_attention_heads;
    }
    const path = join(dir, 'config.json');
    await writeFile(`${path}.tmp`, `${JSON.stringify(merged, null, 2)}\n`);
    await rename(`${path}.tmp`, path);
    await addon().createRandomWeights(dir, seed);
  }

  /** One micro-batch forward/backward and, unless accumulate, one AdamW step. */
  async trainStep(batch: Batch, options: TrainStepOptions): Promise<TrainStepResult> {
    return this.native.trainStep(batch, options);
  }

  /** P(label = 1) per row: softmax[:, 1] for 2 labels, sigmoid for 1. */
  async predictProba(batch: Batch): Promise<Float32Array> {
    return this.native.predictProba(batch);
  }

  /** Pooled logits, row-major (batchSize, numLabels). */
  async predictLogits(batch: Batch): Promise<Float32Array> {
    return this.native.predictLogits(batch);
  }

  /** Loss and gradients by peft key for one forward/backward, without a step (tests, debugging). */
  async gradients(
    batch: Batch,
    options: { checkpointing?: boolean } = {},
  ): Promise<ClassifierGradients> {
    return this.native.gradients(batch, options.checkpointing ?? false);
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

  /** Frees the native model now, or when a running call ends; later calls reject. */
  dispose(): void {
    this.native.dispose();
  }
}

/** Seeds libtorch's global generators (dropout masks). */
export function manualSeed(seed: number): void {
  addon().manualSeed(seed);
}

// ---------------------------------------------------------------------------------------------
// GGUF files (native/gguf.h, native/addon_gguf.cc): header, metadata and tensor infos, and
// single tensors dequantized to float32. Models load through Classifier.load({ modelDir }).
// ---------------------------------------------------------------------------------------------

/**
 * A GGUF metadata value. Integers and floats are numbers (a 64-bit integer beyond 2^53 is a
 * bigint); arrays of numbers are typed arrays of the stored width (tokenizer.ggml.scores is a
 * Float32Array, token_type an Int32Array); arrays of strings and bools are plain arrays; an
 * array of arrays holds GgufValue arrays.
 */
export type GgufValue =
  | number
  | bigint
  | boolean
  | string
  | Uint8Array
  | Int8Array
  | Uint16Array
  | Int16Array
  | Uint32Array
  | Int32Array
  | Float32Array
  | Float64Array
  | BigUint64Array
  | BigInt64Array
  | boolean[]
  | string[]
  | GgufValue[];

/** One tensor info of a GGUF header. */
export interface GgufTensorInfo {
  /** As in the file: "blk.0.attn_q.weight". */
  name: string;
  /** The Hugging Face Llama name ("model.layers.0.self_attn.q_proj.weight"), null if none. */
  hfName: string | null;
  /** ggml type: "F32", "F16", "BF16", "Q8_0", "Q4_0", "Q4_1", "Q4_K", "Q6_K", ... */
  type: string;
  /** Row-major (torch) order: the file's dimensions reversed. */
  shape: number[];
  /** Bytes from the start of the data section. */
  offset: number;
  nbytes: number;
}

/** What inspectGguf read: the whole file is validated before this is returned. */
export interface GgufInspection {
  version: number;
  alignment: number;
  /** Byte offset of the data section in the file. */
  dataOffset: number;
  /** Every key of the file, in file order. */
  metadata: Record<string, GgufValue>;
  tensors: GgufTensorInfo[];
}

/** A GGUF tensor dequantized to float32. */
export interface GgufTensor {
  /** The GGUF name. */
  name: string;
  type: string;
  shape: number[];
  data: Float32Array;
}

interface AddonBinding {
  inspectGguf(path: string): Promise<GgufInspection>;
  readGgufTensor(path: string, name: string): Promise<GgufTensor>;
}

/**
 * Validates a GGUF file (v2/v3) and returns its header, metadata and tensor infos. Rejects with
 * the file and the problem (bad magic, unsupported version, truncation, lengths beyond the file,
 * unknown types, misaligned or out-of-file tensor data).
 */
export function inspectGguf(path: string): Promise<GgufInspection> {
  return addon().inspectGguf(path);
}

/**
 * Reads one tensor as float32, dequantized as ggml does. A GGUF name ("blk.0.attn_q.weight")
 * gives the tensor as stored; a Hugging Face name ("model.layers.0.self_attn.q_proj.weight")
 * gives it as the model loads it (q/k rows un-permuted from llama.cpp's RoPE layout).
 */
export function readGgufTensor(path: string, name: string): Promise<GgufTensor> {
  return addon().readGgufTensor(path, name);
}
