/**
 * The frozen-bottom cache of a run: when no layer below L has an adapter (model.dora.layers),
 * the hidden states entering layer L depend on the tokens only. They are computed once, for
 * every post of the data set (every fold's train, validation and test posts), and every batch of
 * every epoch, fold and evaluation then starts at layer L. Units are the posts' shared-prefix
 * rows (or single sequences when prompts are encoded per pair).
 */
import { rm } from 'node:fs/promises';
import { join } from 'node:path';

import type { Logger } from '../infra/index.js';
import { HiddenStateCache, type Classifier } from '../native.js';
import { postsPerMicroBatch } from './batching.js';
import {
  collateSharedBatch,
  exampleCount,
  packedLength,
  runsByPost,
  type ModelBatch,
  type TokenizedExamples,
} from './examples.js';

/** The cache and where each example is in it. */
export interface FrozenRows {
  cache: HiddenStateCache;
  /** The unit (post row) of each example. */
  unitOf: Int32Array;
  /** Each example's segment index within its unit. */
  segmentOf: Int32Array;
  /** What was cached, where, and how long the fill took. */
  report: FrozenCacheReport;
  /** Tokens whose bottom-layer states batches read from the cache so far (withFrozenRows). */
  tokensServed: number;
}

/** What the run logs about its cache. */
export interface FrozenCacheReport {
  layer: number;
  units: number;
  tokens: number;
  bytes: number;
  storage: 'memory' | 'file';
  path: string | null;
  seconds: number;
}

/**
 * The file, in the run directory, a cache too large for memory is mapped from (unlinked as soon as
 * it is mapped): one per rank when several processes share the run directory.
 */
export function frozenCacheFile(rank = 0): string {
  return rank === 0 ? 'frozen-cache.bin' : `frozen-cache.rank${rank}.bin`;
}

/**
 * Every example grouped into units, in example order: a post's examples (shared-prefix
 * encoding), or each example alone.
 */
export function cacheUnits(examples: TokenizedExamples): number[][] {
  const all = Array.from({ length: exampleCount(examples) }, (_, i) => i);
  const posts = examples.posts;
  if (!posts) return all.map((i) => [i]);
  const units = new Map<number, number[]>();
  for (const i of all) {
    const unit = units.get(posts[i]!);
    if (unit) unit.push(i);
    else units.set(posts[i]!, [i]);
  }
  return [...units.values()];
}

/**
 * Builds and fills the cache when the classifier's first adapted layer is above 0 (else null:
 * nothing is frozen). Storage in memory up to maxMemoryBytes, else a mapped file in `dir`.
 */
