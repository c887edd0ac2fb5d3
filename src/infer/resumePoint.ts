/**
 * Where an interrupted JSONL inference picks up: read the output it left, keep every whole chunk
 * of records, drop the rest (the chunk being written when it stopped, a torn last line). Records
 * are counted from the output alone: each input record left one or more output lines carrying its
 * input `line`, in order, so a new `line` value starts the next record. Keeping whole chunks
 * means the resumed run batches exactly as an uninterrupted one, so its scores (and bytes) are
 * the same. Reads the file once, in blocks, keeping one entry per chunk.
 */
import { open } from 'node:fs/promises';

export interface ResumePoint {
  /** Bytes of the output to keep; the rest is cut off and scored again. */
  bytes: number;
  /** Input records the kept bytes cover (a whole number of chunks). */
  records: number;
  /** The input line of the last kept record (null when none is kept). */
  lastLine: number | null;
  /** Error records among the kept bytes (they count toward the exit code). */
  failed: number;
  /** Kept output lines (predictions and error records). */
  outputLines: number;
  /** Bytes after `bytes` that are dropped (a partly written chunk, a torn line). */
  droppedBytes: number;
}

/** The output being continued is not what this tool writes; names the file and the line. */
export class ResumeFileError extends Error {
  constructor(path: string, message: string) {
    super(`${path}: ${message}`);
    this.name = 'ResumeFileError';
  }
}

interface ChunkStart {
  offset: number;
  /** Error records and output lines before this chunk. */
  failedBefore: number;
  linesBefore: number;
  /** The input line of the record just before this chunk. */
  previousLine: number | null;
}

export async function findResumePoint(path: string, chunkSize: number): Promise<ResumePoint> {
  const handle = await open(path, 'r');
  const chunks: ChunkStart[] = [];
  let records = 0;
  let currentLine: number | null = null;
  let failed = 0;
  let outputLines = 0;
  let offset = 0;
  let outputLine = 0;
  const size = (await handle.stat()).size;
  try {
    const block = Buffer.alloc(1 << 20);
    let carry = Buffer.alloc(0);
    let position = 0;
    for (;;) {
      const { bytesRead } = await handle.read(block, 0, block.length, position);
      if (bytesRead === 0) break;
      position += bytesRead;
      let data = Buffer.concat([carry, block.subarray(0, bytesRead)]);
      let start = 0;
      for (;;) {
        const newline = data.indexOf(0x0a, start);
        if (newline === -1) break;
        outputLine += 1;
        const text = data.subarray(start, newline).toString('utf8');
        let record: { line?: unknown; error?: unknown };
        try {
          record = JSON.parse(text) as typeof record;
        } catch {
          // Only the last line may be torn; one in the middle means the file is not ours.
          if (newline + 1 < data.length || position < size) {
            throw new ResumeFileError(
              path,
              `line ${outputLine} is not JSON: not an output of mentallam infer`,
            );
          }
          break;
        }
        const line = record.line;
        if (typeof line !== 'number' || !Number.isInteger(line) || line < 1) {
          throw new ResumeFileError(
            path,
            `line ${outputLine} has no input "line" number: not an output of mentallam infer`,
          );
        }
        if (line !== currentLine) {
          if (currentLine !== null && line < currentLine) {
            throw new ResumeFileError(
              path,
              `line ${outputLine} goes back to input line ${line} after ${currentLine}: not an output of one run`,
            );
          }
          if (records % chunkSize === 0) {
            chunks.push({
              offset: offset + start,
              failedBefore: failed,
              linesBefore: outputLines,
              previousLine: currentLine,
            });
          }
          records += 1;
          currentLine = line;
        }
        if (record.error !== undefined) failed += 1;
        outputLines += 1;
        start = newline + 1;
      }
      offset += start;
      carry = Buffer.from(data.subarray(start));
      data = carry;
    }
  } finally {
    await handle.close();
  }
  // The last record seen may be cut short (9 criteria, 4 written): its whole chunk is redone. A
  // chunk is kept only once a record of the next chunk has started.
  const kept = records === 0 ? 0 : Math.floor((records - 1) / chunkSize);
  const cut = chunks[kept];
  if (cut === undefined) {
    return {
      bytes: 0,
      records: 0,
      lastLine: null,
      failed: 0,
      outputLines: 0,
      droppedBytes: size,
    };
  }
  return {
    bytes: cut.offset,
    records: kept * chunkSize,
    lastLine: cut.previousLine,
    failed: cut.failedBefore,
    outputLines: cut.linesBefore,
    droppedBytes: size - cut.offset,
  };
}
