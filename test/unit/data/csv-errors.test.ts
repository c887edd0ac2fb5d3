/**
 * CSV errors point at their cause (issue 16, "Minor"): an unclosed quote is reported at the line
 * where it opens, and one broken posts file (or row) is reported once, followed by a count of the
 * annotation rows it makes unverifiable, not by a line per row.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

import { DataError, loadRedsm5 } from '../../../src/data/index.js';

const criteriaPath = resolve('data/dsm5/criteria.json');
const ANNOTATION_HEADER = 'post_id,sentence_id,sentence_text,DSM5_symptom,status,explanation';

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'mentallam-csv-'));
});
afterEach(() => {
  rmSync(dir, { recursive: true, force: true });
});

function write(name: string, lines: string[]): void {
  writeFileSync(join(dir, name), `${lines.join('\n')}\n`);
}

function annotations(postIds: string[]): string[] {
  return [ANNOTATION_HEADER, ...postIds.map((id, i) => `${id},${id}_${i},"x",FATIGUE,1,"e"`)];
}

function problems(options: { pairsFile?: string } = {}): string[] {
  try {
    loadRedsm5({ dir, criteriaPath, countOverrideReason: 'fixture', ...options });
  } catch (error) {
    expect(error).toBeInstanceOf(DataError);
    return (error as DataError).problems.map((p) => `${p.file}:${p.line}: ${p.message}`);
  }
  throw new Error('expected a DataError');
}

const posts = (n: number) => Array.from({ length: n }, (_, i) => `s_${i + 1}`);

describe('an unclosed quote', () => {
  test('is reported at the line where it opens, naming the field, not at the end of the file', () => {
    write('redsm5_posts.csv', [
      'post_id,text',
      's_1,"fine"',
      's_2,"a quote that is never closed',
      's_3,plain',
      's_4,more',
    ]);
    write('redsm5_annotations.csv', annotations([]));
    expect(problems()).toEqual([
      'redsm5_posts.csv:3: not valid CSV: the quote opened in field "text" is never closed, so lines 3-5 read as one field',
    ]);
  });

  test('that a later quote closes: reported where it opens, naming where it was closed', () => {
    write('redsm5_posts.csv', [
      'post_id,text',
      's_1,"fine"',
      's_2,"never closed',
      's_3,plain',
      's_4,"quoted"',
    ]);
    write('redsm5_annotations.csv', annotations([]));
    expect(problems()).toEqual([
      'redsm5_posts.csv:3: not valid CSV: the quote opened in field "text" is closed only at line 5, where "q" follows it instead of a comma or the line end (a quote left open on line 3, or a quote inside the field not doubled as "")',
    ]);
  });

  test('on the second-to-last line', () => {
    write('redsm5_posts.csv', ['post_id,text', 's_1,"fine"', 's_2,"open', 's_3,last']);
    write('redsm5_annotations.csv', annotations([]));
    expect(problems()).toEqual([expect.stringMatching(/^redsm5_posts\.csv:3: not valid CSV/)]);
  });

  test('a quote inside an unquoted field, and one not doubled inside a quoted field', () => {
    write('redsm5_posts.csv', ['post_id,text', 's_1,"fine"', 's_2,say "hi"']);
    write('redsm5_annotations.csv', annotations([]));
    expect(problems()).toEqual([
      'redsm5_posts.csv:3: not valid CSV: a quote in the middle of unquoted field "text" (quote the whole field and double the quote as "")',
    ]);
    write('redsm5_posts.csv', ['post_id,text', 's_1,"say "hi" here"']);
    expect(problems()).toEqual([
      'redsm5_posts.csv:2: not valid CSV: the quote opened in field "text" is followed by "h" instead of a comma or the line end (a quote inside a quoted field must be doubled as "")',
    ]);
  });

  test('after a quoted field spanning lines in the same record', () => {
    write('redsm5_annotations.csv', [
      ANNOTATION_HEADER,
      's_1,s_1_1,"two\nlines",FATIGUE,1,"never closed',
      's_1,s_1_2,x,FATIGUE,1,e',
    ]);
    write('redsm5_posts.csv', ['post_id,text', 's_1,text']);
    expect(problems()).toEqual([
      expect.stringMatching(
        /^redsm5_annotations\.csv:3: not valid CSV: the quote opened in field "explanation" is never closed/,
      ),
    ]);
  });
});

describe('one error, not fifty', () => {
  test('an unreadable posts file: its error, then one count of the annotation rows it leaves unchecked', () => {
    write('redsm5_posts.csv', [
      'post_id,text',
      's_1,"fine"',
      's_2,"open',
      ...posts(60)
        .slice(2)
        .map((id) => `${id},text`),
    ]);
    write('redsm5_annotations.csv', annotations(posts(60)));
    const shown = problems();
    expect(shown).toEqual([
      expect.stringMatching(/^redsm5_posts\.csv:3: not valid CSV/),
      'redsm5_annotations.csv:0: 60 rows not checked against the posts: redsm5_posts.csv could not be read (its error is above)',
    ]);
  });

  test('rejected post rows: each reported once, then a count of the annotation rows that refer to them', () => {
    write('redsm5_posts.csv', [
      'post_id,text',
      's_1,fine',
      's_2,an unquoted, comma',
      's_3,"  "',
      's_4,fine',
    ]);
    write('redsm5_annotations.csv', annotations(['s_1', 's_2', 's_2', 's_3', 's_9', 's_4', 's_3']));
    expect(problems()).toEqual([
      'redsm5_posts.csv:3: expected 2 fields, found 3 (unquoted comma or newline?)',
      'redsm5_posts.csv:4: empty text for post_id "s_3"',
      'redsm5_annotations.csv:6: annotation for unknown post_id "s_9"',
      'redsm5_annotations.csv:0: 4 rows refer to the 2 posts rejected above (s_2, s_3); not listed one by one',
    ]);
  });

  test('the same for a pair-level label file', () => {
    write('redsm5_posts.csv', ['post_id,text', 's_1,fine', 's_2,"open']);
    const labels = ['post_id,criterion_id,label'];
    for (const id of posts(8)) for (let c = 1; c <= 9; c++) labels.push(`${id},A${c},0`);
    write('labels.csv', labels);
    expect(problems({ pairsFile: join(dir, 'labels.csv') })).toEqual([
      expect.stringMatching(/^redsm5_posts\.csv:3: not valid CSV/),
      'labels.csv:0: 72 rows not checked against the posts: redsm5_posts.csv could not be read (its error is above)',
    ]);
  });
});
