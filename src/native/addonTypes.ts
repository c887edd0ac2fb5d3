/**
 * The native addon's contract, declared once: every export of build/Release/mentallam.node with
 * its argument and result types, one interface per binding file of native/ (addon.h). The
 * wrappers in this folder are typed against it; nothing outside src/native/ sees the binding.
 */

// ---------------------------------------------------------------------------------------------
// Errors (native/errors.h)
// ---------------------------------------------------------------------------------------------

/** The `code` every error from the addon carries. */
export const NATIVE_ERROR_CODES = [
  /** libtorch / the CPU allocator ran out of memory (CPU or GPU); a smaller batch may fit. */
  'ERR_NATIVE_OOM',
  /** Bad input: an argument, an option, a file (config.json, safetensors, an adapter). */
  'ERR_NATIVE_USER',
  /** The process group failed: a peer rank died, hung or stopped with an error (named). */
  'ERR_NATIVE_DISTRIBUTED',
  /** Anything else: a libtorch check that should not fail, a bug. */
  'ERR_NATIVE_INTERNAL',
] as const;

export type NativeErrorCode = (typeof NATIVE_ERROR_CODES)[number];

/**
 * An error from the addon: Error, or TypeError / RangeError for an argument of the wrong type or
 * out of range (those have code ERR_NATIVE_USER). The message is one line.
 */
export interface NativeError extends Error {
  code: NativeErrorCode;
}

// ---------------------------------------------------------------------------------------------
// Runtime (native/addon_runtime.cc)
// ---------------------------------------------------------------------------------------------

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

export interface RuntimeBinding {
  info(): NativeInfo;
  setNumThreads(threads: number): void;
  checkDevice(device: string): string;
  manualSeed(seed: number): void;
}

// ---------------------------------------------------------------------------------------------
// CUDA memory (native/addon_cuda.cc; a CUDA build only, `cuda` is undefined on a CPU build)
// ---------------------------------------------------------------------------------------------

/** The CUDA caching allocator's figures for one device, in bytes (torch.cuda.memory_stats()). */
export interface CudaMemoryStats {
  device: number;
  /** Held by live tensors now / at the peak since the last resetPeakMemoryStats. */
  allocated: number;
  maxAllocated: number;
  /** Held by the allocator (live + cached blocks) now / at the peak. */
  reserved: number;
  maxReserved: number;
  /** cudaMalloc failures recovered by freeing the cache, and real out-of-memory errors. */
  allocRetries: number;
  ooms: number;
  /** The device as the driver sees it (cudaMemGetInfo). */
  free: number;
  total: number;
  /** The allocator's cap (testing.cudaSetMemoryFraction); 1 when none. */
  memoryFraction: number;
}

export interface CudaBinding {
  memoryStats(device?: number): CudaMemoryStats;
  resetPeakMemoryStats(device?: number): void;
  /** Returns cached blocks no tensor uses to the driver (torch.cuda.empty_cache()). */
  emptyCache(): void;
  /** Waits for the device's queued kernels. */
  synchronize(device?: number): void;
}

// ---------------------------------------------------------------------------------------------
// Checkpoint I/O (native/addon_checkpoint_io.cc)
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

/** RoPE scaling as config.json spells it; null in LlamaConfig means none ("default"). */
export interface RopeScaling {
  rope_type: 'linear' | 'llama3';
  factor: number;
  /** llama3 only. */
  low_freq_factor?: number;
  high_freq_factor?: number;
  original_max_position_embeddings?: number;
}

/**
 * A Llama config.json as the addon reads and writes it: transformers' keys, with every default
 * and derived value filled in (head_dim, num_key_value_heads, id2label). native/model_config.h
 * owns the keys and the defaults; this type mirrors its to_json. (A type, not an interface, so
 * that a loaded config is also a LlamaConfigInput.)
 */
export type LlamaConfig = {
  architectures: string[];
  model_type: 'llama';
  hidden_size: number;
  intermediate_size: number;
  num_hidden_layers: number;
  num_attention_heads: number;
  num_key_value_heads: number;
  head_dim: number;
  vocab_size: number;
  max_position_embeddings: number;
  rms_norm_eps: number;
  rope_theta: number;
  rope_scaling: RopeScaling | null;
  hidden_act: string;
  initializer_range: number;
  attention_dropout: number;
  attention_bias: boolean;
  mlp_bias: boolean;
  tie_word_embeddings: boolean;
  pretraining_tp: number;
  pad_token_id: number | null;
  bos_token_id: number | null;
  eos_token_id: number | null;
  /** Label names by index: {"0": "LABEL_0", "1": "LABEL_1"}. */
  id2label: Record<string, string>;
  label2id: Record<string, number>;
  torch_dtype: string;
  problem_type?: string;
};

