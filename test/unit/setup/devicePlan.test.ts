/**
 * How the set-up chooses the CPU or CUDA build (scripts/setup.mjs --plan: the decisions, nothing
 * installed or built): nvidia-smi present and answering means the CUDA build of the pinned torch
 * (pip constraint torch===<pin>, requirements/cuda.txt) and a CUDA addon from a CUDA libtorch;
 * MENTALLAM_DEVICE=cpu|cuda overrides; a driver older than torch's CUDA is warned about. The GPU
 * here is a stand-in nvidia-smi script, and the libtorch folders are fakes with the files the
 * set-up reads (version.py or build-version, lib/libtorch_cuda.so).
 */
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

const root = resolve(import.meta.dirname ?? '.', '../../..');
const pin = /^torch==(\S+)/m.exec(
  readFileSync(join(root, 'requirements', 'runtime.txt'), 'utf8'),
)![1]!;
const work = mkdtempSync(join(tmpdir(), 'mentallam-setup-plan-'));

/** A folder holding an `nvidia-smi` that prints what a driver would, or fails. */
function fakeGpu(name: string, options: { driverCuda?: string; fail?: boolean }): string {
  const dir = join(work, `bin-${name}`);
  mkdirSync(dir, { recursive: true });
  const script = options.fail
    ? '#!/bin/sh\necho "NVIDIA-SMI has failed because it could not communicate with the NVIDIA driver" >&2\nexit 9\n'
    : '#!/bin/sh\nif [ "$1" = "--query-gpu=name,driver_version,memory.total" ]; then\n' +
      '  echo "NVIDIA H200, 580.159.03, 143771 MiB"\nelse\n' +
      `  echo "| NVIDIA-SMI 580.159.03   Driver Version: 580.159.03   CUDA Version: ${options.driverCuda} |"\nfi\n`;
  writeFileSync(join(dir, 'nvidia-smi'), script);
  chmodSync(join(dir, 'nvidia-smi'), 0o755);
  return dir;
}

/** A libtorch folder as the set-up sees one: a wheel's (version.py) or a distribution's. */
function fakeTorch(
  name: string,
  options: { version: string; cuda: string | null; wheel?: boolean },
): string {
  const dir = join(work, `torch-${name}`);
  mkdirSync(join(dir, 'include', 'torch'), { recursive: true });
  mkdirSync(join(dir, 'lib'), { recursive: true });
  for (const lib of ['libtorch_cpu.so', 'libc10.so']) writeFileSync(join(dir, 'lib', lib), '');
  if (options.cuda) {
    for (const lib of ['libtorch_cuda.so', 'libc10_cuda.so'])
      writeFileSync(join(dir, 'lib', lib), '');
  }
  if (options.wheel === false) {
    writeFileSync(join(dir, 'build-version'), `${options.version}\n`);
  } else {
    writeFileSync(
      join(dir, 'version.py'),
      `__version__ = '${options.version}'\ndebug = False\n` +
        `cuda: Optional[str] = ${options.cuda ? `'${options.cuda}'` : 'None'}\n`,
    );
  }
  return dir;
}

interface Plan {
  addonStamps: { hash: string; configureHash: string };
  device: { mode: string; cuda: boolean; driverCuda: string | null };
  pip: { files: string[]; constraint: string | null };
  libtorch: {
    version: string;
    cuda: string | null;
    cudaLibraries: boolean;
    cudaMode: string;
    withCuda: boolean;
    what: string;
  };
}

function plan(env: Record<string, string>): { status: number | null; output: string; plan?: Plan } {
  const pathDirs = [env.GPU_BIN, join(work, 'empty'), '/usr/bin', '/bin'].filter(Boolean);
  mkdirSync(join(work, 'empty'), { recursive: true });
  const { GPU_BIN: _bin, ...rest } = env;
  const result = spawnSync(process.execPath, [join(root, 'scripts', 'setup.mjs'), '--plan'], {
    cwd: root,
    encoding: 'utf8',
    env: { HOME: process.env.HOME ?? work, PATH: pathDirs.join(':'), ...rest },
  });
  const output = `${result.stdout}${result.stderr}`;
  const last = result.stdout.trim().split('\n').pop() ?? '';
  return {
    status: result.status,
    output,
    ...(last.startsWith('{"plan"') ? { plan: (JSON.parse(last) as { plan: Plan }).plan } : {}),
  };
}

const cudaTorch = fakeTorch('cu130', { version: `${pin}+cu130`, cuda: '13.0' });
const cpuTorch = fakeTorch('cpu', { version: `${pin}+cpu`, cuda: null });
const h200 = fakeGpu('h200', { driverCuda: '13.0' });

