/**
 * Model-call latency of an inference run in bounded memory: totals are exact, and the per-pair
 * percentiles come from a uniform sample of at most `capacity` batches (reservoir sampling with a
 * fixed seed), so a run over millions of pairs keeps a few hundred kilobytes, not one record per
 * batch. Below the capacity every batch is kept and the percentiles are exact.
 */
import { percentile } from '../data/index.js';
import { createRng } from '../infra/index.js';

/** Milliseconds spent by one model call and how many pairs it scored. */
export interface BatchTiming {
  ms: number;
  pairs: number;
  seqLen: number;
}

/** Model-call latency: per pair = a batch's time divided by its rows. */
export interface InferLatency {
  batches: number;
  totalModelMs: number;
  wallMs: number;
  msPerPairMean: number;
  msPerPairP50: number;
  msPerPairP95: number;
  pairsPerSecond: number;
}

export class LatencyRecorder {
  private batches = 0;
  private totalModelMs = 0;
  private pairs = 0;
  private readonly sample: Float64Array;
  private sampled = 0;
  /** Batches with pairs seen, the reservoir's stream length. */
  private seen = 0;
  private readonly random = createRng(0x1a7e);

  constructor(readonly capacity = 65_536) {
    this.sample = new Float64Array(capacity);
  }

  add(timing: BatchTiming): void {
    this.batches += 1;
    this.totalModelMs += timing.ms;
    this.pairs += timing.pairs;
    if (timing.pairs <= 0) return;
    const perPair = timing.ms / timing.pairs;
    this.seen += 1;
    if (this.sampled < this.capacity) {
      this.sample[this.sampled++] = perPair;
      return;
    }
    const slot = Math.floor(this.random() * this.seen);
    if (slot < this.capacity) this.sample[slot] = perPair;
  }

  figures(wallMs: number): InferLatency {
    const perPair = Array.from(this.sample.subarray(0, this.sampled)).sort((a, b) => a - b);
    return {
      batches: this.batches,
      totalModelMs: this.totalModelMs,
      wallMs,
      msPerPairMean: this.pairs > 0 ? this.totalModelMs / this.pairs : 0,
      msPerPairP50: perPair.length > 0 ? percentile(perPair, 50) : 0,
      msPerPairP95: perPair.length > 0 ? percentile(perPair, 95) : 0,
      pairsPerSecond: this.totalModelMs > 0 ? (this.pairs * 1000) / this.totalModelMs : 0,
    };
  }
}

/** The figures of a list of batch timings (every one kept: exact percentiles). */
export function latencyFigures(timings: readonly BatchTiming[], wallMs: number): InferLatency {
  const recorder = new LatencyRecorder(Math.max(1, timings.length));
  for (const timing of timings) recorder.add(timing);
  return recorder.figures(wallMs);
}
