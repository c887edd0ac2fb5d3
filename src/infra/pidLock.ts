/**
 * A lock file naming the process that holds it, for something one process at a time may write (a
 * run directory, an inference output). It appears atomically with its full content (written to a
 * temp file, then hard-linked into place, which fails if the lock exists), so a reader never sees
 * a half-written owner. A lock whose process is gone (killed with -9, crashed, the machine
 * rebooted) is stale and is taken over; on Linux the owner's start time is recorded too, so a
 * recycled pid does not keep a stale lock alive.
 */
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { link, readFile, unlink, writeFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { basename, dirname, join } from 'node:path';

/** What a lock file holds. */
export interface LockOwner {
  pid: number;
  host: string;
  /** The process's start time in clock ticks since boot (/proc/<pid>/stat), null off Linux. */
  startTime: number | null;
  /** ISO 8601 time the lock was taken. */
  since: string;
  /** What the owner is doing, for the message a second process gets. */
  purpose: string;
}

/** The lock is held by a live process (or one on another host, which cannot be checked). */
export class LockHeldError extends Error {
  constructor(
    readonly path: string,
    readonly owner: LockOwner,
  ) {
    const where = owner.host === hostname() ? '' : ` on host ${owner.host}`;
    super(
      `${path} is held by pid ${owner.pid}${where} (${owner.purpose}, since ${owner.since})` +
        (owner.host === hostname() ? '' : `; if that process is gone, delete ${path}`),
    );
    this.name = 'LockHeldError';
  }
}

/** The start time of a live process (Linux), to tell it from a later process with the same pid. */
export function processStartTime(pid: number): number | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Field 2 (the command) may hold spaces and parentheses: count fields after the last ')'.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const ticks = Number(fields[19]);
    return Number.isFinite(ticks) ? ticks : null;
  } catch {
    return null;
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    // EPERM: it exists but belongs to another user.
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** True when the owner's process no longer runs (on this host; another host's cannot be checked). */
export function isStale(owner: LockOwner): boolean {
  if (owner.host !== hostname()) return false;
  if (!isAlive(owner.pid)) return true;
  const startTime = processStartTime(owner.pid);
  return owner.startTime !== null && startTime !== null && startTime !== owner.startTime;
}

async function readOwner(path: string): Promise<LockOwner | null> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw error;
  }
  try {
    const owner = JSON.parse(text) as Partial<LockOwner>;
    if (typeof owner.pid === 'number' && typeof owner.host === 'string') {
      return {
        pid: owner.pid,
        host: owner.host,
        startTime: typeof owner.startTime === 'number' ? owner.startTime : null,
        since: typeof owner.since === 'string' ? owner.since : 'unknown',
        purpose: typeof owner.purpose === 'string' ? owner.purpose : 'unknown',
      };
    }
  } catch {
    // Not ours or damaged: treated like a lock of a dead process below.
  }
  return { pid: 0, host: hostname(), startTime: null, since: 'unknown', purpose: 'unreadable' };
}

export interface PidLock {
  readonly path: string;
  /** True when a stale lock of a dead process was taken over. */
  readonly tookOver: LockOwner | null;
  /** Removes the lock if it is still ours. */
  release(): Promise<void>;
}

/**
 * Takes the lock at `path` or throws LockHeldError naming its live owner. `purpose` is shown to a
 * process that finds the lock held ("training run", "inference").
 */
export async function acquirePidLock(path: string, purpose: string): Promise<PidLock> {
  const owner: LockOwner = {
    pid: process.pid,
    host: hostname(),
    startTime: processStartTime(process.pid),
    since: new Date().toISOString(),
    purpose,
  };
  const temp = join(
    dirname(path),
    `.${basename(path)}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`,
  );
  await writeFile(temp, `${JSON.stringify(owner)}\n`, { flag: 'wx' });
  let tookOver: LockOwner | null = null;
  try {
    // Twice at most: once, and once more after removing a stale lock. Whoever links first wins.
    for (let attempt = 0; ; attempt++) {
      try {
        await link(temp, path);
        break;
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
      }
      const current = await readOwner(path);
      if (current === null) continue;
      if (attempt > 0 || !isStale(current)) throw new LockHeldError(path, current);
      tookOver = current;
      await unlink(path).catch(() => undefined);
    }
  } finally {
    await unlink(temp).catch(() => undefined);
  }
  const text = `${JSON.stringify(owner)}\n`;
  return {
    path,
    tookOver,
    async release() {
      try {
        if ((await readFile(path, 'utf8')) === text) await unlink(path);
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
      }
    },
  };
}
