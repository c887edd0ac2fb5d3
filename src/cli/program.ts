import { existsSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { Command, CommanderError, Option } from 'commander';
import {
  ConfigError,
  configToYaml,
  flattenConfig,
  loadConfig,
  type Config,
} from '../config/index.js';
import { createLogger, type Logger } from '../infra/index.js';
import { RunFileError, RunStore } from '../run/index.js';
import { registerAggregateCommand } from './aggregate.js';
import { registerBenchCommand } from './bench.js';
import { registerInferCommand, type CommandDefaults } from './infer.js';
import { launchLocalRanks } from './launcher.js';
import { registerRegisterCommand } from './register.js';
import { registerToolCommands } from './tools.js';

/** Process exit codes of every mentallam command (docs/cli.md). */
export const exitCodes = Object.freeze({ ok: 0, failure: 1, usage: 2, interrupted: 130 });

export interface CliIo {
  /** `mentallam infer --input -` reads it; default process.stdin. */
  stdin?: NodeJS.ReadableStream;
  stdout: NodeJS.WritableStream;
  stderr: NodeJS.WritableStream;
  env?: NodeJS.ProcessEnv;
}

/** What `mentallam train` hands to the training implementation. */
export interface TrainCommandArgs {
  config: Config;
  /** Overrides in the order they were applied (the resumed run's first): save as overrides.yaml. */
  overrides: string[];
  /** Group options composed, e.g. { data: 'synthetic', model: 'tiny', ... }. */
  choices: Record<string, string>;
  /** Config keys made by ${now:...} (run_dir by default: a taken name then gets a suffix). */
  clockKeys: string[];
  /** The run directory to continue, when --resume was given (config.run_dir is set to it). */
  resume?: string;
  io: CliIo;
  logger: Logger;
}

/** Runs training; resolves to the process exit code. */
export type TrainRunner = (args: TrainCommandArgs) => Promise<number>;

export interface CliOptions {
  /** The training implementation; without one, `train` (other than --cfg) reports it is missing. */
  train?: TrainRunner;
  /** Default configs/ folder, overridable per call with --config-dir. */
  configDir?: string;
  /** Test seams for infer and bench: a model loader instead of the native one, and a clock. */
  loadModel?: CommandDefaults['loadModel'];
  now?: () => number;
}

/** Thrown inside actions to end with a code after a message was written. */
export class CliExit extends Error {
  constructor(readonly exitCode: number) {
    super(`exit ${exitCode}`);
  }
}

function collect(value: string, previous: string[]): string[] {
  return [...previous, value];
}

function packageVersion(): string {
  try {
    const path = new URL('../../package.json', import.meta.url);
    return (JSON.parse(readFileSync(path, 'utf8')) as { version: string }).version;
  } catch {
    return 'unknown';
  }
}

interface OverrideOptions {
  override: string[];
  configDir?: string;
}

export function addOverrideOptions(command: Command): Command {
  return command
    .argument(
      '[overrides...]',
      'Hydra-style overrides: key=value, group=option, +key=value, ++key=value, ~key',
    )
    .option(
      '-o, --override <override>',
      'an override (repeatable); applied after the bare ones',
      collect,
      [],
    )
    .option(
      '--config-dir <dir>',
      'folder with config.yaml and the config groups (default: the packaged configs/)',
    );
}

function writeConfigError(io: CliIo, error: ConfigError): void {
  io.stderr.write(`mentallam: ${error.message}\n`);
}

/** Overrides a run was started with, read back from its overrides.yaml for --resume. */
async function readRunOverrides(runDir: string): Promise<string[]> {
  const overrides = new RunStore(runDir).overrides;
  if (!existsSync(runDir))
    throw new ConfigError([
      { path: '--resume', value: runDir, expected: 'an existing run directory' },
    ]);
  if (!overrides.exists())
    throw new ConfigError([
      {
        path: '--resume',
        value: runDir,
        expected: `a run directory containing overrides.yaml (${overrides.path} not found)`,
      },
    ]);
  try {
    return await overrides.read();
  } catch (error) {
    if (!(error instanceof RunFileError)) throw error;
    throw new ConfigError([
      { path: overrides.path, value: runDir, expected: 'a YAML list of override strings' },
    ]);
  }
}

/** The `train` subcommand; `run` is called with the resolved config unless --cfg was given. */
export function registerTrainCommand(
  program: Command,
  run: TrainRunner | undefined,
  io: CliIo,
  defaults: { configDir?: string },
): Command {
  const command = addOverrideOptions(program.command('train'))
    .description('cross-validated DoRA fine-tuning (one MLflow child run per fold)')
    .option('--cfg', 'print the resolved config as YAML and exit')
    .option(
      '--resume <run_dir>',
      'continue an interrupted run: re-apply its overrides.yaml, then these',
    )
    .option(
      '--nproc <n>',
      'start n ranks on this machine (as torchrun --nproc-per-node n; docs/distributed.md)',
    )
    .action(
      async (
        bare: string[],
        options: OverrideOptions & { cfg?: boolean; resume?: string; nproc?: string },
      ) => {
        if (options.nproc !== undefined && !options.cfg) {
          throw new CliExit(await launchRanks(bare, options, io));
        }
        let overrides = [...bare, ...options.override];
        let resume: string | undefined;
        if (options.resume !== undefined) {
          resume = resolve(options.resume);
          // The run's own overrides first, so new ones (e.g. a longer max_epochs) win; run_dir last.
          overrides = [
            ...(await readRunOverrides(resume)),
            ...overrides,
            `run_dir=${JSON.stringify(resume)}`,
          ];
        }
        const loaded = await loadConfig({
          configDir: options.configDir ?? defaults.configDir,
          overrides,
          env: io.env,
        });
        if (options.cfg) {
          io.stdout.write(configToYaml(loaded.config));
          return;
        }
        if (!run) {
          io.stderr.write(
            'mentallam train: training is not available in this build yet (use --cfg to see the config)\n',
          );
          throw new CliExit(exitCodes.failure);
        }
        const logger = createLogger({
          level: loaded.config.logging.level,
          stream: io.stderr,
          env: io.env,
        });
        const code = await run({ ...loaded, resume, io, logger });
        if (code !== exitCodes.ok) throw new CliExit(code);
      },
    );
  return command;
}

/** `train --nproc N`: the same command in N local ranks (launcher.ts). */
async function launchRanks(
  bare: string[],
  options: OverrideOptions & { resume?: string; nproc?: string },
  io: CliIo,
): Promise<number> {
  const nproc = Number(options.nproc);
  if (!Number.isSafeInteger(nproc) || nproc < 1 || nproc > 1024) {
    io.stderr.write(
      `mentallam train: --nproc must be an integer from 1 to 1024, got ${options.nproc}\n`,
    );
    return exitCodes.usage;
  }
  const env = io.env ?? process.env;
  if (env.RANK !== undefined || env.WORLD_SIZE !== undefined) {
    io.stderr.write(
      'mentallam train: --nproc starts the ranks itself, but RANK/WORLD_SIZE are already set ' +
        '(started by torchrun or srun?): drop --nproc there\n',
    );
    return exitCodes.usage;
  }
  const argv = [
    'train',
    ...bare,
    ...options.override.flatMap((override) => ['--override', override]),
    ...(options.configDir ? ['--config-dir', options.configDir] : []),
    ...(options.resume !== undefined ? ['--resume', options.resume] : []),
  ];
  return launchLocalRanks({ nproc, argv, io, env });
}

/** The whole command tree, writing to `io` instead of the process streams. */
export function createProgram(io: CliIo, options: CliOptions = {}): Command {
  const program = new Command('mentallam')
    .description('Fine-tune MentaLLaMA with DoRA as a (post, DSM-5 criterion) classifier')
    .version(packageVersion(), '-V, --version')
    .showHelpAfterError('(run with --help for usage)')
    .configureOutput({
      writeOut: (text) => io.stdout.write(text),
      writeErr: (text) => io.stderr.write(text),
    })
    .exitOverride();

  addOverrideOptions(program.command('config'))
    .description('print the resolved configuration as YAML')
    .addOption(
      new Option('--flat', 'print dotted key=value lines (the MLflow params) instead of YAML'),
    )
    .action(async (bare: string[], opts: OverrideOptions & { flat?: boolean }) => {
      const { config } = await loadConfig({
        configDir: opts.configDir ?? options.configDir,
        overrides: [...bare, ...opts.override],
        env: io.env,
      });
      if (opts.flat) {
        for (const [key, value] of Object.entries(flattenConfig(config)))
          io.stdout.write(`${key}=${value}\n`);
        return;
      }
      io.stdout.write(configToYaml(config));
    });

  registerTrainCommand(program, options.train, io, { configDir: options.configDir });
  registerToolCommands(program, io, { configDir: options.configDir });
  registerAggregateCommand(program, io);
  registerRegisterCommand(program, io);
  const seams: CommandDefaults = {
    configDir: options.configDir,
    ...(options.loadModel ? { loadModel: options.loadModel } : {}),
    ...(options.now ? { now: options.now } : {}),
  };
  registerInferCommand(program, io, seams);
  registerBenchCommand(program, io, seams);

  // Subcommands inherit output routing and exit behaviour.
  for (const command of program.commands) {
    command.configureOutput({
      writeOut: (text) => io.stdout.write(text),
      writeErr: (text) => io.stderr.write(text),
    });
    command.exitOverride();
    command.showHelpAfterError('(run with --help for usage)');
  }
  return program;
}

/**
 * Runs the CLI on `argv` (without node and script) and resolves to the exit code; never calls
 * process.exit, so it can be tested in-process. Config problems exit 2 with every problem listed.
 */
export async function runCli(argv: string[], io: CliIo, options: CliOptions = {}): Promise<number> {
  const program = createProgram(io, options);
  try {
    await program.parseAsync(argv, { from: 'user' });
    return exitCodes.ok;
  } catch (error) {
    if (error instanceof CliExit) return error.exitCode;
    if (error instanceof ConfigError) {
      writeConfigError(io, error);
      return exitCodes.usage;
    }
    if (error instanceof CommanderError) {
      // Help and version end with 0; everything else commander rejects is a usage error.
      if (error.exitCode === 0) return exitCodes.ok;
      return exitCodes.usage;
    }
    io.stderr.write(`mentallam: ${error instanceof Error ? error.message : String(error)}\n`);
    return exitCodes.failure;
  }
}