/**
 * What writeLlamaConfig and Classifier.createRandom accept: any config.json keys (either
 * transformers spelling, e.g. rope_parameters or num_labels); absent ones take transformers'
 * defaults, as when transformers loads the file.
 */
export type LlamaConfigInput = Partial<LlamaConfig> & { [key: string]: unknown };

/** What checkLlamaCheckpoint found: shapes checked, whether a score head exists, unused keys. */
export interface CheckpointCheck {
  checked: number;
  hasScore: boolean;
  ignored: string[];
}

export interface CheckpointIoBinding {
  inspectSafetensors(pathOrDir: string): Promise<SafetensorsEntry[]>;
  readSafetensorsTensor(pathOrDir: string, name: string): Promise<SafetensorsTensor>;
  writeSafetensors(
    path: string,
    tensors: SafetensorsTensorInput[],
    metadata?: Record<string, string>,
  ): Promise<void>;
  loadLlamaConfig(dir: string): Promise<LlamaConfig>;
  writeLlamaConfig(path: string, config: LlamaConfigInput): Promise<void>;
  checkLlamaCheckpoint(dir: string): Promise<CheckpointCheck>;
  createRandomModel(dir: string, config: LlamaConfigInput, seed: number): Promise<void>;
}

// ---------------------------------------------------------------------------------------------
// Classifier (native/addon_classifier.cc)
// ---------------------------------------------------------------------------------------------

/**
 * The decoder layers that get adapters (peft's layers_to_transform): null or absent = every
 * layer, a list of layer indices, or { top: K } = the K layers nearest the output.
 */
export type DoraLayers = readonly number[] | { top: number } | null;

/** DoRA settings, as peft's LoraConfig(use_dora=True) names them. */
export interface DoraOptions {
  r: number;
  alpha: number;
  dropout: number;
  /** Module names matched as peft does (equal, or ending in "." + name), e.g. "q_proj". */
  targetModules: string[];
  useRslora: boolean;
  /** Saved as layers_to_transform (with layers_pattern "layers") in adapter_config.json. */
  layers?: DoraLayers;
}

/** The DoRA settings in effect: `layers` resolved to the adapted layer indices (null = all). */
export interface ResolvedDoraOptions extends DoraOptions {
  layers: number[] | null;
}

export interface ClassifierLoadOptions {
  /** A Hugging Face Llama checkpoint directory (config.json + safetensors). */
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
  /** How shared-prefix rows attend (see SharedAttention); default "block_mask". */
  sharedAttention?: SharedAttention;
}

/**
 * How the addon attends shared-prefix rows (both exact): "block_mask" runs one attention call
 * over each packed row with a block mask; "prefix_kv" attends the shared parts once and each
 * segment as its own query row over its post's prefix keys/values plus its own, so no score
 * between two segments is computed.
 */
export type SharedAttention = 'block_mask' | 'prefix_kv';

/**
 * Shared-prefix rows: row b holds a shared part of prefixLengths[b] tokens, then
 * segmentCounts[b] segments (segmentLengths, row after row), then right padding. Each segment
 * token attends to its row's shared part and causally to its own segment only, with position ids
 * continuing after the shared part; each segment is pooled at its last (non-pad) token. So a
 * segment's logits equal those of the separate sequence shared part + segment, and gradients
 * reach the shared part from every segment. The attention mask must be 1 on exactly each row's
 * prefix + segment columns.
 */
export interface SegmentLayout {
  prefixLengths: Int32Array;
  segmentCounts: Int32Array;
  segmentLengths: Int32Array;
}

/**
 * A micro-batch: row-major (batchSize, seqLen) ids and mask; labels 0/1 per example. An example
 * is a row, or with `segments` a segment (labels, logits and probabilities then have one entry
 * per segment, in row order).
 */
