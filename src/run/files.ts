/**
 * One file of a run directory with its write/read pair: JSON files through their schema, the
 * config and overrides through the config module's YAML, text files as they are. Every write is
 * atomic and creates the folder; every read error names the file.
 */
import { existsSync } from 'node:fs';
import { mkdir, readFile } from 'node:fs/promises';
import { basename, dirname } from 'node:path';

import type { StaticDecode, TSchema } from '@sinclair/typebox';
import { load as loadYaml } from 'js-yaml';

import { configToYaml, overridesToYaml, validateConfig, type Config } from '../config/index.js';
import { writeFileAtomic } from '../infra/index.js';
import { RunFileError, type JsonCodec } from './codec.js';

async function readText(path: string, what: string): Promise<string> {
  try {
    return await readFile(path, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') {
      throw new RunFileError(path, `${what} is missing`, { cause: error });
    }
    throw error;
  }
}

async function writeText(path: string, text: string | Uint8Array): Promise<void> {
  await mkdir(dirname(path), { recursive: true });
  await writeFileAtomic(path, text);
}

/** A file with a typed value; `T` is what a reader gets back. */
abstract class RunFile<T> {
  constructor(
    readonly path: string,
    protected readonly what: string,
  ) {}

  /** The file name, which is also its artifact name in MLflow. */
  get name(): string {
    return basename(this.path);
  }

  exists(): boolean {
    return existsSync(this.path);
  }

  abstract write(value: T): Promise<void>;
  abstract read(): Promise<T>;

  /** The value, or null when the file does not exist (any other problem still throws). */
  async readIfExists(): Promise<T | null> {
    return this.exists() ? this.read() : null;
  }
}

export class JsonFile<S extends TSchema> extends RunFile<StaticDecode<S>> {
  constructor(
    path: string,
    private readonly codec: JsonCodec<S>,
  ) {
    super(path, codec.what);
  }

  async write(value: StaticDecode<S>): Promise<void> {
    await writeText(this.path, this.codec.encode(value, this.path));
  }

  async read(): Promise<StaticDecode<S>> {
    return this.codec.decode(await readText(this.path, this.what), this.path);
  }
}

export class TextFile extends RunFile<string> {
  write(text: string): Promise<void> {
    return writeText(this.path, text);
  }

  read(): Promise<string> {
    return readText(this.path, this.what);
  }
}

/** config.yaml: the resolved config, read back validated against the current schema. */
export class ConfigFile extends RunFile<Config> {
  constructor(path: string) {
    super(path, 'the resolved config');
  }

  write(config: Config): Promise<void> {
    return writeText(this.path, configToYaml(config));
  }

  /** The exact bytes (hashed for provenance). */
  readText(): Promise<string> {
    return readText(this.path, this.what);
  }

  async read(): Promise<Config> {
    const text = await this.readText();
    try {
      return validateConfig(loadYaml(text));
    } catch (error) {
      throw new RunFileError(this.path, (error as Error).message, { cause: error });
    }
  }
}

/** overrides.yaml: the overrides a run was started with, in the order they were applied. */
export class OverridesFile extends RunFile<string[]> {
  constructor(path: string) {
    super(path, 'the overrides list');
  }

  write(overrides: string[]): Promise<void> {
    return writeText(this.path, overridesToYaml(overrides));
  }

  async read(): Promise<string[]> {
    const text = await readText(this.path, this.what);
    let parsed: unknown;
    try {
      parsed = loadYaml(text);
    } catch (error) {
      throw new RunFileError(this.path, `not valid YAML (${(error as Error).message})`, {
        cause: error,
      });
    }
    if (parsed === null || parsed === undefined) return [];
    if (!Array.isArray(parsed) || !parsed.every((item) => typeof item === 'string')) {
      throw new RunFileError(this.path, 'expected a YAML list of override strings');
    }
    return parsed as string[];
  }
}
