// Plain-object tree helpers shared by composition, overrides and interpolation.

export type Tree = Record<string, unknown>;

export function isTree(value: unknown): value is Tree {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

export function cloneDeep<T>(value: T): T {
  return structuredClone(value);
}

/** Hydra/OmegaConf merge: mappings merge key by key; lists and scalars replace. */
export function mergeInto(target: Tree, source: Tree): Tree {
  for (const [key, value] of Object.entries(source)) {
    const existing = target[key];
    if (isTree(existing) && isTree(value)) mergeInto(existing, value);
    else target[key] = cloneDeep(value);
  }
  return target;
}

export function splitKey(key: string): string[] {
  return key.split('.');
}

export function getPath(tree: Tree, segments: string[]): { found: boolean; value?: unknown } {
  let current: unknown = tree;
  for (const segment of segments) {
    if (!isTree(current) || !Object.hasOwn(current, segment)) return { found: false };
    current = current[segment];
  }
  return { found: true, value: current };
}

export function deepEqual(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (Array.isArray(a) && Array.isArray(b))
    return a.length === b.length && a.every((item, i) => deepEqual(item, b[i]));
  if (isTree(a) && isTree(b)) {
    const keys = Object.keys(a);
    return (
      keys.length === Object.keys(b).length &&
      keys.every((k) => Object.hasOwn(b, k) && deepEqual(a[k], b[k]))
    );
  }
  return false;
}

export function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const child of Object.values(value)) deepFreeze(child);
  }
  return value;
}