export interface Batch {
  inputIds: Int32Array;
  attentionMask: Uint8Array;
  labels?: Float32Array | Int32Array;
  batchSize: number;
  seqLen: number;
  segments?: SegmentLayout;
  /**
   * With `segments`: the rows' hidden states entering the cache's layer are read from a
   * frozen-bottom cache instead of being computed from inputIds (which still decide pooling).
   */
  hiddenStates?: CachedRows<AddonHiddenStateCache>;
}

/**
 * Where a batch's rows are in a HiddenStateCache: row b is unit units[b], and each segment (row
 * after row) is that unit's segment segments[s] (its index among the unit's segments as filled).
 * The layout must match what was filled: same shared-part length, same segment lengths.
 */
export interface CachedRows<Cache> {
  cache: Cache;
  units: Int32Array;
  segments: Int32Array;
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
  sharedAttention: SharedAttention;
  /** The lowest layer with an adapter (numLayers when none): backward never goes below it. */
  firstAdaptedLayer: number;
  parameterBytes: number;
  dora: ResolvedDoraOptions;
}

/** Gradients by peft key after one forward/backward (for tests and debugging). */
export interface ClassifierGradients {
  loss: number;
  grads: Record<string, Float32Array>;
}

/** Data-parallel gradient sync of the last optimizer step (native/gradient_sync.h). */
export interface GradientSyncStats {
  /** Flat buckets the trainable gradients are packed into. */
  buckets: number;
  /** Buckets of the last step whose all-reduce started during backward (the rest after it). */
  startedInBackward: number;
  /** Optimizer steps synced so far. */
  steps: number;
}

/** A NativeClassifier instance. */
export interface AddonClassifier {
  load(options: ClassifierLoadOptions): Promise<void>;
  trainStep(batch: Batch, options: TrainStepOptions): Promise<TrainStepResult>;
  predictLogits(batch: Batch): Promise<Float32Array>;
  predictProba(batch: Batch): Promise<Float32Array>;
  gradients(batch: Batch, checkpointing: boolean): Promise<ClassifierGradients>;
  fillHiddenStateCache(
    cache: AddonHiddenStateCache,
    batch: Batch,
    units: Int32Array,
  ): Promise<void>;
  saveAdapter(dir: string): Promise<void>;
  loadAdapter(dir: string): Promise<void>;
  resetAdapter(seed: number): Promise<void>;
  discardGradients(): Promise<void>;
  merge(): Promise<void>;
  info(): ClassifierInfo;
  dispose(): void;
  /** Data-parallel training over `group` (null: this process alone). */
  setGradientSync(group: AddonProcessGroup | null, bucketBytes: number): Promise<void>;
  /** A data-parallel step in which this rank has no micro-batch (loss is NaN). */
  syncStep(options: TrainStepOptions): Promise<TrainStepResult>;
  gradientSyncStats(): GradientSyncStats | null;
}

export interface ClassifierBinding {
  NativeClassifier: new () => AddonClassifier;
}

// ---------------------------------------------------------------------------------------------
// Hidden-state cache (native/addon_hidden_state_cache.cc)
// ---------------------------------------------------------------------------------------------

export interface HiddenStateCacheOptions {
  /** The states enter this layer (>= 1): the first layer with an adapter. */
  layer: number;
  hiddenSize: number;
  /** The model's dtype: "float32" | "bfloat16" | "float16". */
  dtype: string;
  /** Unit ids are 0..units-1 (a post's shared-prefix row, or one sequence). */
  units: number;
  /** Capacity: the sum of every unit's packed length. */
  tokens: number;
  /** Storage larger than this goes to a memory-mapped file at filePath (unlinked at once). */
  maxMemoryBytes: number;
  filePath?: string;
}

export interface HiddenStateCacheInfo {
  layer: number;
  hiddenSize: number;
  dtype: string;
  units: number;
  tokens: number;
  bytes: number;
  storage: 'memory' | 'file';
  /** The mapped file's path (already unlinked: nothing stays on disk), or null in memory. */
  path: string | null;
  storedUnits: number;
  storedTokens: number;
}

/** A NativeHiddenStateCache instance. */
export interface AddonHiddenStateCache {
  info(): HiddenStateCacheInfo;
  dispose(): void;
}

export interface HiddenStateCacheBinding {
  NativeHiddenStateCache: new (options: HiddenStateCacheOptions) => AddonHiddenStateCache;
}

// ---------------------------------------------------------------------------------------------
// Test-only exports (native/addon_testing.cc), on the module's `testing` object
// ---------------------------------------------------------------------------------------------

