/**
 * Post + criterion -> token ids, the one way training and inference both turn a pair into model
 * input, so the two can never drift apart.
 */
import type { Config } from '../config/index.js';
import { buildPrompt, type Tokenizer } from '../data/index.js';

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
