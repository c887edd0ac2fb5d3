import type { GgufInspection, GgufTensor } from './addonTypes.js';
import { addon } from './loadAddon.js';

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