export interface TestingBinding {
  /** Row-major [m,k] x [k2,n] product on the compute thread; k != k2 rejects (libtorch). */
  matmul(
    a: Float32Array,
    m: number,
    k: number,
    b: Float32Array,
    k2: number,
    n: number,
  ): Promise<Float32Array>;
  /** Starts libtorch's op profiler on the compute thread (rejects when one is running). */
  startProfiler(options?: { recordShapes?: boolean }): Promise<void>;
  /** Stops it: the CPU ops it saw; with tracePath also a Chrome trace written there. */
  stopProfiler(options?: { tracePath?: string }): Promise<OpEvent[]>;
  /**
   * CUDA builds only: caps the caching allocator at fraction x the device's memory
   * (torch.cuda.set_per_process_memory_fraction), so that a test runs out of memory for real.
   */
  cudaSetMemoryFraction?(fraction: number, device?: number): void;
}

/** One op, autograd node or scope libtorch's profiler recorded (times in microseconds). */
export interface OpEvent {
  name: string;
  startUs: number;
  durationUs: number;
  thread: number;
  /** Input shapes as JSON when recordShapes was set, else ''. */
  shapes: string;
}

/** The whole module as addon.cc exports it. */
// ---------------------------------------------------------------------------------------------
// GGUF files (native/addon_gguf.cc): header, metadata and tensor infos, and single tensors
// dequantized to float32. Models load through Classifier.load({ modelDir }).
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

export interface GgufBinding {
  inspectGguf(path: string): Promise<GgufInspection>;
  readGgufTensor(path: string, name: string): Promise<GgufTensor>;
}

// ---------------------------------------------------------------------------------------------
// torch.distributed (native/addon_distributed.cc): a c10d process group (TCPStore rendezvous,
// Gloo on the CPU, NCCL on CUDA) with a watchdog that names a failed rank.
// ---------------------------------------------------------------------------------------------

export interface ProcessGroupJoinOptions {
  rank: number;
  worldSize: number;
  masterAddr: string;
  masterPort: number;
  /** A launcher's agent hosts the store (torchrun), so rank 0 does not start one. */
  agentStore?: boolean;
  /** Bounds every collective and the join; a silent peer is declared failed after it. */
  timeoutMs: number;
  backend?: 'gloo' | 'nccl';
  /** nccl: this rank's GPU, "cuda:N". */
  device?: string;
  /** GLOO_SOCKET_IFNAME. */
  glooInterface?: string;
}

export interface ProcessGroupInfo {
  rank: number;
  worldSize: number;
  backend: string;
  device: string;
}

/** A NativeProcessGroup instance. Collectives run on the compute thread, in call order. */
export interface AddonProcessGroup {
  join(options: ProcessGroupJoinOptions): Promise<void>;
  info(): ProcessGroupInfo;
  allReduceSum<T extends Float32Array | Float64Array>(values: T, what: string): Promise<T>;
  /** Every rank's values (same length on every rank), concatenated in rank order. */
  allGather(values: Float32Array, what: string): Promise<Float32Array>;
  broadcast<T extends Float32Array | Float64Array>(
    values: T,
    root: number,
    what: string,
  ): Promise<T>;
  barrier(what: string): Promise<void>;
  publish(key: string, value: string): Promise<void>;
  /** Waits for a key as long as every rank is alive. */
  await(key: string): Promise<string>;
  /** Every rank's value for `key`, in rank order. */
  exchange(key: string, value: string): Promise<string[]>;
  /** Adds delta to a store counter (created at 0); the new value. Atomic across ranks. */
  add(key: string, delta: number): Promise<number>;
  /** A message naming the failed rank, or null. */
  failure(): string | null;
  leave(error?: string): Promise<void>;
}

export interface DistributedBackends {
  gloo: boolean;
  nccl: boolean;
  /** What to install for each backend this build lacks (null when built). */
  missing: { gloo: string | null; nccl: string | null };
}

export interface DistributedBinding {
  NativeProcessGroup: new () => AddonProcessGroup;
  distributedBackends(): DistributedBackends;
}

export interface BindingModule
  extends
    RuntimeBinding,
    CheckpointIoBinding,
    ClassifierBinding,
    HiddenStateCacheBinding,
    GgufBinding,
    DistributedBinding {
  testing: TestingBinding;
  /** Present on a CUDA build only. */
  cuda?: CudaBinding;
}