export async function buildFrozenCache(
  classifier: Classifier,
  examples: TokenizedExamples,
  options: {
    maxMemoryBytes: number;
    dir: string;
    /** The file's name in `dir` (default frozenCacheFile()). */
    file?: string;
    padTokenId: number;
    batchSize: number;
    logger?: Logger;
  },
): Promise<{ rows: FrozenRows; report: FrozenCacheReport } | null> {
  const info = classifier.info();
  const layer = info.firstAdaptedLayer;
  if (layer < 1) return null;
  const started = performance.now();
  const units = cacheUnits(examples);
  const unitOf = new Int32Array(exampleCount(examples));
  const segmentOf = new Int32Array(exampleCount(examples));
  units.forEach((unit, u) =>
    unit.forEach((example, k) => {
      unitOf[example] = u;
      segmentOf[example] = k;
    }),
  );
  const lengths = units.map((unit) => packedLength(examples, unit));
  const tokens = lengths.reduce((sum, length) => sum + length, 0);
  const filePath = join(options.dir, options.file ?? frozenCacheFile());
  // A file left by a process killed between creating and unlinking it.
  await rm(filePath, { force: true });
  const cache = new HiddenStateCache({
    layer,
    hiddenSize: info.hiddenSize,
    dtype: info.dtype,
    units: units.length,
    tokens,
    maxMemoryBytes: options.maxMemoryBytes,
    filePath,
  });
  try {
    // Filled in batches of whole units of similar length, about batchSize examples each.
    const order = units.map((_, u) => u).sort((a, b) => lengths[a]! - lengths[b]! || a - b);
    const perUnit = Math.max(...units.map((unit) => unit.length));
    const size = postsPerMicroBatch(options.batchSize, perUnit);
    for (let start = 0; start < order.length; start += size) {
      const chunk = order.slice(start, start + size);
      const batch = collateSharedBatch(
        examples,
        chunk.flatMap((u) => units[u]!),
        { padTokenId: options.padTokenId },
      );
      await classifier.fillHiddenStateCache(cache, batch, Int32Array.from(chunk));
    }
  } catch (error) {
    cache.dispose();
    throw error;
  }
  const stored = cache.info();
  const report: FrozenCacheReport = {
    layer,
    units: stored.storedUnits,
    tokens: stored.storedTokens,
    bytes: stored.bytes,
    storage: stored.storage,
    path: stored.path,
    seconds: (performance.now() - started) / 1000,
  };
  options.logger?.info(
    `frozen-bottom cache: the input of layer ${layer} for ${report.units} rows ` +
      `(${report.tokens} tokens, ${(report.bytes / 2 ** 20).toFixed(1)} MiB) in ` +
      `${report.storage === 'memory' ? 'memory' : `a mapped file at ${report.path} (unlinked)`}, ` +
      `computed in ${report.seconds.toFixed(1)} s; every epoch, fold and evaluation runs layers ` +
      `${layer}..${info.numLayers - 1} only`,
    { ...report },
  );
  return { rows: { cache, unitOf, segmentOf, report, tokensServed: 0 }, report };
}

/** What the cache saved so far: tokens served, and time at the fill's own rate. */
export interface FrozenCacheSavings {
  tokensServed: number;
  /** Seconds layers 0..layer-1 would have taken for the served tokens, at the fill's rate. */
  computeSeconds: number;
  /** computeSeconds minus the fill's own time. */
  savedSeconds: number;
}

/**
 * The time the cache saved, estimated from the fill: it ran the same layers over every cached
 * token once (in inference mode, as the forward of a frozen layer is: no backward ever reaches
 * it), so served tokens x the fill's seconds per token is what computing them again would cost.
 */
export function frozenCacheSavings(rows: FrozenRows): FrozenCacheSavings {
  const { tokens, seconds } = rows.report;
  const computeSeconds = tokens > 0 ? (rows.tokensServed / tokens) * seconds : 0;
  return {
    tokensServed: rows.tokensServed,
    computeSeconds,
    savedSeconds: computeSeconds - seconds,
  };
}

/** Logs frozenCacheSavings at the end of a run. */
export function logFrozenCacheSavings(rows: FrozenRows, logger: Logger): void {
  const savings = frozenCacheSavings(rows);
  const { layer, tokens, seconds } = rows.report;
  logger.info(
    `frozen-bottom cache: read ${savings.tokensServed} tokens' states ` +
      `(${(savings.tokensServed / Math.max(1, tokens)).toFixed(1)}x the ${tokens} cached); ` +
      `layers 0..${layer - 1} for them would have taken about ${savings.computeSeconds.toFixed(1)} s ` +
      `at the fill's rate; saved about ${savings.savedSeconds.toFixed(1)} s net of the ` +
      `${seconds.toFixed(1)} s fill`,
    { layer, ...savings, fillSeconds: seconds },
  );
}

/** The batch's rows read from the cache (batch collated by collateSharedBatch of `indices`). */
export function withFrozenRows(
  batch: ModelBatch,
  examples: TokenizedExamples,
  indices: readonly number[],
  frozen: FrozenRows,
): ModelBatch {
  const runs = runsByPost(examples, indices);
  frozen.tokensServed += runs.reduce((sum, run) => sum + packedLength(examples, run), 0);
  return {
    ...batch,
    hiddenStates: {
      cache: frozen.cache,
      units: Int32Array.from(runs, (run) => frozen.unitOf[run[0]!]!),
      segments: Int32Array.from(indices, (i) => frozen.segmentOf[i]!),
    },
  };
}
