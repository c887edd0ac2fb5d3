// Decision thresholds for inference. Training tunes them on each fold's inner validation part and
// saves them as thresholds.json (fold_i/, and the run-level one from aggregation), read through the
// run store; a user may override all of them with one number.
import { fileFormats, thresholdTableFile } from '../run/index.js';

/** Global threshold plus any per-criterion ones, and where they came from. */
export interface ThresholdTable {
  global: number;
  perCriterion: Record<string, number>;
  /** A file path, 'mean of folds', or 'default'. */
  source: string;
}

export type ThresholdOrigin = 'override' | 'per_criterion' | 'global' | 'default';

/** Used when no thresholds.json can be found: the natural cut of a probability. */
export const DEFAULT_THRESHOLD = 0.5;

/** A thresholds file's global and per-criterion thresholds, labelled with where they came from. */
export function thresholdTable(
  file: { global: number; perCriterion?: Record<string, number> },
  source: string,
): ThresholdTable {
  return { global: file.global, perCriterion: { ...(file.perCriterion ?? {}) }, source };
}

/**
 * Checks a parsed thresholds file of any kind (a fold's, the run-level one, a registered copy):
 * a global threshold and per-criterion ones, all in [0, 1].
 */
export function parseThresholds(value: unknown, source: string): ThresholdTable {
  return thresholdTable(fileFormats.thresholdTable.parse(value, source), source);
}

/** A run-store thresholds file (a fold's, the run-level one...), as `RunStore` gives it. */
export interface ThresholdsFile {
  path: string;
  readIfExists(): Promise<{ global: number; perCriterion?: Record<string, number> } | null>;
}

/** The thresholds of a run-store file, or of any thresholds file at a path; null when absent. */
export async function readThresholds(
  file: string | ThresholdsFile,
): Promise<ThresholdTable | null> {
  const source = typeof file === 'string' ? thresholdTableFile(file) : file;
  const read = await source.readIfExists();
  return read === null ? null : thresholdTable(read, source.path);
}

/** The element-wise mean of fold tables: a fallback for an ensemble whose run has no run-level file. */
export function meanThresholds(tables: readonly ThresholdTable[]): ThresholdTable {
  if (tables.length === 0) throw new Error('meanThresholds: no tables');
  const ids = new Set(tables.flatMap((t) => Object.keys(t.perCriterion)));
  const perCriterion: Record<string, number> = {};
  for (const id of ids) {
    perCriterion[id] =
      tables.reduce((sum, t) => sum + (t.perCriterion[id] ?? t.global), 0) / tables.length;
  }
  return {
    global: tables.reduce((sum, t) => sum + t.global, 0) / tables.length,
    perCriterion,
    source: 'mean of folds',
  };
}

/** The threshold applied to a criterion: override > per-criterion > global > 0.5. */
export function thresholdFor(
  table: ThresholdTable | null,
  criterionId: string,
  override?: number | null,
): { threshold: number; origin: ThresholdOrigin } {
  if (override !== undefined && override !== null)
    return { threshold: override, origin: 'override' };
  if (!table) return { threshold: DEFAULT_THRESHOLD, origin: 'default' };
  const specific = table.perCriterion[criterionId];
  if (specific !== undefined) return { threshold: specific, origin: 'per_criterion' };
  return { threshold: table.global, origin: 'global' };
}
