/**
 * Progress of a JSONL inference on stderr: a bar on a TTY, else a line every few seconds (what a
 * batch job's log keeps). Lines per second count this process's lines only, so a resumed run's
 * rate and ETA are not flattered by the lines it skipped.
 */
import { open } from 'node:fs/promises';

import { Presets, SingleBar } from 'cli-progress';

import type { ProgressMode } from '../engine/index.js';

export interface InferProgress {
  /** The model is ready: the clock for lines per second starts now (not during the load). */
  start(): void;
  /** After each chunk: the last input line written. */
  update(line: number): void;
  /** The last line written, once the input is done ('done') or the run stopped ('stopped'). */
  done(line: number, how: 'done' | 'stopped'): void;
}

export interface InferProgressOptions {
  mode: ProgressMode;
  stream: NodeJS.WritableStream & { isTTY?: boolean };
  /** Lines in the input, when known (a file); null for a pipe. */
  totalLines: number | null;
  /** The line an interrupted run's output ended at (0 for a fresh run). */
  startLine: number;
  /** Seconds between lines without a TTY. */
  intervalSeconds?: number;
  now?: () => number;
}

/** Lines of a file (a last line without a newline counts), in one pass of 1 MiB reads. */
export async function countLines(path: string): Promise<number> {
  const handle = await open(path, 'r');
  try {
    const block = Buffer.alloc(1 << 20);
    let lines = 0;
    let last = 0x0a;
    for (;;) {
      const { bytesRead } = await handle.read(block, 0, block.length, null);
      if (bytesRead === 0) break;
      for (
        let i = block.indexOf(0x0a, 0);
        i !== -1 && i < bytesRead;
        i = block.indexOf(0x0a, i + 1)
      )
        lines += 1;
      last = block[bytesRead - 1]!;
    }
    return last === 0x0a ? lines : lines + 1;
  } finally {
    await handle.close();
  }
}

function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds)) return '?';
  const s = Math.round(seconds);
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  if (h > 0) return `${h}h${String(m).padStart(2, '0')}m`;
  if (m > 0) return `${m}m${String(s % 60).padStart(2, '0')}s`;
  return `${s}s`;
}

const count = (n: number) => n.toLocaleString('en-US');

export function createInferProgress(options: InferProgressOptions): InferProgress {
  const { stream, totalLines, startLine } = options;
  const now = options.now ?? (() => Date.now());
  const intervalMs = (options.intervalSeconds ?? 5) * 1000;
  const mode = options.mode === 'auto' ? (stream.isTTY ? 'bar' : 'lines') : options.mode;
  if (mode === 'none') {
    return { start: () => undefined, update: () => undefined, done: () => undefined };
  }
  let started = now();
  const rate = (line: number) => (line - startLine) / Math.max((now() - started) / 1000, 1e-3);
  const eta = (line: number) => {
    if (totalLines === null) return null;
    const perSecond = rate(line);
    return perSecond > 0 ? (totalLines - line) / perSecond : Number.POSITIVE_INFINITY;
  };

  if (mode === 'bar' && totalLines !== null) {
    const bar = new SingleBar(
      {
        stream,
        format: 'infer [{bar}] {value}/{total} lines | {rate} lines/s | ETA {etaText}',
        hideCursor: true,
      },
      Presets.shades_classic,
    );
    bar.start(totalLines, startLine, { rate: '-', etaText: '?' });
    return {
      start: () => {
        started = now();
      },
      update: (line) =>
        bar.update(line, { rate: Math.round(rate(line)), etaText: formatDuration(eta(line)!) }),
      done: (line, how) => {
        bar.update(line, { rate: Math.round(rate(line)), etaText: how === 'done' ? '0s' : '-' });
        bar.stop();
      },
    };
  }

  let lastPrinted = started;
  const describe = (line: number) => {
    const of =
      totalLines === null
        ? `line ${count(line)}`
        : `line ${count(line)} of ${count(totalLines)} (${((100 * line) / Math.max(totalLines, 1)).toFixed(1)}%)`;
    const left = eta(line);
    return `infer: ${of}, ${count(Math.round(rate(line)))} lines/s${left === null ? '' : `, ETA ${formatDuration(left)}`}`;
  };
  return {
    start: () => {
      started = now();
      lastPrinted = started;
    },
    update: (line) => {
      if (now() - lastPrinted < intervalMs) return;
      lastPrinted = now();
      stream.write(`${describe(line)}\n`);
    },
    done: (line, how) => {
      stream.write(`${describe(line).replace(/, ETA .*$/, '')}, ${how}\n`);
    },
  };
}
