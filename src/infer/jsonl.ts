// Line-by-line JSONL input and output for batch inference. Input is read through readline, whose
// async iterator pauses the source stream once about a thousand lines wait unread (Node >= 18), so
// memory stays bounded by the chunk being scored, whatever the file size. A bad line becomes an
// error record and never stops the rest.
import { createInterface } from 'node:readline';

import type { Criterion } from '../data/index.js';
import { findCriterion } from './criteria.js';

/** One input record: `criterion` absent = all nine criteria. */
export interface InferInput {
  id?: string | number;
  post: string;
  criterion?: string;
}

/** A raw line with its 1-based number in the input. */
export interface InputLine {
  line: number;
  text: string;
}

/** A line that could not be scored; written to the output in place of its predictions. */
export interface ErrorRecord {
  line: number;
  id?: string | number;
  error: string;
}

/** A parsed, valid input line: the criteria it asks about, resolved. */
export interface ParsedLine {
  line: number;
  id?: string | number;
  post: string;
  criteria: Criterion[];
}

/** Where a stream picks up after an interrupted run: records already scored are read, not yielded. */
export interface SkipRecords {
  /** Non-blank lines to read past (a whole number of chunks keeps the chunks as they were). */
  records: number;
  /**
   * The line number the last skipped record must have: the output being continued says so, and
   * a different number means another input file (or an edited one).
   */
  lastLine: number | null;
}

/**
 * Yields the input's non-blank lines in chunks of at most `chunkSize`, after `skip.records`
 * records. The readline interface is created and iterated at once: awaiting in between can drop
 * lines. A read error of the input (a file removed under us) rejects the iteration.
 */
export async function* readLineChunks(
  input: NodeJS.ReadableStream,
  chunkSize: number,
  skip: SkipRecords = { records: 0, lastLine: null },
): AsyncGenerator<InputLine[]> {
  if (!Number.isInteger(chunkSize) || chunkSize < 1) {
    throw new RangeError(`chunkSize must be a positive integer, got ${chunkSize}`);
  }
  let readError: Error | null = null;
  const onError = (error: Error) => {
    readError = error;
  };
  input.on('error', onError);
  const lines = createInterface({ input, crlfDelay: Infinity });
  let chunk: InputLine[] = [];
  let number = 0;
  let skipped = 0;
  const checkSkipped = () => {
    if (skip.lastLine !== null && number !== skip.lastLine) {
      throw new ResumeMismatchError(
        `the output holds ${skip.records} records ending at input line ${skip.lastLine}, but the ` +
          `input's record ${skip.records} is on line ${number}: it is not the input that output was made from`,
      );
    }
  };
  try {
    for await (const text of lines) {
      number += 1;
      // A blank line (often the last one) is no record; numbering still counts it.
      if (text.trim() === '') continue;
      if (skipped < skip.records) {
        skipped += 1;
        if (skipped === skip.records) checkSkipped();
        continue;
      }
      chunk.push({ line: number, text: number === 1 ? text.replace(/^\uFEFF/, '') : text });
      if (chunk.length >= chunkSize) {
        yield chunk;
        chunk = [];
      }
    }
  } finally {
    lines.close();
    input.off('error', onError);
  }
  if (readError) throw readError;
  if (skipped < skip.records) {
    throw new ResumeMismatchError(
      `the output holds ${skip.records} records but the input has only ${skipped}: ` +
        'it is not the input that output was made from',
    );
  }
  if (chunk.length > 0) yield chunk;
}

/** The output being continued does not belong to this input. */
export class ResumeMismatchError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ResumeMismatchError';
  }
}

const isId = (value: unknown): value is string | number =>
  typeof value === 'string' || (typeof value === 'number' && Number.isFinite(value));

/**
 * Validates one record (already parsed from JSON, or given in the API). Errors name the field; they
 * never quote the post, since error records are written next to predictions and may be shared.
 */
export function validateInput(
  value: unknown,
  line: number,
  criteria: readonly Criterion[],
): ParsedLine | ErrorRecord {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    return { line, error: 'expected a JSON object {id?, post, criterion?}' };
  }
  const record = value as Record<string, unknown>;
  const id = record.id;
  const withId = (error: string): ErrorRecord => (isId(id) ? { line, id, error } : { line, error });
  if (id !== undefined && id !== null && !isId(id)) {
    return { line, error: 'id must be a string or a number' };
  }
  if (!('post' in record) || record.post === undefined || record.post === null) {
    return withId('missing "post"');
  }
  if (typeof record.post !== 'string') return withId('"post" must be a string');
  if (record.post.trim() === '') return withId('"post" is empty');
  let selected: Criterion[] = [...criteria];
  const criterion = record.criterion;
  if (criterion !== undefined && criterion !== null) {
    if (typeof criterion !== 'string') return withId('"criterion" must be a string');
    const found = findCriterion(criteria, criterion);
    if (!found) {
      // The criterion name is user input but not post text: quoting it helps and leaks nothing.
      return withId(
        `unknown criterion ${JSON.stringify(criterion.slice(0, 64))} (expected A1..A9 or a symptom name)`,
      );
    }
    selected = [found];
  }
  return { line, ...(isId(id) ? { id } : {}), post: record.post, criteria: selected };
}

/** Parses and validates one JSONL line. */
export function parseInputLine(
  input: InputLine,
  criteria: readonly Criterion[],
): ParsedLine | ErrorRecord {
  let value: unknown;
  try {
    value = JSON.parse(input.text);
  } catch (error) {
    return { line: input.line, error: `invalid JSON: ${(error as Error).message}` };
  }
  return validateInput(value, input.line, criteria);
}

export function isErrorRecord(value: ParsedLine | ErrorRecord): value is ErrorRecord {
  return 'error' in value;
}

/**
 * Writes JSONL text to a stream and resolves once the stream has handed it on (to the kernel, for a
 * file), so what was written survives the process being killed. A stream error (disk full, a
 * closed pipe) rejects the write instead of crashing the process.
 */
export function createJsonlWriter(output: NodeJS.WritableStream): {
  /** One record. */
  write(record: object): Promise<void>;
  /** Records already serialised, one per line, each ending in a newline. */
  writeText(text: string): Promise<void>;
  /** Stops listening for the stream's errors. */
  close(): void;
} {
  let failed: Error | null = null;
  const onError = (error: Error) => {
    failed = error;
  };
  output.on('error', onError);
  const writeText = (text: string) =>
    new Promise<void>((resolve, reject) => {
      if (failed) {
        reject(failed);
        return;
      }
      if (text === '') {
        resolve();
        return;
      }
      output.write(text, (error?: Error | null) => {
        if (error || failed) reject(error ?? failed);
        else resolve();
      });
    });
  return {
    write: (record) => writeText(`${JSON.stringify(record)}\n`),
    writeText,
    close: () => output.off('error', onError),
  };
}
