/**
 * `mentallam register --run <parent> [--name ...] [--alias ...]`: registers the run's best fold
 * (picked on validation) as a Model Registry version and points the alias at it; prints the
 * version. Exit 0 on success, 1 when registration fails, 2 on usage errors.
 */
import type { Command } from 'commander';

import { defaultAlias, defaultModelName, register } from '../aggregate/index.js';
import { createLogger, type LogLevel } from '../infra/index.js';
import type { CliIo } from './program.js';

interface RegisterCliOptions {
  run: string;
  name: string;
  alias: string;
  trackingUri?: string;
  json?: boolean;
  logLevel?: LogLevel;
}

export function registerRegisterCommand(program: Command, io: CliIo): Command {
  return program
    .command('register')
    .description("register the run's best fold adapter (with thresholds and config) in MLflow")
    .requiredOption('--run <ref>', 'the parent MLflow run id (or its run directory)')
    .option('--name <name>', 'registered model name', defaultModelName)
    .option('--alias <alias>', 'alias pointed at the new version', defaultAlias)
    .option('--tracking-uri <uri>', 'MLflow tracking URI (default MLFLOW_TRACKING_URI)')
    .option('--json', 'print the result as JSON')
    .option('--log-level <level>', 'debug, info, warn or error (default warn)')
    .action(async (options: RegisterCliOptions) => {
      const logger = createLogger({
        stream: io.stderr,
        env: io.env,
        level: options.logLevel ?? 'warn',
      });
      const result = await register({
        run: options.run,
        name: options.name,
        alias: options.alias,
        logger,
        ...(options.trackingUri === undefined ? {} : { trackingUri: options.trackingUri }),
        ...(io.env === undefined ? {} : { env: io.env }),
      });
      if (options.json) {
        io.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
        return;
      }
      io.stdout.write(
        [
          `${result.created ? 'registered' : 'already registered'} ${result.name} version ${result.version}`,
          `alias           ${result.alias} -> ${result.modelUri}`,
          `best fold       ${result.bestFold} (run ${result.bestFoldRunId})`,
          `parent run      ${result.parentRunId}`,
          `source          ${result.source}`,
          `dataset hash    ${result.datasetHash ?? 'unknown'}`,
          `config hash     ${result.configHash}`,
          '',
        ].join('\n'),
      );
    });
}
