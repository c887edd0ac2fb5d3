import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { load } from 'js-yaml';
import { ConfigError, type ConfigProblem } from './errors.js';
import { isTree, mergeInto, type Tree } from './tree.js';

/** One entry of a defaults list, in order. `option: null` = the group is off unless selected. */
export type DefaultsEntry =
  { kind: 'self' } | { kind: 'group'; group: string; option: string | null };

interface ConfigFile {
  path: string;
  /** Where the content goes: '' = the root (`# @package _global_`), else a dotted key. */
  packagePath: string;
  defaults: unknown;
  body: Tree;
}

export const primaryConfigName = 'config.yaml';

function displayPath(path: string): string {
  const fromCwd = relative(process.cwd(), path);
  return fromCwd.startsWith('..') ? path : fromCwd;
}

/** Reads a YAML config file; the `# @package` header decides where its keys land. */
export function readConfigFile(path: string, defaultPackage: string): ConfigFile {
  const shown = displayPath(path);
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    throw new ConfigError([
      { path: shown, value: undefined, expected: `a readable file (${(error as Error).message})` },
    ]);
  }
  let parsed: unknown;
  try {
    parsed = load(text, { filename: shown });
  } catch (error) {
    const { reason, mark } = error as { reason?: string; mark?: { line: number; column: number } };
    const where = mark ? `${shown}:${mark.line + 1}:${mark.column + 1}` : shown;
    throw new ConfigError([
      {
        path: where,
        value: undefined,
        expected: `valid YAML (${reason ?? (error as Error).message})`,
      },
    ]);
  }
  if (parsed === undefined || parsed === null) parsed = {};
  if (!isTree(parsed))
    throw new ConfigError([
      { path: shown, value: parsed, expected: 'a YAML mapping at the top level' },
    ]);
  let packagePath = defaultPackage;
  const header = /^\s*#\s*@package\s+(\S+)/m.exec(text.split('\n').slice(0, 5).join('\n'));
  if (header)
    packagePath =
      header[1] === '_global_' ? '' : header[1] === '_group_' ? defaultPackage : header[1]!;
  const { defaults, ...body } = parsed;
  return { path: shown, packagePath, defaults, body };
}

/** The group folders of a config directory: the names that `group=option` can select. */
export function listGroups(configDir: string): string[] {
  return readdirSync(configDir)
    .filter((name) => statSync(join(configDir, name)).isDirectory())
    .sort();
}

export function listOptions(configDir: string, group: string): string[] {
  const dir = join(configDir, group);
  if (!existsSync(dir)) return [];
  return readdirSync(dir)
    .filter((name) => name.endsWith('.yaml'))
    .map((name) => name.slice(0, -'.yaml'.length))
    .sort();
}

/** Parses the primary file's defaults list: `- group: option`, `- group: null`, `- _self_`. */
export function parsePrimaryDefaults(file: ConfigFile): DefaultsEntry[] {
  if (file.defaults === undefined) return [{ kind: 'self' }];
  if (!Array.isArray(file.defaults))
    throw new ConfigError([
      { path: `${file.path}: defaults`, value: file.defaults, expected: 'a list' },
    ]);
  const entries: DefaultsEntry[] = [];
  const problems: ConfigProblem[] = [];
  file.defaults.forEach((item: unknown, index) => {
    if (item === '_self_') entries.push({ kind: 'self' });
    else if (isTree(item) && Object.keys(item).length === 1) {
      const [group, option] = Object.entries(item)[0]!;
      if (option === null || typeof option === 'string')
        entries.push({ kind: 'group', group, option });
      else
        problems.push({
          path: `${file.path}: defaults[${index}].${group}`,
          value: option,
          expected: 'an option name or null',
        });
    } else {
      problems.push({
        path: `${file.path}: defaults[${index}]`,
        value: item,
        expected: "'_self_' or a one-key mapping 'group: option'",
      });
    }
  });
  if (!entries.some((e) => e.kind === 'self')) entries.push({ kind: 'self' });
  if (problems.length > 0) throw new ConfigError(problems);
  return entries;
}

/**
 * Parses a group file's own defaults list. Only `override /group: option` is supported: an
 * experiment or preset switches other groups (Hydra's semantics); the command line still wins.
 */
