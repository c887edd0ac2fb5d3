import type {
  CheckpointCheck,
  LlamaConfig,
  LlamaConfigInput,
  SafetensorsEntry,
  SafetensorsTensor,
  SafetensorsTensorInput,
} from './addonTypes.js';
import { addon } from './loadAddon.js';

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
 * Reads <dir>/config.json (or a .json path) as transformers' LlamaConfig does, and returns it
 * with every default and derived value filled in.
 */
export function loadLlamaConfig(dir: string): Promise<LlamaConfig> {
  return addon().loadLlamaConfig(dir);
}

/**
 * Writes a transformers-loadable config.json (LlamaForSequenceClassification) atomically. Absent
 * keys take transformers' defaults; head_dim, num_key_value_heads and the labels are derived.
 */
export function writeLlamaConfig(path: string, config: LlamaConfigInput): Promise<void> {
  return addon().writeLlamaConfig(path, config);
}

/**
 * Checks a model directory before loading it: config.json parses, every base weight is present
 * with the shape the config implies (headers only). A CausalLM checkpoint has hasScore false.
 * Classifier.load runs the same check.
 */
export function checkLlamaCheckpoint(dir: string): Promise<CheckpointCheck> {
  return addon().checkLlamaCheckpoint(dir);
}
