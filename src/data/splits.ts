// StratifiedGroupKFold as scikit-learn 1.9 computes it (post-fix shuffle, PR #32540), down to
// numpy's floating-point summation order, so a given seed yields sklearn's folds exactly.
// The algorithm: group rows of class counts, optionally shuffled with numpy's MT19937, sorted by
// descending per-group std of counts, then each group goes greedily to the fold that keeps the
// per-class fold fractions most even (ties: fewer samples, then lower index).

import { compareCodePoints } from './clean.js';
import { RandomState } from './mt19937.js';

export interface StratifiedGroupKFoldOptions {
  /** Stratification label per sample (binary or multiclass; integers or strings). */
  y: readonly number[] | readonly string[];
  /** Group per sample; a group never spans two folds. */
  groups: readonly string[] | readonly number[];
  nSplits: number;
  shuffle: boolean;
  /** numpy RandomState seed (0..2^32-1); required when shuffle is true, ignored otherwise. */
  seed?: number;
}

export interface FoldIndices {
  /** Sample indices, ascending. */
  train: number[];
  test: number[];
}

/** Sorted unique values and the inverse map, like `np.unique(..., return_inverse=True)`. */
function uniqueInverse(values: readonly (string | number)[]): {
  inverse: number[];
  count: number[];
} {
  const allNumbers = values.every((v) => typeof v === 'number');
  const allStrings = values.every((v) => typeof v === 'string');
  if (!allNumbers && !allStrings) throw new TypeError('values must be all numbers or all strings');
  const cmp = allNumbers
    ? (a: string | number, b: string | number) => (a as number) - (b as number)
    : (a: string | number, b: string | number) => compareCodePoints(a as string, b as string);
  const sorted = [...new Set<string | number>(values)].sort(cmp);
  const index = new Map<string | number, number>(sorted.map((v, i) => [v, i]));
  const inverse = values.map((v) => index.get(v) as number);
  const count = new Array<number>(sorted.length).fill(0);
  for (const i of inverse) count[i] = (count[i] as number) + 1;
  return { inverse, count };
}

/** numpy's pairwise summation (`pairwise_sum` in umath loops), used by add.reduce on a contiguous axis. */
export function numpyPairwiseSum(a: ArrayLike<number>, start = 0, n = a.length - start): number {
  if (n < 8) {
    let res = 0;
    for (let i = 0; i < n; i++) res += a[start + i] as number;
    return res;
  }
  if (n <= 128) {
    const r = new Float64Array(8);
    for (let j = 0; j < 8; j++) r[j] = a[start + j] as number;
    let i = 8;
    for (; i < n - (n % 8); i += 8) {
      for (let j = 0; j < 8; j++) r[j] = (r[j] as number) + (a[start + i + j] as number);
    }
    let res = r[0]! + r[1]! + (r[2]! + r[3]!) + (r[4]! + r[5]! + (r[6]! + r[7]!));
    for (; i < n; i++) res += a[start + i] as number;
    return res;
  }
  let n2 = Math.floor(n / 2);
  n2 -= n2 % 8;
  return numpyPairwiseSum(a, start, n2) + numpyPairwiseSum(a, start + n2, n - n2);
}

/** np.std(row) (ddof 0) of a 1-D contiguous row: pairwise sums for mean and squared deviations. */
function rowStd(row: Float64Array): number {
  const n = row.length;
  const mean = numpyPairwiseSum(row) / n;
  const sq = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    const d = (row[i] as number) - mean;
    sq[i] = d * d;
  }
  return Math.sqrt(numpyPairwiseSum(sq) / n);
}

/**
 * mean over classes of np.std(fractions, axis=0) for a (folds × classes) C-contiguous matrix.
 * numpy reduces axis 0 row by row (sequential adds) unless there is a single column, when the
 * column is contiguous and it sums pairwise.
 */
