#!/usr/bin/env node
// The test command's runner: unit tests (parallel), then integration and parity suites one at a
// time (they start MLflow servers and load the native addon, and this machine has 2 cores), then
// the GPU stage (scripts/test-gpu.mjs: test/gpu under node:test; without a GPU it reports itself
// SKIPPED, with the reason, and does not fail). The three jest stages are the CPU suite: they run
// with CUDA_VISIBLE_DEVICES='' on every machine, so that a GPU box runs them on the CPU as CI does
// (the engine's device `auto` would pick the GPU otherwise); CUDA is the gpu stage's.
// Prints one summary table at the end, then one loud line per skipped suite (a suite whose tool is
// missing skips locally and fails on CI: test/describeWithTool.ts); exits non-zero if any stage failed.
// Arguments name the stages to run (unit, integration, parity, gpu); none runs them all.
// No --forceExit: a suite that leaves a timer, socket or server running is a defect to see, not
// to hide. A stage that has not ended after STAGE_TIMEOUT_MS is killed and reported as hung, so
// a CI job still cannot hang.
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { tmpdir } from 'node:os';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const jest = join(root, 'node_modules', 'jest', 'bin', 'jest.js');
const stages = [
  { name: 'unit', dir: 'test/unit', args: ['--maxWorkers=2'] },
  { name: 'integration', dir: 'test/integration', args: ['--runInBand'] },
  { name: 'parity', dir: 'test/parity', args: ['--runInBand'] },
  { name: 'gpu' },
];
// Integration takes about 4 minutes here and parity 2; 30 leaves room for a slower machine.
const STAGE_TIMEOUT_MS = 30 * 60 * 1000;
const only = process.argv.slice(2);
const summary = [];
/** `stage: file: suite title` for every suite with skipped tests. */
const skipped = [];
let failed = false;
/** The gpu stage: scripts/test-gpu.mjs, which skips (exit 0) when no GPU is visible. */
function runGpuStage() {
  const summaryFile = join(tmpdir(), `mentallam-gpu-stage-${process.pid}.json`);
  const started = Date.now();
  const result = spawnSync(
    process.execPath,
    [join(root, 'scripts', 'test-gpu.mjs'), '--json', summaryFile],
    {
      cwd: root,
      stdio: 'inherit',
    },
  );
  let gpu = { status: 'failed', reason: 'scripts/test-gpu.mjs wrote no summary' };
  if (existsSync(summaryFile)) {
    gpu = JSON.parse(readFileSync(summaryFile, 'utf8'));
    rmSync(summaryFile, { force: true });
  }
  if (gpu.status === 'skipped') skipped.push(`gpu: ${gpu.reason}`);
  const ok = result.status === 0 && gpu.status !== 'failed';
  return {
    stage: 'gpu',
    ok,
    seconds: (Date.now() - started) / 1000,
    numTotalTestSuites: gpu.status === 'skipped' ? 0 : '-',
    numPassedTests: gpu.passed ?? 0,
    numFailedTests: gpu.failed ?? 0,
    numPendingTests: gpu.skipped ?? 0,
    note: gpu.status === 'skipped' ? 'SKIPPED (no GPU)' : undefined,
  };
}

for (const stage of stages) {
  if (only.length > 0 && !only.includes(stage.name)) continue;
  if (stage.name === 'gpu') {
    const row = runGpuStage();
    failed ||= !row.ok;
    summary.push(row);
    continue;
  }
  const resultsFile = join(tmpdir(), `mentallam-jest-${stage.name}-${process.pid}.json`);
  const started = Date.now();
  const result = spawnSync(
    process.execPath,
    [
      jest,
      `--roots=<rootDir>/${stage.dir}`,
      '--json',
      `--outputFile=${resultsFile}`,
      ...stage.args,
    ],
    {
      cwd: root,
      stdio: 'inherit',
      timeout: STAGE_TIMEOUT_MS,
      killSignal: 'SIGKILL',
      env: {
        ...process.env,
        NODE_OPTIONS: `${process.env.NODE_OPTIONS ?? ''} --experimental-vm-modules`.trim(),
        CUDA_VISIBLE_DEVICES: '',
      },
    },
  );
  const seconds = (Date.now() - started) / 1000;
  let counts = { numPassedTests: 0, numFailedTests: 0, numPendingTests: 0, numTotalTestSuites: 0 };
  if (existsSync(resultsFile)) {
    counts = JSON.parse(readFileSync(resultsFile, 'utf8'));
    rmSync(resultsFile, { force: true });
    for (const file of counts.testResults ?? []) {
      const titles = new Set(
        file.assertionResults
          .filter((test) => test.status === 'pending' || test.status === 'skipped')
          .map((test) => test.ancestorTitles[0] ?? test.title),
      );
      for (const title of titles)
        skipped.push(`${stage.name}: ${relative(root, file.name)}: ${title}`);
    }
  }
  const hung = result.error?.code === 'ETIMEDOUT' || result.signal === 'SIGKILL';
  if (hung) {
    console.error(
      `\n${stage.name}: jest had not exited after ${STAGE_TIMEOUT_MS / 60000} minutes and was ` +
        'killed; a test left something running (find it with npx jest --detectOpenHandles)',
    );
  }
  const ok = result.status === 0 && !hung;
  failed ||= !ok;
  summary.push({ stage: stage.name, ok, seconds, ...counts });
}
console.log('\nmentallam test summary');
console.log('stage        suites  passed  failed  skipped  seconds  result');
for (const row of summary) {
  console.log(
    `${row.stage.padEnd(12)} ${String(row.numTotalTestSuites).padStart(6)}  ${String(row.numPassedTests).padStart(6)}  ${String(row.numFailedTests).padStart(6)}  ${String(row.numPendingTests).padStart(7)}  ${row.seconds.toFixed(1).padStart(7)}  ${row.ok ? (row.note ?? 'ok') : 'FAILED'}`,
  );
}
if (skipped.length > 0) {
  console.log(`\n!!! ${skipped.length} suite(s) skipped tests:`);
  for (const line of skipped) console.log(`!!! SKIPPED ${line}`);
}
process.exit(failed ? 1 : 0);
