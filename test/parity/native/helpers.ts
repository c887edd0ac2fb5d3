// Shared by the native parity tests: the Python oracle (transformers + peft in .venv) and batch
// builders.
import { execFile } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';

import type { Batch, DoraOptions } from '../../../src/native/index.js';

const run = promisify(execFile);
const root = resolve(import.meta.dirname ?? '.', '../../..');
export const python = join(root, '.venv', 'bin', 'python');
/** Runs a script of test/parity/python with arguments and parses the JSON it prints last. */
export async function runOracle<T>(script: string, args: string[]): Promise<T> {
  const path = join(root, 'test', 'parity', 'python', script);
  const { stdout } = await run(python, [path, ...args], {
    maxBuffer: 64 * 1024 * 1024,
    env: { ...process.env, TRANSFORMERS_VERBOSITY: 'error', TQDM_DISABLE: '1' },
  });
  const lines = stdout.trim().split('\n');
  return JSON.parse(lines[lines.length - 1]!) as T;
}

/** Runs a dora_oracle.py subcommand and parses the JSON it prints last. */
export async function oracle<T>(args: string[]): Promise<T> {
  return runOracle<T>('dora_oracle.py', args);
}

export const ALL_MODULES = [
  'q_proj',
  'k_proj',
  'v_proj',
  'o_proj',
  'gate_proj',
  'up_proj',
  'down_proj',
];

export function dora(r: number, alpha: number, targetModules = ALL_MODULES): DoraOptions {
  return { r, alpha, dropout: 0, targetModules, useRslora: false };
}

/** Rows of uneven lengths padded with `pad` on the given side; ids in [3, vocab). */
export function paddedBatch(
  lengths: number[],
  side: 'left' | 'right',
  pad: number,
  vocab: number,
  seed: number,
  labels?: number[],
): Batch {
  const batchSize = lengths.length;
  const seqLen = Math.max(...lengths);
  const inputIds = new Int32Array(batchSize * seqLen).fill(pad);
  const attentionMask = new Uint8Array(batchSize * seqLen);
  let state = seed >>> 0;
  for (let b = 0; b < batchSize; b++) {
    const offset = side === 'right' ? 0 : seqLen - lengths[b]!;
    for (let t = 0; t < lengths[b]!; t++) {
      state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
      inputIds[b * seqLen + offset + t] = 3 + (state % (vocab - 3));
      attentionMask[b * seqLen + offset + t] = 1;
    }
  }
  const batch: Batch = { inputIds, attentionMask, batchSize, seqLen };
  if (labels) batch.labels = new Int32Array(labels);
  return batch;
}

/** Writes a batch as the oracle reads it. */
export async function writeBatch(path: string, batch: Batch): Promise<string> {
  await writeFile(
    path,
    JSON.stringify({
      inputIds: [...batch.inputIds],
      attentionMask: [...batch.attentionMask],
      batchSize: batch.batchSize,
      seqLen: batch.seqLen,
      ...(batch.labels ? { labels: [...batch.labels] } : {}),
    }),
  );
  return path;
}

export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  expect(a.length).toBe(b.length);
  let max = 0;
  for (let i = 0; i < a.length; i++) max = Math.max(max, Math.abs(a[i]! - b[i]!));
  return max;
}
