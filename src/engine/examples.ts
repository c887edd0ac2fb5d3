/**
 * Tokenized examples kept as one flat Int32Array with offsets (13k prompts of up to 512 ids
 * would be 13k small arrays otherwise), and the collation of micro-batches from them.
 */
export interface TokenizedExamples {
  /** All token ids, example after example. */
  ids: Int32Array;
  /** offsets[i]..offsets[i+1] are example i's ids; length = count + 1. */
  offsets: Int32Array;
}

/** A model batch as the native addon takes it (DESIGN.md, "The addon's contract"). */
export interface ModelBatch {
  inputIds: Int32Array;
  attentionMask: Uint8Array;
  labels?: Float32Array;
  batchSize: number;
  seqLen: number;
}

export function exampleCount(examples: TokenizedExamples): number {
  return examples.offsets.length - 1;
}

export function exampleLength(examples: TokenizedExamples, index: number): number {
  return examples.offsets[index + 1]! - examples.offsets[index]!;
}

export function packExamples(sequences: ArrayLike<number>[]): TokenizedExamples {
  const offsets = new Int32Array(sequences.length + 1);
  for (let i = 0; i < sequences.length; i++) offsets[i + 1] = offsets[i]! + sequences[i]!.length;
  const ids = new Int32Array(offsets[sequences.length]!);
  for (let i = 0; i < sequences.length; i++) ids.set(sequences[i]!, offsets[i]!);
  return { ids, offsets };
}

/**
 * Pads the chosen examples to the longest of them. Right padding puts pad ids after the
 * tokens; left padding before them. The model pools at the rightmost non-pad token either way.
 */
export function collateBatch(
  examples: TokenizedExamples,
  indices: readonly number[],
  options: { padTokenId: number; paddingSide: 'right' | 'left'; labels?: ArrayLike<number> },
): ModelBatch {
  const seqLen = Math.max(1, ...indices.map((i) => exampleLength(examples, i)));
  const batchSize = indices.length;
  const inputIds = new Int32Array(batchSize * seqLen).fill(options.padTokenId);
  const attentionMask = new Uint8Array(batchSize * seqLen);
  indices.forEach((exampleIndex, row) => {
    const start = examples.offsets[exampleIndex]!;
    const length = exampleLength(examples, exampleIndex);
    const column = options.paddingSide === 'right' ? 0 : seqLen - length;
    inputIds.set(examples.ids.subarray(start, start + length), row * seqLen + column);
    attentionMask.fill(1, row * seqLen + column, row * seqLen + column + length);
  });
  const batch: ModelBatch = { inputIds, attentionMask, batchSize, seqLen };
  if (options.labels) {
    const labels = options.labels;
    batch.labels = Float32Array.from(indices, (i) => labels[i]!);
  }
  return batch;
}
