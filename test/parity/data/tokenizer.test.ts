// Token ids from the npm binding (through loadTokenizer) must equal Python `tokenizers` and
// transformers' LlamaTokenizer on the tiny tokenizer trained on the synthetic corpus, for
// Reddit-like posts and awkward unicode. The Python oracle runs in the test.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

import {
  cleanText,
  generateSyntheticDataset,
  loadTokenizer,
  trainTinyTokenizer,
} from '../../../src/data/index.js';
import { describeWithTool } from '../../describeWithTool.js';
import { TRICKY_TEXTS } from './tokenizerTexts.js';

const python = resolve('.venv/bin/python');
const oracle = resolve('test/parity/data/tokenizer_oracle.py');
const describeIfPython = describeWithTool({
  tool: 'the .venv Python oracles',
  available: existsSync(python),
  install: 'npm run setup',
});

// Posts in the shape of Reddit's (markdown, links, HTML entities, edits, long runs of text),
// written for this test.
const REDDIT_LIKE = [
  "Throwaway because my friends know my main.\n\nI haven't slept more than 3-4 hrs a night since **March**. " +
    'I lie there and my brain just replays every mistake I ever made. Edit: thanks for the replies &amp; the kind DMs.',
  'TL;DR: lost 10kg without trying, food tastes like cardboard, nothing is fun anymore. Is this normal??',
  '> you should just go outside more\n\nI *do* go outside. It does nothing. [link](https://example.org/a_b?c=1&d=2)',
  "idk why im posting this. i feel like a burden to everyone and they'd be better off w/o me. r/depression",
  "Update #2 (2 weeks later): still exhausted ALL the time, can't focus at work, my boss noticed... " +
    '- moving slower\n- forgetting things\n- crying in the car park',
  'Anyone else feel NOTHING?? not sad not happy just... nothing. ¯\\_(ツ)_/¯',
];

interface OracleAnswer {
  tokenizers: number[][];
  transformers: number[][] | null;
  transformers_class?: string;
  pad_token_id?: number | null;
}

describeIfPython('tokenizer parity with Python tokenizers and transformers', () => {
  let dir: string;
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'mentallam-tokparity-'));
    const synthetic = generateSyntheticDataset({ seed: 99 });
    await trainTinyTokenizer({
      corpus: synthetic.posts.map((p) => p.text),
      vocabSize: 3000,
      outDir: dir,
    });
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('gives identical ids on synthetic posts, Reddit-like posts and tricky unicode', async () => {
    const synthetic = generateSyntheticDataset({ seed: 5, nPosts: 25 }).posts.map((p) => p.text);
    const raw = [...synthetic, ...REDDIT_LIKE, ...TRICKY_TEXTS];
    // Both the raw strings and what the loader would make of them.
    const texts = [...raw, ...raw.map(cleanText)];
    const run = spawnSync(python, [oracle], {
      input: JSON.stringify({ dir, texts }),
      encoding: 'utf8',
      maxBuffer: 1 << 28,
    });
    if (run.status !== 0) throw new Error(`oracle failed: ${run.stderr}`);
    const answer = JSON.parse(run.stdout) as OracleAnswer;
    const tok = loadTokenizer(dir);
    const ours = await Promise.all(texts.map((t) => tok.encode(t)));
    texts.forEach((_, i) => {
      expect({ i, ids: ours[i] }).toEqual({ i, ids: answer.tokenizers[i] });
      if (answer.transformers)
        expect({ i, ids: ours[i] }).toEqual({ i, ids: answer.transformers[i] });
    });
    expect(answer.transformers).not.toBeNull();
    expect(answer.transformers_class).toMatch(/^LlamaTokenizer/);
    // transformers has no pad token for Llama either; ours defaults to <unk> = 0.
    expect(answer.pad_token_id ?? null).toBeNull();
    expect(tok.padTokenId).toBe(0);
    // The synthetic vocabulary is in the range the tiny model expects.
    expect(tok.vocabSize).toBeGreaterThan(1000);
    expect(tok.vocabSize).toBeLessThanOrEqual(3000);
  });
});
