#!/usr/bin/env node
// The GPU test stage: `npm run test:gpu`, and the `gpu` stage of scripts/run-tests.mjs. Runs
// test/gpu/*.test.ts under node:test (compiled by tsconfig.gpu.json into build/gpu-test/), one
// file at a time, against the CUDA build of the addon.
//
// Without a usable GPU it prints one "!!! SKIPPED gpu: <why>" line and exits 0, unless
// MENTALLAM_REQUIRE_GPU=1 (the nightly GPU workflow, scripts/gpu-check.sh): there it fails. A GPU
// that nvidia-smi sees but the addon cannot use (a CPU build, a driver older than torch's CUDA)
// is a failure everywhere, since set-up should have built for it (unless MENTALLAM_DEVICE=cpu
// asked for the CPU build).
// MENTALLAM_GPU_TEST_DEVICE=cpu runs the same tests on the CPU, a dry run of their logic for a
// machine without a GPU: reported as such, never as a GPU result.
//
// Flags: --json FILE (writes { status, reason, passed, failed, skipped, seconds }),
//        --compiled DIR (run tests already compiled into DIR/test/gpu; no TypeScript needed),
//        --results FILE (the JSONL figures the tests report; default build/gpu-test/results.jsonl).
// Environment: MENTALLAM_ADDON (the addon; default build/Release/mentallam.node),
//        MENTALLAM_ORACLE_PYTHON (transformers + peft; default .venv/bin/python).
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const args = process.argv.slice(2);
const option = (name) => {
  const at = args.indexOf(name);
  return at >= 0 ? args[at + 1] : undefined;
};
const jsonFile = option('--json');
const compiled = option('--compiled')
  ? resolve(option('--compiled'))
  : join(root, 'build', 'gpu-test');
const resultsFile = resolve(option('--results') ?? join(compiled, 'results.jsonl'));
const addonPath = resolve(
  process.env.MENTALLAM_ADDON || join(root, 'build', 'Release', 'mentallam.node'),
);
const device = process.env.MENTALLAM_GPU_TEST_DEVICE || 'cuda';
const requireGpu = process.env.MENTALLAM_REQUIRE_GPU === '1';
const started = Date.now();

function finish(summary) {
  const full = {
    passed: 0,
    failed: 0,
    skipped: 0,
    ...summary,
    seconds: (Date.now() - started) / 1000,
  };
  if (jsonFile) writeFileSync(jsonFile, JSON.stringify(full));
  process.exit(full.status === 'failed' ? 1 : 0);
}

function skipOrFail(reason) {
  if (requireGpu) {
    console.error(`gpu: FAILED: ${reason} (MENTALLAM_REQUIRE_GPU=1: a GPU is required here)`);
    finish({ status: 'failed', reason });
  }
  console.log(`\n!!! SKIPPED gpu: ${reason}\n`);
  finish({ status: 'skipped', reason });
}

function fail(reason) {
  console.error(`gpu: FAILED: ${reason}`);
  finish({ status: 'failed', reason });
}

// What the GPU looks like: nvidia-smi's list, and the addon's own view (in a child process, so
// that a libtorch that cannot load does not take this runner down).
function probe() {
  const smi = spawnSync('nvidia-smi', ['-L'], { encoding: 'utf8', timeout: 30_000 });
  const gpus =
    smi.status === 0 ? smi.stdout.split('\n').filter((line) => line.startsWith('GPU ')) : [];
  const smiWhy =
    smi.error?.code === 'ENOENT' ? 'nvidia-smi not found' : 'nvidia-smi did not answer';
  if (!existsSync(addonPath))
    return { gpus, smiWhy, error: `${addonPath} is missing (run npm run build:native)` };
  const child = spawnSync(
    process.execPath,
    ['-e', 'console.log(JSON.stringify(require(process.argv[1]).info()))', addonPath],
    { encoding: 'utf8', timeout: 120_000 },
  );
  if (child.status !== 0) {
    const lines = `${child.stderr}`.trim().split('\n');
    return {
      gpus,
      smiWhy,
      error: `the addon does not load: ${lines.find((l) => /Error/.test(l)) ?? lines[0]}`,
    };
  }
  return { gpus, smiWhy, info: JSON.parse(child.stdout.trim().split('\n').pop()) };
}

