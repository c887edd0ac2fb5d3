/**
 * Input checks shared by every metric. Metrics silently computed on a NaN score or a label of 2
 * are worse than no metrics, so every public entry point validates and names the first bad index.
 */

export interface ValidatedInputs {
  labels: Uint8Array;
  scores: Float64Array;
}

export interface ScoreCheck {
  /** Require scores in [0, 1] (probabilities): Brier score and threshold sweeps assume it. */
  probabilities?: boolean;
}

export function validateLabels(labels: ArrayLike<number>, name = 'labels'): Uint8Array {
  const out = new Uint8Array(labels.length);
  for (let i = 0; i < labels.length; i++) {
    const value = labels[i];
    if (value !== 0 && value !== 1) {
      throw new Error(`${name}[${i}] is ${String(value)}; expected 0 or 1`);
    }
    out[i] = value;
  }
  return out;
}

export function validateScores(
  scores: ArrayLike<number>,
  check: ScoreCheck = {},
  name = 'scores',
): Float64Array {
  const out = new Float64Array(scores.length);
  for (let i = 0; i < scores.length; i++) {
    const value = scores[i];
    if (typeof value !== 'number' || !Number.isFinite(value)) {
      throw new Error(`${name}[${i}] is ${String(value)}; expected a finite number`);
    }
    if (check.probabilities === true && (value < 0 || value > 1)) {
      throw new Error(`${name}[${i}] is ${value}; expected a probability in [0, 1]`);
    }
    out[i] = value;
  }
  return out;
}

export function validateInputs(
  labels: ArrayLike<number>,
  scores: ArrayLike<number>,
  check: ScoreCheck = {},
): ValidatedInputs {
  if (labels.length !== scores.length) {
    throw new Error(
      `labels and scores differ in length (${labels.length} labels, ${scores.length} scores)`,
    );
  }
  if (labels.length === 0) throw new Error('labels and scores are empty; no metric is defined');
  return { labels: validateLabels(labels), scores: validateScores(scores, check) };
}

export function validateThreshold(threshold: number, name = 'threshold'): number {
  if (typeof threshold !== 'number' || !Number.isFinite(threshold)) {
    throw new Error(`${name} is ${String(threshold)}; expected a finite number`);
  }
  return threshold;
}

export function validateCriterionIds(
  criterionIds: ArrayLike<string>,
  length: number,
): readonly string[] {
  if (criterionIds.length !== length) {
    throw new Error(
      `criterionIds has ${criterionIds.length} entries but labels has ${length}; one id per pair`,
    );
  }
  const out: string[] = new Array<string>(length);
  for (let i = 0; i < length; i++) {
    const id = criterionIds[i];
    if (typeof id !== 'string' || id.length === 0) {
      throw new Error(`criterionIds[${i}] is ${JSON.stringify(id)}; expected a non-empty string`);
    }
    out[i] = id;
  }
  return out;
}

/** Criterion ids in natural order (A2 before A10), so reports list A1..A9 as people expect. */
export function sortCriterionIds(ids: Iterable<string>): string[] {
  return [...new Set(ids)].sort((a, b) => a.localeCompare(b, 'en', { numeric: true }));
}
