import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

import {
  cleanText,
  DataError,
  loadCriteria,
  loadRedsm5,
  SYMPTOMS,
} from '../../../src/data/index.js';

const criteriaPath = resolve('data/dsm5/criteria.json');

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'mentallam-loader-'));
});
afterEach(() => {
  rmSync(dir, { recursive: true, force: true });
});

function write(name: string, text: string): void {
  writeFileSync(join(dir, name), text);
}

// Our own posts, in ReDSM5's layout, exercising the CSV features the real files use.
const GOOD_POSTS =
  '\uFEFFpost_id,text\r\n' +
  's_1_1,"I cannot sleep, and I keep thinking ""why bother"".\r\nSecond line here."\r\n' +
  's_2_7,Plain post with   extra\tspaces\u200B and a zero width space.\r\n' +
  's_10_3,"Ｆｕｌｌｗｉｄｔｈ text, with a comma"\r\n';
const GOOD_ANNOTATIONS =
  'post_id,sentence_id,sentence_text,DSM5_symptom,status,explanation\r\n' +
  's_1_1,s_1_1_1,"I cannot sleep, and so on.",SLEEP_ISSUES,1,"Reads as a sleep problem."\r\n' +
  's_1_1,s_1_1_2,"why bother",DEPRESSED_MOOD,0,"Not enough on its own."\r\n' +
  's_1_1,s_1_1_3,"why bother",SLEEP_ISSUES,1,"Second sentence for the same symptom."\r\n' +
  's_2_7,s_2_7_1,"Plain post",SPECIAL_CASE,1,"Notable, not a criterion."\r\n' +
  's_10_3,s_10_3_1,"text,\r\nwith a newline",WORTHLESSNESS,1,"Self-blame."\r\n';

describe('loadCriteria', () => {
  it('reads the nine criteria in order', () => {
    const criteria = loadCriteria(criteriaPath);
    expect(criteria.map((c) => c.id)).toEqual([
      'A1',
      'A2',
      'A3',
      'A4',
      'A5',
      'A6',
      'A7',
      'A8',
      'A9',
    ]);
    expect(criteria.map((c) => c.symptom)).toEqual([...SYMPTOMS]);
    for (const c of criteria) expect(c.description.length).toBeGreaterThan(20);
  });

  it('reports every problem in a bad criteria file', () => {
    const path = join(dir, 'criteria.json');
    writeFileSync(
      path,
      JSON.stringify([
        { id: 'A1', symptom: 'DEPRESSED_MOOD', description: '' },
        { id: 'A3', symptom: 'ANHEDONIA', description: 'x' },
      ]),
    );
    try {
      loadCriteria(path);
      throw new Error('expected a DataError');
    } catch (err) {
      expect(err).toBeInstanceOf(DataError);
      const messages = (err as DataError).problems.map((p) => p.message).join('\n');
      expect(messages).toMatch(/expected 9 criteria/);
      expect(messages).toMatch(/criteria\[0\]\.description/);
      expect(messages).toMatch(/criteria\[1\]\.id: expected "A2"/);
    }
  });
});

describe('cleanText', () => {
  it('applies NFKC, removes zero-width and control characters, collapses whitespace', () => {
    expect(cleanText('  Ｆｕｌｌ\u200Bwidth\u0007 \r\n\t text\u00A0here  ')).toBe(
      'Fullwidth text here',
    );
    expect(cleanText('e\u0301')).toBe('é');
    expect(cleanText('\u200D\u2060')).toBe('');
  });
});

