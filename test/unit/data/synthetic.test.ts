import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

import {
  generateSyntheticDataset,
  keywordBaseline,
  loadRedsm5,
  REDSM5_POSITIVE_POSTS,
  SYMPTOMS,
  writeSyntheticDataset,
} from '../../../src/data/index.js';

const criteriaPath = resolve('data/dsm5/criteria.json');

describe('synthetic data set', () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'mentallam-synth-'));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('loads at ReDSM5 cardinality with ReDSM5 positive counts and realistic lengths', async () => {
    await writeSyntheticDataset({ outDir: dir, seed: 7 });
    const ds = loadRedsm5({ dir, criteriaPath });
    expect(ds.manifest.counts).toMatchObject({ posts: 1484, criteria: 9, pairs: 13356 });
    const rate = ds.manifest.counts.positivePairs / ds.manifest.counts.pairs;
    expect(rate).toBeGreaterThan(0.09);
    expect(rate).toBeLessThan(0.105);
    for (const c of ds.manifest.positivesPerCriterion) {
      const expected = REDSM5_POSITIVE_POSTS[c.symptom];
      expect(Math.abs(c.positives - expected)).toBeLessThanOrEqual(Math.ceil(expected * 0.05));
    }
    const rarest = [...ds.manifest.positivesPerCriterion].sort(
      (a, b) => a.positives - b.positives,
    )[0];
    expect(rarest?.symptom).toBe('PSYCHOMOTOR');
    expect(ds.manifest.postsWithoutSymptoms).toBeGreaterThan(350);
    expect(ds.manifest.specialCaseRows).toBeGreaterThan(50);
    expect(ds.manifest.counts.status0Rows).toBeGreaterThan(300);
    const words = ds.manifest.textLength.words;
    expect(words.mean).toBeGreaterThan(200);
    expect(words.mean).toBeLessThan(400);
    expect(words.max).toBeGreaterThan(1500);
  });

  it('is deterministic by seed and differs between seeds', () => {
    const a = generateSyntheticDataset({ seed: 3, nPosts: 200 });
    const b = generateSyntheticDataset({ seed: 3, nPosts: 200 });
    const c = generateSyntheticDataset({ seed: 4, nPosts: 200 });
    expect(b).toEqual(a);
    expect(c.posts.map((p) => p.text)).not.toEqual(a.posts.map((p) => p.text));
  });

  it('writes byte-identical files for the same seed', async () => {
    const other = mkdtempSync(join(tmpdir(), 'mentallam-synth-'));
    try {
      await writeSyntheticDataset({ outDir: dir, seed: 11, nPosts: 100 });
      await writeSyntheticDataset({ outDir: other, seed: 11, nPosts: 100 });
      for (const f of ['redsm5_posts.csv', 'redsm5_annotations.csv']) {
        expect(readFileSync(join(other, f), 'utf8')).toBe(readFileSync(join(dir, f), 'utf8'));
      }
    } finally {
      rmSync(other, { recursive: true, force: true });
    }
  });

  it('is learnable but not by keyword lookup alone', async () => {
    await writeSyntheticDataset({ outDir: dir, seed: 1234 });
    const ds = loadRedsm5({ dir, criteriaPath });
    const baseline = keywordBaseline(ds);
    expect(baseline.overall.f1).toBeGreaterThan(0.4);
    expect(baseline.overall.f1).toBeLessThan(0.85);
    expect(Object.keys(baseline.perCriterion).sort()).toEqual(SYMPTOMS.map((_, i) => `A${i + 1}`));
    for (const s of Object.values(baseline.perCriterion)) expect(s.f1).toBeLessThan(1);
  });
});
