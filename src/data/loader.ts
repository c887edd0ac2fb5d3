import { existsSync } from 'node:fs';
import { basename, join } from 'node:path';

import { cleanText, codePointLength, compareCodePoints, wordCount } from './clean.js';
import { type Criterion, isSymptom, loadCriteria, SPECIAL_CASE, type Symptom } from './criteria.js';
import { readCsv } from './csv.js';
import { DataError, ProblemCollector } from './errors.js';
import { DATASET_HASH_FORMAT, datasetHash } from './hash.js';
import { summaryStats } from './stats.js';
import type { Dataset, DatasetManifest, Pair, Post } from './types.js';

/** ReDSM5's published size: 1,484 posts × 9 criteria. */
export const EXPECTED_COUNTS = { posts: 1484, criteria: 9, pairs: 13356 } as const;

// The dataset card also names the files with older names; accept both.
const POSTS_FILES = ['redsm5_posts.csv', 'redsm5_full_posts.csv'];
const ANNOTATION_FILES = ['redsm5_annotations.csv', 'redsm5_annotations_long.csv'];
const PAIRS_FILES = ['redsm5_pairs.csv'];

export interface LoadRedsm5Options {
  /** Directory with redsm5_posts.csv and redsm5_annotations.csv (or redsm5_pairs.csv). */
  dir: string;
  criteriaPath: string;
  /** Allows a post/pair count other than ReDSM5's; recorded in the manifest. */
  countOverrideReason?: string | null;
  /** Problems collected before giving up (default 50). */
  maxErrors?: number;
  /** Pair-level ground truth (post_id,criterion_id,label); used instead of annotations. */
  pairsFile?: string;
}

function firstExisting(dir: string, names: string[]): string | null {
  for (const n of names) {
    const p = join(dir, n);
    if (existsSync(p)) return p;
  }
  return null;
}

/**
 * The posts read, and what label rows need to tell their own errors from consequences of a posts
 * problem already reported: ids of rejected post rows, and whether the file could be read at all.
 */
interface PostsRead {
  file: string;
  posts: Post[];
  ids: Set<string>;
  rejectedIds: Set<string>;
  unreadable: boolean;
}

function readPosts(path: string, problems: ProblemCollector): PostsRead {
  const table = readCsv(path, ['post_id', 'text'], problems);
  const read: PostsRead = {
    file: basename(path),
    posts: [],
    ids: new Set(),
    rejectedIds: new Set(),
    unreadable: table === null,
  };
  if (!table) return read;
  for (const row of table.skipped) {
    const postId = (row.values.post_id ?? '').trim();
    if (postId !== '') read.rejectedIds.add(postId);
  }
  const firstLine = new Map<string, number>();
  for (const row of table.rows) {
    const postId = (row.values.post_id ?? '').trim();
    if (postId === '') {
      problems.add(table.file, row.line, 'empty post_id');
      continue;
    }
    const seen = firstLine.get(postId);
    if (seen !== undefined) {
      problems.add(table.file, row.line, `duplicate post_id "${postId}" (first at line ${seen})`);
      continue;
    }
    firstLine.set(postId, row.line);
    const text = cleanText(row.values.text ?? '');
    if (text === '') {
      problems.add(table.file, row.line, `empty text for post_id "${postId}"`);
      read.rejectedIds.add(postId);
      continue;
    }
    read.posts.push({ postId, text });
    read.ids.add(postId);
  }
  // An id both rejected and read (a bad row and a good one) is a duplicate, reported as such.
  for (const id of read.ids) read.rejectedIds.delete(id);
  return read;
}

/**
 * Checks label rows' post ids against the posts read. A row naming a post that was rejected, or
 * any row when the posts file could not be read, is a consequence of an error already reported:
 * those are counted and reported once, after the rows' own errors, instead of once per row.
 */
class PostIdCheck {
  private consequences = 0;
  private readonly rejectedSeen = new Set<string>();

  constructor(
    private readonly posts: PostsRead,
    private readonly file: string,
    private readonly problems: ProblemCollector,
  ) {}

  /** Whether `postId` is a post read; reports it when it names nothing at all. */
  check(postId: string, line: number, what: string): boolean {
    if (this.posts.ids.has(postId)) return true;
    if (this.posts.unreadable || this.posts.rejectedIds.has(postId)) {
      this.consequences++;
      if (!this.posts.unreadable) this.rejectedSeen.add(postId);
    } else this.problems.add(this.file, line, `${what} for unknown post_id "${postId}"`);
    return false;
  }

