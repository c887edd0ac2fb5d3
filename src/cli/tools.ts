/**
 * Smaller commands: `mentallam data synth`, `mentallam model init-tiny`, `mentallam sync`.
 */
import { resolve } from 'node:path';
import type { Command } from 'commander';

import { loadConfig } from '../config/index.js';
import { createTinyModel, generateSyntheticData } from '../engine/index.js';
import { createLogger } from '../infra/index.js';
import {
  formatSpoolStatus,
  readSpoolStatus,
  resolveTracking,
  syncSpool,
} from '../tracking/index.js';
import { addOverrideOptions, type CliIo } from './program.js';

export function registerToolCommands(
  program: Command,
  io: CliIo,
  defaults: { configDir?: string },
): void {
  const data = program.command('data').description('data set utilities');
  data
    .command('synth')
    .description(
      'write the synthetic ReDSM5-shaped data set (redsm5_posts.csv, redsm5_annotations.csv)',
    )
    .requiredOption('--out <dir>', 'output directory')
    .option('--seed <n>', 'random seed', '7')
    .option('--posts <n>', 'number of posts (ReDSM5 has 1484)', '1484')
    .action(async (options: { out: string; seed: string; posts: string }) => {
      const seed = Number(options.seed);
      const nPosts = Number(options.posts);
      if (!Number.isInteger(seed) || !Number.isInteger(nPosts) || nPosts < 1) {
        throw new Error(
          `--seed and --posts must be integers (got ${options.seed}, ${options.posts})`,
        );
      }
      // Into a new, empty or earlier synthetic folder only, marked so training may use it.
      const dir = resolve(options.out);
      const written = await generateSyntheticData({ dir, seed, nPosts, force: true });
      io.stdout.write(`${JSON.stringify({ ...written }, null, 2)}\n`);
    });

  const model = program.command('model').description('model utilities');
  addOverrideOptions(
    model
      .command('init-tiny')
      .description(
        'create the tiny Llama of model/tiny.yaml (tokenizer + random weights) at model.path',
      ),
  ).action(async (bare: string[], options: { override: string[]; configDir?: string }) => {
    // The tiny model's group, whatever the default model is; a model= given here still wins.
    const { config } = await loadConfig({
      configDir: options.configDir ?? defaults.configDir,
      overrides: ['model=tiny', ...bare, ...options.override],
      env: io.env,
    });
    const dir = resolve(config.model.path);
    const created = await createTinyModel(config, dir);
    io.stdout.write(`tiny model written to ${dir} (vocabulary ${created.vocabSize})\n`);
  });

  program
    .command('sync')
    .description("replay a run directory's tracking spool (tracking-spool.jsonl) to MLflow")
    .argument('<run_dir>', 'the run directory')
    .option('--status', 'show the pending and rejected calls; sends nothing, needs no server')
    .action(async (runDir: string, options: { status?: boolean }) => {
      // The checks and messages are src/tracking's (sync.ts); this only wires them to the command.
      if (options.status === true) {
        io.stdout.write(formatSpoolStatus(readSpoolStatus(resolve(runDir))));
        return;
      }
      const logger = createLogger({ stream: io.stderr, env: io.env });
      const tracking = await resolveTracking({
        enabled: true,
        trackingUri: io.env?.MLFLOW_TRACKING_URI ?? process.env.MLFLOW_TRACKING_URI ?? '',
        workDir: resolve('mlruns'),
        logger,
      });
      try {
        const result = await syncSpool(resolve(runDir), tracking!.client, {
          logger,
          // A local server started for sync serves ./mlruns: naming it explains a "not found".
          ...(tracking?.server
            ? { server: `${tracking.uri} (a local server over ${resolve('mlruns')})` }
            : {}),
        });
        io.stdout.write(`${JSON.stringify(result)}\n`);
        if (result.remaining > 0)
          throw new Error(
            `${result.remaining} spooled calls were not sent (${result.stoppedBy}); the spool is kept: run sync again`,
          );
      } finally {
        await tracking?.close();
      }
    });
}
