// A synthetic data set in ReDSM5's file layout and size, for running the whole pipeline without
// the gated data: 1,484 posts × 9 criteria, positives per criterion at ReDSM5's published counts,
// posts of realistic (heavy-tailed) length, annotations with status 1 evidence, status 0 hard
// negatives and SPECIAL_CASE rows. Deterministic by seed (numpy-compatible MT19937).

import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';

import { writeFileAtomic } from '../infra/index.js';
import { SPECIAL_CASE, SYMPTOMS, type Symptom } from './criteria.js';
import { loadRedsm5 } from './loader.js';
import { RandomState } from './mt19937.js';
import {
  FILLERS,
  KEYWORDS,
  NEUTRAL,
  SPECIAL_CASE_SENTENCES,
  TEMPLATES,
} from './syntheticTemplates.js';
import type { Dataset } from './types.js';

/** ReDSM5's posts with status 1 per symptom (of 1,484), from the dataset card. */
export const REDSM5_POSITIVE_POSTS: Record<Symptom, number> = {
  DEPRESSED_MOOD: 328,
  ANHEDONIA: 124,
  APPETITE_CHANGE: 44,
  SLEEP_ISSUES: 102,
  PSYCHOMOTOR: 35,
  FATIGUE: 124,
  WORTHLESSNESS: 311,
  COGNITIVE_ISSUES: 59,
  SUICIDAL_THOUGHTS: 165,
};
const REDSM5_POSTS = 1484;
const REDSM5_POSTS_WITHOUT_SYMPTOMS = 392;
const REDSM5_SPECIAL_CASE = 92;

// Mix of how evidence is written; chosen so that a keyword lookup lands well below F1 1.0.
const EXPLICIT_SHARE = 0.6;
const HARD_NEGATIVE_POST_SHARE = 0.45;
// Sentences per post: log-normal; median 18 sentences (~215 words), mean ~300 words like ReDSM5.
const SENTENCES_MEDIAN = 18;
const SENTENCES_SIGMA = 1.0;
const MAX_SENTENCES = 480;

export interface SyntheticAnnotation {
  postId: string;
  sentenceId: string;
  sentenceText: string;
  symptom: Symptom | typeof SPECIAL_CASE;
  status: 0 | 1;
  explanation: string;
}

export interface SyntheticDataset {
  posts: { postId: string; text: string }[];
  annotations: SyntheticAnnotation[];
  /** Positive posts per symptom, as generated. */
  positives: Record<Symptom, number>;
}

export interface GenerateSyntheticOptions {
  seed: number;
  nPosts?: number;
}

class Draw {
  constructor(readonly rs: RandomState) {}
  int(maxInclusive: number): number {
    return this.rs.randomInterval(maxInclusive);
  }
  pick<T>(items: readonly T[]): T {
    return items[this.int(items.length - 1)] as T;
  }
  chance(p: number): boolean {
    return this.rs.randomSample() < p;
  }
  normal(): number {
    // Box-Muller; 1 - u keeps the log argument away from 0.
    const u = 1 - this.rs.randomSample();
    const v = this.rs.randomSample();
    return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
  }
  fill(template: string): string {
    return template.replace(/\{(\w+)\}/g, (_, slot: string) => this.pick(FILLERS[slot] ?? [slot]));
  }
}

function capitalise(sentence: string): string {
  return sentence.charAt(0).toUpperCase() + sentence.slice(1);
}

