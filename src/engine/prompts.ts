/**
 * Post + criterion -> token ids, the one way training and inference both turn a pair into model
 * input, so the two can never drift apart. Two encodings:
 *
 * - per pair (encodePrompt): the whole prompt tokenized, the post cut to fit max_length for that
 *   criterion;
 * - per post (encodePost), when the template allows sharing: the prompt is split into the part
 *   every criterion shares (up to a word boundary before the first criterion placeholder) and
 *   the criterion's suffix; the post is cut to ONE budget for all criteria (max_length minus
 *   the longest suffix), so the shared part is the same ids for every criterion of the post.
 *   A pair's ids are shared ids + suffix ids; where the tokenization of the whole prompt starts
 *   with the shared ids (the normal case: the split is at a word boundary) they are exactly the
 *   whole prompt's ids.
 */
import type { Config } from '../config/index.js';
import {
  buildPrompt,
  cleanText,
  fitPost,
  PromptError,
  renderTemplate,
  splitTemplate,
  type Tokenizer,
} from '../data/index.js';

export interface EncodedPrompt {
  ids: number[];
  /** The post was cut to fit max_length. */
  truncated: boolean;
}

export async function encodePrompt(
  tokenizer: Tokenizer,
  prompt: Config['data']['prompt'],
  post: string,
  criterion: { id: string; description: string },
): Promise<EncodedPrompt> {
  const built = await buildPrompt({
    template: prompt.template,
    post,
    criterion: { id: criterion.id, description: criterion.description },
    maxLength: prompt.max_length,
    truncation: prompt.truncation,
    tokenizer,
  });
  const ids = await tokenizer.encode(built.text);
  // Re-encoding the decoded text can merge differently at the cut; the budget is a hard limit.
  return {
    ids: ids.length > prompt.max_length ? ids.slice(0, prompt.max_length) : ids,
    truncated: built.truncated,
  };
}

/** Whether prompts are encoded per post with a shared part (data.prompt.share_prefix). */
export function sharesPrefix(prompt: Config['data']['prompt']): boolean {
  return prompt.share_prefix !== false && splitTemplate(prompt.template) !== null;
}

export interface EncodedPost {
  /** Per criterion, in the order given: the shared ids, then that criterion's suffix ids. */
  ids: number[][];
  /** How many leading ids every sequence shares (the post's part of the prompt). */
  prefixLength: number;
  /** The post was cut to fit max_length. */
  truncated: boolean;
  /**
   * Criteria whose whole-prompt tokenization did not start with the shared ids (a token
   * crossing the split): their suffix was tokenized on its own. 0 in the normal case.
   */
  splitMismatches: number;
}

/**
 * One post against several criteria, encoded with a shared part (see the module comment).
 * Throws PromptError when the template does not allow sharing (see sharesPrefix).
 */
export async function encodePost(
  tokenizer: Tokenizer,
  prompt: Config['data']['prompt'],
  post: string,
  criteria: readonly { id: string; description: string }[],
): Promise<EncodedPost> {
  const split = splitTemplate(prompt.template);
  if (!split) {
    throw new PromptError(
      'data.prompt.template cannot share a prefix: it needs {post} once, before any criterion placeholder',
    );
  }
  if (criteria.length === 0) throw new PromptError('no criterion to encode the post against');
  const cleaned = cleanText(post);
  if (cleaned === '') throw new PromptError('post text is empty (after normalisation)');
  const described = criteria.map((criterion) => {
    const description = cleanText(criterion.description);
    if (description === '') {
      throw new PromptError(`criterion ${criterion.id} has an empty description`);
    }
    return { id: criterion.id, description };
  });
  const maxLength = prompt.max_length;
  const bos = tokenizer.addBos && tokenizer.bosTokenId !== null ? [tokenizer.bosTokenId] : [];
  const eos = tokenizer.addEos && tokenizer.eosTokenId !== null ? [tokenizer.eosTokenId] : [];
  const renderShared = (p: string) =>
    renderTemplate(split.shared, { post: p, criterion: '', criterion_id: '' });
  // {post} occurs once, in the shared part: the suffixes do not depend on the post.
  const suffixTexts = described.map((c) =>
    renderTemplate(split.suffix, { post: '', criterion: c.description, criterion_id: c.id }),
  );

  // The shared ids (BOS + the shared text) and each criterion's suffix: the rest of the whole
  // prompt's ids (EOS included) when they start with the shared ids, else the suffix alone.
  const tokenize = async (sharedText: string) => {
    const shared = [...bos, ...(await tokenizer.encodeRaw(sharedText))];
    let splitMismatches = 0;
    const suffixes: number[][] = [];
    for (const suffixText of suffixTexts) {
      const whole = await tokenizer.encode(sharedText + suffixText);
      if (whole.length > shared.length && shared.every((id, i) => whole[i] === id)) {
        suffixes.push(whole.slice(shared.length));
      } else {
        splitMismatches += 1;
        suffixes.push([...(await tokenizer.encodeRaw(suffixText)), ...eos]);
      }
    }
    return { shared, suffixes, splitMismatches };
  };
  const longest = (suffixes: number[][]) => Math.max(...suffixes.map((s) => s.length));

  let encoded = await tokenize(renderShared(cleaned));
  let truncated = false;
  if (encoded.shared.length + longest(encoded.suffixes) > maxLength) {
    // One budget for the post: the shared text gets what BOS and the longest suffix leave.
    const suffixTokens = longest(encoded.suffixes);
    let budget = maxLength - suffixTokens - bos.length;
    for (let guard = 0; ; guard++) {
      const fitted = await fitPost({
        post: cleaned,
        render: renderShared,
        budget,
        truncation: prompt.truncation,
        tokenizer,
        noRoom: (fixed) =>
          `the template and the longest criterion suffix take about ` +
          `${fixed + bos.length + suffixTokens} tokens, leaving no room for the post within ` +
          `max_length ${maxLength}`,
        noFit: `could not fit the post into max_length ${maxLength}`,
      });
      encoded = await tokenize(fitted.text);
      truncated = true;
      const overshoot = encoded.shared.length + longest(encoded.suffixes) - maxLength;
      if (overshoot <= 0) break;
      // Re-tokenizing at the joins changed a length: shrink the post's budget by the overshoot.
      if (guard >= 16 || budget - overshoot < 1) {
        throw new PromptError(`could not fit the post into max_length ${maxLength}`);
      }
      budget -= overshoot;
    }
  }
  return {
    ids: encoded.suffixes.map((suffix) => [...encoded.shared, ...suffix]),
    prefixLength: encoded.shared.length,
    truncated,
    splitMismatches: encoded.splitMismatches,
  };
}
