/**
 * The fold trainer's model in ddp mode. The fold trainer plans every optimizer step's global
 * batch as on one process and hands over its micro-batches in order; each rank trains only its
 * share, micro-batch j going to rank j mod world size. A rank's last micro-batch of the step runs
 * with the gradient sync armed (its backward all-reduces the gradients in buckets, overlapped),
 * or, if the step has none for it, a sync-only step; every rank then takes the same optimizer step
 * on the same averaged gradients. The step's loss, example and token totals (and whether any rank
 * was asked to stop) are summed over the ranks once per step, so rank 0 reports what a single
 * process would. Predictions are sharded by rows and gathered, so every rank sees every score and
 * takes the same early-stopping decisions.
 */
import type { Classifier, ProcessGroup } from '../../native/index.js';
import type { ModelBatch } from '../examples.js';
import type { FoldModel, StepResult } from '../foldTrainer.js';

type TrainOptions = Parameters<FoldModel['trainStep']>[1];

/** The examples (pairs) of rows [start, end): the rows themselves, or their segments. */
export function exampleRange(
  batch: ModelBatch,
  start: number,
  end: number,
): { start: number; end: number } {
  const segments = batch.segments;
  if (!segments) return { start, end };
  const before = (row: number) =>
    segments.segmentCounts.subarray(0, row).reduce((a, b) => a + b, 0);
  return { start: before(start), end: before(end) };
}

/**
 * Rows [start, end) of a batch, as views; with shared-prefix rows, their segments, labels and
 * frozen-cache rows too.
 */
export function batchRows(batch: ModelBatch, start: number, end: number): ModelBatch {
  const { seqLen } = batch;
  const examples = exampleRange(batch, start, end);
  const { segments, hiddenStates } = batch;
  return {
    inputIds: batch.inputIds.subarray(start * seqLen, end * seqLen),
    attentionMask: batch.attentionMask.subarray(start * seqLen, end * seqLen),
    ...(batch.labels ? { labels: batch.labels.subarray(examples.start, examples.end) } : {}),
    batchSize: end - start,
    seqLen,
    ...(segments
      ? {
          segments: {
            prefixLengths: segments.prefixLengths.subarray(start, end),
            segmentCounts: segments.segmentCounts.subarray(start, end),
            segmentLengths: segments.segmentLengths.subarray(examples.start, examples.end),
          },
        }
      : {}),
    ...(hiddenStates
      ? {
          hiddenStates: {
            cache: hiddenStates.cache,
            units: hiddenStates.units.subarray(start, end),
            segments: hiddenStates.segments.subarray(examples.start, examples.end),
          },
        }
      : {}),
  };
}

/** Rank r's rows of a batch of n rows: [r * share, (r + 1) * share) clipped to n. */
function shareOf(n: number, rank: number, worldSize: number): { start: number; end: number } {
  const share = Math.ceil(n / worldSize);
  const start = Math.min(n, rank * share);
  return { start, end: Math.min(n, start + share) };
}

export class DataParallelModel implements FoldModel {
  /** Position of the next micro-batch in the current step. */
  private position = 0;
  /**
   * This rank's latest micro-batch, not run yet: it runs when the next one of its own arrives
   * (accumulating) or when the step ends (with the sync armed), since only then is it known to be
   * the last.
   */
  private held: ModelBatch | null = null;
  private totals = { lossSum: 0, examples: 0, tokens: 0 };
  private stopAgreed = false;

  constructor(
    private readonly classifier: Classifier,
    private readonly group: ProcessGroup,
    private readonly stopRequested: () => boolean,
  ) {}

  /** Whether some rank asked to stop, as of the last step (the same on every rank). */
  get agreedStop(): boolean {
    return this.stopAgreed;
  }

  async trainStep(batch: ModelBatch, options: TrainOptions): Promise<StepResult> {
    if (this.position++ % this.group.worldSize === this.group.rank) {
      if (this.held) await this.run(this.held, options, true);
      this.held = batch;
    }
    // Not the step's end: the totals come with the last micro-batch.
    if (options.accumulate) return { loss: 0, gradNorm: Number.NaN };
    this.position = 0;
    const held = this.held;
    this.held = null;
    const { gradNorm } = held
      ? await this.run(held, options, false)
      : await this.classifier.syncStep({ ...options, accumulate: false });
    const { lossSum, examples, tokens } = this.totals;
    this.totals = { lossSum: 0, examples: 0, tokens: 0 };
    const summed = await this.group.allReduceSum(
      Float64Array.of(lossSum, examples, tokens, this.stopRequested() ? 1 : 0),
      'the step totals',
    );
    this.stopAgreed = summed[3]! > 0;
    const stepTotals = { lossSum: summed[0]!, exampleSum: summed[1]!, tokens: summed[2]! };
    return { loss: stepTotals.lossSum / stepTotals.exampleSum, gradNorm, stepTotals };
  }

  private async run(
    batch: ModelBatch,
    options: TrainOptions,
    accumulate: boolean,
  ): Promise<{ loss: number; gradNorm: number }> {
    const result = await this.classifier.trainStep(batch, { ...options, accumulate });
    // The loss is the mean over the batch's examples: rows, or shared-prefix segments.
    const examples = exampleRange(batch, 0, batch.batchSize);
    this.totals.lossSum += result.loss * (examples.end - examples.start);
    this.totals.examples += examples.end - examples.start;
    this.totals.tokens += batch.attentionMask.reduce((sum, value) => sum + value, 0);
    return result;
  }

  async predictProba(batch: ModelBatch): Promise<Float32Array> {
    const { rank, worldSize } = this.group;
    // Rows are sharded; a rank's scores are its rows' examples (a shared-prefix row has several),
    // padded to the widest rank's count for the gather.
    const shares = Array.from({ length: worldSize }, (_, r) => {
      const rows = shareOf(batch.batchSize, r, worldSize);
      return { rows, examples: exampleRange(batch, rows.start, rows.end) };
    });
    const width = Math.max(...shares.map((share) => share.examples.end - share.examples.start));
    const mine = shares[rank]!.rows;
    const padded = new Float32Array(width);
    if (mine.end > mine.start)
      padded.set(await this.classifier.predictProba(batchRows(batch, mine.start, mine.end)));
    const gathered = await this.group.allGather(padded, 'the gathered predictions');
    const scores = new Float32Array(exampleRange(batch, 0, batch.batchSize).end);
    shares.forEach(({ examples }, r) => {
      scores.set(
        gathered.subarray(r * width, r * width + examples.end - examples.start),
        examples.start,
      );
    });
    return scores;
  }

  saveAdapter(dir: string): Promise<void> {
    return this.classifier.saveAdapter(dir);
  }

  loadAdapter(dir: string): Promise<void> {
    return this.classifier.loadAdapter(dir);
  }

  async discardGradients(): Promise<void> {
    this.position = 0;
    this.held = null;
    this.totals = { lossSum: 0, examples: 0, tokens: 0 };
    await this.classifier.discardGradients();
  }
}
