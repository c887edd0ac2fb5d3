#!/usr/bin/env node
// The test command's runner: unit tests (parallel), then integration and parity suites one at a
// time (they start MLflow servers and load the native addon, and this machine has 2 cores).
// Prints one summary table at the end; exits non-zero if any stage failed.
// --forceExit: some suites leave libtorch worker threads or sockets of stopped servers behind,
// and a CI job must never hang after its results are in.
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { tmpdir } from 'node:os';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const jest = join(root, 'node_modules', 'jest', 'bin', 'jest.js');
const stages = [
  { name: 'unit', dir: 'test/unit', args: ['--maxWorkers=2'] },
  { name: 'integration', dir: 'test/integration', args: ['--runInBand', '--forceExit'] },
  { name: 'parity', dir: 'test/parity', args: ['--runInBand', '--forceExit'] },
];
const only = process.argv.slice(2);
const summary = [];
let failed = false;
for (const stage of stages) {
  if (only.length > 0 && !only.includes(stage.name)) continue;
  const resultsFile = join(tmpdir(), `mentallam-jest-${stage.name}-${process.pid}.json`);
  const started = Date.now();
  const result = spawnSync(
    process.execPath,
    [
      jest,
      `--roots=<rootDir>/${stage.dir}`,
      '--passWithNoTests',
      '--json',
      `--outputFile=${resultsFile}`,
      ...stage.args,
    ],
    {
      cwd: root,
      stdio: 'inherit',
      env: {
        ...process.env,
        NODE_OPTIONS: `${process.env.NODE_OPTIONS ?? ''} --experimental-vm-modules`.trim(),
      },
    },
  );
  const seconds = (Date.now() - started) / 1000;
  let counts = { numPassedTests: 0, numFailedTests: 0, numPendingTests: 0, numTotalTestSuites: 0 };
  if (existsSync(resultsFile)) {
    counts = JSON.parse(readFileSync(resultsFile, 'utf8'));
    rmSync(resultsFile, { force: true });
  }
  const ok = result.status === 0;
  failed ||= !ok;
  summary.push({ stage: stage.name, ok, seconds, ...counts });
}
console.log('\nmentallam test summary');
console.log('stage        suites  passed  failed  skipped  seconds  result');
for (const row of summary) {
  console.log(
    `${row.stage.padEnd(12)} ${String(row.numTotalTestSuites).padStart(6)}  ${String(row.numPassedTests).padStart(6)}  ${String(row.numFailedTests).padStart(6)}  ${String(row.numPendingTests).padStart(7)}  ${row.seconds.toFixed(1).padStart(7)}  ${row.ok ? 'ok' : 'FAILED'}`,
  );
}
process.exit(failed ? 1 : 0);
