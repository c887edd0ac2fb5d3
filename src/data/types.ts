import type { Criterion, Symptom } from './criteria.js';
import type { SummaryStats } from './stats.js';

export interface Post {
  postId: string;
  /** Cleaned text (NFKC, no control/zero-width characters, whitespace collapsed). */
  text: string;
}

export interface Pair {
  postId: string;
  criterionId: string;
  symptom: Symptom;
  label: 0 | 1;
}

/** What was loaded, without any raw text: safe to log and to send to tracking. */
export interface DatasetManifest {
  source: 'annotations' | 'pairs';
  files: string[];
  counts: {
    posts: number;
    criteria: number;
    pairs: number;
    positivePairs: number;
    annotationRows: number;
    status0Rows: number;
  };
  expectedCounts: { posts: number; criteria: number; pairs: number };
  positivesPerCriterion: { id: string; symptom: Symptom; positives: number }[];
  specialCaseRows: number;
  postsWithoutSymptoms: number;
  textLength: { chars: SummaryStats; words: SummaryStats };
  countOverrideReason: string | null;
  hashFormat: string;
  hash: string;
}

export interface Dataset {
  /** Sorted by postId (code-point order). */
  posts: Post[];
  /** posts × criteria, by postId then criterion order A1..A9. */
  pairs: Pair[];
  criteria: Criterion[];
  manifest: DatasetManifest;
  hash: string;
}