describe('set-up: CPU or CUDA build (setup.mjs --plan)', () => {
  test('a GPU that answers: the CUDA torch from PyPI, the CUDA headers, a CUDA addon', () => {
    const { status, output, plan: p } = plan({ GPU_BIN: h200, LIBTORCH: cudaTorch });
    expect(status).toBe(0);
    expect(output).toMatch(
      /gpu: NVIDIA H200, 580\.159\.03, 143771 MiB \(driver supports CUDA 13\.0\): CUDA build/,
    );
    expect(p!.device).toEqual({ mode: 'auto', cuda: true, driverCuda: '13.0' });
    expect(p!.pip.constraint).toBe(`torch===${pin}`);
    expect(p!.pip.files).toContain('requirements/cuda.txt');
    expect(p!.libtorch).toMatchObject({
      cuda: '13.0',
      cudaLibraries: true,
      cudaMode: 'AUTO',
      withCuda: true,
    });
    expect(p!.libtorch.what).toBe(`CUDA build against torch ${pin}+cu130 (CUDA 13.0)`);
    expect(output).toMatch(
      new RegExp(`libtorch: torch ${pin.replace(/\./g, '\\.')}\\+cu130, CUDA 13\\.0`),
    );
    expect(output).not.toMatch(/WARNING/);
  });

  test("a driver older than torch's CUDA is warned about", () => {
    const old = fakeGpu('old-driver', { driverCuda: '12.4' });
    const { status, output } = plan({ GPU_BIN: old, LIBTORCH: cudaTorch });
    expect(status).toBe(0);
    expect(output).toMatch(
      /WARNING: the NVIDIA driver supports CUDA 12\.4, older than this torch's CUDA 13\.0/,
    );
  });

  test('no nvidia-smi, or one that fails: the CPU build, and why', () => {
    const missing = plan({ LIBTORCH: cpuTorch });
    expect(missing.status).toBe(0);
    expect(missing.output).toMatch(
      /gpu: no NVIDIA GPU visible \(nvidia-smi not found\): CPU build/,
    );
    expect(missing.plan!.pip.constraint).toBeNull();
    expect(missing.plan!.pip.files).not.toContain('requirements/cuda.txt');
    expect(missing.plan!.libtorch.what).toBe(`CPU build against torch ${pin}+cpu`);
    const broken = plan({ GPU_BIN: fakeGpu('broken', { fail: true }), LIBTORCH: cpuTorch });
    expect(broken.output).toMatch(
      /no NVIDIA GPU visible \(nvidia-smi did not answer \(exit 9\)\): CPU build/,
    );
    expect(broken.plan!.device.cuda).toBe(false);
  });

  test('MENTALLAM_DEVICE=cpu: the CPU build even with a GPU and a CUDA libtorch', () => {
    const {
      status,
      output,
      plan: p,
    } = plan({ GPU_BIN: h200, LIBTORCH: cudaTorch, MENTALLAM_DEVICE: 'cpu' });
    expect(status).toBe(0);
    expect(output).toMatch(/gpu: MENTALLAM_DEVICE=cpu: CPU build/);
    expect(p!.pip.constraint).toBeNull();
    expect(p!.libtorch).toMatchObject({ cudaLibraries: true, cudaMode: 'OFF', withCuda: false });
    expect(p!.libtorch.what).toMatch(
      /^CPU build against torch .*\+cu130 \(a CUDA libtorch; its CUDA libraries are not linked\)$/,
    );
  });

  test('MENTALLAM_DEVICE=cuda without a GPU; a CPU libtorch then gets a warning', () => {
    const { output, plan: p } = plan({ LIBTORCH: cpuTorch, MENTALLAM_DEVICE: 'cuda' });
    expect(p!.device.cuda).toBe(true);
    expect(p!.pip.constraint).toBe(`torch===${pin}`);
    expect(p!.libtorch.cudaMode).toBe('ON');
    expect(output).toMatch(
      /WARNING: a CUDA build was asked for, but this libtorch has no CUDA libraries.*\(LIBTORCH wins over \.venv\)/,
    );
  });

  test('an unzipped libtorch distribution: the CUDA version from build-version', () => {
    const dist = fakeTorch('dist', { version: '2.13.0+cu126', cuda: '12.6', wheel: false });
    const { plan: p } = plan({ GPU_BIN: h200, LIBTORCH: dist });
    expect(p!.libtorch).toMatchObject({ version: '2.13.0+cu126', cuda: '12.6', withCuda: true });
  });

  test('the addon stamps change with the flavour, and only then', () => {
    const cuda = plan({ GPU_BIN: h200, LIBTORCH: cudaTorch }).plan!.addonStamps;
    const again = plan({ GPU_BIN: h200, LIBTORCH: cudaTorch }).plan!.addonStamps;
    const forcedCpu = plan({ GPU_BIN: h200, LIBTORCH: cudaTorch, MENTALLAM_DEVICE: 'cpu' }).plan!
      .addonStamps;
    expect(again).toEqual(cuda);
    expect(forcedCpu.hash).not.toBe(cuda.hash);
    expect(forcedCpu.configureHash).not.toBe(cuda.configureHash);
    // The same folder, its torch replaced in place by another flavour (a pip reinstall).
    const swapped = fakeTorch('swap', { version: `${pin}+cpu`, cuda: null });
    const before = plan({ LIBTORCH: swapped }).plan!.addonStamps;
    fakeTorch('swap', { version: `${pin}+cu130`, cuda: '13.0' });
    const after = plan({ LIBTORCH: swapped }).plan!.addonStamps;
    expect(after.hash).not.toBe(before.hash);
    expect(after.configureHash).not.toBe(before.configureHash);
  });

  test('an unknown MENTALLAM_DEVICE is an error naming the choices', () => {
    const { status, output } = plan({ LIBTORCH: cpuTorch, MENTALLAM_DEVICE: 'tpu' });
    expect(status).toBe(1);
    expect(output).toMatch(/MENTALLAM_DEVICE=tpu is not one of auto, cpu, cuda/);
  });
});
