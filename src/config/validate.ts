import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv';
import { ConfigError, type ConfigProblem } from './errors.js';
import { ConfigSchema } from './schema.js';
import type { Config } from './types.js';
import { isTree, type Tree } from './tree.js';

type JsonSchema = Record<string, unknown>;

let compiled: ValidateFunction<Config> | undefined;

/** ajv's validator for ConfigSchema, compiled on first use. */
function configValidator(): ValidateFunction<Config> {
  // allErrors: report every problem in one go; verbose: errors carry the offending data and schema.
  compiled ??= new Ajv({
    allErrors: true,
    verbose: true,
    strict: true,
    allowUnionTypes: true,
  }).compile<Config>(ConfigSchema);
  return compiled;
}

function dotted(instancePath: string): string {
  return instancePath
    .split('/')
    .slice(1)
    .map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'))
    .join('.');
}

function join2(parent: string, key: string): string {
  return parent === '' ? key : `${parent}.${key}`;
}

function listValues(values: unknown[]): string {
  return values.map((v) => (typeof v === 'string' ? v : JSON.stringify(v))).join(', ');
}

function toProblem(error: ErrorObject): ConfigProblem | undefined {
  const path = dotted(error.instancePath);
  const params = error.params as Record<string, unknown>;
  // A key that breaks `propertyNames`: ajv reports the key's own error (carrying propertyName)
  // and then a summary one; the first says what was expected, the summary adds nothing.
  if (error.propertyName !== undefined)
    return {
      path: join2(path, error.propertyName),
      value: error.propertyName,
      expected:
        error.keyword === 'pattern'
          ? `a key matching /${String(params.pattern)}/`
          : `a valid key name (${error.message ?? error.keyword})`,
    };
  switch (error.keyword) {
    case 'additionalProperties': {
      const key = String(params.additionalProperty);
      const known = Object.keys((error.parentSchema?.properties as object | undefined) ?? {});
      return {
        path: join2(path, key),
        value: isTree(error.data) ? error.data[key] : undefined,
        expected: `no such key: ${path === '' ? 'top-level keys' : `keys of ${path}`} are ${known.join(', ')}`,
      };
    }
    case 'required':
      return {
        path: join2(path, String(params.missingProperty)),
        value: undefined,
        expected: 'a value (required key)',
      };
    case 'type': {
      const types = String(params.type).split(',');
      return { path, value: error.data, expected: types.join(' or ') };
    }
    case 'enum':
      return {
        path,
        value: error.data,
        expected: `one of: ${listValues(params.allowedValues as unknown[])}`,
      };
    case 'minimum':
      return { path, value: error.data, expected: `a number >= ${String(params.limit)}` };
    case 'maximum':
      return { path, value: error.data, expected: `a number <= ${String(params.limit)}` };
    case 'exclusiveMinimum':
      return { path, value: error.data, expected: `a number > ${String(params.limit)}` };
    case 'exclusiveMaximum':
      return { path, value: error.data, expected: `a number < ${String(params.limit)}` };
    case 'minLength':
      return { path, value: error.data, expected: 'a non-empty string' };
    case 'minItems':
      return {
        path,
        value: error.data,
        expected: `a list of at least ${String(params.limit)} item(s)`,
      };
    case 'uniqueItems':
      return { path, value: error.data, expected: 'a list without duplicates' };
    case 'pattern':
      return { path, value: error.data, expected: `a string matching /${String(params.pattern)}/` };
    case 'propertyNames':
      return undefined;
    default:
      return { path, value: error.data, expected: error.message ?? error.keyword };
  }
}