/** Generates posts and annotations in memory; see writeSyntheticDataset for the CSV files. */
export function generateSyntheticDataset(options: GenerateSyntheticOptions): SyntheticDataset {
  const nPosts = options.nPosts ?? REDSM5_POSTS;
  if (!Number.isInteger(nPosts) || nPosts < 1)
    throw new RangeError(`nPosts must be >= 1, got ${nPosts}`);
  const draw = new Draw(new RandomState(options.seed));
  const scale = nPosts / REDSM5_POSTS;

  // Exact counts, scaled: rates then match ReDSM5's instead of drifting with Bernoulli noise.
  const target = SYMPTOMS.map((s) => Math.round(REDSM5_POSITIVE_POSTS[s] * scale));
  const nWithSymptoms = Math.min(
    nPosts - Math.round(REDSM5_POSTS_WITHOUT_SYMPTOMS * scale),
    target.reduce((a, b) => a + b, 0),
  );
  // Which posts have symptoms: a shuffled order, first nWithSymptoms of them.
  const order = draw.rs.permutation(nPosts);
  const symptomatic = order.slice(0, nWithSymptoms);
  const labels: Set<number>[] = Array.from({ length: nPosts }, () => new Set<number>());
  // One criterion token per positive; the first token per symptomatic post, the rest spread over
  // symptomatic posts that do not have that criterion yet (so ~1.18 symptoms per such post).
  const tokens: number[] = [];
  target.forEach((count, c) => {
    for (let k = 0; k < count; k++) tokens.push(c);
  });
  draw.rs.shuffle(tokens);
  const leftovers: number[] = [];
  tokens.forEach((c, k) => {
    if (k < symptomatic.length) labels[symptomatic[k] as number]!.add(c);
    else leftovers.push(c);
  });
  for (const c of leftovers) {
    for (let attempt = 0; attempt < 10000; attempt++) {
      const post = symptomatic[draw.int(symptomatic.length - 1)] as number;
      if (!labels[post]!.has(c)) {
        labels[post]!.add(c);
        break;
      }
    }
  }
  const specialCasePosts = new Set(
    draw.rs.permutation(nPosts).slice(0, Math.round(REDSM5_SPECIAL_CASE * scale)),
  );

  const posts: SyntheticDataset['posts'] = [];
  const annotations: SyntheticAnnotation[] = [];
  for (let i = 0; i < nPosts; i++) {
    const postId = `s_${1000 + i}_${draw.int(1999)}`;
    const nSentences = Math.min(
      MAX_SENTENCES,
      Math.max(1, Math.round(SENTENCES_MEDIAN * Math.exp(SENTENCES_SIGMA * draw.normal()))),
    );
    type Planned = { text: string; symptom?: Symptom | typeof SPECIAL_CASE; status?: 0 | 1 };
    const planned: Planned[] = [];
    for (const c of [...labels[i]!].sort((a, b) => a - b)) {
      const symptom = SYMPTOMS[c] as Symptom;
      const t = TEMPLATES[symptom];
      const n = 1 + (draw.chance(0.3) ? 1 : 0);
      for (let k = 0; k < n; k++) {
        const text = draw.fill(draw.pick(draw.chance(EXPLICIT_SHARE) ? t.explicit : t.implicit));
        planned.push({ text, symptom, status: 1 });
      }
    }
    if (draw.chance(HARD_NEGATIVE_POST_SHARE)) {
      const n = 1 + draw.int(1);
      for (let k = 0; k < n; k++) {
        const symptom = draw.pick(SYMPTOMS);
        if (labels[i]!.has(SYMPTOMS.indexOf(symptom))) continue;
        planned.push({
          text: draw.fill(draw.pick(TEMPLATES[symptom].hardNegative)),
          symptom,
          status: 0,
        });
      }
    }
    if (specialCasePosts.has(i)) {
      planned.push({ text: draw.pick(SPECIAL_CASE_SENTENCES), symptom: SPECIAL_CASE, status: 1 });
    }
    const fillerCount = Math.max(0, nSentences - planned.length);
    for (let k = 0; k < fillerCount; k++) planned.push({ text: draw.fill(draw.pick(NEUTRAL)) });
    draw.rs.shuffle(planned);
    // Rare very short posts, as in ReDSM5 (minimum 2 words): a lone evidence sentence stays whole.
    const sentences = planned.map((p) => capitalise(p.text));
    posts.push({ postId, text: sentences.join(' ') });
    planned.forEach((p, k) => {
      if (p.symptom === undefined || p.status === undefined) return;
      annotations.push({
        postId,
        sentenceId: `${postId}_${k + 1}`,
        sentenceText: sentences[k] as string,
        symptom: p.symptom,
        status: p.status,
        explanation:
          p.symptom === SPECIAL_CASE
            ? 'Synthetic: notable content that is none of the nine symptoms.'
            : p.status === 1
              ? `Synthetic: written as evidence of ${p.symptom}.`
              : `Synthetic: mentions ${p.symptom} words without showing the symptom.`,
      });
    });
  }
  const positives = Object.fromEntries(
    SYMPTOMS.map((s, c) => [s, labels.filter((l) => l.has(c)).length]),
  ) as Record<Symptom, number>;
  return { posts, annotations, positives };
}

