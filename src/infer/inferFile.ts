/**
 * `inferFile()`: batch inference from a JSONL file (or stdin) to a JSONL file (or stdout) that
 * survives interruption. The paths are checked before the model loads. The output is written as
 * `<output>.part`, chunk by chunk, each chunk handed to the kernel before the next is read, and
 * renamed to `<output>` when every line is scored; a lock file `<output>.lock` keeps a second
 * process out. Ctrl-C (or SIGTERM) stops after the chunk in hand; a crash or `kill -9` loses at
 * most that chunk. `resume` continues the `.part` an interrupted run left: whole chunks are kept,
 * the rest (a torn last line included) is cut off and scored again, so the finished output holds
 * every input line once, in order, byte for byte as an uninterrupted run writes it.
 */
import { createReadStream, existsSync, statSync, type Stats } from 'node:fs';
import { open, rename, rm, stat, type FileHandle } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { Writable } from 'node:stream';

import type { ProgressMode } from '../engine/index.js';
import { resolveConfig } from '../engine/index.js';
import { acquirePidLock, LockHeldError, type PidLock } from '../infra/index.js';
import {
  checkInferOptions,
  defaultChunkSize,
  infer,
  InferInterruptedError,
  InferUsageError,
  type InferOptions,
  type InferResult,
} from './infer.js';
import { ResumeMismatchError } from './jsonl.js';
import { countLines, createInferProgress } from './progress.js';
import { findResumePoint, ResumeFileError } from './resumePoint.js';

export interface InferFileOptions extends Omit<
  InferOptions,
  'input' | 'output' | 'inputs' | 'post' | 'skip' | 'onChunk'
> {
  /** A JSONL file of {id?, post, criterion?} per line, or '-' for `stdin`. */
  input: string;
  /** Where the predictions go: a file (written as <output>.part until complete), or '-' for `stdout`. */
  output: string;
  /** Continue the <output>.part an interrupted run left; with none, start afresh. */
  resume?: boolean;
  stdin?: NodeJS.ReadableStream;
  stdout?: NodeJS.WritableStream;
  /** Progress on `stream`: a bar on a TTY ('auto'), lines every few seconds, or none (default). */
  progress?: { mode: ProgressMode; stream: NodeJS.WritableStream & { isTTY?: boolean } };
}

/** What an interrupted run had written and a resumed one kept. */
export interface KeptOutput {
  /** Input records covered. */
  records: number;
  /** Error records among them (they count toward the exit code). */
  failed: number;
  /** Their last input line. */
  lastLine: number | null;
}

export type InferFileResult =
  | (InferResult & {
      alreadyComplete: false;
      /** The finished output file (null for stdout). */
      outputPath: string | null;
      /** What an interrupted run had written and this one kept (null for a fresh run). */
      resumed: KeptOutput | null;
    })
  /** `resume` found the output finished already (no <output>.part): nothing was scored. */
  | { alreadyComplete: true; outputPath: string };

/**
 * The run stopped after writing part of the output (interrupted, or an error while scoring):
 * what is written stays in `partPath` for `resume`.
 */
export class InferStoppedError extends Error {
  constructor(
    message: string,
    /** The kept output, or null when nothing was kept (stdout). */
    readonly partPath: string | null,
    /** The last input line written (0: none). */
    readonly line: number,
    readonly interrupted: boolean,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'InferStoppedError';
  }
}

/** The lock file beside an output being written, and the output's unfinished form. */
export function outputCompanions(outputPath: string): { part: string; lock: string } {
  return { part: `${outputPath}.part`, lock: `${outputPath}.lock` };
}

function statOrNull(path: string): Stats | null {
  try {
    return statSync(path);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return null;
    if (code === 'ENOTDIR') return null;
    throw error;
  }
}

/** The input file, checked: it exists and is a file. */
function checkInput(input: string, cwd: string): string | null {
  if (input === '-') return null;
  const path = resolve(cwd, input);
  const info = statOrNull(path);
  if (info === null) throw new InferUsageError(`--input ${path}: no such file`);
  if (info.isDirectory())
    throw new InferUsageError(`--input ${path} is a directory, not a JSONL file`);
  return path;
}

