import { MlflowClient, PrivacyGuard, PrivacyGuardError } from '../../../src/tracking/index.js';

const post =
  'I have not been able to sleep for weeks and I feel worthless every single morning when I wake up.';

describe('PrivacyGuard', () => {
  test('refuses a whole post, a fragment of ≥ 20 characters, and reformatted copies', () => {
    const guard = new PrivacyGuard();
    guard.add([post, 'short text']);
    expect(guard.matches(`notes: ${post}`)).toBe(true);
    expect(guard.matches('able to sleep for weeks')).toBe(true); // 23 chars lifted from the post
    expect(guard.matches('I  FEEL\nworthless every   single')).toBe(true); // case and whitespace changed
    expect(guard.matches('sleep for weeks')).toBe(false); // 15 chars: too short to mean anything
    expect(guard.matches('training.learning_rate=0.0002')).toBe(false);
    expect(guard.matches('short text')).toBe(false); // guarded texts below the minimum are not matched
  });

  test('every window of exactly minMatchLength characters is caught (winnowing guarantee)', () => {
    const guard = new PrivacyGuard({ minMatchLength: 20 });
    guard.add([post]);
    const normalized = post.toLowerCase();
    for (let start = 0; start + 20 <= normalized.length; start++)
      expect(guard.matches(`x${normalized.slice(start, start + 20)}y`)).toBe(true);
  });

  test('scales to a corpus: 2000 posts guarded and checked quickly', () => {
    const guard = new PrivacyGuard();
    const words = [
      'sad',
      'tired',
      'sleep',
      'work',
      'family',
      'alone',
      'today',
      'never',
      'again',
      'help',
    ];
    let seed = 7;
    const next = () => (seed = (seed * 1103515245 + 12345) % 2147483648);
    const posts = Array.from({ length: 2000 }, () =>
      Array.from({ length: 150 }, () => words[next() % words.length]).join(' '),
    );
    const started = Date.now();
    guard.add(posts);
    for (let i = 0; i < 1000; i++) guard.matches(`param-value-${i}-${'z'.repeat(30)}`);
    expect(Date.now() - started).toBeLessThan(5000);
    expect(guard.matches((posts[1234] as string).slice(100, 140))).toBe(true);
  });

  test('the client refuses guarded params, tags and metric keys without echoing the text', async () => {
    const client = new MlflowClient({ trackingUri: 'http://127.0.0.1:9' });
    client.guardTexts([post]);
    const attempts = [
      client.logParams('r', { notes: post }),
      client.setTag('r', 'example', `prefix ${post.slice(10, 60)}`),
      client.logBatch('r', {
        tags: { ok: 'fine' },
        params: { p: 'worthless every single morning' },
      }),
      client.createRun({ experimentId: '1', runName: post.slice(0, 40) }),
    ];
    for (const attempt of attempts) {
      const error = await attempt.then(
        () => undefined,
        (caught: Error) => caught,
      );
      expect(error).toBeInstanceOf(PrivacyGuardError);
      expect(error?.message).toMatch(/guarded post/);
      expect(error?.message).not.toMatch(/sleep|worthless|morning/);
    }
    await client.close();
  });
});
