import type { CachedRows, HiddenStateCache } from '../native.js';

/**
 * Tokenized examples kept as one flat Int32Array with offsets (13k prompts of up to 512 ids
 * would be 13k small arrays otherwise), and the collation of micro-batches from them: plain
 * (one example per row) or shared-prefix (one post per row, its shared part once).
 */
export interface TokenizedExamples {
  /** All token ids, example after example. */
  ids: Int32Array;
  /** offsets[i]..offsets[i+1] are example i's ids; length = count + 1. */
  offsets: Int32Array;
  /**
   * Present when the prompts were encoded as (shared part, criterion suffix): example i's first
   * prefixLengths[i] ids are its post's shared part, identical in every example of that post.
   */
  prefixLengths?: Int32Array;
  /** With prefixLengths: the post (an index) each example belongs to. */
  posts?: Int32Array;
}

/** How the addon lays out a batch of shared-prefix rows (src/native SegmentLayout). */
export interface BatchSegments {
  prefixLengths: Int32Array;
  segmentCounts: Int32Array;
  segmentLengths: Int32Array;
}

/**
 * A model batch as the native addon takes it (DESIGN.md, "The addon's contract"). With
 * `segments`, each row is one post (shared part, then one segment per example) and labels and
 * predictions have one entry per example, in row order.
 */
export interface ModelBatch {
  inputIds: Int32Array;
  attentionMask: Uint8Array;
  labels?: Float32Array;
  batchSize: number;
  seqLen: number;
  segments?: BatchSegments;
  /** With segments: the rows' states entering the frozen-bottom cache's layer come from it. */
  hiddenStates?: CachedRows<HiddenStateCache>;
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

/** Whether the examples carry a shared-prefix encoding (and so can be batched by post). */
export function hasSharedPrefix(
  examples: TokenizedExamples,
): examples is TokenizedExamples & { prefixLengths: Int32Array; posts: Int32Array } {
  return examples.prefixLengths !== undefined && examples.posts !== undefined;
}

/**
 * Splits example indices into runs of the same post, keeping their order (a shared-prefix
 * batch's rows). Without a post per example every example is its own run.
 */
export function runsByPost(examples: TokenizedExamples, indices: readonly number[]): number[][] {
  const posts = examples.posts;
  const runs: number[][] = [];
  for (const index of indices) {
    const last = runs[runs.length - 1];
    if (posts && last && posts[last[0]!] === posts[index]) last.push(index);
    else runs.push([index]);
  }
  return runs;
}

/** The shared part's length of example `index` (0 for examples encoded whole). */
export function prefixLength(examples: TokenizedExamples, index: number): number {
  return examples.prefixLengths?.[index] ?? 0;
}

/** Tokens a shared-prefix row of these examples (one post) takes: shared part + suffixes. */
export function packedLength(examples: TokenizedExamples, run: readonly number[]): number {
  const prefix = prefixLength(examples, run[0]!);
  return run.reduce((sum, i) => sum + exampleLength(examples, i) - prefix, prefix);
}

/**
 * One row per post run (consecutive indices of one post): its shared part once, then each
 * example's suffix as a segment, right-padded. Labels and predictions follow `indices`' order.
 * Equal, per example, to collateBatch of the same indices (the addon's parity tests). Examples
 * encoded whole make one row each, with an empty shared part and the whole sequence as segment.
 */
export function collateSharedBatch(
  examples: TokenizedExamples,
  indices: readonly number[],
  options: { padTokenId: number; labels?: ArrayLike<number> },
): ModelBatch {
  const runs = runsByPost(examples, indices);
  const seqLen = Math.max(1, ...runs.map((run) => packedLength(examples, run)));
  const batchSize = runs.length;
  const inputIds = new Int32Array(batchSize * seqLen).fill(options.padTokenId);
  const attentionMask = new Uint8Array(batchSize * seqLen);
  const segments: BatchSegments = {
    prefixLengths: new Int32Array(batchSize),
    segmentCounts: new Int32Array(batchSize),
    segmentLengths: new Int32Array(indices.length),
  };
  let segment = 0;
  runs.forEach((run, row) => {
    const prefix = prefixLength(examples, run[0]!);
    let column = row * seqLen;
    const first = examples.offsets[run[0]!]!;
    inputIds.set(examples.ids.subarray(first, first + prefix), column);
    column += prefix;
    for (const index of run) {
      if (prefixLength(examples, index) !== prefix) {
        throw new Error(`example ${index} does not share the prefix of example ${run[0]}`);
      }
      const start = examples.offsets[index]! + prefix;
      const end = examples.offsets[index + 1]!;
      inputIds.set(examples.ids.subarray(start, end), column);
      column += end - start;
      segments.segmentLengths[segment++] = end - start;
    }
    attentionMask.fill(1, row * seqLen, column);
    segments.prefixLengths[row] = prefix;
    segments.segmentCounts[row] = run.length;
  });
  const batch: ModelBatch = { inputIds, attentionMask, batchSize, seqLen, segments };
  if (options.labels) {
    const labels = options.labels;
    batch.labels = Float32Array.from(indices, (i) => labels[i]!);
  }
  return batch;
}
