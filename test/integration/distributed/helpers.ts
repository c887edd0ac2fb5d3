// Shared by the distributed suites: ranks as real processes (each test waits with a hard limit
// and kills whatever it started), the built CLI they run, and whether this build has Gloo.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';

import { describeWithTool } from '../../describeWithTool.js';
import { distributedBackends } from '../../../src/native/index.js';

export const repoRoot = resolve(process.cwd());
/** The ranks run the built package: `npm run build` first (npm test does). */
export const trainCli = join(repoRoot, 'dist', 'cli', 'mentallam-train.js');
export const rankScript = join(repoRoot, 'test', 'integration', 'distributed', 'rank.mjs');
export const torchrun = join(repoRoot, '.venv', 'bin', 'torchrun');

const glooBuilt = (() => {
  try {
    return distributedBackends().gloo;
  } catch {
    return false;
  }
})();

/** A suite needing the addon's Gloo backend and the built CLI. */
export const describeWithGloo = describeWithTool({
  tool: 'the native addon with the Gloo backend, and the built dist/',
  available: glooBuilt && existsSync(trainCli),
  install: 'apt-get install -y libgloo-dev, then npm run build:native and npm run build',
});

export interface StartedProcess {
  readonly child: ChildProcess;
  readonly label: string;
  stdout: string;
  stderr: string;
  /** Resolves when the process has ended and its output is read. */
  readonly ended: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

const running = new Set<StartedProcess>();

/** Starts a process (its own process group, so its whole tree can be killed) and records it. */
export function startProcess(
  command: string,
  args: string[],
  options: { env?: NodeJS.ProcessEnv; cwd?: string; label: string },
): StartedProcess {
  const child = spawn(command, args, {
    cwd: options.cwd ?? repoRoot,
    env: { ...process.env, ...options.env },
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true,
  });
  const started: StartedProcess = {
    child,
    label: options.label,
    stdout: '',
    stderr: '',
    ended: new Promise((resolveEnded) => {
      child.on('close', (code, signal) => {
        running.delete(started);
        resolveEnded({ code, signal });
      });
    }),
  };
  child.stdout!.on('data', (chunk: Buffer) => (started.stdout += chunk.toString()));
  child.stderr!.on('data', (chunk: Buffer) => (started.stderr += chunk.toString()));
  running.add(started);
  return started;
}

/** Kills a started process and everything it started. */
export function killTree(started: StartedProcess, signal: NodeJS.Signals = 'SIGKILL'): void {
  if (started.child.pid === undefined) return;
  try {
    process.kill(-started.child.pid, signal);
  } catch {
    // Already gone.
  }
}

/** For afterEach: nothing a test started outlives it. */
export async function killAll(): Promise<void> {
  const left = [...running];
  for (const started of left) {
    killTree(started, 'SIGCONT');
    killTree(started);
  }
  await Promise.all(left.map((started) => started.ended));
}

/** Waits for a process to end, killing it (and failing) after `ms`. */
export async function endsWithin(
  started: StartedProcess,
  ms: number,
): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      killTree(started);
      reject(
        new Error(
          `${started.label} did not end within ${ms / 1000} s\n--- stderr ---\n${started.stderr.slice(-4000)}`,
        ),
      );
    }, ms);
  });
  try {
    return await Promise.race([started.ended, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** Resolves once `predicate` holds (polled), or rejects after `ms`. */
export async function waitFor(predicate: () => boolean, ms: number, what: string): Promise<void> {
  const deadline = Date.now() + ms;
  while (!predicate()) {
    if (Date.now() > deadline)
      throw new Error(`timed out after ${ms / 1000} s waiting for ${what}`);
    await new Promise((resolveWait) => setTimeout(resolveWait, 100));
  }
}

/** The last JSON line a process printed. */
export function lastJson<T>(started: StartedProcess): T {
  const lines = started.stdout.trim().split('\n');
  try {
    return JSON.parse(lines[lines.length - 1]!) as T;
  } catch {
    throw new Error(
      `${started.label} printed no JSON result\n--- stdout ---\n${started.stdout}\n--- stderr ---\n${started.stderr}`,
    );
  }
}
