/**
 * snake_case config keys -> the camelCase option names the components take, in one place and
 * typed: `camelCaseKeys(config.training)` has the type `CamelCased<TrainingConfig>`, so an option
 * type derived from a config section gains a new config key without anyone mapping it by hand.
 * Only for sections whose keys all come from the schema: a user's map (logging.mlflow.tags)
 * would have its keys renamed too.
 */

/** 'weight_decay' -> 'weightDecay'. */
export type CamelCase<S extends string> = S extends `${infer Head}_${infer Tail}`
  ? `${Head}${Capitalize<CamelCase<Tail>>}`
  : S;

/** The object type with every key camelCased, recursively (arrays are kept as they are). */
export type CamelCased<T> = T extends readonly unknown[]
  ? T
  : T extends object
    ? { [K in keyof T as K extends string ? CamelCase<K> : K]: CamelCased<T[K]> }
    : T;

export function camelCase(key: string): string {
  return key.replace(/_(.)/g, (_, letter: string) => letter.toUpperCase());
}

/** A copy of `value` with every object key camelCased (arrays and values are kept). */
export function camelCaseKeys<T>(value: T): CamelCased<T> {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    return value as CamelCased<T>;
  }
  return Object.fromEntries(
    Object.entries(value).map(([key, item]) => [camelCase(key), camelCaseKeys(item)]),
  ) as CamelCased<T>;
}
