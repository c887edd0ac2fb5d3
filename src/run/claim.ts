/**
 * A run directory held by one process: created exclusively for a new run, or locked for a resume.
 * The lock file (run.lock: pid, host, start time) is taken before anything is written and kept
 * until the run ends, so a second run or a second `--resume` of the same directory is refused
 * while the first goes on; the lock of a process that died (kill -9, a crash) is taken over.
 * A new run that fails during set-up removes what it created; a resumed run never deletes.
 */
import { mkdir, readdir, rm, rmdir } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';

import { acquirePidLock, LockHeldError, type PidLock } from '../infra/index.js';
import { runFiles } from './layout.js';
import { RunStore } from './store.js';

/** A run directory that cannot be used; the message names it and what to do. */
export class RunDirectoryError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'RunDirectoryError';
  }
}

export interface RunClaim {
  store: RunStore;
  /** What was appended to the asked-for name to make it unique ('' when it was free). */
  suffix: string;
  /** The run is over: the lock goes. */
  release(): Promise<void>;
  /**
   * Set-up failed before the run did anything: a new run removes the directory (and the parent
   * folders it made); a resumed one only releases the lock.
   */
  discard(): Promise<void>;
}

/** Names that are the lock's own (the lock and its temp file while it is taken). */
function isLockFile(name: string): boolean {
  return name === runFiles.lock || (name.startsWith(`.${runFiles.lock}.`) && name.endsWith('.tmp'));
}

async function lockRun(dir: string): Promise<PidLock> {
  try {
    return await acquirePidLock(join(dir, runFiles.lock), 'training run');
  } catch (error) {
    if (error instanceof LockHeldError) {
      throw new RunDirectoryError(`run_dir ${dir} is in use: ${error.message}`, { cause: error });
    }
    throw error;
  }
}

/** Parent folders made for `dir`, deepest first, up to the first one that mkdir created. */
function madeParents(dir: string, firstMade: string | undefined): string[] {
  if (firstMade === undefined) return [];
  const made: string[] = [];
  for (let folder = dirname(dir); ; folder = dirname(folder)) {
    made.push(folder);
    if (folder === firstMade || dirname(folder) === folder) break;
  }
  return made;
}

/**
 * The directory of a new run. It must not exist, or be empty; a taken name is an error naming it,
 * unless `suffixIfTaken` (a name made by the clock: two runs started in the same second), which
 * tries `<dir>_2`, `<dir>_3`, ...
 */
export async function claimNewRun(
  dir: string,
  options: { suffixIfTaken?: boolean } = {},
): Promise<RunClaim> {
  const asked = resolve(dir);
  const firstMade = await mkdir(dirname(asked), { recursive: true });
  for (let attempt = 1; attempt <= 1000; attempt++) {
    const suffix = attempt === 1 ? '' : `_${attempt}`;
    const candidate = `${asked}${suffix}`;
    let created = false;
    try {
      await mkdir(candidate);
      created = true;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    }
    let lock: PidLock;
    try {
      lock = await lockRun(candidate);
    } catch (error) {
      if (error instanceof RunDirectoryError && options.suffixIfTaken) continue;
      if ((error as NodeJS.ErrnoException).code === 'ENOTDIR') {
        throw new RunDirectoryError(`run_dir ${candidate} is a file, not a folder`);
      }
      throw error;
    }
    const entries = (await readdir(candidate)).filter((name) => !isLockFile(name));
    if (entries.length > 0) {
      await lock.release();
      if (options.suffixIfTaken) continue;
      const shown = entries.slice(0, 4).join(', ') + (entries.length > 4 ? ', ...' : '');
      throw new RunDirectoryError(
        `run_dir ${candidate} already holds a run (${shown}): continue it with --resume ` +
          `${candidate}, or choose another run_dir`,
      );
    }
    const store = new RunStore(candidate);
    const parents = attempt === 1 ? madeParents(candidate, firstMade) : [];
    return {
      store,
      suffix,
      release: () => lock.release(),
      discard: async () => {
        // Everything in it is this run's: the directory was empty (or new) when it was locked.
        if (created) {
          await rm(candidate, { recursive: true, force: true });
          for (const parent of parents) await rmdir(parent).catch(() => undefined);
        } else {
          for (const name of await readdir(candidate)) {
            if (name !== runFiles.lock) await rm(join(candidate, name), { recursive: true });
          }
          await lock.release();
        }
      },
    };
  }
  throw new RunDirectoryError(`run_dir ${asked}: ${basename(asked)}_2 to _1000 are all taken`);
}

/** The directory of an interrupted run, locked for its resume. */
export async function claimRunForResume(dir: string): Promise<RunClaim> {
  const store = new RunStore(dir);
  let lock: PidLock;
  try {
    lock = await lockRun(store.dir);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') {
      throw new RunDirectoryError(`--resume ${store.dir}: no such run directory`);
    }
    throw error;
  }
  return { store, suffix: '', release: () => lock.release(), discard: () => lock.release() };
}
