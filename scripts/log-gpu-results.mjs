#!/usr/bin/env node
// Logs a GPU check's results to MLflow (the nightly GPU workflow, when MLFLOW_TRACKING_URI is
// set): one run in the experiment "mentallam-nightly-gpu" (or --experiment), with
//   params   GPU, torch, commit, the bench's shape options
//   metrics  per bench shape and implementation: ms_per_step, tokens_per_s, peak_gpu_gib, mfu, and
//            the goal ratios; the GPU tests' passed / failed / skipped counts and every numeric
//            figure they reported (gpu-results.jsonl)
//   artifacts the whole results folder (logs, JSON)
//
//   node scripts/log-gpu-results.mjs RESULTS_DIR [--experiment NAME]
//
// Uses the project's MLflow client (dist/tracking: npm run build first) and its environment
// variables (MLFLOW_TRACKING_URI, _USERNAME/_PASSWORD or _TOKEN, TLS settings).
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const args = process.argv.slice(2);
const dir = args.find((arg) => !arg.startsWith('--'));
const at = args.indexOf('--experiment');
const experimentName = at >= 0 ? args[at + 1] : 'mentallam-nightly-gpu';
if (!dir || !existsSync(dir)) {
  console.error('usage: node scripts/log-gpu-results.mjs RESULTS_DIR [--experiment NAME]');
  process.exit(2);
}
const { MlflowClient, gitCommit } = await import(join(root, 'dist', 'tracking', 'index.js'));

const readJson = (name) =>
  existsSync(join(dir, name)) ? JSON.parse(readFileSync(join(dir, name), 'utf8')) : undefined;
/** MLflow keys: letters, digits, _ - . / and spaces. */
const key = (...parts) =>
  parts
    .join('/')
    .replace(/[^A-Za-z0-9_\-./ ]+/g, '_')
    .replace(/_+/g, '_');

const metrics = [];
const params = {};
const bench = readJson('gpu-bench.json');
if (bench) {
  for (const [name, value] of Object.entries(bench.options ?? {})) {
    if (['seq', 'batch', 'r', 'steps', 'warmup'].includes(name)) params[`bench_${name}`] = value;
  }
  for (const shape of bench.shapes ?? []) {
    params.gpu = shape.gpu;
    params.peak_bf16_tflops = shape.peakTflops;
    params[`${shape.name}_layers`] = shape.shape.num_hidden_layers;
    for (const [what, row] of Object.entries(shape.rows)) {
      if (row.error) continue;
      const base = [shape.name, what.replace(/ /g, '_')];
      metrics.push({ key: key(...base, 'ms_per_step'), value: row.ms });
      metrics.push({ key: key(...base, 'tokens_per_s'), value: row.tokensPerSec });
      metrics.push({ key: key(...base, 'peak_gpu_gib'), value: row.peakGpuBytes / 2 ** 30 });
      if (row.mfu !== null && row.mfu !== undefined) {
        metrics.push({ key: key(...base, 'mfu'), value: row.mfu });
      }
      if (row.torch) params.torch = row.torch;
    }
    for (const [goal, value] of Object.entries(shape.goals ?? {})) {
      metrics.push({
        key: key(shape.name, 'goal', goal.replace(/ \(.*\)$/, '').replace(/ /g, '_')),
        value,
      });
    }
  }
}
const tests = readJson('gpu-tests.json');
if (tests) {
  for (const name of ['passed', 'failed', 'skipped']) {
    metrics.push({ key: key('gpu_tests', name), value: tests[name] ?? 0 });
  }
}
const figures = join(dir, 'gpu-results.jsonl');
if (existsSync(figures)) {
  for (const line of readFileSync(figures, 'utf8').split('\n').filter(Boolean)) {
    const { test, device: _device, ...values } = JSON.parse(line);
    for (const [name, value] of Object.entries(values)) {
      if (typeof value === 'number' && Number.isFinite(value)) {
        metrics.push({ key: key('gpu_test', test.replace(/ \(.*\)$/, ''), name), value });
      }
    }
  }
}

const client = MlflowClient.fromEnv();
try {
  const experiment = await client.getOrCreateExperiment(experimentName);
  const commit = gitCommit(root) ?? 'unknown';
  const run = await client.createRun({
    experimentId: experiment.experimentId,
    runName: `nightly-gpu ${new Date().toISOString().slice(0, 10)}`,
    tags: { 'mlflow.source.git.commit': commit },
  });
  const runId = run.info.runId;
  await client.logBatch(runId, { params: { ...params, commit }, metrics });
  await client.uploadArtifacts(runId, resolve(dir), 'gpu-check');
  await client.updateRun(runId, {
    status: tests?.status === 'failed' ? 'FAILED' : 'FINISHED',
    endTime: Date.now(),
  });
  console.log(
    `logged ${metrics.length} metrics and ${dir} to ${client.trackingUri}, experiment ` +
      `${experimentName}, run ${runId}`,
  );
} finally {
  await client.close();
}
