import {
  collateBatch,
  collateSharedBatch,
  exampleLength,
  packedLength,
  packExamples,
  runsByPost,
} from '../../../src/engine/examples.js';

describe('collateBatch', () => {
  const examples = packExamples([[5, 6, 7], [8], [9, 10]]);

  test('packs sequences with offsets', () => {
    expect(Array.from(examples.offsets)).toEqual([0, 3, 4, 6]);
    expect(exampleLength(examples, 2)).toBe(2);
  });

  test('right padding', () => {
    const batch = collateBatch(examples, [1, 0], {
      padTokenId: 0,
      paddingSide: 'right',
      labels: [1, 0, 1],
    });
    expect(batch.seqLen).toBe(3);
    expect(Array.from(batch.inputIds)).toEqual([8, 0, 0, 5, 6, 7]);
    expect(Array.from(batch.attentionMask)).toEqual([1, 0, 0, 1, 1, 1]);
    expect(Array.from(batch.labels!)).toEqual([0, 1]);
  });

  test('left padding', () => {
    const batch = collateBatch(examples, [2, 0], { padTokenId: 3, paddingSide: 'left' });
    expect(Array.from(batch.inputIds)).toEqual([3, 9, 10, 5, 6, 7]);
    expect(Array.from(batch.attentionMask)).toEqual([0, 1, 1, 1, 1, 1]);
    expect(batch.labels).toBeUndefined();
  });
});

describe('collateSharedBatch', () => {
  // Post 0: shared [1, 2, 3] + suffixes [4, 5] and [6]; post 1: shared [7] + suffix [8, 9, 10].
  const examples = {
    ...packExamples([
      [1, 2, 3, 4, 5],
      [1, 2, 3, 6],
      [7, 8, 9, 10],
    ]),
    prefixLengths: Int32Array.from([3, 3, 1]),
    posts: Int32Array.from([0, 0, 1]),
  };

  test('one row per post: the shared part once, then each suffix; right-padded', () => {
    const batch = collateSharedBatch(examples, [2, 1, 0], { padTokenId: 0, labels: [1, 0, 1] });
    expect(runsByPost(examples, [2, 1, 0])).toEqual([[2], [1, 0]]);
    expect(batch.batchSize).toBe(2);
    expect(batch.seqLen).toBe(6);
    expect(Array.from(batch.inputIds)).toEqual([7, 8, 9, 10, 0, 0, 1, 2, 3, 6, 4, 5]);
    expect(Array.from(batch.attentionMask)).toEqual([1, 1, 1, 1, 0, 0, 1, 1, 1, 1, 1, 1]);
    expect(Array.from(batch.segments!.prefixLengths)).toEqual([1, 3]);
    expect(Array.from(batch.segments!.segmentCounts)).toEqual([1, 2]);
    expect(Array.from(batch.segments!.segmentLengths)).toEqual([3, 1, 2]);
    expect(Array.from(batch.labels!)).toEqual([1, 0, 1]);
    expect(packedLength(examples, [1, 0])).toBe(6);
  });

  test('examples encoded whole: one row each, no shared part', () => {
    const batch = collateSharedBatch(packExamples([[1, 2], [3]]), [1, 0], { padTokenId: 0 });
    expect(Array.from(batch.inputIds)).toEqual([3, 0, 1, 2]);
    expect(Array.from(batch.segments!.prefixLengths)).toEqual([0, 0]);
    expect(Array.from(batch.segments!.segmentCounts)).toEqual([1, 1]);
    expect(Array.from(batch.segments!.segmentLengths)).toEqual([1, 2]);
  });
});
