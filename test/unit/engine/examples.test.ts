import { collateBatch, exampleLength, packExamples } from '../../../src/engine/examples.js';

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