  /** The one line that stands for every consequence. */
  report(): void {
    if (this.consequences === 0) return;
    if (this.posts.unreadable) {
      this.problems.add(
        this.file,
        0,
        `${this.consequences} rows not checked against the posts: ${this.posts.file} could not be read (its error is above)`,
      );
      return;
    }
    const ids = [...this.rejectedSeen].sort(compareCodePoints);
    const shown = ids.slice(0, 5).join(', ') + (ids.length > 5 ? ', ...' : '');
    this.problems.add(
      this.file,
      0,
      `${this.consequences} rows refer to the ${ids.length} post${ids.length === 1 ? '' : 's'} rejected above (${shown}); not listed one by one`,
    );
  }
}

interface LabelResult {
  positives: Set<string>;
  annotationRows: number;
  status0Rows: number;
  specialCaseRows: number;
}

const pairKey = (postId: string, criterionId: string): string => `${postId}\u0000${criterionId}`;

function readAnnotations(
  path: string,
  posts: PostsRead,
  criteria: Criterion[],
  problems: ProblemCollector,
): LabelResult {
  const result: LabelResult = {
    positives: new Set(),
    annotationRows: 0,
    status0Rows: 0,
    specialCaseRows: 0,
  };
  const table = readCsv(path, ['post_id', 'DSM5_symptom', 'status'], problems);
  if (!table) return result;
  const postCheck = new PostIdCheck(posts, table.file, problems);
  const idBySymptom = new Map<string, string>(criteria.map((c) => [c.symptom, c.id]));
  for (const row of table.rows) {
    result.annotationRows++;
    const postId = (row.values.post_id ?? '').trim();
    const symptom = (row.values.DSM5_symptom ?? '').trim();
    const status = (row.values.status ?? '').trim();
    let ok = postCheck.check(postId, row.line, 'annotation');
    if (symptom !== SPECIAL_CASE && !isSymptom(symptom)) {
      problems.add(
        table.file,
        row.line,
        `unknown DSM5_symptom "${symptom}" (expected one of the nine symptoms or ${SPECIAL_CASE})`,
      );
      ok = false;
    }
    if (status !== '0' && status !== '1') {
      problems.add(table.file, row.line, `status must be 0 or 1, got "${status}"`);
      ok = false;
    }
    if (!ok) continue;
    if (symptom === SPECIAL_CASE) {
      // Clinically notable but not one of the nine: never mapped to a criterion.
      result.specialCaseRows++;
      continue;
    }
    if (status === '0') {
      result.status0Rows++;
      continue;
    }
    const criterionId = idBySymptom.get(symptom);
    if (criterionId !== undefined) result.positives.add(pairKey(postId, criterionId));
  }
  postCheck.report();
  return result;
}

const LABEL_VALUES: Record<string, 0 | 1> = { '1': 1, '0': 0, yes: 1, no: 0 };

function readPairLabels(
  path: string,
  posts: PostsRead,
  criteria: Criterion[],
  problems: ProblemCollector,
): LabelResult {
  const result: LabelResult = {
    positives: new Set(),
    annotationRows: 0,
    status0Rows: 0,
    specialCaseRows: 0,
  };
  const table = readCsv(path, ['post_id', 'criterion_id', 'label'], problems);
  if (!table) return result;
  const postCheck = new PostIdCheck(posts, table.file, problems);
  const idByName = new Map<string, string>();
  for (const c of criteria) {
    idByName.set(c.id.toUpperCase(), c.id);
    idByName.set(c.symptom, c.id);
  }
  const seen = new Map<string, number>();
  for (const row of table.rows) {
    const postId = (row.values.post_id ?? '').trim();
    const rawCriterion = (row.values.criterion_id ?? '').trim();
    const rawLabel = (row.values.label ?? '').trim().toLowerCase();
    const criterionId = idByName.get(rawCriterion.toUpperCase());
    const label = LABEL_VALUES[rawLabel];
    let ok = postCheck.check(postId, row.line, 'label');
    if (criterionId === undefined) {
      problems.add(
        table.file,
        row.line,
        `unknown criterion "${rawCriterion}" (expected A1..A9 or a symptom name)`,
      );
      ok = false;
    }
    if (label === undefined) {
      problems.add(table.file, row.line, `label must be 1/0 or yes/no, got "${rawLabel}"`);
      ok = false;
    }
    if (!ok || criterionId === undefined) continue;
    const key = pairKey(postId, criterionId);
    const first = seen.get(key);
    if (first !== undefined) {
      problems.add(
        table.file,
        row.line,
        `duplicate pair (${postId}, ${criterionId}) (first at line ${first})`,
      );
      continue;
    }
    seen.set(key, row.line);
    if (label === 1) result.positives.add(key);
  }
  postCheck.report();
  // A pair file is ground truth: a missing pair would silently become a negative otherwise.
  if (!problems.full) {
    for (const postId of [...posts.ids].sort(compareCodePoints)) {
      for (const c of criteria) {
        if (!seen.has(pairKey(postId, c.id))) {
          problems.add(table.file, 0, `no label for pair (${postId}, ${c.id})`);
        }
      }
      if (problems.full) break;
    }
  }
  return result;
}

