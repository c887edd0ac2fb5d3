import { createHash } from 'node:crypto';

import { compareCodePoints } from './clean.js';
import type { Criterion } from './criteria.js';
import type { Pair, Post } from './types.js';

/** Identifies the byte format below; bump it if the format changes. */
export const DATASET_HASH_FORMAT = 'mentallam-dataset-v1';

export function sha256Hex(data: string | Uint8Array): string {
  return createHash('sha256').update(data).digest('hex');
}

/**
 * sha256 over a canonical UTF-8 text, so the same data gives the same hash on any machine and in
 * any file order. Post text enters as its own sha256 so that cached tokenizations keyed by this
 * hash go stale when a text changes, without the hash input holding raw text. Lines, each ending
 * in "\n", fields separated by "\t":
 *
 *   mentallam-dataset-v1
 *   criterion <id> <symptom> <sha256 of description>      for each criterion, in A1..A9 order
 *   post <post_id> <sha256 of cleaned text>               for each post, by post_id (code points)
 *   pair <post_id> <criterion_id> <label>                 by post_id, then criterion order
 */
export function datasetHash(
  posts: readonly Post[],
  pairs: readonly Pair[],
  criteria: readonly Criterion[],
): string {
  const order = new Map(criteria.map((c, i) => [c.id, i]));
  const lines: string[] = [DATASET_HASH_FORMAT];
  for (const c of criteria)
    lines.push(`criterion\t${c.id}\t${c.symptom}\t${sha256Hex(c.description)}`);
  const sortedPosts = [...posts].sort((a, b) => compareCodePoints(a.postId, b.postId));
  for (const p of sortedPosts) lines.push(`post\t${p.postId}\t${sha256Hex(p.text)}`);
  const sortedPairs = [...pairs].sort(
    (a, b) =>
      compareCodePoints(a.postId, b.postId) ||
      (order.get(a.criterionId) ?? 0) - (order.get(b.criterionId) ?? 0),
  );
  for (const p of sortedPairs) lines.push(`pair\t${p.postId}\t${p.criterionId}\t${p.label}`);
  return sha256Hex(lines.join('\n') + '\n');
}
