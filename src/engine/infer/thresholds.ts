// Decision thresholds for inference. Training tunes them on each fold's inner validation part and
// saves them as thresholds.json (fold_i/, and the run-level one from aggregation); a user may
// override all of them with one number.
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';

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

function asThreshold(value: unknown): number | undefined {
  const n =
    typeof value === 'number'
      ? value
      : value !== null && typeof value === 'object'
        ? (value as { threshold?: unknown }).threshold
        : undefined;
  return typeof n === 'number' && Number.isFinite(n) && n >= 0 && n <= 1 ? n : undefined;
}

/**
 * Reads the shapes training and aggregation write: `{ global, perCriterion: {A1: t} }`, where a
 * threshold may also be `{ threshold: t, ... }` (with provenance beside it), optionally nested under
 * `thresholds`. Throws when there is no usable global threshold.
 */
export function parseThresholds(value: unknown, source: string): ThresholdTable {
  let root = value as Record<string, unknown> | null;
  if (root && typeof root === 'object' && asThreshold(root.global) === undefined) {
    const nested = root.thresholds as Record<string, unknown> | undefined;
    if (nested && typeof nested === 'object' && asThreshold(nested.global) !== undefined) {
      root = nested;
    }
  }
  const global = root && typeof root === 'object' ? asThreshold(root.global) : undefined;
  if (global === undefined) {
    throw new Error(`${source}: no "global" threshold in [0, 1]`);
  }
  const perCriterion: Record<string, number> = {};
  const table = (root as Record<string, unknown>).perCriterion;
  if (table && typeof table === 'object') {
    for (const [id, entry] of Object.entries(table as Record<string, unknown>)) {
      const t = asThreshold(entry);
      if (t !== undefined) perCriterion[id] = t;
    }
  }
  return { global, perCriterion, source };
}

/** The thresholds in `path`, or null when the file does not exist. */
export async function readThresholds(path: string): Promise<ThresholdTable | null> {
  if (!existsSync(path)) return null;
  let value: unknown;
  try {
    value = JSON.parse(await readFile(path, 'utf8'));
  } catch (error) {
    throw new Error(`${path}: not valid JSON (${(error as Error).message})`, { cause: error });
  }
  return parseThresholds(value, path);
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
