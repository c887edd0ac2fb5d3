/**
 * What the GPU tests share: the device they run on, the Python oracle, result lines.
 *
 * The GPU tests run under node:test over JavaScript compiled by tsconfig.gpu.json (not jest), so
 * that a GPU machine with Node alone runs them (scripts/gpu-check.sh); `npm run test:gpu`
 * (scripts/test-gpu.mjs) compiles and runs the same files. Environment:
 * - MENTALLAM_GPU_TEST_DEVICE: 'cuda' (default) or 'cuda:N'; 'cpu' runs the same comparisons on
 *   the CPU, a dry run of the tests' own logic for machines without a GPU (never a GPU result).
 * - MENTALLAM_ORACLE_PYTHON: the Python with torch, transformers and peft (default .venv's).
 * - MENTALLAM_GPU_RESULTS: a JSONL file each test appends its figures to.
 */
import { execFile } from 'node:child_process';
import { existsSync, readFileSync, appendFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const run = promisify(execFile);

/** The checkout: the first folder above this file holding mentallam's package.json. */
function findRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const manifest = join(dir, 'package.json');
    if (existsSync(manifest) && existsSync(join(dir, 'test', 'parity', 'python'))) {
      const name = (JSON.parse(readFileSync(manifest, 'utf8')) as { name?: string }).name;
      if (name === 'mentallam') return dir;
    }
    const parent = dirname(dir);
    if (parent === dir) throw new Error('the GPU tests must run inside a mentallam checkout');
    dir = parent;
  }
}

export const root = findRoot();
export const device = process.env.MENTALLAM_GPU_TEST_DEVICE || 'cuda';
export const onCuda = device.startsWith('cuda');
/** The CUDA device index the tests use (memory statistics are per device). */
export const cudaIndex = device.startsWith('cuda:') ? Number(device.slice(5)) : 0;
export const python =
  process.env.MENTALLAM_ORACLE_PYTHON || resolve(root, '.venv', 'bin', 'python');

/**
 * Runs test/parity/python/dora_oracle.py (the parity tests' oracle) and parses the JSON it prints
 * last. `placed` adds --device (and --dtype) for the subcommands that run a model.
 */
export async function oracle<T>(
  args: string[],
  placed?: { dtype?: 'float32' | 'bfloat16' },
): Promise<T> {
  const script = join(root, 'test', 'parity', 'python', 'dora_oracle.py');
  const extra = placed ? ['--device', device, '--dtype', placed.dtype ?? 'float32'] : [];
  const { stdout } = await run(python, [script, ...args, ...extra], {
    maxBuffer: 256 * 1024 * 1024,
    env: { ...process.env, TRANSFORMERS_VERBOSITY: 'error', TQDM_DISABLE: '1' },
  });
  const lines = stdout.trim().split('\n');
  return JSON.parse(lines[lines.length - 1]!) as T;
}

export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new Error(`length ${a.length} != ${b.length}`);
  let max = 0;
  for (let i = 0; i < a.length; i++) max = Math.max(max, Math.abs(a[i]! - b[i]!));
  return max;
}

/**
 * Prints a test's figures as one line ("gpu <name>: key value, ...") and appends them to
 * MENTALLAM_GPU_RESULTS, so that scripts/gpu-check.sh keeps them beside the logs.
 */
export function report(name: string, figures: Record<string, number | string | boolean>): void {
  const text = Object.entries(figures)
    .map(([key, value]) => `${key} ${typeof value === 'number' ? format(value) : value}`)
    .join(', ');
  console.log(`gpu ${name} [${device}]: ${text}`);
  const file = process.env.MENTALLAM_GPU_RESULTS;
  if (file) appendFileSync(file, `${JSON.stringify({ test: name, device, ...figures })}\n`);
}

function format(value: number): string {
  if (Number.isInteger(value)) return String(value);
  return Math.abs(value) < 1e-2 || Math.abs(value) >= 1e6
    ? value.toExponential(2)
    : value.toFixed(4);
}

export const MiB = 1024 * 1024;
