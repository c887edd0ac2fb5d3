/**
 * `mentallam infer`: one post (against one criterion or all nine) printed as a table, or JSONL
 * in and out streamed chunk by chunk, with progress on stderr, that survives interruption
 * (`--resume`). Exit codes: 0 every record scored, 1 some records failed (each has an error
 * record in the output) or the run failed, 2 usage (checked before the model loads), 130
 * interrupted (what was scored is kept for --resume).
 */
import { CommanderError, type Command } from 'commander';

import { loadConfig } from '../config/index.js';
import {
  infer,
  inferFile,
  InferStoppedError,
  InferUsageError,
  ModelResolutionError,
  outputCompanions,
  type InferFileResult,
  type InferResult,
  type ModelLoader,
  type Prediction,
} from '../infer/index.js';
import { createLogger } from '../infra/index.js';
import { addOverrideOptions, CliExit, exitCodes, type CliIo } from './program.js';

/** Defaults and test seams: the model loader and the clock replace the native ones in tests. */
export interface CommandDefaults {
  configDir?: string;
  loadModel?: ModelLoader;
  now?: () => number;
}

interface InferCliOptions {
  override: string[];
  configDir?: string;
  post?: string;
  criterion?: string;
  input?: string;
  output?: string;
  checkpoint?: string;
  base?: string;
  run?: string;
  model?: string;
  ensemble?: boolean;
  threshold?: string;
  json?: boolean;
  logMlflow?: boolean;
  cacheDir?: string;
  resume?: boolean;
}

/** Writes the message and ends with exit code 2 (runCli maps a CommanderError to usage). */
export function usageExit(io: CliIo, command: string, message: string): never {
  io.stderr.write(`mentallam ${command}: ${message}\n`);
  throw new CommanderError(exitCodes.usage, 'mentallam.usage', message);
}

/** A number in [0, 1] from the command line, or a usage error. */
export function parseThresholdArg(value: string): number {
  const n = Number(value);
  if (value.trim() === '' || !Number.isFinite(n) || n < 0 || n > 1) {
    throw new InferUsageError(
      `--threshold must be a number in [0, 1], got ${JSON.stringify(value)}`,
    );
  }
  return n;
}