describe('loadRedsm5 on a written fixture', () => {
  it('parses quotes, embedded newlines, BOM and CRLF; labels pairs; counts SPECIAL_CASE', () => {
    write('redsm5_posts.csv', GOOD_POSTS);
    write('redsm5_annotations.csv', GOOD_ANNOTATIONS);
    const ds = loadRedsm5({ dir, criteriaPath, countOverrideReason: 'fixture' });
    expect(ds.posts.map((p) => p.postId)).toEqual(['s_10_3', 's_1_1', 's_2_7']);
    expect(ds.posts[1]?.text).toBe(
      'I cannot sleep, and I keep thinking "why bother". Second line here.',
    );
    expect(ds.posts[2]?.text).toBe('Plain post with extra spaces and a zero width space.');
    expect(ds.posts[0]?.text).toBe('Fullwidth text, with a comma');
    expect(ds.pairs).toHaveLength(27);
    const positives = ds.pairs.filter((p) => p.label === 1).map((p) => `${p.postId}:${p.symptom}`);
    expect(positives).toEqual(['s_10_3:WORTHLESSNESS', 's_1_1:SLEEP_ISSUES']);
    const m = ds.manifest;
    expect(m.specialCaseRows).toBe(1);
    expect(m.counts).toMatchObject({
      posts: 3,
      pairs: 27,
      positivePairs: 2,
      annotationRows: 5,
      status0Rows: 1,
    });
    expect(m.countOverrideReason).toBe('fixture');
    expect(m.postsWithoutSymptoms).toBe(1);
    expect(m.positivesPerCriterion.find((c) => c.id === 'A4')?.positives).toBe(1);
    expect(m.hash).toMatch(/^[0-9a-f]{64}$/);
    expect(m.textLength.words.min).toBe(5);
    // The manifest must be safe to log: no post text in it.
    const serialised = JSON.stringify(m);
    for (const p of ds.posts) expect(serialised).not.toContain(p.text.slice(0, 12));
  });

  it('gives the same hash whatever the file order and line endings', () => {
    write('redsm5_posts.csv', GOOD_POSTS);
    write('redsm5_annotations.csv', GOOD_ANNOTATIONS);
    const a = loadRedsm5({ dir, criteriaPath, countOverrideReason: 'fixture' });
    const lines = GOOD_ANNOTATIONS.split('\r\n');
    const reordered = [lines[0], lines[5], lines[6], lines[3], lines[1], lines[2], lines[4], ''];
    write('redsm5_annotations.csv', reordered.join('\n'));
    write('redsm5_posts.csv', GOOD_POSTS.replace(/\r\n/g, '\n').replace('\uFEFF', ''));
    const b = loadRedsm5({ dir, criteriaPath, countOverrideReason: 'fixture' });
    expect(b.hash).toBe(a.hash);
    write('redsm5_annotations.csv', GOOD_ANNOTATIONS.replace('WORTHLESSNESS,1', 'WORTHLESSNESS,0'));
    expect(loadRedsm5({ dir, criteriaPath, countOverrideReason: 'x' }).hash).not.toBe(a.hash);
  });

  it('collects every kind of error with file:line', () => {
    write(
      'redsm5_posts.csv',
      'post_id,text\n' +
        's_1_1,"fine text"\n' +
        's_1_1,"duplicate id"\n' +
        's_3_1,"  \u200B "\n' +
        's_4_1,"multi\nline\ntext"\n',
    );
    write(
      'redsm5_annotations.csv',
      'post_id,sentence_id,sentence_text,DSM5_symptom,status,explanation\n' +
        's_9_9,s_9_9_1,"x",FATIGUE,1,"e"\n' +
        's_1_1,s_1_1_1,"x",TIREDNESS,1,"e"\n' +
        's_1_1,s_1_1_2,"x",FATIGUE,2,"e"\n' +
        's_4_1,s_4_1_1,"x",FATIGUE,yes,"e"\n',
    );
    try {
      loadRedsm5({ dir, criteriaPath, countOverrideReason: 'fixture' });
      throw new Error('expected a DataError');
    } catch (err) {
      expect(err).toBeInstanceOf(DataError);
      const shown = (err as DataError).problems.map((p) => `${p.file}:${p.line}: ${p.message}`);
      expect(shown).toEqual([
        'redsm5_posts.csv:3: duplicate post_id "s_1_1" (first at line 2)',
        'redsm5_posts.csv:4: empty text for post_id "s_3_1"',
        'redsm5_annotations.csv:2: annotation for unknown post_id "s_9_9"',
        expect.stringMatching(/^redsm5_annotations\.csv:3: unknown DSM5_symptom "TIREDNESS"/),
        'redsm5_annotations.csv:4: status must be 0 or 1, got "2"',
        'redsm5_annotations.csv:5: status must be 0 or 1, got "yes"',
      ]);
    }
  });

  it('reports a missing column and stops at maxErrors', () => {
    write('redsm5_posts.csv', 'post_id,body\ns_1,hello\n');
    write('redsm5_annotations.csv', 'post_id,DSM5_symptom\n');
    expect(() => loadRedsm5({ dir, criteriaPath })).toThrow(
      /redsm5_posts\.csv:1: missing column "text"[\s\S]*redsm5_annotations\.csv:1: missing column "status"/,
    );
    const many = ['post_id,text', ...Array.from({ length: 30 }, () => 's_1,')].join('\n');
    write('redsm5_posts.csv', many);
    write(
      'redsm5_annotations.csv',
      'post_id,sentence_id,sentence_text,DSM5_symptom,status,explanation\n',
    );
    try {
      loadRedsm5({ dir, criteriaPath, maxErrors: 5 });
      throw new Error('expected a DataError');
    } catch (err) {
      expect((err as DataError).problems).toHaveLength(5);
      expect((err as DataError).truncated).toBe(true);
    }
  });

  it('reports malformed CSV with its line', () => {
    write('redsm5_posts.csv', 'post_id,text\ns_1,"ok"\ns_2,"bad"quote\n');
    write(
      'redsm5_annotations.csv',
      'post_id,sentence_id,sentence_text,DSM5_symptom,status,explanation\n',
    );
    expect(() => loadRedsm5({ dir, criteriaPath })).toThrow(/redsm5_posts\.csv:3: not valid CSV/);
  });

  it('fails on a size mismatch unless an override reason is given', () => {
    write('redsm5_posts.csv', GOOD_POSTS);
    write('redsm5_annotations.csv', GOOD_ANNOTATIONS);
    expect(() => loadRedsm5({ dir, criteriaPath })).toThrow(/expected 1484 posts, found 3/);
    expect(() => loadRedsm5({ dir, criteriaPath, countOverrideReason: '  ' })).toThrow(DataError);
  });
});

