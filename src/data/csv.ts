import { readFileSync } from 'node:fs';
import { basename } from 'node:path';

import { parse } from 'csv-parse/sync';

import type { ProblemCollector } from './errors.js';

export interface CsvRow {
  /** 1-based physical line where the record starts (records may span lines). */
  line: number;
  values: Record<string, string>;
}

export interface CsvTable {
  /** File name as shown in error messages. */
  file: string;
  header: string[];
  rows: CsvRow[];
}

interface ParsedRecord {
  record: string[];
  info: { lines: number };
  raw: string;
}

/**
 * Reads an RFC 4180 CSV (quotes, embedded newlines, BOM, CRLF) into rows keyed by header.
 * Returns null when the file cannot be used at all (unparseable or a required column missing);
 * the reason is in `problems`. Row-level problems (wrong field count) are recorded and the row
 * skipped, so one bad row does not hide the others.
 */
export function readCsv(
  path: string,
  requiredColumns: readonly string[],
  problems: ProblemCollector,
): CsvTable | null {
  const file = basename(path);
  // csv-parse counts a CRLF inside a quoted field as two lines; normalising line endings first
  // makes its line numbers match what an editor shows. Cleaning later collapses newlines anyway.
  const text = readFileSync(path, 'utf8').replace(/\r\n?/g, '\n');
  let records: ParsedRecord[];
  try {
    records = parse(text, {
      bom: true,
      info: true,
      raw: true,
      relax_column_count: true,
      skip_empty_lines: false,
    }) as unknown as ParsedRecord[];
  } catch (err) {
    const e = err as Error & { lines?: number };
    problems.add(file, e.lines ?? 0, `not valid CSV: ${e.message.replace(/ at line \d+/, '')}`);
    return null;
  }
  const withLines = records
    .map((r) => {
      const inner = r.raw.endsWith('\n') ? r.raw.slice(0, -1) : r.raw;
      const spanned = inner.split('\n').length - 1;
      return { record: r.record, line: r.info.lines - spanned };
    })
    .filter((r) => !(r.record.length === 1 && r.record[0]?.trim() === ''));
  const headerRecord = withLines.shift();
  if (!headerRecord) {
    problems.add(file, 0, 'file is empty (no header row)');
    return null;
  }
  const header = headerRecord.record.map((h) => h.trim());
  const missing = requiredColumns.filter((c) => !header.includes(c));
  if (missing.length > 0) {
    problems.add(
      file,
      headerRecord.line,
      `missing column${missing.length > 1 ? 's' : ''} ${missing.map((m) => `"${m}"`).join(', ')} (header has ${header.map((h) => `"${h}"`).join(', ')})`,
    );
    return null;
  }
  const rows: CsvRow[] = [];
  for (const r of withLines) {
    if (r.record.length !== header.length) {
      problems.add(
        file,
        r.line,
        `expected ${header.length} fields, found ${r.record.length} (unquoted comma or newline?)`,
      );
      continue;
    }
    const values: Record<string, string> = {};
    header.forEach((h, i) => {
      values[h] = r.record[i] ?? '';
    });
    rows.push({ line: r.line, values });
  }
  return { file, header, rows };
}
