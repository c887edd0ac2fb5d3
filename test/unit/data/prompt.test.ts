import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import {
  buildPrompt,
  ELISION,
  loadTokenizer,
  PromptError,
  type PromptTokenizer,
  renderTemplate,
  trainTinyTokenizer,
} from '../../../src/data/index.js';

// One token per space-separated word: token counts are then easy to state exactly.
function wordTokenizer(addBos = true): PromptTokenizer {
  const vocab: string[] = [];
  const ids = new Map<string, number>();
  return {
    addBos,
    encodeRaw: (text) =>
      text
        .split(' ')
        .filter((w) => w !== '')
        .map((w) => {
          if (!ids.has(w)) {
            ids.set(w, vocab.length);
            vocab.push(w);
          }
          return ids.get(w) as number;
        }),
    decode: (tokens) => tokens.map((t) => vocab[t]).join(' '),
  };
}

const template = 'Post: {post} Criterion {criterion_id}: {criterion} Answer:';
const criterion = { id: 'A4', description: 'Sleeps too much or too little.' };
// Fixed part: "Post:" + "Criterion" "A4:" + 6 criterion words + "Answer:" = 10 tokens, + BOS = 11.
const FIXED = 11;
const words = (n: number, prefix = 'w') =>
  Array.from({ length: n }, (_, i) => `${prefix}${i}`).join(' ');

describe('buildPrompt', () => {
  it('keeps a post that fits exactly and cuts one token more', async () => {
    const tokenizer = wordTokenizer();
    const exact = await buildPrompt({
      template,
      post: words(20),
      criterion,
      maxLength: FIXED + 20,
      truncation: 'head',
      tokenizer,
    });
    expect(exact.truncated).toBe(false);
    expect(exact.totalTokens).toBe(FIXED + 20);
    expect(exact.text).toBe(
      `Post: ${words(20)} Criterion A4: Sleeps too much or too little. Answer:`,
    );

    const over = await buildPrompt({
      template,
      post: words(21),
      criterion,
      maxLength: FIXED + 20,
      truncation: 'head',
      tokenizer,
    });
    expect(over.truncated).toBe(true);
    expect(over.totalTokens).toBe(FIXED + 20);
    expect(over.keptPostTokens).toBe(20);
    expect(over.postTokens).toBe(21);
    expect(over.text).toContain(
      `Post: ${words(20)} Criterion A4: Sleeps too much or too little. Answer:`,
    );
  });

  it('cuts from the end, the start, or the middle', async () => {
    const tokenizer = wordTokenizer();
    const post = words(30);
    const head = await buildPrompt({
      template,
      post,
      criterion,
      maxLength: FIXED + 10,
      truncation: 'head',
      tokenizer,
    });
    expect(head.text.startsWith(`Post: ${words(10)} Criterion`)).toBe(true);
    const tail = await buildPrompt({
      template,
      post,
      criterion,
      maxLength: FIXED + 10,
      truncation: 'tail',
      tokenizer,
    });
    expect(tail.text.startsWith('Post: w20 w21')).toBe(true);
    expect(tail.text).toContain('w29 Criterion');
    const both = await buildPrompt({
      template,
      post,
      criterion,
      maxLength: FIXED + 10,
      truncation: 'head_tail',
      tokenizer,
    });
    expect(both.totalTokens).toBeLessThanOrEqual(FIXED + 10);
    expect(both.text).toContain(`w0 w1 w2 w3 w4${ELISION}w26`);
    expect(both.text).toContain('w29 Criterion');
    expect(both.text).not.toContain(' w15 ');
  });

  it('counts BOS/EOS against the budget', async () => {
    const noBos = await buildPrompt({
      template,
      post: words(21),
      criterion,
      maxLength: FIXED + 20,
      truncation: 'head',
      tokenizer: wordTokenizer(false),
    });
    expect(noBos.truncated).toBe(false);
    expect(noBos.totalTokens).toBe(FIXED - 1 + 21);
  });

  it('rejects empty posts and criteria, templates without placeholders, and no room for the post', async () => {
    const tokenizer = wordTokenizer();
    const base = { template, criterion, maxLength: 100, truncation: 'head' as const, tokenizer };
    await expect(buildPrompt({ ...base, post: '' })).rejects.toThrow(/post text is empty/);
    await expect(buildPrompt({ ...base, post: ' \u200B\n ' })).rejects.toThrow(PromptError);
    await expect(
      buildPrompt({ ...base, post: 'x', criterion: { id: 'A1', description: '  ' } }),
    ).rejects.toThrow(/A1 has an empty description/);
    await expect(
      buildPrompt({ ...base, post: 'x', template: 'Criterion: {criterion}' }),
    ).rejects.toThrow(/\{post\}/);
    await expect(buildPrompt({ ...base, post: 'x', template: 'Post: {post}' })).rejects.toThrow(
      /\{criterion\}/,
    );
    await expect(buildPrompt({ ...base, post: words(5), maxLength: FIXED })).rejects.toThrow(
      /no room for the post/,
    );
  });

  it('normalises unicode and never substitutes placeholders inside the post', async () => {
    const tokenizer = wordTokenizer();
    const out = await buildPrompt({
      template,
      post: 'Ｉ ｃａｎ’t\u200B sleep {criterion} e\u0301',
      criterion,
      maxLength: 100,
      truncation: 'head',
      tokenizer,
    });
    expect(out.text).toBe(
      'Post: I can’t sleep {criterion} é Criterion A4: Sleeps too much or too little. Answer:',
    );
    expect(
      renderTemplate('{post}|{criterion_id}', {
        post: '{criterion_id}',
        criterion: 'c',
        criterion_id: 'A1',
      }),
    ).toBe('{criterion_id}|A1');
  });
});

describe('buildPrompt with a real BPE tokenizer', () => {
  let dir: string;
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'mentallam-prompt-'));
    const corpus = Array.from(
      { length: 50 },
      (_, i) => `I can not sleep at night and I feel tired ${i} times a week.`,
    );
    await trainTinyTokenizer({ corpus, vocabSize: 400, outDir: dir });
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('stays within maxLength for every strategy, including multi-byte text cut mid-character', async () => {
    const tokenizer = loadTokenizer(dir);
    const post = 'I feel tired 😭😭 日本語 every night, שלום, and I can not sleep. '.repeat(8);
    for (const truncation of ['head', 'tail', 'head_tail'] as const) {
      for (const maxLength of [70, 71, 97, 130]) {
        const out = await buildPrompt({
          template,
          post,
          criterion,
          maxLength,
          truncation,
          tokenizer,
        });
        expect(out.truncated).toBe(true);
        expect((await tokenizer.encode(out.text)).length).toBeLessThanOrEqual(maxLength);
        expect(out.totalTokens).toBe((await tokenizer.encode(out.text)).length);
        expect(out.text).not.toContain('\uFFFD');
        expect(out.text.endsWith('Criterion A4: Sleeps too much or too little. Answer:')).toBe(
          true,
        );
      }
    }
  });
});
