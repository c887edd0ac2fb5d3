import { readFileSync } from 'node:fs';

import { DataError, type DataProblem } from './errors.js';

/** The nine ReDSM5 symptom names in criterion order A1..A9. */
export const SYMPTOMS = [
  'DEPRESSED_MOOD',
  'ANHEDONIA',
  'APPETITE_CHANGE',
  'SLEEP_ISSUES',
  'PSYCHOMOTOR',
  'FATIGUE',
  'WORTHLESSNESS',
  'COGNITIVE_ISSUES',
  'SUICIDAL_THOUGHTS',
] as const;

export type Symptom = (typeof SYMPTOMS)[number];

/** ReDSM5's annotation value for notable content that is not one of the nine symptoms. */
export const SPECIAL_CASE = 'SPECIAL_CASE';

export interface Criterion {
  id: string;
  symptom: Symptom;
  description: string;
}

export function isSymptom(value: string): value is Symptom {
  return (SYMPTOMS as readonly string[]).includes(value);
}

/**
 * Reads and validates the criteria file: exactly A1..A9 in order, each with its ReDSM5 symptom
 * name and a non-empty one-sentence description. Every problem is reported at once.
 */
export function loadCriteria(path: string): Criterion[] {
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(path, 'utf8'));
  } catch (err) {
    throw new DataError(`cannot read criteria file ${path}`, [
      { file: path, line: 0, message: (err as Error).message },
    ]);
  }
  const list = Array.isArray(raw) ? raw : (raw as { criteria?: unknown })?.criteria;
  const problems: DataProblem[] = [];
  const add = (message: string): void => {
    problems.push({ file: path, line: 0, message });
  };
  if (!Array.isArray(list)) {
    add('expected an array of criteria or an object with a "criteria" array');
    throw new DataError(`invalid criteria file ${path}`, problems);
  }
  if (list.length !== SYMPTOMS.length) {
    add(`expected ${SYMPTOMS.length} criteria (A1..A9), found ${list.length}`);
  }
  const criteria: Criterion[] = [];
  list.forEach((entry: unknown, i: number) => {
    const where = `criteria[${i}]`;
    if (entry === null || typeof entry !== 'object') {
      add(`${where}: expected an object`);
      return;
    }
    const { id, symptom, description } = entry as Record<string, unknown>;
    const expectedId = `A${i + 1}`;
    const expectedSymptom = SYMPTOMS[i];
    if (id !== expectedId) add(`${where}.id: expected "${expectedId}", got ${JSON.stringify(id)}`);
    if (symptom !== expectedSymptom) {
      add(
        `${where}.symptom: expected "${expectedSymptom ?? '(none)'}", got ${JSON.stringify(symptom)}`,
      );
    }
    if (typeof description !== 'string' || description.trim() === '') {
      add(`${where}.description: expected a non-empty string`);
    }
    if (
      typeof id === 'string' &&
      typeof symptom === 'string' &&
      isSymptom(symptom) &&
      typeof description === 'string'
    ) {
      criteria.push({ id, symptom, description: description.trim() });
    }
  });
  if (problems.length > 0) throw new DataError(`invalid criteria file ${path}`, problems);
  return criteria;
}
