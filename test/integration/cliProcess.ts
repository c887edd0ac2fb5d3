// The built CLI as a user runs it: a child process of `node dist/cli/<bin>.js`, so what is checked
// is what a shell sees (exit code, stderr lines, signals), not what an in-process call returns.
// `npm test` builds dist/ first; a dist/ older than src/ would test old code, so that fails here.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';

export const repoRoot = resolve(process.cwd());

function newestMtime(dir: string): number {
  let newest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    newest = Math.max(newest, entry.isDirectory() ? newestMtime(path) : statSync(path).mtimeMs);
  }
  return newest;
}

/** dist/cli/<bin>.js, checked to exist and to be built from the current src/. */
export function cliEntry(bin: 'mentallam' | 'mentallam-train' = 'mentallam'): string {
  const entry = join(repoRoot, 'dist', 'cli', `${bin}.js`);
  if (!existsSync(entry)) throw new Error(`${entry} is missing: run npm run build first`);
  const built = newestMtime(join(repoRoot, 'dist'));
  if (newestMtime(join(repoRoot, 'src')) > built) {
    throw new Error('dist/ is older than src/: run npm run build first');
  }
  return entry;
}

export interface CliRun {
  child: ChildProcess;
  stdout: () => string;
  stderr: () => string;
  /** Resolves with the exit code, or the signal that ended the process. */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** Resolves once stderr has matched `pattern` (rejects if the process ends first). */
  waitForStderr(pattern: RegExp): Promise<void>;
}

/** Starts `node dist/cli/<bin>.js ...args` in `cwd`; the environment gets `env` on top. */
export function startCli(
  args: string[],
  options: { cwd: string; env?: NodeJS.ProcessEnv; bin?: 'mentallam' | 'mentallam-train' },
): CliRun {
  const child = spawn(process.execPath, [cliEntry(options.bin), ...args], {
    cwd: options.cwd,
    env: { ...process.env, NODE_OPTIONS: '', ...options.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  const waiters: { pattern: RegExp; resolve: () => void; reject: (e: Error) => void }[] = [];
  const check = () => {
    for (const waiter of [...waiters]) {
      if (waiter.pattern.test(err)) {
        waiters.splice(waiters.indexOf(waiter), 1);
        waiter.resolve();
      }
    }
  };
  child.stdout!.on('data', (chunk: Buffer) => (out += chunk.toString()));
  child.stderr!.on('data', (chunk: Buffer) => {
    err += chunk.toString();
    check();
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>(
    (resolveExit) => {
      child.on('close', (code, signal) => {
        for (const waiter of waiters.splice(0)) {
          waiter.reject(
            new Error(
              `the CLI ended (${code ?? signal}) before stderr matched ${waiter.pattern}:\n${err}`,
            ),
          );
        }
        resolveExit({ code, signal });
      });
    },
  );
  return {
    child,
    stdout: () => out,
    stderr: () => err,
    exited,
    waitForStderr: (pattern) =>
      new Promise<void>((resolveWait, reject) => {
        waiters.push({ pattern, resolve: resolveWait, reject });
        check();
      }),
  };
}

/** Runs the CLI to its end. */
export async function runCliProcess(
  args: string[],
  options: { cwd: string; env?: NodeJS.ProcessEnv; bin?: 'mentallam' | 'mentallam-train' },
): Promise<{ code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string }> {
  const run = startCli(args, options);
  const { code, signal } = await run.exited;
  return { code, signal, stdout: run.stdout(), stderr: run.stderr() };
}