function meanOfColumnStds(frac: Float64Array, rows: number, cols: number): number {
  const stds = new Float64Array(cols);
  if (cols === 1) {
    stds[0] = rowStd(frac.subarray(0, rows));
  } else {
    const mean = new Float64Array(cols);
    for (let r = 0; r < rows; r++) {
      for (let c = 0; c < cols; c++) mean[c] = (mean[c] as number) + (frac[r * cols + c] as number);
    }
    for (let c = 0; c < cols; c++) mean[c] = (mean[c] as number) / rows;
    const ss = new Float64Array(cols);
    for (let r = 0; r < rows; r++) {
      for (let c = 0; c < cols; c++) {
        const d = (frac[r * cols + c] as number) - (mean[c] as number);
        ss[c] = (ss[c] as number) + d * d;
      }
    }
    for (let c = 0; c < cols; c++) stds[c] = Math.sqrt((ss[c] as number) / rows);
  }
  return numpyPairwiseSum(stds) / cols;
}

/** np.isclose(a, b) with its defaults (rtol 1e-5, atol 1e-8), including infinities. */
function isClose(a: number, b: number): boolean {
  if (!Number.isFinite(a) || !Number.isFinite(b)) return a === b;
  return Math.abs(a - b) <= 1e-8 + 1e-5 * Math.abs(b);
}

/** Test/train indices per fold, identical to sklearn's StratifiedGroupKFold.split. */
export function stratifiedGroupKFold(options: StratifiedGroupKFoldOptions): FoldIndices[] {
  const { y, groups, nSplits, shuffle } = options;
  if (!Number.isInteger(nSplits) || nSplits < 2) {
    throw new RangeError(`nSplits must be an integer >= 2, got ${nSplits}`);
  }
  if (y.length !== groups.length) {
    throw new RangeError(`y has ${y.length} samples but groups has ${groups.length}`);
  }
  if (y.some((v) => typeof v === 'number' && !Number.isInteger(v))) {
    throw new TypeError('y must be class labels (integers or strings), not continuous values');
  }
  const { inverse: yInv, count: yCnt } = uniqueInverse(y as (string | number)[]);
  const nClasses = yCnt.length;
  if (yCnt.every((c) => nSplits > c)) {
    throw new RangeError(
      `nSplits=${nSplits} cannot be greater than the number of members in each class`,
    );
  }
  const { inverse: groupsInvRaw, count: groupsCnt } = uniqueInverse(groups as (string | number)[]);
  const nGroups = groupsCnt.length;
  if (nSplits > nGroups) {
    throw new RangeError(
      `Cannot have nSplits=${nSplits} greater than the number of groups: ${nGroups}`,
    );
  }

  let countsPerGroup = new Float64Array(nGroups * nClasses);
  for (let s = 0; s < yInv.length; s++) {
    const k = (groupsInvRaw[s] as number) * nClasses + (yInv[s] as number);
    countsPerGroup[k] = (countsPerGroup[k] as number) + 1;
  }
  let groupsInv = groupsInvRaw;
  if (shuffle) {
    if (options.seed === undefined) throw new RangeError('a seed is required when shuffle is true');
    const perm = new RandomState(options.seed).permutation(nGroups);
    const shuffled = new Float64Array(nGroups * nClasses);
    perm.forEach((from, to) => {
      shuffled.set(countsPerGroup.subarray(from * nClasses, (from + 1) * nClasses), to * nClasses);
    });
    countsPerGroup = shuffled;
    const invPerm = new Array<number>(nGroups);
    perm.forEach((from, to) => {
      invPerm[from] = to;
    });
    groupsInv = groupsInvRaw.map((g) => invPerm[g] as number);
  }

  const groupStd = Array.from({ length: nGroups }, (_, g) =>
    rowStd(countsPerGroup.subarray(g * nClasses, (g + 1) * nClasses)),
  );
  // Stable sort by descending std (Array.prototype.sort is stable).
  const order = Array.from({ length: nGroups }, (_, g) => g).sort(
    (a, b) => (groupStd[b] as number) - (groupStd[a] as number),
  );

  const countsPerFold = new Float64Array(nSplits * nClasses);
  const frac = new Float64Array(nSplits * nClasses);
  const foldOfGroup = new Int32Array(nGroups).fill(-1);
  for (const g of order) {
    const row = countsPerGroup.subarray(g * nClasses, (g + 1) * nClasses);
    let bestFold = -1;
    let minEval = Infinity;
    let minSamples = Infinity;
    for (let i = 0; i < nSplits; i++) {
      for (let f = 0; f < nSplits; f++) {
        for (let c = 0; c < nClasses; c++) {
          const extra = f === i ? (row[c] as number) : 0;
          frac[f * nClasses + c] =
            ((countsPerFold[f * nClasses + c] as number) + extra) / (yCnt[c] as number);
        }
      }
      const foldEval = meanOfColumnStds(frac, nSplits, nClasses);
      let samplesInFold = 0;
      for (let c = 0; c < nClasses; c++) samplesInFold += countsPerFold[i * nClasses + c] as number;
      if (foldEval < minEval || (isClose(foldEval, minEval) && samplesInFold < minSamples)) {
        minEval = foldEval;
        minSamples = samplesInFold;
        bestFold = i;
      }
    }
    for (let c = 0; c < nClasses; c++) {
      const k = bestFold * nClasses + c;
      countsPerFold[k] = (countsPerFold[k] as number) + (row[c] as number);
    }
    foldOfGroup[g] = bestFold;
  }

  const folds: FoldIndices[] = Array.from({ length: nSplits }, () => ({ train: [], test: [] }));
  for (let s = 0; s < groupsInv.length; s++) {
    const f = foldOfGroup[groupsInv[s] as number] as number;
    for (let i = 0; i < nSplits; i++) (i === f ? folds[i]!.test : folds[i]!.train).push(s);
  }
  return folds;
}

