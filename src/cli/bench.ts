/**
 * `mentallam bench`: CPU latency of the classifier per input length, a text histogram on stdout,
 * bench.json and an SVG/PNG histogram in the output directory, and MLflow metrics when enabled.
 * Exit 1 when the p95 at the gated length exceeds bench.max_p95_ms and bench.allow_slow.reason is
 * not set; 2 on usage errors.
 */
import type { Command } from 'commander';

import { loadConfig } from '../config/index.js';
import { bench } from '../bench/index.js';
import { InferUsageError, ModelResolutionError } from '../infer/index.js';
import { createLogger } from '../infra/index.js';
import { usageExit, type CommandDefaults } from './infer.js';
import { addOverrideOptions, type CliIo } from './program.js';

interface BenchCliOptions {
  override: string[];
  configDir?: string;
  checkpoint?: string;
  run?: string;
  model?: string;
  base?: string;
  lengths?: string;
  runs?: string;
  warmup?: string;
  threads?: string;
  out?: string;
  logMlflow?: boolean;
  mlflow?: boolean;
}

function integers(name: string, text: string): number[] {
  const values = text.split(',').map((part) => Number(part.trim()));
  if (values.length === 0 || values.some((v) => !Number.isInteger(v) || v < 0)) {
    throw new InferUsageError(`${name} must be non-negative integers, got ${JSON.stringify(text)}`);
  }
  return values;
}

export function registerBenchCommand(
  program: Command,
  io: CliIo,
  defaults: CommandDefaults = {},
): Command {
  const command = addOverrideOptions(program.command('bench'))
    .description('CPU latency of the classifier on synthetic inputs (p50/p95/p99 per length)')
    .option('--checkpoint <dir>', 'time a trained adapter (merged) instead of the bare base model')
    .option('--run <ref>', 'time the best (or given) fold of a run')
    .option('--model <uri>', 'time a registered model (models:/<name>@<alias>)')
    .option('--base <path>', 'base model: checkpoint directory or .gguf file (default: model.path)')
    .option('--lengths <list>', 'input lengths in tokens, e.g. 64,128,256 (default bench.lengths)')
    .option('--runs <n>', 'timed runs per length (default bench.runs)')
    .option('--warmup <n>', 'untimed runs per length first (default bench.warmup)')
    .option('--threads <n>', 'libtorch intra-op threads; 0 = default (bench.threads)')
    .option('--out <dir>', 'where bench.json and the histogram go (default <run_dir>/bench)')
    .option('--log-mlflow', 'log to MLflow even when logging.mlflow.enabled is false')
    .option('--no-mlflow', 'do not log to MLflow')
    .action(async (bare: string[], options: BenchCliOptions) => {
      const { config } = await loadConfig({
        configDir: options.configDir ?? defaults.configDir,
        overrides: [...bare, ...options.override],
        env: io.env,
      });
      const logger = createLogger({ stream: io.stderr, env: io.env, level: config.logging.level });
      try {
        const one = (name: string, text: string | undefined) =>
          text === undefined ? undefined : integers(name, text)[0];
        const lengths =
          options.lengths === undefined ? undefined : integers('--lengths', options.lengths);
        const runs = one('--runs', options.runs);
        const warmup = one('--warmup', options.warmup);
        const threads = one('--threads', options.threads);
        const logMlflow = options.mlflow === false ? false : options.logMlflow ? true : undefined;
        const result = await bench({
          config,
          env: io.env,
          logger,
          ...(defaults.loadModel ? { loadModel: defaults.loadModel } : {}),
          ...(defaults.now ? { now: defaults.now } : {}),
          ...(options.checkpoint !== undefined ? { checkpoint: options.checkpoint } : {}),
          ...(options.run !== undefined ? { run: options.run } : {}),
          ...(options.model !== undefined ? { model: options.model } : {}),
          ...(options.base !== undefined ? { base: options.base } : {}),
          ...(lengths ? { lengths } : {}),
          ...(runs !== undefined ? { runs } : {}),
          ...(warmup !== undefined ? { warmup } : {}),
          ...(threads !== undefined ? { threads } : {}),
          ...(options.out !== undefined ? { outDir: options.out } : {}),
          ...(logMlflow !== undefined ? { logMlflow } : {}),
        });
        io.stdout.write(result.report);
        const { gate } = result;
        io.stdout.write(
          `gate: p95 at ${gate.length} tokens = ${gate.p95.toFixed(1)} ms, limit ${gate.maxP95Ms} ms: ` +
            (gate.overLimit
              ? gate.allowSlowReason
                ? `over the limit, allowed (bench.allow_slow.reason: ${gate.allowSlowReason})`
                : 'FAILED'
              : 'passed') +
            `\nwritten: ${result.files.join(', ')}${result.runId ? `\nMLflow run ${result.runId}` : ''}\n`,
        );
        if (!gate.passed) {
          throw new Error(
            `bench gate failed: p95 ${gate.p95.toFixed(1)} ms > bench.max_p95_ms ${gate.maxP95Ms} ms ` +
              `at ${gate.length} tokens (set bench.allow_slow.reason to accept it)`,
          );
        }
      } catch (error) {
        if (
          error instanceof InferUsageError ||
          error instanceof ModelResolutionError ||
          error instanceof RangeError
        ) {
          usageExit(io, 'bench', error.message);
        }
        throw error;
      }
    });
  command.configureOutput({
    writeOut: (text) => io.stdout.write(text),
    writeErr: (text) => io.stderr.write(text),
  });
  command.exitOverride();
  return command;
}
