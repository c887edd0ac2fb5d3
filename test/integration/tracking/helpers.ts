import { execFile } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';

export const repoRoot = resolve(process.cwd());
export const mlflowBin = join(repoRoot, '.venv', 'bin', 'mlflow');
export const pythonBin = join(repoRoot, '.venv', 'bin', 'python');
/** Server start-up is slow on 2 shared cores (migrations on a fresh sqlite DB). */
export const serverStartTimeoutMs = 120_000;

export function tempDir(prefix: string): string {
  return mkdtempSync(join(tmpdir(), `mentallam-${prefix}-`));
}

export function uniqueName(prefix: string): string {
  return `${prefix}-${Date.now()}-${Math.random().toString(36).slice(2, 8)}`;
}

const execFileAsync = promisify(execFile);

/**
 * Runs a Python snippet with MLflow's own client against `trackingUri` and parses the JSON it
 * prints last: the oracle that what this client logged is what MLflow users see.
 */
export async function runPython<T>(
  trackingUri: string,
  code: string,
  env: NodeJS.ProcessEnv = {},
): Promise<T> {
  const { stdout } = await execFileAsync(pythonBin, ['-c', code], {
    env: { ...process.env, MLFLOW_TRACKING_URI: trackingUri, ...env },
    maxBuffer: 64 * 1024 * 1024,
    timeout: 120_000,
  });
  const lines = stdout.trim().split('\n');
  return JSON.parse(lines[lines.length - 1] as string) as T;
}
