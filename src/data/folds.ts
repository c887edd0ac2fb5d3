import { mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';

import { writeFileAtomic } from '../infra/index.js';
import { compareCodePoints } from './clean.js';
import { sha256Hex } from './hash.js';
import {
  innerSplit,
  STRATIFICATION,
  stratificationLabels,
  stratifiedGroupKFold,
} from './splits.js';
import type { Dataset } from './types.js';

export interface BuildFoldsOptions {
  nSplits: number;
  seed: number;
  /** Share of each outer training part (by post) held out for early stopping/thresholds. */
  innerValidationFraction: number;
  /** y for stratification: criterion × label (default, keeps rare criteria even) or label only. */
  /** 'criterion_label' (the config's spelling) is the same as 'criterion_x_label'. */
  stratify?: 'criterion_x_label' | 'criterion_label' | 'label';
}

/** One outer fold: pair indices into `dataset.pairs` and the post ids of each part (sorted). */
export interface Fold {
  index: number;
  train: number[];
  validation: number[];
  test: number[];
  trainPostIds: string[];
  validationPostIds: string[];
  testPostIds: string[];
}

export interface FoldMeta {
  datasetHash: string;
  seed: number;
  nSplits: number;
  innerValidationFraction: number;
  stratification: string;
  countOverrideReason: string | null;
}

const postIdsOf = (dataset: Dataset, indices: number[]): string[] =>
  [...new Set(indices.map((i) => (dataset.pairs[i] as { postId: string }).postId))].sort(
    compareCodePoints,
  );

/**
 * Outer StratifiedGroupKFold over pairs (groups = posts, y = criterion × label, shuffled with the
 * seed, so sklearn with the same seed gives the same test folds), then an inner split of each
 * training part into train/validation by post. The outer test fold is never used for tuning.
 */
export function buildFolds(dataset: Dataset, options: BuildFoldsOptions): Fold[] {
  const requested = options.stratify ?? STRATIFICATION;
  const stratify = requested === 'criterion_label' ? 'criterion_x_label' : requested;
  if (stratify !== 'criterion_x_label' && stratify !== 'label') {
    throw new RangeError(
      `stratify must be "criterion_x_label" or "label", got "${String(stratify)}"`,
    );
  }
  const y =
    stratify === 'label'
      ? dataset.pairs.map((p) => p.label as number)
      : stratificationLabels(
          dataset.pairs,
          dataset.criteria.map((c) => c.id),
        );
  const groups = dataset.pairs.map((p) => p.postId);
  const outer = stratifiedGroupKFold({
    y,
    groups,
    nSplits: options.nSplits,
    shuffle: true,
    seed: options.seed,
  });
  return outer.map((fold, index) => {
    const inner = innerSplit({
      indices: fold.train,
      y,
      groups,
      validationFraction: options.innerValidationFraction,
      seed: options.seed,
    });
    return {
      index,
      train: inner.train,
      validation: inner.validation,
      test: fold.test,
      trainPostIds: postIdsOf(dataset, inner.train),
      validationPostIds: postIdsOf(dataset, inner.validation),
      testPostIds: postIdsOf(dataset, fold.test),
    };
  });
}

/** sha256 of a post-id list as written: ids joined by "\n" with a trailing "\n". */
export function postListHash(postIds: readonly string[]): string {
  return sha256Hex(postIds.map((id) => `${id}\n`).join(''));
}

export interface FoldFile {
  fold: number;
  n_splits: number;
  seed: number;
  stratification: string;
  inner_validation: { method: string; fraction: number; n_splits: number };
  dataset_hash: string;
  count_override_reason: string | null;
  train: FoldPart;
  validation: FoldPart;
  test: FoldPart;
}

export interface FoldPart {
  n_posts: number;
  n_pairs: number;
  sha256: string;
  post_ids: string[];
}

function part(postIds: string[], pairIndices: number[]): FoldPart {
  return {
    n_posts: postIds.length,
    n_pairs: pairIndices.length,
    sha256: postListHash(postIds),
    post_ids: postIds,
  };
}

export function foldFileContent(fold: Fold, meta: FoldMeta): FoldFile {
  return {
    fold: fold.index,
    n_splits: meta.nSplits,
    seed: meta.seed,
    stratification: meta.stratification,
    inner_validation: {
      method: 'first fold of StratifiedGroupKFold(round(1/fraction)) over the training part',
      fraction: meta.innerValidationFraction,
      n_splits: Math.round(1 / meta.innerValidationFraction),
    },
    dataset_hash: meta.datasetHash,
    count_override_reason: meta.countOverrideReason,
    train: part(fold.trainPostIds, fold.train),
    validation: part(fold.validationPostIds, fold.validation),
    test: part(fold.testPostIds, fold.test),
  };
}

/** Writes `<dir>/fold_<i>.json` (0-based, in sklearn's fold order) atomically; returns the paths. */
export async function writeFoldFiles(
  dir: string,
  folds: readonly Fold[],
  meta: FoldMeta,
): Promise<string[]> {
  await mkdir(dir, { recursive: true });
  const paths: string[] = [];
  for (const fold of folds) {
    const path = join(dir, `fold_${fold.index}.json`);
    await writeFileAtomic(path, JSON.stringify(foldFileContent(fold, meta), null, 2) + '\n');
    paths.push(path);
  }
  return paths;
}

/** Reads a fold file back and checks its list hashes, so a hand-edited file is caught. */
export async function readFoldFile(path: string): Promise<FoldFile> {
  const file = JSON.parse(await readFile(path, 'utf8')) as FoldFile;
  for (const name of ['train', 'validation', 'test'] as const) {
    const p = file[name];
    if (!p || !Array.isArray(p.post_ids) || postListHash(p.post_ids) !== p.sha256) {
      throw new Error(`${path}: ${name}.post_ids do not match ${name}.sha256`);
    }
  }
  return file;
}

export { STRATIFICATION };
