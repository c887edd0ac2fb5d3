import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { HttpStatusError } from '../../../src/infra/index.js';
import {
  formatSpoolStatus,
  isPermanentRefusal,
  MlflowApiError,
  readSpool,
  readSpoolStatus,
  spoolDoneFileName,
  spoolFileName,
} from '../../../src/tracking/index.js';

const retryable = [408, 429, 500, 502, 503, 504];

function apiError(status: number, code: string): MlflowApiError {
  return new MlflowApiError(status, code, 'x', 'POST /api/2.0/mlflow/runs/log-batch');
}

describe('isPermanentRefusal: only what no retry can fix is recorded as rejected', () => {
  test.each([
    [
      'a changed param (400 INVALID_PARAMETER_VALUE)',
      apiError(400, 'INVALID_PARAMETER_VALUE'),
      true,
    ],
    ['a conflict (409)', apiError(409, 'RESOURCE_CONFLICT'), true],
    ['a local artifact that is gone', Object.assign(new Error('ENOENT'), { code: 'ENOENT' }), true],
    ['a run this server does not have (404)', apiError(404, 'RESOURCE_DOES_NOT_EXIST'), false],
    ['credentials (401)', apiError(401, 'UNAUTHENTICATED'), false],
    ['permissions (403)', apiError(403, 'PERMISSION_DENIED'), false],
    ['throttling (429)', apiError(429, 'REQUEST_LIMIT_EXCEEDED'), false],
    ['database is locked (503)', apiError(503, 'TEMPORARILY_UNAVAILABLE'), false],
    ['a plain 502', new HttpStatusError(502), false],
    ['not implemented on this server (501)', apiError(501, 'NOT_IMPLEMENTED'), false],
    [
      'connection refused',
      Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' }),
      false,
    ],
    ['an unknown error', new TypeError('something else'), false],
  ])('%s', (_name, error, permanent) => {
    expect(isPermanentRefusal(error, retryable)).toBe(permanent);
  });
});

describe('spool files', () => {
  function runDirWith(spool: string[], done: string[]): string {
    const dir = mkdtempSync(join(tmpdir(), 'mentallam-spool-'));
    writeFileSync(join(dir, spoolFileName), spool.join('\n'));
    if (done.length > 0) writeFileSync(join(dir, spoolDoneFileName), `${done.join('\n')}\n`);
    return dir;
  }
  const entry = (seq: number, op: string, runId = 'r1') =>
    JSON.stringify({
      seq,
      spooledAt: Date.UTC(2026, 0, 1, 0, 0, seq),
      server: 'http://127.0.0.1:5000',
      experimentId: '3',
      op,
      runId,
      ...(op === 'setTag' ? { key: 'k', value: 'v' } : {}),
    });

  test('done and rejected records, a torn last line, entries out of order', () => {
    const dir = runDirWith(
      [entry(2, 'setTag'), entry(1, 'updateRun'), entry(3, 'setTag', 'r2'), '{"seq":4,"op":"se'],
      [
        '1',
        JSON.stringify({ seq: 2, rejected: 'INVALID_PARAMETER_VALUE (HTTP 400): no', at: 'T' }),
      ],
    );
    const contents = readSpool(dir);
    expect(contents.entries.map((e) => e.seq)).toEqual([1, 2, 3]);
    expect(contents.pending.map((e) => e.seq)).toEqual([3]);
    expect([...contents.done].sort()).toEqual([1, 2]);
    expect(contents.rejected).toEqual([
      {
        seq: 2,
        error: 'INVALID_PARAMETER_VALUE (HTTP 400): no',
        at: 'T',
        entry: contents.entries[1],
      },
    ]);
  });

  test('--status text: counts, pending per run, each rejected call with its reason', () => {
    const dir = runDirWith(
      [entry(1, 'setTag'), entry(2, 'setTag'), entry(3, 'updateRun'), entry(4, 'setTag', 'r2')],
      [JSON.stringify({ seq: 1, rejected: 'INVALID_PARAMETER_VALUE (HTTP 400): no' })],
    );
    const text = formatSpoolStatus(readSpoolStatus(dir));
    expect(text.split('\n')).toEqual([
      `${join(dir, spoolFileName)}: 3 pending, 0 sent, 1 rejected`,
      'pending (sent by `mentallam sync <run dir>`, oldest first):',
      '  run r1 (experiment 3, for http://127.0.0.1:5000): 2 calls (setTag 1, updateRun 1), first spooled 2026-01-01T00:00:02.000Z',
      '  run r2 (experiment 3, for http://127.0.0.1:5000): 1 calls (setTag 1), first spooled 2026-01-01T00:00:04.000Z',
      'rejected (refused by the server for good; not retried):',
      '  #1 setTag for run r1: INVALID_PARAMETER_VALUE (HTTP 400): no',
      '',
    ]);
  });

  test('a run directory without a spool, and a path that is not a directory', () => {
    const dir = mkdtempSync(join(tmpdir(), 'mentallam-spool-'));
    expect(formatSpoolStatus(readSpoolStatus(dir))).toContain(
      '0 pending, 0 sent, 0 rejected\nnothing was spooled',
    );
    expect(() => readSpoolStatus(join(dir, 'missing'))).toThrow(/is not a directory/);
  });
});
