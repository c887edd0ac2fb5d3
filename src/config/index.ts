// Hydra-style configuration: compose configs/ from a defaults list, apply command-line overrides,
// interpolate ${env:...}/${now:...}/${key}, validate against the schema (schema.ts), freeze.
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { dump } from 'js-yaml';
import { compose, listGroups } from './compose.js';
import { ConfigError, type ConfigProblem } from './errors.js';
import { interpolateTree } from './interpolate.js';
import { applyOverride, parseOverride, type ParsedOverride } from './overrides.js';
import { deepFreeze, isTree, type Tree } from './tree.js';
import type { Config } from './types.js';
import { collectProblems, orderLikeSchema, validateConfigTree } from './validate.js';

export { ConfigError, describeValue } from './errors.js';
export type { ConfigProblem } from './errors.js';
export { parseOverride } from './overrides.js';
export type { ParsedOverride } from './overrides.js';
export type * from './types.js';
export { ConfigSchema, doraTargetModules } from './schema.js';

// src/config/index.ts and dist/config/index.js both sit two levels below the package root.
export const packageRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');

/** The configs/ folder shipped with the package. */
export const defaultConfigDir = join(packageRoot, 'configs');

export interface LoadConfigOptions {
  /** Folder with config.yaml and the group folders; default the packaged configs/. */
  configDir?: string;
  /** Hydra-style overrides, applied in order. */
  overrides?: string[];
  /** Source of ${env:...}; default process.env. */
  env?: NodeJS.ProcessEnv;
  /** The time ${now:...} formats; default the time of the call. */
  now?: Date;
}

export interface LoadedConfig {
  /** Validated and deep-frozen. */
  config: Config;
  /** The overrides as given (trimmed), in order: what a run saves as overrides.yaml. */
  overrides: string[];
  /** The group options that were composed, e.g. { data: 'synthetic', model: 'tiny', ... }. */
  choices: Record<string, string>;
  /**
   * Keys whose value holds the load time (${now:...}), e.g. ['run_dir'] for the default run
   * directory: a name made by the clock may take a suffix when two runs start in the same second.
   */
  clockKeys: string[];
}

/**
 * Composes, overrides, interpolates and validates. Synchronous file reads behind a Promise
 * so that a future remote or cached source does not change the signature.
 * Throws ConfigError listing every problem found.
 */
export async function loadConfig(options: LoadConfigOptions = {}): Promise<LoadedConfig> {
  return loadConfigSync(options);
}

export function loadConfigSync(options: LoadConfigOptions = {}): LoadedConfig {
  const configDir = resolve(options.configDir ?? defaultConfigDir);
  if (!existsSync(join(configDir, 'config.yaml')))
    throw new ConfigError([
      { path: configDir, value: undefined, expected: 'a config directory containing config.yaml' },
    ]);
  const overrides = (options.overrides ?? []).map((o) => o.trim()).filter((o) => o !== '');
  const groups = new Set(listGroups(configDir));

  const problems: ConfigProblem[] = [];
  const choices = new Map<string, string | null>();
  const explicit = new Set<string>();
  const appended: string[] = [];
  const valueOverrides: ParsedOverride[] = [];
  for (const text of overrides) {
    const parsed = parseOverride(text);
    if (!('kind' in parsed)) {
      problems.push(parsed);
      continue;
    }
    if (!parsed.key.includes('.') && groups.has(parsed.key)) {
      // A group choice (`data=redsm5`), not a value: selects configs/<group>/<option>.yaml.
      if (parsed.kind === 'delete') {
        choices.set(parsed.key, null);
      } else if (typeof parsed.value !== 'string' && parsed.value !== null) {
        problems.push({
          path: parsed.key,
          value: parsed.value,
          expected: 'an option name of the config group',
        });
        continue;
      } else {
        if (parsed.kind === 'add') appended.push(parsed.key);
        choices.set(parsed.key, parsed.value as string | null);
      }
      explicit.add(parsed.key);
      continue;
    }
    valueOverrides.push(parsed);
  }
  if (problems.length > 0) throw new ConfigError(problems);

  const { tree, selected } = compose(configDir, choices, explicit, appended);
  for (const override of valueOverrides) {
    const problem = applyOverride(tree, override);
    if (problem) problems.push(problem);
  }
  const clockKeys = new Set<string>();
  problems.push(
    ...interpolateTree(tree, {
      env: options.env ?? process.env,
      now: options.now ?? new Date(),
      clockKeys,
      packageRoot,
    }),
  );
  // Schema problems are reported too, but not twice for a key an override already complained about.
  const reported = new Set(problems.map((p) => p.path));
  for (const problem of collectProblems(tree))
    if (!reported.has(problem.path)) problems.push(problem);
  if (problems.length > 0) throw new ConfigError(problems);

  const config = deepFreeze(orderLikeSchema(tree) as Config);
  return {
    config,
    overrides,
    choices: Object.fromEntries(selected.map(({ group, option }) => [group, option])),
    clockKeys: [...clockKeys].sort(),
  };
}

/** Validates a config object made in code against the schema; returns it frozen. */
export function validateConfig(value: unknown): Config {
  const copy = structuredClone(value);
  return deepFreeze(validateConfigTree(copy));
}

/** Dotted keys to strings, for MLflow params: lists and mappings as JSON, null as 'null'. */
export function flattenConfig(config: Config | Tree): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (node: unknown, prefix: string): void => {
    if (isTree(node) && Object.keys(node).length > 0) {
      for (const [key, value] of Object.entries(node))
        walk(value, prefix === '' ? key : `${prefix}.${key}`);
      return;
    }
    if (typeof node === 'string') out[prefix] = node;
    else if (node === null || node === undefined) out[prefix] = 'null';
    else if (typeof node === 'number' || typeof node === 'boolean') out[prefix] = String(node);
    else out[prefix] = JSON.stringify(node);
  };
  walk(config, '');
  return out;
}

/** YAML of the resolved config, as `--cfg` prints it and runs save it (config.yaml). */
export function configToYaml(config: Config | Tree): string {
  return dump(config, { lineWidth: -1, noRefs: true, sortKeys: false });
}

/** YAML list of overrides, as runs save it (overrides.yaml). */
export function overridesToYaml(overrides: string[]): string {
  return dump([...overrides], { lineWidth: -1 });
}