describe('loadRedsm5 with a pair-level CSV', () => {
  it('reads labels given as 1/0 or yes/no, by criterion id or symptom name', () => {
    write('redsm5_posts.csv', 'post_id,text\na,first post\nb,second post\n');
    const rows = ['post_id,criterion_id,label'];
    for (const p of ['a', 'b']) {
      SYMPTOMS.forEach((s, i) => {
        const positive = (p === 'a' && i === 0) || (p === 'b' && s === 'FATIGUE');
        rows.push(
          p === 'a' ? `${p},A${i + 1},${positive ? 1 : 0}` : `${p},${s},${positive ? 'Yes' : 'no'}`,
        );
      });
    }
    write('redsm5_pairs.csv', rows.join('\r\n'));
    const ds = loadRedsm5({ dir, criteriaPath, countOverrideReason: 'pairs fixture' });
    expect(ds.manifest.source).toBe('pairs');
    expect(
      ds.pairs.filter((p) => p.label === 1).map((p) => `${p.postId}:${p.criterionId}`),
    ).toEqual(['a:A1', 'b:A6']);
  });

  it('reports bad, duplicate and missing pairs', () => {
    write('redsm5_posts.csv', 'post_id,text\na,first post\n');
    write('labels.csv', 'post_id,criterion_id,label\na,A1,1\na,A1,0\na,A10,1\nz,A2,maybe\n');
    try {
      loadRedsm5({
        dir,
        criteriaPath,
        countOverrideReason: 'x',
        pairsFile: join(dir, 'labels.csv'),
      });
      throw new Error('expected a DataError');
    } catch (err) {
      const shown = (err as DataError).problems.map((p) => `${p.file}:${p.line}: ${p.message}`);
      expect(shown.slice(0, 5)).toEqual([
        'labels.csv:3: duplicate pair (a, A1) (first at line 2)',
        expect.stringMatching(/^labels\.csv:4: unknown criterion "A10"/),
        'labels.csv:5: label for unknown post_id "z"',
        'labels.csv:5: label must be 1/0 or yes/no, got "maybe"',
        'labels.csv:0: no label for pair (a, A2)',
      ]);
    }
  });
});

describe("loadRedsm5 on a sample-sized data set in ReDSM5's layout", () => {
  // 17 posts and 25 annotation rows (several per post, the symptoms cycling), written here.
  function writeSample(): void {
    const posts = Array.from({ length: 17 }, (_, i) => `s_${100 + i}_${i % 4}`);
    write(
      'redsm5_posts.csv',
      `post_id,text\n${posts.map((id, i) => `${id},"Post ${i}, in its own words: day ${i} of feeling low."`).join('\n')}\n`,
    );
    const rows = Array.from({ length: 25 }, (_, i) => {
      const post = posts[i % posts.length]!;
      return `${post},${post}_${i},"sentence ${i}",${SYMPTOMS[i % SYMPTOMS.length]},${i % 3 === 0 ? 0 : 1},"why ${i}"`;
    });
    write(
      'redsm5_annotations.csv',
      `post_id,sentence_id,sentence_text,DSM5_symptom,status,explanation\n${rows.join('\n')}\n`,
    );
  }

  it('reads 17 posts and 153 pairs with a count override that does not change the hash', () => {
    writeSample();
    expect(() => loadRedsm5({ dir, criteriaPath })).toThrow(/expected 1484 posts, found 17/);
    const ds = loadRedsm5({ dir, criteriaPath, countOverrideReason: 'public sample' });
    expect(ds.posts).toHaveLength(17);
    expect(ds.pairs).toHaveLength(153);
    expect(ds.manifest.counts.annotationRows).toBe(25);
    expect(ds.manifest.countOverrideReason).toBe('public sample');
    const again = loadRedsm5({ dir, criteriaPath, countOverrideReason: 'other reason' });
    expect(again.hash).toBe(ds.hash);
  });
});