/**
 * Loads ReDSM5 (or a file set in its layout), validates it, cleans the text and expands it to
 * posts × criteria pairs with a manifest and a stable hash. All problems in the files are
 * reported together in one DataError (up to `maxErrors`).
 */
export function loadRedsm5(options: LoadRedsm5Options): Dataset {
  const { dir, criteriaPath } = options;
  const maxErrors = options.maxErrors ?? 50;
  const overrideReason = options.countOverrideReason?.trim() || null;
  const criteria = loadCriteria(criteriaPath);
  const problems = new ProblemCollector(maxErrors);

  const postsPath = firstExisting(dir, POSTS_FILES);
  const pairsPath = options.pairsFile ?? firstExisting(dir, PAIRS_FILES);
  const annotationsPath = options.pairsFile ? null : firstExisting(dir, ANNOTATION_FILES);
  if (!postsPath || (!annotationsPath && !pairsPath)) {
    throw new DataError(`no ReDSM5 files in ${dir}`, [
      {
        file: dir,
        line: 0,
        message: `expected ${POSTS_FILES[0]} and ${ANNOTATION_FILES[0]} (or ${PAIRS_FILES[0]})`,
      },
    ]);
  }
  if (options.pairsFile && !existsSync(options.pairsFile)) {
    throw new DataError(`pair file not found`, [
      { file: options.pairsFile, line: 0, message: 'file does not exist' },
    ]);
  }

  const postsRead = readPosts(postsPath, problems);
  const posts = postsRead.posts;
  const source: DatasetManifest['source'] = annotationsPath ? 'annotations' : 'pairs';
  const labelPath = (annotationsPath ?? pairsPath) as string;
  const labels = annotationsPath
    ? readAnnotations(annotationsPath, postsRead, criteria, problems)
    : readPairLabels(labelPath, postsRead, criteria, problems);
  problems.throwIfAny(`invalid ReDSM5 data in ${dir}`);

  posts.sort((a, b) => compareCodePoints(a.postId, b.postId));
  const pairs: Pair[] = [];
  for (const post of posts) {
    for (const c of criteria) {
      const label = labels.positives.has(pairKey(post.postId, c.id)) ? 1 : 0;
      pairs.push({ postId: post.postId, criterionId: c.id, symptom: c.symptom, label });
    }
  }

  const actual = { posts: posts.length, criteria: criteria.length, pairs: pairs.length };
  const mismatched = (Object.keys(EXPECTED_COUNTS) as (keyof typeof EXPECTED_COUNTS)[]).filter(
    (k) => actual[k] !== EXPECTED_COUNTS[k],
  );
  if (mismatched.length > 0 && overrideReason === null) {
    throw new DataError(
      `ReDSM5 size mismatch in ${dir}; set data.count_override.reason to load a different size`,
      mismatched.map((k) => ({
        file: basename(postsPath),
        line: 0,
        message: `expected ${EXPECTED_COUNTS[k]} ${k}, found ${actual[k]}`,
      })),
    );
  }

  const hash = datasetHash(posts, pairs, criteria);
  const positivesPerCriterion = criteria.map((c) => ({
    id: c.id,
    symptom: c.symptom as Symptom,
    positives: pairs.filter((p) => p.criterionId === c.id && p.label === 1).length,
  }));
  const positivePosts = new Set(pairs.filter((p) => p.label === 1).map((p) => p.postId));
  const manifest: DatasetManifest = {
    source,
    files: [basename(postsPath), basename(labelPath)],
    counts: {
      ...actual,
      positivePairs: pairs.filter((p) => p.label === 1).length,
      annotationRows: labels.annotationRows,
      status0Rows: labels.status0Rows,
    },
    expectedCounts: { ...EXPECTED_COUNTS },
    positivesPerCriterion,
    specialCaseRows: labels.specialCaseRows,
    postsWithoutSymptoms: posts.length - positivePosts.size,
    textLength: {
      chars: summaryStats(posts.map((p) => codePointLength(p.text))),
      words: summaryStats(posts.map((p) => wordCount(p.text))),
    },
    countOverrideReason: overrideReason,
    hashFormat: DATASET_HASH_FORMAT,
    hash,
  };
  return { posts, pairs, criteria, manifest, hash };
}
