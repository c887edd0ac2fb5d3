/**
 * `mentallam aggregate --run <parent run id | run dir>`: fold summaries, pooled out-of-fold
 * metrics, aggregate.json, thresholds.json, summary.md and report.html, attached to the parent
 * run. Exit 0 on success, 1 when aggregation fails, 2 on usage errors.
 */
import type { Command } from 'commander';

import {
  aggregate,
  formatNumber,
  RunReferenceError,
  type AggregateResult,
} from '../aggregate/index.js';
import { createLogger, type LogLevel } from '../infra/index.js';
import { usageExit } from './infer.js';
import type { CliIo } from './program.js';

interface AggregateCliOptions {
  run: string;
  trackingUri?: string;
  mlflow: boolean;
  outDir?: string;
  json?: boolean;
  logLevel?: LogLevel;
}

function meanStd(result: AggregateResult, key: string): string {
  const s = result.summary.acrossFolds[key];
  if (s === undefined) return 'n/a';
  return Number.isFinite(s.std)
    ? `${formatNumber(s.mean)} ± ${formatNumber(s.std)}`
    : `${formatNumber(s.mean)} (1 fold)`;
}

/** A few lines a researcher reads first; everything else is in the files. */
export function describeAggregate(result: AggregateResult): string {
  const s = result.summary;
  const best = s.bestFoldSelection;
  const lines = [
    `parent run      ${s.parentRunId ?? 'none'}`,
    `folds           ${s.foldsAggregated.join(', ')}${s.complete ? '' : ' (INCOMPLETE)'}`,
    `pooled F1       ${formatNumber(s.pooled.f1)}   macro-F1 ${formatNumber(s.pooled.macro_f1)}`,
    `fold F1         ${meanStd(result, 'test_f1')}   macro-F1 ${meanStd(result, 'test_macro_f1')}`,
    best === null
      ? 'best fold       none (no validation score)'
      : `best fold       ${best.fold} (validation ${best.metric} ${formatNumber(best.validationValue)}; picked on validation)`,
    `written to      ${result.outDir}`,
    `  aggregate.json, summary.md, thresholds.json, report.html, plots/`,
    `MLflow          ${result.loggedToMlflow ? `logged to parent run ${s.parentRunId}` : 'not logged'}`,
  ];
  for (const warning of s.warnings) lines.push(`warning: ${warning}`);
  return `${lines.join('\n')}\n`;
}

export function registerAggregateCommand(program: Command, io: CliIo): Command {
  return program
    .command('aggregate')
    .description(
      'aggregate the folds of a run: mean ± std, pooled metrics, best fold, thresholds, report',
    )
    .requiredOption('--run <ref>', 'the parent MLflow run id, or the run directory')
    .option('--tracking-uri <uri>', 'MLflow tracking URI (default MLFLOW_TRACKING_URI)')
    .option('--no-mlflow', 'write the files only; log nothing to MLflow')
    .option('--out-dir <dir>', 'where to write (default: the run directory)')
    .option('--json', 'print the result as JSON instead of a summary')
    .option('--log-level <level>', 'debug, info, warn or error (default warn)')
    .action(async (options: AggregateCliOptions) => {
      const logger = createLogger({
        stream: io.stderr,
        env: io.env,
        level: options.logLevel ?? 'warn',
      });
      let result: AggregateResult;
      try {
        result = await aggregate({
          run: options.run,
          logToMlflow: options.mlflow,
          logger,
          ...(options.trackingUri === undefined ? {} : { trackingUri: options.trackingUri }),
          ...(options.outDir === undefined ? {} : { outDir: options.outDir }),
          ...(io.env === undefined ? {} : { env: io.env }),
        });
      } catch (error) {
        if (error instanceof RunReferenceError) usageExit(io, 'aggregate', error.message);
        throw error;
      }
      if (options.json)
        io.stdout.write(
          `${JSON.stringify(
            {
              parentRunId: result.parentRunId,
              outDir: result.outDir,
              files: result.files,
              loggedToMlflow: result.loggedToMlflow,
              bestFold: result.summary.bestFold,
              pooled: result.summary.pooled,
              warnings: result.summary.warnings,
            },
            null,
            2,
          )}\n`,
        );
      else io.stdout.write(describeAggregate(result));
    });
}
