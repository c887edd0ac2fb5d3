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
  /**
   * Rows skipped for a wrong field count (already reported), with the fields they have mapped by
   * position, so that callers can tell "refers to a rejected row" from "refers to nothing".
   */
  skipped: CsvRow[];
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
    const located = locateQuoteFault(text.replace(/^\uFEFF/, ''));
    if (located !== undefined)
      problems.add(file, located.line, `not valid CSV: ${located.message}`);
    else
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
  const skipped: CsvRow[] = [];
  for (const r of withLines) {
    const values: Record<string, string> = {};
    header.forEach((h, i) => {
      values[h] = r.record[i] ?? '';
    });
    if (r.record.length !== header.length) {
      problems.add(
        file,
        r.line,
        `expected ${header.length} fields, found ${r.record.length} (unquoted comma or newline?)`,
      );
      skipped.push({ line: r.line, values });
      continue;
    }
    rows.push({ line: r.line, values });
  }
  return { file, header, rows, skipped };
}

/**
 * Finds where a quote went wrong, for the error message. csv-parse reports an unclosed quote at
 * the end of the file and a stray closing quote where it is closed, both possibly far below the
 * quote that opened the field; this walks the text with RFC 4180's rules (the ones csv-parse
 * applies with its defaults) and names the line where that quote opened and its field. Returns
 * undefined when it finds no quote fault (the parser's own message is used then).
 */
export function locateQuoteFault(text: string): { line: number; message: string } | undefined {
  let line = 1;
  let field = 0;
  let firstRecord = true;
  const header: string[] = [];
  const fieldName = (index: number) =>
    firstRecord || header[index] === undefined ? `${index + 1}` : `"${header[index]}"`;
  let i = 0;
  while (i < text.length) {
    let value = '';
    if (text[i] === '"') {
      const openLine = line;
      let j = i + 1;
      for (;;) {
        const close = text.indexOf('"', j);
        const segment = text.slice(j, close === -1 ? text.length : close);
        line += segment.split('\n').length - 1;
        value += segment;
        if (close === -1) {
          const lastLine = text.endsWith('\n') ? line - 1 : line;
          return {
            line: openLine,
            message: `the quote opened in field ${fieldName(field)} is never closed, so lines ${openLine}-${lastLine} read as one field`,
          };
        }
        if (text[close + 1] === '"') {
          value += '"';
          j = close + 2;
          continue;
        }
        i = close + 1;
        break;
      }
      const after = text[i];
      if (after !== undefined && after !== ',' && after !== '\n') {
        const where =
          line === openLine
            ? `is followed by "${after}" instead of a comma or the line end (a quote inside a quoted field must be doubled as "")`
            : `is closed only at line ${line}, where "${after}" follows it instead of a comma or the line end (a quote left open on line ${openLine}, or a quote inside the field not doubled as "")`;
        return {
          line: openLine,
          message: `the quote opened in field ${fieldName(field)} ${where}`,
        };
      }
    } else {
      const end = text.slice(i).search(/[,\n]/);
      value = end === -1 ? text.slice(i) : text.slice(i, i + end);
      const quote = value.indexOf('"');
      if (quote !== -1)
        return {
          line,
          message: `a quote in the middle of unquoted field ${fieldName(field)} (quote the whole field and double the quote as "")`,
        };
      i += value.length;
    }
    if (firstRecord) header.push(value.trim());
    if (text[i] === ',') field++;
    else if (text[i] === '\n') {
      line++;
      field = 0;
      firstRecord = false;
    }
    i++;
  }
  return undefined;
}