function csvField(value: string | number): string {
  const s = String(value);
  return /[",\r\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

function csv(rows: (string | number)[][]): string {
  return rows.map((r) => r.map(csvField).join(',')).join('\n') + '\n';
}

export interface WriteSyntheticOptions {
  outDir: string;
  seed: number;
  nPosts?: number;
}

/** Writes redsm5_posts.csv and redsm5_annotations.csv in ReDSM5's layout; returns the paths. */
export async function writeSyntheticDataset(
  options: WriteSyntheticOptions,
): Promise<{ postsPath: string; annotationsPath: string; positives: Record<Symptom, number> }> {
  const data = generateSyntheticDataset({ seed: options.seed, nPosts: options.nPosts });
  await mkdir(options.outDir, { recursive: true });
  const postsPath = join(options.outDir, 'redsm5_posts.csv');
  const annotationsPath = join(options.outDir, 'redsm5_annotations.csv');
  await writeFileAtomic(
    postsPath,
    csv([['post_id', 'text'], ...data.posts.map((p) => [p.postId, p.text])]),
  );
  await writeFileAtomic(
    annotationsPath,
    csv([
      ['post_id', 'sentence_id', 'sentence_text', 'DSM5_symptom', 'status', 'explanation'],
      ...data.annotations.map((a) => [
        a.postId,
        a.sentenceId,
        a.sentenceText,
        a.symptom,
        a.status,
        a.explanation,
      ]),
    ]),
  );
  return { postsPath, annotationsPath, positives: data.positives };
}

export interface BaselineScores {
  tp: number;
  fp: number;
  fn: number;
  precision: number;
  recall: number;
  f1: number;
}

function scores(tp: number, fp: number, fn: number): BaselineScores {
  const precision = tp + fp === 0 ? 0 : tp / (tp + fp);
  const recall = tp + fn === 0 ? 0 : tp / (tp + fn);
  const f1 = tp === 0 ? 0 : (2 * tp) / (2 * tp + fp + fn);
  return { tp, fp, fn, precision, recall, f1 };
}

/**
 * A keyword lookup: a pair is positive when the post contains a word starting with one of the
 * criterion's keywords. The floor any trained model must beat; on the synthetic set it must stay
 * well below F1 1.0, or the set would test nothing. F1 is pooled over pairs (= micro-F1); macro
 * is the mean of the nine per-criterion F1s.
 */
export function keywordBaseline(dataset: Pick<Dataset, 'posts' | 'pairs'>): {
  overall: BaselineScores;
  macroF1: number;
  perCriterion: Record<string, BaselineScores>;
} {
  const patterns = new Map<string, RegExp>(
    SYMPTOMS.map((s) => [
      s,
      new RegExp(`\\b(?:${KEYWORDS[s].map((k) => k.replace(/ /g, '\\s+')).join('|')})`, 'iu'),
    ]),
  );
  const textById = new Map(dataset.posts.map((p) => [p.postId, p.text]));
  const counts = new Map<string, { tp: number; fp: number; fn: number }>();
  let tp = 0;
  let fp = 0;
  let fn = 0;
  for (const pair of dataset.pairs) {
    const predicted = patterns.get(pair.symptom)?.test(textById.get(pair.postId) ?? '') ? 1 : 0;
    const c = counts.get(pair.criterionId) ?? { tp: 0, fp: 0, fn: 0 };
    if (predicted === 1 && pair.label === 1) c.tp++;
    else if (predicted === 1) c.fp++;
    else if (pair.label === 1) c.fn++;
    counts.set(pair.criterionId, c);
  }
  const perCriterion: Record<string, BaselineScores> = {};
  for (const [id, c] of counts) {
    perCriterion[id] = scores(c.tp, c.fp, c.fn);
    tp += c.tp;
    fp += c.fp;
    fn += c.fn;
  }
  const f1s = Object.values(perCriterion).map((s) => s.f1);
  return {
    overall: scores(tp, fp, fn),
    macroF1: f1s.reduce((a, b) => a + b, 0) / Math.max(1, f1s.length),
    perCriterion,
  };
}

export interface SynthesizeReport {
  outDir: string;
  seed: number;
  hash: string;
  posts: number;
  pairs: number;
  positivePairs: number;
  positivesPerCriterion: { id: string; symptom: Symptom; positives: number }[];
  words: { mean: number; p50: number; p95: number; max: number };
  keywordBaseline: { f1: number; macroF1: number; perCriterionF1: Record<string, number> };
}

/**
 * Writes the files, loads them back through the real loader (so the report describes exactly
 * what training will see) and scores the keyword baseline. (`mentallam data synth` only writes
 * the files and prints their paths and positives: it takes any --posts count.)
 */
export async function synthesizeDataset(options: {
  outDir: string;
  seed: number;
  criteriaPath: string;
}): Promise<SynthesizeReport> {
  await writeSyntheticDataset({ outDir: options.outDir, seed: options.seed });
  const ds = loadRedsm5({ dir: options.outDir, criteriaPath: options.criteriaPath });
  const baseline = keywordBaseline(ds);
  const w = ds.manifest.textLength.words;
  return {
    outDir: options.outDir,
    seed: options.seed,
    hash: ds.hash,
    posts: ds.manifest.counts.posts,
    pairs: ds.manifest.counts.pairs,
    positivePairs: ds.manifest.counts.positivePairs,
    positivesPerCriterion: ds.manifest.positivesPerCriterion,
    words: { mean: w.mean, p50: w.p50, p95: w.p95, max: w.max },
    keywordBaseline: {
      f1: baseline.overall.f1,
      macroF1: baseline.macroF1,
      perCriterionF1: Object.fromEntries(
        Object.entries(baseline.perCriterion).map(([id, s]) => [id, s.f1]),
      ),
    },
  };
}