if (device === 'cpu') {
  console.log(
    'gpu: MENTALLAM_GPU_TEST_DEVICE=cpu: the GPU tests run on the CPU as a dry run of their own ' +
      'logic; nothing here is a GPU result',
  );
} else {
  const seen = probe();
  if (seen.error) fail(seen.error);
  const { info, gpus } = seen;
  const hidden =
    process.env.CUDA_VISIBLE_DEVICES !== undefined &&
    process.env.CUDA_VISIBLE_DEVICES.trim() === '';
  if (!info.cudaAvailable) {
    if (gpus.length === 0) skipOrFail(`no NVIDIA GPU visible (${seen.smiWhy})`);
    if (hidden) skipOrFail('CUDA_VISIBLE_DEVICES is empty: every GPU is hidden from this process');
    if (!info.builtWithCuda) {
      const why = `${gpus.length} GPU(s) visible, but the addon was built against a CPU-only libtorch (torch ${info.torchVersion})`;
      if (process.env.MENTALLAM_DEVICE === 'cpu')
        skipOrFail(`${why}, as MENTALLAM_DEVICE=cpu asked`);
      fail(`${why}: run npm run build:native (set-up builds for CUDA when nvidia-smi answers)`);
    }
    fail(
      `${gpus.length} GPU(s) visible and the addon is a CUDA build (torch ${info.torchVersion}), ` +
        "but libtorch finds no usable CUDA device: is the driver older than this torch's CUDA?",
    );
  }
  console.log(
    `gpu: ${gpus.map((line) => line.replace(/ \(UUID.*\)/, '')).join('; ')}; addon torch ${info.torchVersion}, ` +
      `${info.cudaDeviceCount} CUDA device(s); tests on ${device}`,
  );
}

if (!option('--compiled')) {
  const tsc = join(root, 'node_modules', 'typescript', 'bin', 'tsc');
  if (!existsSync(tsc)) fail('typescript is missing from node_modules: run npm install');
  rmSync(compiled, { recursive: true, force: true });
  const built = spawnSync(process.execPath, [tsc, '-p', join(root, 'tsconfig.gpu.json')], {
    cwd: root,
    stdio: 'inherit',
  });
  if (built.status !== 0) fail('the GPU tests did not compile (tsc -p tsconfig.gpu.json)');
}
const testDir = join(compiled, 'test', 'gpu');
const files = existsSync(testDir)
  ? readdirSync(testDir)
      .filter((name) => name.endsWith('.test.js'))
      .sort()
      .map((name) => join(testDir, name))
  : [];
if (files.length === 0) fail(`no compiled GPU tests in ${testDir}`);

mkdirSync(dirname(resultsFile), { recursive: true });
rmSync(resultsFile, { force: true });
const tap = join(compiled, 'gpu-tests.tap');
const result = spawnSync(
  process.execPath,
  [
    '--test',
    '--test-concurrency=1',
    '--test-reporter=spec',
    '--test-reporter-destination=stdout',
    '--test-reporter=tap',
    `--test-reporter-destination=${tap}`,
    ...files,
  ],
  {
    cwd: root,
    stdio: 'inherit',
    timeout: 45 * 60 * 1000,
    killSignal: 'SIGKILL',
    env: {
      ...process.env,
      MENTALLAM_ADDON: addonPath,
      MENTALLAM_GPU_TEST_DEVICE: device,
      MENTALLAM_GPU_RESULTS: resultsFile,
    },
  },
);
const text = existsSync(tap) ? readFileSync(tap, 'utf8') : '';
const count = (name) => Number(new RegExp(`^# ${name} (\\d+)$`, 'm').exec(text)?.[1] ?? 0);
const counts = {
  passed: count('pass'),
  failed: count('fail') + count('cancelled'),
  skipped: count('skipped') + count('todo'),
};
if (result.signal === 'SIGKILL')
  fail('the GPU tests had not ended after 45 minutes and were killed');
console.log(
  `gpu: ${counts.passed} passed, ${counts.failed} failed, ${counts.skipped} skipped on ${device}` +
    `${device === 'cpu' ? ' (a CPU dry run, not a GPU result)' : ''}; figures in ${resultsFile}`,
);
finish({
  status: result.status === 0 && counts.failed === 0 ? 'passed' : 'failed',
  reason: device === 'cpu' ? 'CPU dry run (MENTALLAM_GPU_TEST_DEVICE=cpu)' : undefined,
  ...counts,
});