/** The table printed for --post: one row per criterion. */
export function formatPredictionTable(predictions: readonly Prediction[]): string {
  const header = ['criterion', 'symptom', 'probability', 'threshold', 'label'];
  const rows = predictions.map((p) => [
    p.criterion,
    p.symptom,
    p.probability.toFixed(4),
    `${p.threshold.toFixed(4)}${p.thresholdOrigin === 'override' ? '*' : ''}`,
    p.label,
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => c.padEnd(widths[i]!))
      .join('  ')
      .trimEnd();
  return `${[line(header), ...rows.map(line)].join('\n')}\n`;
}

function summaryLine(result: InferResult, kept: InferFileResult | null = null): string {
  const { counts, latency } = result;
  const resumed =
    kept && !kept.alreadyComplete && kept.resumed
      ? ` (continuing after the ${kept.resumed.records} records an interrupted run wrote)`
      : '';
  return (
    `scored ${counts.pairs} pairs from ${counts.records} records${resumed}` +
    (counts.failed > 0 ? `, ${counts.failed} failed` : '') +
    `; ${latency.msPerPairMean.toFixed(1)} ms per pair (model ${result.model.kind} ${result.model.ref}` +
    `${result.model.ensemble ? `, ensemble of ${result.model.folds.length}` : ''}` +
    `, thresholds: ${result.model.thresholdsSource})` +
    (result.runId ? `; MLflow run ${result.runId}` : '') +
    '\n'
  );
}

export function registerInferCommand(
  program: Command,
  io: CliIo,
  defaults: CommandDefaults = {},
): Command {
  const command = addOverrideOptions(program.command('infer'))
    .description(
      'score (post, criterion) pairs with a trained adapter, a run or a registered model',
    )
    .option('--post <text>', 'one post; with --criterion one pair, alone all nine criteria')
    .option('--criterion <id|name>', 'A1..A9 or a symptom name (case-insensitive), with --post')
    .option('--input <file>', 'JSONL of {id?, post, criterion?} per line; - = stdin')
    .option('--output <file>', 'JSONL predictions and error records; - = stdout')
    .option('--checkpoint <dir>', 'an adapter directory (adapter_config.json + weights)')
    .option(
      '--base <path>',
      "base model: checkpoint directory or .gguf file (default: the adapter's base_model_name_or_path)",
    )
    .option('--run <ref>', 'a run directory or MLflow run id, optionally /<fold>')
    .option(
      '--model <uri>',
      'a registered model: models:/<name>@<alias> or models:/<name>/<version>',
    )
    .option('--ensemble', 'average the probabilities of every fold adapter of the run')
    .option(
      '--threshold <t>',
      'one decision threshold for every criterion (default: thresholds.json)',
    )
    .option('--json', 'with --post: print JSON lines instead of a table')
    .option('--log-mlflow', 'log an inference run (counts, latency, hashed ids; never text)')
    .option('--cache-dir <dir>', 'where MLflow models are downloaded (default ~/.cache/mentallam)')
    .option(
      '--resume',
      'continue the <output>.part an interrupted run left (with --input/--output; starts afresh when there is none)',
    )
    .action(async (bare: string[], options: InferCliOptions) => {
      const { config } = await loadConfig({
        configDir: options.configDir ?? defaults.configDir,
        overrides: [...bare, ...options.override],
        env: io.env,
      });
      const logger = createLogger({ stream: io.stderr, env: io.env, level: config.logging.level });
      const stdin = (io as CliIo & { stdin?: NodeJS.ReadableStream }).stdin ?? process.stdin;
      try {
        if (options.input !== undefined && options.output === undefined) {
          throw new InferUsageError('--input needs --output (a file, or - for stdout)');
        }
        if (options.output !== undefined && options.input === undefined) {
          throw new InferUsageError('--output goes with --input');
        }
        if (options.resume && options.input === undefined) {
          throw new InferUsageError('--resume goes with --input and --output');
        }
        const threshold =
          options.threshold !== undefined ? parseThresholdArg(options.threshold) : undefined;
        const common = {
          config,
          env: io.env,
          logger,
          ...(defaults.loadModel ? { loadModel: defaults.loadModel } : {}),
          ...(defaults.now ? { now: defaults.now } : {}),
          ...(options.checkpoint !== undefined ? { checkpoint: options.checkpoint } : {}),
          ...(options.run !== undefined ? { run: options.run } : {}),
          ...(options.model !== undefined ? { model: options.model } : {}),
          ...(options.base !== undefined ? { base: options.base } : {}),
          ...(options.ensemble ? { ensemble: true } : {}),
          ...(threshold !== undefined ? { threshold } : {}),
          ...(options.criterion !== undefined ? { criterion: options.criterion } : {}),
          ...(options.logMlflow ? { logMlflow: true } : {}),
          ...(options.cacheDir !== undefined ? { cacheDir: options.cacheDir } : {}),
        };
        if (options.input !== undefined && options.output !== undefined) {
          const result = await inferFile({
            ...common,
            input: options.input,
            output: options.output,
            resume: options.resume === true,
            stdin,
            stdout: io.stdout,
            progress: { mode: config.logging.progress.mode, stream: io.stderr },
          });
          if (result.alreadyComplete) {
            io.stderr.write(
              `nothing to resume: ${result.outputPath} is complete (there is no ${outputCompanions(result.outputPath).part})\n`,
            );
            return;
          }
          io.stderr.write(summaryLine(result, result));
          const failed = result.counts.failed + (result.resumed?.failed ?? 0);
          const records = result.counts.records + (result.resumed?.records ?? 0);
          if (failed > 0) {
            throw new Error(
              `${failed} of ${records} records failed (see the error records in the output)`,
            );
          }
          return;
        }
        const result = await infer({
          ...common,
          ...(options.post !== undefined ? { post: options.post } : {}),
        });
        if (options.post !== undefined) {
          io.stdout.write(
            options.json
              ? result.predictions.map((p) => `${JSON.stringify(p)}\n`).join('')
              : formatPredictionTable(result.predictions),
          );
        }
        io.stderr.write(summaryLine(result));
      } catch (error) {
        if (error instanceof InferUsageError || error instanceof ModelResolutionError) {
          usageExit(io, 'infer', error.message);
        }
        if (error instanceof InferStoppedError && error.interrupted) {
          io.stderr.write(`mentallam infer: ${error.message}\n`);
          throw new CliExit(exitCodes.interrupted);
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
