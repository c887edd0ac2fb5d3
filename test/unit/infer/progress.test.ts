// Inference progress on stderr: a line every few seconds without a TTY (rate and ETA from this
// process's lines only), a bar on a TTY, nothing with logging.progress.mode=none.
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';

import { countLines, createInferProgress } from '../../../src/infer/index.js';

function stream(isTTY: boolean) {
  const out = new PassThrough() as PassThrough & { isTTY?: boolean; columns?: number };
  out.isTTY = isTTY;
  out.columns = 120;
  const text: string[] = [];
  out.on('data', (chunk: Buffer) => text.push(chunk.toString()));
  return { out, text: () => text.join('') };
}

describe('inference progress', () => {
  test('without a TTY: one line per interval, rate and ETA over the lines of this process', () => {
    const { out, text } = stream(false);
    let now = 0;
    const progress = createInferProgress({
      mode: 'auto',
      stream: out,
      totalLines: 10_000,
      startLine: 2_000,
      intervalSeconds: 5,
      now: () => now,
    });
    // The model loads for a minute: that is not counted in the rate.
    now = 60_000;
    progress.start();
    now = 62_000;
    progress.update(2_500); // before the interval: nothing
    now = 65_000;
    progress.update(4_500); // 2,500 lines in 5 s: 500 lines/s, 5,500 left: 11 s
    now = 68_000;
    progress.update(6_000); // 3 s after the last line: nothing
    now = 70_000;
    progress.done(10_000, 'done');
    expect(text().split('\n')).toEqual([
      'infer: line 4,500 of 10,000 (45.0%), 500 lines/s, ETA 11s',
      'infer: line 10,000 of 10,000 (100.0%), 800 lines/s, done',
      '',
    ]);
  });

  test('from a pipe (no total): lines and rate only; stopped runs say so', () => {
    const { out, text } = stream(false);
    let now = 0;
    const progress = createInferProgress({
      mode: 'lines',
      stream: out,
      totalLines: null,
      startLine: 0,
      now: () => now,
    });
    now = 6_000;
    progress.update(1_200);
    progress.done(1_200, 'stopped');
    expect(text().split('\n')).toEqual([
      'infer: line 1,200, 200 lines/s',
      'infer: line 1,200, 200 lines/s, stopped',
      '',
    ]);
  });

  test('on a TTY: a bar with the count; none: silent', () => {
    const tty = stream(true);
    const bar = createInferProgress({
      mode: 'auto',
      stream: tty.out,
      totalLines: 100,
      startLine: 0,
    });
    bar.update(50);
    bar.done(100, 'done');
    expect(tty.text()).toMatch(/infer \[.*\] 100\/100 lines \| \d+ lines\/s \| ETA 0s/);

    const quiet = stream(false);
    const none = createInferProgress({
      mode: 'none',
      stream: quiet.out,
      totalLines: 100,
      startLine: 0,
    });
    none.update(50);
    none.done(100, 'done');
    expect(quiet.text()).toBe('');
  });

  test('countLines counts a last line without a newline', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'mentallam-count-'));
    writeFileSync(join(dir, 'a'), 'x\ny\nz');
    writeFileSync(join(dir, 'b'), 'x\ny\n');
    writeFileSync(join(dir, 'c'), '');
    expect(await countLines(join(dir, 'a'))).toBe(3);
    expect(await countLines(join(dir, 'b'))).toBe(2);
    expect(await countLines(join(dir, 'c'))).toBe(0);
  });
});