/** Checks that involve more than one key, which JSON Schema cannot express readably. */
function crossChecks(config: Config): ConfigProblem[] {
  const problems: ConfigProblem[] = [];
  const { training, model, data, logging } = config;
  if (training.effective_batch_size % training.micro_batch_size !== 0)
    problems.push({
      path: 'training.effective_batch_size',
      value: training.effective_batch_size,
      expected: `a multiple of training.micro_batch_size (${training.micro_batch_size}), the accumulation steps being their ratio`,
    });
  for (const fold of training.folds ?? [])
    if (fold >= data.splits.n_splits)
      problems.push({
        path: 'training.folds',
        value: training.folds,
        expected: `fold indices below data.splits.n_splits (${data.splits.n_splits})`,
      });
  if (training.early_stopping.metric === 'loss' && training.early_stopping.mode !== 'min')
    problems.push({
      path: 'training.early_stopping.mode',
      value: training.early_stopping.mode,
      expected: "'min' when the metric is loss",
    });
  if (training.early_stopping.metric !== 'loss' && training.early_stopping.mode !== 'max')
    problems.push({
      path: 'training.early_stopping.mode',
      value: training.early_stopping.mode,
      expected: `'max' when the metric is ${training.early_stopping.metric} (higher is better)`,
    });
  if (model.create_if_missing && model.tiny === null)
    problems.push({
      path: 'model.create_if_missing',
      value: true,
      expected: 'false unless model.tiny gives the sizes of the model to generate',
    });
  if (model.tiny) {
    const t = model.tiny;
    if (t.hidden_size % t.num_attention_heads !== 0)
      problems.push({
        path: 'model.tiny.hidden_size',
        value: t.hidden_size,
        expected: `a multiple of model.tiny.num_attention_heads (${t.num_attention_heads})`,
      });
    if (t.num_attention_heads % t.num_key_value_heads !== 0)
      problems.push({
        path: 'model.tiny.num_key_value_heads',
        value: t.num_key_value_heads,
        expected: `a divisor of model.tiny.num_attention_heads (${t.num_attention_heads})`,
      });
    if (data.prompt.max_length > t.max_position_embeddings)
      problems.push({
        path: 'data.prompt.max_length',
        value: data.prompt.max_length,
        expected: `at most model.tiny.max_position_embeddings (${t.max_position_embeddings})`,
      });
  }
  if (logging.mlflow.retry.cap_ms < logging.mlflow.retry.base_ms)
    problems.push({
      path: 'logging.mlflow.retry.cap_ms',
      value: logging.mlflow.retry.cap_ms,
      expected: `>= logging.mlflow.retry.base_ms (${logging.mlflow.retry.base_ms})`,
    });
  return problems;
}

/** Every schema problem, plus the cross-key checks once the shape is right. */
export function collectProblems(tree: Tree): ConfigProblem[] {
  const validate = configValidator();
  if (validate(tree)) return crossChecks(tree);
  const seen = new Set<string>();
  const problems: ConfigProblem[] = [];
  for (const error of validate.errors ?? []) {
    const problem = toProblem(error);
    if (problem === undefined) continue;
    const id = `${problem.path}\u0000${problem.expected}`;
    if (seen.has(id)) continue;
    seen.add(id);
    problems.push(problem);
  }
  return problems;
}

/** Validates a config built in code (e.g. by the programmatic API); throws ConfigError. */
export function validateConfigTree(tree: unknown): Config {
  if (!isTree(tree))
    throw new ConfigError([{ path: '(root)', value: tree, expected: 'a mapping' }]);
  const problems = collectProblems(tree);
  if (problems.length > 0) throw new ConfigError(problems);
  return tree as unknown as Config;
}

/** Top-level and nested key order as the schema lists them, so printed configs read the same. */
export function orderLikeSchema(
  value: unknown,
  schema: JsonSchema | undefined = ConfigSchema,
): unknown {
  if (!isTree(value)) return value;
  const properties = (schema?.properties as Record<string, JsonSchema> | undefined) ?? {};
  const out: Tree = {};
  for (const key of Object.keys(properties))
    if (Object.hasOwn(value, key)) out[key] = orderLikeSchema(value[key], properties[key]);
  for (const key of Object.keys(value)) if (!Object.hasOwn(out, key)) out[key] = value[key];
  return out;
}
