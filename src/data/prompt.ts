// Builds the classifier's input text for one (post, criterion) pair within a token budget. Only
// the post is ever shortened: the template and the criterion text reach the model whole, since a
// cut criterion would change the question being asked.

import { cleanText } from './clean.js';

export type TruncationStrategy = 'head' | 'tail' | 'head_tail';

/** What the prompt builder needs from a tokenizer (the data module's Tokenizer fits). */
export interface PromptTokenizer {
  encodeRaw(text: string): Promise<number[]> | number[];
  decode(ids: readonly number[]): Promise<string> | string;
  /** Special tokens added around every sequence count against the budget. */
  addBos?: boolean;
  addEos?: boolean;
}

export interface PromptCriterion {
  id: string;
  description: string;
}

export interface BuildPromptOptions {
  /** Must contain {post} and {criterion}; may contain {criterion_id}. */
  template: string;
  post: string;
  criterion: PromptCriterion;
  /** Budget for the whole sequence including BOS/EOS. */
  maxLength: number;
  truncation: TruncationStrategy;
  tokenizer: PromptTokenizer;
  /** head_tail: share of the kept post tokens taken from the start (default 0.5). */
  headFraction?: number;
}

export interface BuiltPrompt {
  text: string;
  /** Tokens of the final sequence including special tokens. */
  totalTokens: number;
  postTokens: number;
  keptPostTokens: number;
  truncated: boolean;
}

/** Marks where head_tail dropped the middle of a post. */
export const ELISION = ' ... ';

export class PromptError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'PromptError';
  }
}

const PLACEHOLDER = /\{(post|criterion|criterion_id)\}/g;

/** One pass, so braces inside a post or criterion are never substituted again. */
export function renderTemplate(
  template: string,
  values: { post: string; criterion: string; criterion_id: string },
): string {
  return template.replace(PLACEHOLDER, (_, name: keyof typeof values) => values[name]);
}

export function validateTemplate(template: string): void {
  if (!template.includes('{post}'))
    throw new PromptError('prompt template has no {post} placeholder');
  if (!template.includes('{criterion}')) {
    throw new PromptError('prompt template has no {criterion} placeholder');
  }
}

// A cut in the middle of a multi-byte character decodes to U+FFFD; drop it rather than feed it.
const stripBrokenChars = (s: string): string => s.replace(/^\uFFFD+|\uFFFD+$/g, '');

export async function buildPrompt(options: BuildPromptOptions): Promise<BuiltPrompt> {
  const { maxLength, truncation, tokenizer } = options;
  validateTemplate(options.template);
  if (!Number.isInteger(maxLength) || maxLength < 1) {
    throw new PromptError(`maxLength must be a positive integer, got ${maxLength}`);
  }
  const template = options.template.normalize('NFKC');
  const post = cleanText(options.post);
  const criterion = cleanText(options.criterion.description);
  if (post === '') throw new PromptError('post text is empty (after normalisation)');
  if (criterion === '') {
    throw new PromptError(`criterion ${options.criterion.id} has an empty description`);
  }
  const special = (tokenizer.addBos ? 1 : 0) + (tokenizer.addEos ? 1 : 0);
  const fitted = await fitPost({
    post,
    render: (p) =>
      renderTemplate(template, { post: p, criterion, criterion_id: options.criterion.id }),
    budget: maxLength - special,
    truncation,
    tokenizer,
    ...(options.headFraction !== undefined ? { headFraction: options.headFraction } : {}),
    noRoom: (fixed) =>
      `the template and criterion ${options.criterion.id} take about ${fixed + special} tokens, ` +
      `leaving no room for the post within maxLength ${maxLength}`,
    noFit: `could not fit post into maxLength ${maxLength} for criterion ${options.criterion.id}`,
  });
  return {
    text: fitted.text,
    totalTokens: fitted.tokens + special,
    postTokens: fitted.postTokens,
    keptPostTokens: fitted.keptPostTokens,
    truncated: fitted.truncated,
  };
}

export interface FitPostOptions {
  /** The post, already cleaned. */
  post: string;
  /** The text the post is placed into. */
  render: (post: string) => string;
  /** Tokens (without special tokens) the rendered text may take. */
  budget: number;
  truncation: TruncationStrategy;
  tokenizer: PromptTokenizer;
  headFraction?: number;
  /** The error when the text without the post already fills the budget (given its size). */
  noRoom: (fixed: number) => string;
  noFit: string;
}

