import { load } from 'js-yaml';
import type { ConfigProblem } from './errors.js';
import { deepEqual, getPath, isTree, splitKey, type Tree } from './tree.js';

/**
 * One command-line override in Hydra's grammar:
 *   key=value     change an existing key (value parsed as YAML)
 *   +key=value    add a key that does not exist yet
 *   ++key=value   set a key whether or not it exists
 *   ~key[=value]  delete a key (only if it currently equals value, when given)
 * A key without dots naming a config group folder (`data=redsm5`) selects that group's file.
 */
export type ParsedOverride =
  | { kind: 'set' | 'add' | 'force'; key: string; value: unknown; text: string }
  | { kind: 'delete'; key: string; value?: unknown; text: string };

const keyPattern = /^[A-Za-z_][A-Za-z0-9_-]*(\.[A-Za-z0-9_][A-Za-z0-9_-]*)*$/;

/** Parses a value the way a YAML file would; an empty value is the empty string, as in Hydra. */
export function parseOverrideValue(raw: string): unknown {
  if (raw === '') return '';
  return load(raw);
}

export function parseOverride(text: string): ParsedOverride | ConfigProblem {
  const trimmed = text.trim();
  let kind: ParsedOverride['kind'] = 'set';
  let rest = trimmed;
  if (rest.startsWith('++')) {
    kind = 'force';
    rest = rest.slice(2);
  } else if (rest.startsWith('+')) {
    kind = 'add';
    rest = rest.slice(1);
  } else if (rest.startsWith('~')) {
    kind = 'delete';
    rest = rest.slice(1);
  }
  const eq = rest.indexOf('=');
  const key = eq === -1 ? rest : rest.slice(0, eq);
  const rawValue = eq === -1 ? undefined : rest.slice(eq + 1);
  if (!keyPattern.test(key)) {
    return {
      path: `override '${text}'`,
      value: key,
      expected: 'key=value, +key=value, ++key=value or ~key with a dotted key such as training.lr',
    };
  }
  if (kind !== 'delete' && rawValue === undefined) {
    return {
      path: `override '${text}'`,
      value: text,
      expected: `${kind === 'set' ? '' : kind === 'add' ? '+' : '++'}${key}=<value>`,
    };
  }
  let value: unknown;
  if (rawValue !== undefined) {
    try {
      value = parseOverrideValue(rawValue);
    } catch (error) {
      return {
        path: `override '${text}'`,
        value: rawValue,
        expected: `a YAML value (${(error as Error).message.split('\n')[0]})`,
      };
    }
  }
  if (kind === 'delete') {
    return rawValue === undefined
      ? { kind, key, text: trimmed }
      : { kind, key, value, text: trimmed };
  }
  return { kind, key, value, text: trimmed };
}

function knownKeys(node: unknown): string {
  if (!isTree(node)) return 'no keys (not a mapping)';
  const keys = Object.keys(node);
  return keys.length === 0 ? 'no keys yet' : keys.join(', ');
}

/** Applies one value override to `tree` in place; returns a problem instead of throwing. */
export function applyOverride(tree: Tree, override: ParsedOverride): ConfigProblem | undefined {
  const segments = splitKey(override.key);
  const parentSegments = segments.slice(0, -1);
  const leaf = segments[segments.length - 1]!;
  const parentPath = parentSegments.join('.') || '(root)';
  const existing = getPath(tree, segments);

  if (override.kind === 'delete') {
    if (!existing.found)
      return {
        path: override.key,
        value: undefined,
        expected: `an existing key to delete (keys of ${parentPath}: ${knownKeys(getPath(tree, parentSegments).value)})`,
      };
    if (Object.hasOwn(override, 'value') && !deepEqual(existing.value, override.value))
      return {
        path: override.key,
        value: existing.value,
        expected: `${JSON.stringify(override.value)} for '${override.text}' to delete it`,
      };
    delete (getPath(tree, parentSegments).value as Tree)[leaf];
    return undefined;
  }

  if (override.kind === 'set' && !existing.found) {
    const parent = getPath(tree, parentSegments);
    return {
      path: override.key,
      value: override.value,
      expected: `a known key of ${parentPath} (${knownKeys(parent.found ? parent.value : undefined)}); to add a new key use +${override.key}=...`,
    };
  }
  if (override.kind === 'add' && existing.found)
    return {
      path: override.key,
      value: override.value,
      expected: `a key that does not exist yet for '+' (it is ${JSON.stringify(existing.value)}); use ${override.key}=... or ++${override.key}=...`,
    };

  // Walk down, creating mappings for add/force; a scalar in the way is a problem, not overwritten.
  let node: Tree = tree;
  for (let i = 0; i < parentSegments.length; i++) {
    const segment = parentSegments[i]!;
    const child = node[segment];
    if (child === undefined) {
      node[segment] = {};
    } else if (!isTree(child)) {
      return {
        path: parentSegments.slice(0, i + 1).join('.'),
        value: child,
        expected: `a mapping to hold '${override.key}'`,
      };
    }
    node = node[segment] as Tree;
  }
  node[leaf] = override.value;
  return undefined;
}