/** The output file, checked: its folder exists, it is not a folder, it is not the input. */
function checkOutput(output: string, cwd: string, inputPath: string | null): string | null {
  if (output === '-') return null;
  const path = resolve(cwd, output);
  const folder = dirname(path);
  const folderInfo = statOrNull(folder);
  if (folderInfo === null) {
    // A file somewhere up the path makes every folder below it "missing" (ENOTDIR).
    let up = folder;
    while (dirname(up) !== up && !existsSync(up)) up = dirname(up);
    if (existsSync(up) && !statSync(up).isDirectory())
      throw new InferUsageError(`--output ${path}: ${up} is not a folder`);
    throw new InferUsageError(`--output ${path}: the folder ${folder} does not exist`);
  }
  if (!folderInfo.isDirectory())
    throw new InferUsageError(`--output ${path}: ${folder} is not a folder`);
  const info = statOrNull(path);
  if (info?.isDirectory())
    throw new InferUsageError(`--output ${path} is a folder; name a file in it`);
  if (inputPath !== null && info !== null) {
    const inputInfo = statSync(inputPath);
    if (info.dev === inputInfo.dev && info.ino === inputInfo.ino)
      throw new InferUsageError(`--output ${path} is the --input file; it would be overwritten`);
  }
  return path;
}

/** A file-system refusal while setting up the output, as a usage error naming the path. */
function outputProblem(error: unknown, outputPath: string): never {
  if (error instanceof LockHeldError) {
    throw new InferUsageError(
      `--output ${outputPath} is being written by another process: ${error.message}`,
    );
  }
  const code = (error as NodeJS.ErrnoException).code;
  if (code === 'EACCES' || code === 'EPERM' || code === 'EROFS' || code === 'ENOENT') {
    throw new InferUsageError(
      `--output ${outputPath}: cannot write in ${dirname(outputPath)} (${code})`,
    );
  }
  throw error;
}

interface OpenedOutput {
  handle: FileHandle;
  /** Where writing starts: 0, or the end of the whole chunks an interrupted run wrote. */
  start: number;
  /** Kept from an interrupted run (null: a fresh output). */
  resumed: KeptOutput | null;
}

/**
 * Opens <output>.part: created afresh, or an interrupted run's, to be continued after its last
 * whole chunk. The rest is cut off only when the first new chunk is written, so a resume refused
 * on the way (another input, a model that does not load) leaves the part as it was.
 */
async function openPart(part: string, resume: boolean, chunkSize: number): Promise<OpenedOutput> {
  if (!resume || !existsSync(part)) {
    // An empty one is a run stopped before its first chunk (Ctrl-C while the model loaded): the
    // lock, held now, says no one writes it.
    if (existsSync(part) && statSync(part).size > 0) {
      throw new InferUsageError(
        `${part} holds the output of an interrupted run: continue it with --resume, or delete it to start over`,
      );
    }
    return { handle: await open(part, 'w'), start: 0, resumed: null };
  }
  let point;
  try {
    point = await findResumePoint(part, chunkSize);
  } catch (error) {
    if (error instanceof ResumeFileError) throw new InferUsageError(`--resume: ${error.message}`);
    throw error;
  }
  return {
    handle: await open(part, 'r+'),
    start: point.bytes,
    resumed: { records: point.records, failed: point.failed, lastLine: point.lastLine },
  };
}