export interface FittedPost {
  text: string;
  /** Tokens of `text` (no special tokens). */
  tokens: number;
  postTokens: number;
  keptPostTokens: number;
  truncated: boolean;
}

/**
 * Renders the post into its text, cut (head, tail or head_tail, by tokens) just enough that the
 * text fits `budget` tokens. Only the post is ever shortened.
 */
export async function fitPost(options: FitPostOptions): Promise<FittedPost> {
  const { post, render, budget, truncation, tokenizer } = options;
  const headFraction = options.headFraction ?? 0.5;
  const count = async (text: string): Promise<number> => (await tokenizer.encodeRaw(text)).length;

  const postIds = await tokenizer.encodeRaw(post);
  const full = render(post);
  const fullCount = await count(full);
  if (fullCount <= budget) {
    return {
      text: full,
      tokens: fullCount,
      postTokens: postIds.length,
      keptPostTokens: postIds.length,
      truncated: false,
    };
  }
  const fixed = fullCount - postIds.length;
  if (fixed >= budget) throw new PromptError(options.noRoom(fixed));

  const cut = async (k: number): Promise<string> => {
    if (k <= 0) return '';
    if (truncation === 'head') return stripBrokenChars(await tokenizer.decode(postIds.slice(0, k)));
    if (truncation === 'tail') return stripBrokenChars(await tokenizer.decode(postIds.slice(-k)));
    const headK = Math.ceil(k * headFraction);
    const tailK = k - headK;
    const head = stripBrokenChars(await tokenizer.decode(postIds.slice(0, headK)));
    const tail = tailK > 0 ? stripBrokenChars(await tokenizer.decode(postIds.slice(-tailK))) : '';
    return tail === '' ? head : `${head}${ELISION}${tail}`;
  };

  // Token counts are nearly additive, so the first guess usually fits; shrink by the overshoot
  // until it does (re-tokenising at the joins can differ by a token or two).
  let k = Math.min(postIds.length - 1, budget - fixed);
  for (let guard = 0; guard < 64; guard++) {
    const piece = cleanText(await cut(k));
    const text = render(piece);
    const n = await count(text);
    if (n <= budget) {
      return {
        text,
        tokens: n,
        postTokens: postIds.length,
        keptPostTokens: k,
        truncated: true,
      };
    }
    k -= Math.max(1, n - budget);
    if (k <= 0) break;
  }
  throw new PromptError(options.noFit);
}

/** A template cut into the part every criterion of a post shares and the per-criterion rest. */
export interface TemplateSplit {
  /** From the start through {post} and the template text up to the split (no criterion). */
  shared: string;
  /** The rest: starts at a word boundary, holds every criterion placeholder. */
  suffix: string;
}

/**
 * Splits a template (NFKC-normalised, as prompts are built) where the criterion-independent part
 * ends: {post} must occur once, before any {criterion} / {criterion_id}. The cut is at the start
 * of the last whitespace run before the first criterion placeholder, so the shared part ends at
 * a word boundary and (for BPE and SentencePiece tokenizers) tokenizes the same alone as inside
 * the whole prompt; with no whitespace there, at the placeholder itself. null when the template
 * does not allow sharing.
 */
export function splitTemplate(template: string): TemplateSplit | null {
  const normalized = template.normalize('NFKC');
  const placeholders = [...normalized.matchAll(PLACEHOLDER)];
  const posts = placeholders.filter((m) => m[1] === 'post');
  if (posts.length !== 1) return null;
  const firstCriterion = placeholders.find((m) => m[1] !== 'post');
  if (!firstCriterion || firstCriterion.index! < posts[0]!.index!) return null;
  const postEnd = posts[0]!.index! + '{post}'.length;
  const between = normalized.slice(postEnd, firstCriterion.index!);
  const whitespace = [...between.matchAll(/\s+/g)];
  const last = whitespace[whitespace.length - 1];
  const cut = last ? postEnd + last.index! : firstCriterion.index!;
  return { shared: normalized.slice(0, cut), suffix: normalized.slice(cut) };
}
