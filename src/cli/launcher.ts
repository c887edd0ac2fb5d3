/**
 * `mentallam-train --nproc N`: starts N ranks of the same training on this machine, as
 * `torchrun --nproc-per-node N` would, with the same environment contract (RANK, WORLD_SIZE,
 * LOCAL_RANK, MASTER_ADDR, MASTER_PORT; engine/distributed/launchEnvironment.ts). Their output is
 * passed through, each line of ranks other than 0 marked with its rank. The launcher forwards
 * SIGINT/SIGTERM once; when a rank fails, the others get `graceMs` to notice and end their runs
 * themselves (they name the failed rank), then are terminated.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';
import { constants as osConstants } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

import { launchVariables } from '../engine/index.js';
import type { CliIo } from './program.js';

/** dist/cli/mentallam.js: the ranks run the built CLI (src/ and dist/ sit side by side). */
const cliEntry = join(
  resolve(dirname(fileURLToPath(import.meta.url)), '..', '..'),
  'dist',
  'cli',
  'mentallam.js',
);

/** A free TCP port on the loopback interface, for rank 0's rendezvous store. */
export function freePort(): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() =>
        typeof address === 'object' && address
          ? resolvePort(address.port)
          : reject(new Error('no port')),
      );
    });
  });
}

export interface LaunchOptions {
  nproc: number;
  /** The CLI arguments each rank gets (e.g. ['train', 'training.distributed.mode=ddp']). */
  argv: string[];
  io: CliIo;
  env?: NodeJS.ProcessEnv;
  /** How long the other ranks may take to end by themselves after one failed. */
  graceMs?: number;
}

function relay(stream: NodeJS.ReadableStream, out: NodeJS.WritableStream, prefix: string): void {
  const lines = createInterface({ input: stream, crlfDelay: Infinity });
  lines.on('line', (line) => out.write(`${prefix}${line}\n`));
}

/** Runs the ranks to the end; resolves to the exit code (the first failed rank's, else 0). */
export async function launchLocalRanks(options: LaunchOptions): Promise<number> {
  const { nproc, io } = options;
  const env = options.env ?? process.env;
  const graceMs = options.graceMs ?? 120_000;
  const port = await freePort();
  const children: ChildProcess[] = [];
  const exited = new Map<number, number>();
  const state: { firstFailure: number | null; terminate: NodeJS.Timeout | null } = {
    firstFailure: null,
    terminate: null,
  };

  const kill = (signal: NodeJS.Signals) => {
    for (const [rank, child] of children.entries())
      if (!exited.has(rank) && child.pid !== undefined) {
        try {
          // Each rank leads its own process group (a node and its native threads).
          process.kill(-child.pid, signal);
        } catch {
          // Already gone.
        }
      }
  };
  const forward = (signal: NodeJS.Signals) => () => kill(signal);
  const onInt = forward('SIGINT');
  const onTerm = forward('SIGTERM');
  process.on('SIGINT', onInt);
  process.on('SIGTERM', onTerm);
  try {
    const done = Array.from({ length: nproc }, (_, rank) => {
      const child = spawn(process.execPath, [cliEntry, ...options.argv], {
        env: { ...env, ...launchVariables(rank, nproc, port) },
        stdio: ['ignore', 'pipe', 'pipe'],
        // Own process groups: a Ctrl-C reaches the ranks once, through the launcher.
        detached: true,
      });
      children.push(child);
      const tag = rank === 0 ? '' : `[rank ${rank}] `;
      relay(child.stdout!, rank === 0 ? io.stdout : io.stderr, tag);
      relay(child.stderr!, io.stderr, tag);
      return new Promise<void>((resolveExit) => {
        child.on('error', (error) => {
          io.stderr.write(`mentallam: rank ${rank} could not start: ${error.message}\n`);
          exited.set(rank, 1);
          resolveExit();
        });
        // 'close': the process ended and its output has been read.
        child.on('close', (code, signal) => {
          const status = code ?? 128 + (signal ? osConstants.signals[signal] : 0);
          exited.set(rank, status);
          if (status !== 0 && state.firstFailure === null) {
            state.firstFailure = status;
            io.stderr.write(
              `mentallam: rank ${rank} ended with ${signal ?? `exit code ${code}`}; ` +
                `waiting up to ${Math.round(graceMs / 1000)} s for the other ranks to stop\n`,
            );
            state.terminate = setTimeout(() => {
              kill('SIGTERM');
              state.terminate = setTimeout(() => kill('SIGKILL'), 30_000);
            }, graceMs);
          }
          resolveExit();
        });
      });
    });
    await Promise.all(done);
    return state.firstFailure ?? 0;
  } finally {
    if (state.terminate) clearTimeout(state.terminate);
    process.off('SIGINT', onInt);
    process.off('SIGTERM', onTerm);
  }
}