export async function inferFile(options: InferFileOptions): Promise<InferFileResult> {
  const cwd = resolve(options.cwd ?? process.cwd());
  const { config, overrides } = await resolveConfig(options);
  const chunkSize = options.chunkSize ?? defaultChunkSize;
  checkInferOptions(options, config, cwd);
  const inputPath = checkInput(options.input, cwd);
  const outputPath = checkOutput(options.output, cwd, inputPath);
  if (options.resume && outputPath === null) {
    throw new InferUsageError(
      '--resume needs --output <file>: what went to standard output cannot be continued',
    );
  }

  let lock: PidLock | null = null;
  let opened: OpenedOutput | null = null;
  const companions = outputPath === null ? null : outputCompanions(outputPath);
  if (outputPath !== null && companions !== null) {
    try {
      lock = await acquirePidLock(companions.lock, 'mentallam infer');
      if (options.resume && !existsSync(companions.part) && existsSync(outputPath)) {
        await lock.release();
        return { alreadyComplete: true, outputPath };
      }
      opened = await openPart(companions.part, options.resume === true, chunkSize);
    } catch (error) {
      await lock?.release();
      if (error instanceof InferUsageError) throw error;
      outputProblem(error, outputPath);
    }
  }

  const skip =
    opened?.resumed && opened.resumed.records > 0
      ? { records: opened.resumed.records, lastLine: opened.resumed.lastLine }
      : undefined;
  const output = opened ? handleWriter(opened.handle, opened.start) : options.stdout;
  if (output === undefined) throw new InferUsageError('--output -: no standard output to write to');
  const input = inputPath === null ? options.stdin : createReadStream(inputPath);
  if (input === undefined) throw new InferUsageError('--input -: no standard input to read');
  const startLine = skip?.lastLine ?? 0;
  const progress = options.progress
    ? createInferProgress({
        mode: options.progress.mode,
        stream: options.progress.stream,
        totalLines: inputPath === null ? null : await countLines(inputPath),
        startLine,
      })
    : null;
  let line = startLine;
  let succeeded = false;
  try {
    const result = await infer({
      ...options,
      config,
      overrides,
      cwd,
      input,
      output,
      chunkSize,
      ...(skip ? { skip } : {}),
      onStart: () => progress?.start(),
      onChunk: (chunk) => {
        line = chunk.line;
        progress?.update(chunk.line);
      },
    });
    progress?.done(line, 'done');
    if (opened && outputPath !== null && companions !== null) {
      await closeOutput(output, opened.handle, true);
      await rename(companions.part, outputPath);
    }
    succeeded = true;
    return {
      ...result,
      outputPath,
      resumed: opened?.resumed ?? null,
      alreadyComplete: false,
    };
  } catch (error) {
    if (error instanceof InferInterruptedError) progress?.done(line, 'stopped');
    if (opened) {
      await closeOutput(output, opened.handle, false);
    }
    const part = companions?.part ?? null;
    const kept = part !== null && existsSync(part) && (await stat(part)).size > 0;
    // Nothing scored (the model did not load, a bad argument): leave nothing behind.
    if (part !== null && !kept) await rm(part, { force: true });
    if (error instanceof ResumeMismatchError)
      throw new InferUsageError(`--resume: ${part}: ${error.message}`);
    if (error instanceof InferUsageError) throw error;
    const interrupted = error instanceof InferInterruptedError;
    if (kept || interrupted) {
      const what = interrupted ? 'interrupted' : (error as Error).message;
      const where = kept
        ? `; the output up to input line ${line} is in ${part}: continue with --resume`
        : '';
      throw new InferStoppedError(`${what}${where}`, kept ? part : null, line, interrupted, {
        cause: error,
      });
    }
    throw error;
  } finally {
    await lock?.release();
    if (!succeeded && inputPath !== null)
      (input as NodeJS.ReadableStream & { destroy?(): void }).destroy?.();
  }
}

/**
 * A stream writing into an open file from byte `start` on (what lies beyond is cut off at the
 * first write), leaving the handle to us to sync before the rename and to close. A write's
 * callback runs once the kernel has the bytes, so a killed process keeps them.
 */
function handleWriter(handle: FileHandle, start: number): Writable {
  let position = start;
  let cut = false;
  return new Writable({
    write(chunk: Buffer, _encoding, callback) {
      const writeAll = async () => {
        if (!cut) {
          await handle.truncate(start);
          cut = true;
        }
        // write(2) may take less than asked (a signal, a nearly full disk): go on until all is.
        for (let done = 0; done < chunk.length;) {
          const { bytesWritten } = await handle.write(chunk, done, chunk.length - done, position);
          done += bytesWritten;
          position += bytesWritten;
        }
      };
      writeAll().then(() => callback(), callback);
    },
  });
}

async function closeOutput(
  stream: NodeJS.WritableStream,
  handle: FileHandle,
  sync: boolean,
): Promise<void> {
  try {
    await new Promise<void>((resolveEnd, reject) => {
      stream.once('error', reject);
      stream.end(() => resolveEnd());
    });
    // Before the rename: the finished file is on disk, not only in the page cache.
    if (sync) await handle.sync();
  } finally {
    await handle.close().catch(() => undefined);
  }
}