/** The stratification used for folds: one class per (criterion, label), 18 classes for 9 criteria. */
export const STRATIFICATION = 'criterion_x_label';

/**
 * y for StratifiedGroupKFold over pairs: criterion index × 2 + label. Stratifying on the label
 * alone lets rare criteria (PSYCHOMOTOR: ~7 positives per fold) bunch up in some folds.
 */
export function stratificationLabels(
  pairs: readonly { criterionId: string; label: 0 | 1 }[],
  criterionIds: readonly string[],
): number[] {
  const index = new Map(criterionIds.map((id, i) => [id, i]));
  return pairs.map((p) => {
    const c = index.get(p.criterionId);
    if (c === undefined) throw new RangeError(`unknown criterion ${p.criterionId}`);
    return c * 2 + p.label;
  });
}

export interface InnerSplitOptions {
  /** Sample indices of the outer training part (into y/groups). */
  indices: readonly number[];
  y: readonly number[] | readonly string[];
  groups: readonly string[];
  /** Share of the training part's groups to hold out for validation, in (0, 0.5]. */
  validationFraction: number;
  seed: number;
}

/**
 * Splits an outer training part by group into train and validation for early stopping and
 * threshold tuning: a StratifiedGroupKFold with round(1 / validationFraction) splits (shuffled
 * with the same seed) over the training part only, whose first test fold is the validation set.
 * Returns indices into the original arrays, ascending.
 */
export function innerSplit(options: InnerSplitOptions): { train: number[]; validation: number[] } {
  const { indices, y, groups, validationFraction, seed } = options;
  if (!(validationFraction > 0 && validationFraction <= 0.5)) {
    throw new RangeError(`validationFraction must be in (0, 0.5], got ${validationFraction}`);
  }
  const nSplits = Math.round(1 / validationFraction);
  const subY = indices.map((i) => y[i]) as number[] | string[];
  const subGroups = indices.map((i) => groups[i] as string);
  const [first] = stratifiedGroupKFold({
    y: subY,
    groups: subGroups,
    nSplits,
    shuffle: true,
    seed,
  });
  if (!first) throw new Error('inner split produced no fold');
  return {
    train: first.train.map((k) => indices[k] as number),
    validation: first.test.map((k) => indices[k] as number),
  };
}
