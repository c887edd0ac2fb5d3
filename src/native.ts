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

/** Parses <dir>/config.json (or a .json path) with transformers' LlamaConfig defaults. */
export function loadLlamaConfig(dir: string): Promise<LlamaConfig> {
  return addon().loadLlamaConfig(dir);
}
