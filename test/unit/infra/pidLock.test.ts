import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';

import {
  acquirePidLock,
  LockHeldError,
  processStartTime,
  type LockOwner,
} from '../../../src/infra/index.js';

const dir = mkdtempSync(join(tmpdir(), 'mentallam-lock-'));

/** The pid of a process that has ended (a short child, waited for). */
function deadPid(): number {
  const child = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))']);
  return Number(child.stdout.toString());
}

function writeOwner(path: string, owner: Partial<LockOwner>): void {
  writeFileSync(
    path,
    JSON.stringify({
      pid: process.pid,
      host: hostname(),
      startTime: processStartTime(process.pid),
      since: '2026-01-01T00:00:00.000Z',
      purpose: 'a test',
      ...owner,
    }),
  );
}

describe('pid lock', () => {
  test('a second taker is refused with the owner named; release frees it', async () => {
    const path = join(dir, 'a.lock');
    const lock = await acquirePidLock(path, 'training run');
    expect(JSON.parse(readFileSync(path, 'utf8'))).toMatchObject({
      pid: process.pid,
      purpose: 'training run',
    });
    const second = acquirePidLock(path, 'resume');
    await expect(second).rejects.toBeInstanceOf(LockHeldError);
    await expect(second).rejects.toThrow(
      new RegExp(`a\\.lock is held by pid ${process.pid} \\(training run, since `),
    );
    await lock.release();
    expect(existsSync(path)).toBe(false);
    const again = await acquirePidLock(path, 'resume');
    expect(again.tookOver).toBeNull();
    await again.release();
    // No temp files are left beside the lock.
    expect(readdirSync(dir).filter((name) => name.startsWith('.a.lock'))).toEqual([]);
  });

  test('the lock of a dead process is taken over', async () => {
    const path = join(dir, 'dead.lock');
    const pid = deadPid();
    writeOwner(path, { pid, startTime: null });
    const lock = await acquirePidLock(path, 'resume');
    expect(lock.tookOver?.pid).toBe(pid);
    expect(JSON.parse(readFileSync(path, 'utf8')).pid).toBe(process.pid);
    await lock.release();
  });

  test('a recycled pid (same pid, another start time) does not keep a lock alive', async () => {
    const path = join(dir, 'recycled.lock');
    const startTime = processStartTime(process.pid);
    if (startTime === null) throw new Error('/proc/<pid>/stat is not readable on this system');
    writeOwner(path, { pid: process.pid, startTime: startTime - 1 });
    const lock = await acquirePidLock(path, 'resume');
    expect(lock.tookOver?.startTime).toBe(startTime - 1);
    await lock.release();
  });

  test('a lock from another host is never taken over; the message says what to do', async () => {
    const path = join(dir, 'remote.lock');
    writeOwner(path, { host: 'elsewhere.example', pid: deadPid() });
    await expect(acquirePidLock(path, 'resume')).rejects.toThrow(
      /on host elsewhere\.example .*if that process is gone, delete .*remote\.lock/,
    );
  });

  test('release leaves a lock that another process took over in place', async () => {
    const path = join(dir, 'stolen.lock');
    const lock = await acquirePidLock(path, 'training run');
    writeOwner(path, { pid: 1, purpose: 'someone else' });
    await lock.release();
    expect(JSON.parse(readFileSync(path, 'utf8')).purpose).toBe('someone else');
  });
});
