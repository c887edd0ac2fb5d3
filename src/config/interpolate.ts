import { isAbsolute, join } from 'node:path';

import type { ConfigProblem } from './errors.js';
import { getPath, isTree, splitKey, type Tree } from './tree.js';

/**
 * Resolves, in every string of the tree:
 *   ${env:NAME}          the environment variable (a problem when unset)
 *   ${env:NAME,default}  ... or `default` (everything after the first comma) when unset or empty
 *   ${now:%Y-%m-%d}      the load time, strftime-style (%Y %m %d %H %M %S %f)
 *   ${package:data/x}    the absolute path of data/x inside the installed mentallam package,
 *                        for files the package ships (an installed package is not the cwd)
 *   ${a.b}               another key's resolved value; alone in the string it keeps its type
 * `\${` is a literal `${`.
 */
export function interpolateTree(
  tree: Tree,
  context: {
    env: NodeJS.ProcessEnv;
    now: Date;
    packageRoot: string;
    /** Receives the dotted key of every value that holds ${now:...}. */
    clockKeys?: Set<string>;
  },
): ConfigProblem[] {
  const problems: ConfigProblem[] = [];
  const resolving = new Set<string>();
  const resolved = new Map<string, unknown>();

  const resolveString = (text: string, path: string): unknown => {
    const whole = /^\$\{([^}]*)\}$/.exec(text);
    if (whole && !whole[1]!.includes(':')) return resolveReference(whole[1]!.trim(), path);
    return text
      .replace(/(\\?)\$\{([^}]*)\}/g, (match, escape: string, body: string) => {
        if (escape === '\\') return match.slice(1);
        const value = resolveExpression(body.trim(), path);
        return typeof value === 'string' ? value : JSON.stringify(value);
      })
      .replace(/\\\$\{/g, '${');
  };

  const resolveExpression = (body: string, path: string): unknown => {
    const colon = body.indexOf(':');
    if (colon === -1) return resolveReference(body, path);
    const resolver = body.slice(0, colon);
    const argument = body.slice(colon + 1);
    if (resolver === 'env') {
      const comma = argument.indexOf(',');
      const name = (comma === -1 ? argument : argument.slice(0, comma)).trim();
      const fallback = comma === -1 ? undefined : argument.slice(comma + 1);
      const value = context.env[name];
      if (value !== undefined && value !== '') return value;
      if (fallback !== undefined) return fallback;
      problems.push({
        path,
        value: `\${${body}}`,
        expected: `environment variable ${name} to be set (or a default: \${env:${name},<default>})`,
      });
      return '';
    }
    if (resolver === 'now') {
      context.clockKeys?.add(path);
      return formatDate(context.now, argument);
    }
    if (resolver === 'package') {
      const relative = argument.trim();
      if (relative === '' || isAbsolute(relative) || relative.split(/[/\\]/).includes('..')) {
        problems.push({
          path,
          value: `\${${body}}`,
          expected: 'a path inside the package, e.g. ${package:data/dsm5/criteria.json}',
        });
        return '';
      }
      return join(context.packageRoot, relative);
    }
    problems.push({
      path,
      value: `\${${body}}`,
      expected:
        'an interpolation ${env:NAME[,default]}, ${now:FORMAT}, ${package:PATH} or ${dotted.key}',
    });
    return '';
  };

  const resolveReference = (key: string, path: string): unknown => {
    if (resolved.has(key)) return resolved.get(key);
    const target = getPath(tree, splitKey(key));
    if (!target.found) {
      problems.push({ path, value: `\${${key}}`, expected: `a reference to an existing key` });
      return '';
    }
    if (resolving.has(key)) {
      problems.push({ path, value: `\${${key}}`, expected: 'references without a cycle' });
      return '';
    }
    resolving.add(key);
    const value = resolveNode(target.value, key);
    resolving.delete(key);
    resolved.set(key, value);
    return value;
  };

  const resolveNode = (node: unknown, path: string): unknown => {
    if (typeof node === 'string') return node.includes('${') ? resolveString(node, path) : node;
    if (Array.isArray(node)) return node.map((item, i) => resolveNode(item, `${path}.${i}`));
    if (isTree(node)) {
      for (const [key, child] of Object.entries(node)) {
        const childPath = path === '' ? key : `${path}.${key}`;
        node[key] = resolved.has(childPath)
          ? resolved.get(childPath)
          : resolveNode(child, childPath);
      }
      return node;
    }
    return node;
  };

  resolveNode(tree, '');
  return problems;
}

function pad(n: number, width = 2): string {
  return String(n).padStart(width, '0');
}

/** The strftime subset run directories need, in local time like Hydra's ${now:...}. */
export function formatDate(date: Date, format: string): string {
  return format.replace(/%([YmdHMSf%])/g, (_m, code: string) => {
    switch (code) {
      case 'Y':
        return String(date.getFullYear());
      case 'm':
        return pad(date.getMonth() + 1);
      case 'd':
        return pad(date.getDate());
      case 'H':
        return pad(date.getHours());
      case 'M':
        return pad(date.getMinutes());
      case 'S':
        return pad(date.getSeconds());
      case 'f':
        return pad(date.getMilliseconds() * 1000, 6);
      default:
        return '%';
    }
  });
}