export function parseGroupFileOverrides(
  file: ConfigFile,
): { group: string; option: string | null }[] {
  if (file.defaults === undefined) return [];
  const problems: ConfigProblem[] = [];
  const result: { group: string; option: string | null }[] = [];
  if (!Array.isArray(file.defaults))
    throw new ConfigError([
      { path: `${file.path}: defaults`, value: file.defaults, expected: 'a list' },
    ]);
  file.defaults.forEach((item: unknown, index) => {
    if (item === '_self_') return;
    const entry =
      isTree(item) && Object.keys(item).length === 1 ? Object.entries(item)[0]! : undefined;
    const match = entry ? /^override\s+\/?([A-Za-z0-9_-]+)$/.exec(entry[0]) : null;
    if (!entry || !match || !(entry[1] === null || typeof entry[1] === 'string')) {
      problems.push({
        path: `${file.path}: defaults[${index}]`,
        value: item,
        expected: "'override /group: option' (the only defaults entry a group file may have)",
      });
      return;
    }
    result.push({ group: match[1]!, option: entry[1] as string | null });
  });
  if (problems.length > 0) throw new ConfigError(problems);
  return result;
}

export function placeAt(packagePath: string, body: Tree): Tree {
  if (packagePath === '') return body;
  return packagePath
    .split('.')
    .reverse()
    .reduce<Tree>((inner, key) => ({ [key]: inner }), body);
}

export interface GroupChoice {
  group: string;
  option: string;
}

/**
 * Composes the tree: the defaults list in order, with `choices` replacing the options it names.
 * A selected group file's `override /group: option` entries switch groups it does not precede,
 * unless the command line chose that group explicitly.
 */
export function compose(
  configDir: string,
  choices: Map<string, string | null>,
  explicit: Set<string>,
  appended: string[],
): { tree: Tree; selected: GroupChoice[] } {
  const primary = readConfigFile(join(configDir, primaryConfigName), '');
  const entries = parsePrimaryDefaults(primary);
  for (const group of appended) entries.push({ kind: 'group', group, option: null });

  const problems: ConfigProblem[] = [];
  const effective = new Map<string, string | null>();
  for (const entry of entries) if (entry.kind === 'group') effective.set(entry.group, entry.option);
  for (const [group, option] of choices) {
    if (!effective.has(group)) {
      problems.push({
        path: group,
        value: option,
        expected: `a group of the defaults list (${[...effective.keys()].join(', ')}); add one with +${group}=<option>`,
      });
      continue;
    }
    effective.set(group, option);
  }

  // Group files that switch other groups (experiments, presets) are read first, so the switch
  // applies wherever the switched group sits in the list.
  const files = new Map<string, ConfigFile>();
  const readGroup = (group: string, option: string): ConfigFile | undefined => {
    const key = `${group}/${option}`;
    if (files.has(key)) return files.get(key);
    const path = join(configDir, group, `${option}.yaml`);
    if (!existsSync(path)) {
      const options = listOptions(configDir, group);
      problems.push({
        path: group,
        value: option,
        expected:
          options.length > 0
            ? `one of: ${options.join(', ')}`
            : `a config group folder ${group}/ in ${configDir}`,
      });
      return undefined;
    }
    const file = readConfigFile(path, group);
    files.set(key, file);
    return file;
  };
  for (const [group, option] of [...effective]) {
    if (option === null) continue;
    const file = readGroup(group, option);
    if (!file) continue;
    for (const { group: target, option: targetOption } of parseGroupFileOverrides(file)) {
      if (!effective.has(target)) {
        problems.push({
          path: `${file.path}: defaults`,
          value: `override /${target}`,
          expected: `a group of the defaults list (${[...effective.keys()].join(', ')})`,
        });
        continue;
      }
      if (!explicit.has(target)) effective.set(target, targetOption);
    }
  }
  if (problems.length > 0) throw new ConfigError(problems);

  const tree: Tree = {};
  const selected: GroupChoice[] = [];
  for (const entry of entries) {
    if (entry.kind === 'self') {
      mergeInto(tree, primary.body);
      continue;
    }
    const option = effective.get(entry.group) ?? null;
    if (option === null) continue;
    const file = readGroup(entry.group, option);
    if (!file) continue;
    mergeInto(tree, placeAt(file.packagePath, file.body));
    selected.push({ group: entry.group, option });
  }
  if (problems.length > 0) throw new ConfigError(problems);
  return { tree, selected };
}
