// Turns what a user types for a criterion ("A4", "a4", "SLEEP_ISSUES", "sleep issues",
// "Sleep-Issues") into one of the nine criteria, so the CLI and JSONL inputs accept either form.
import type { Criterion } from '../data/index.js';

/** Upper case with spaces and hyphens as underscores: the form ReDSM5 symptom names take. */
function normalizeName(text: string): string {
  return text
    .trim()
    .toUpperCase()
    .replace(/[\s-]+/g, '_');
}

/** The criterion named by id or symptom name (case-insensitive), or undefined. */
export function findCriterion(criteria: readonly Criterion[], name: string): Criterion | undefined {
  const key = normalizeName(name);
  if (key === '') return undefined;
  return criteria.find((c) => c.id.toUpperCase() === key || c.symptom === key);
}

/** Like findCriterion, but throws a message listing the accepted names. */
export function resolveCriterion(criteria: readonly Criterion[], name: string): Criterion {
  const found = findCriterion(criteria, name);
  if (found) return found;
  throw new Error(
    `unknown criterion ${JSON.stringify(name)}: expected an id (${criteria
      .map((c) => c.id)
      .join(', ')}) or a symptom name (e.g. ${criteria[0]?.symptom ?? 'DEPRESSED_MOOD'})`,
  );
}
