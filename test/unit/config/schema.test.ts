// The schema is written once (src/config/schema.ts); configs/schema.json is generated from it and
// every validation error keeps naming the key, the value given and what was expected.
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import {
  ConfigError,
  loadConfig,
  validateConfig,
  type ConfigProblem,
} from '../../../src/config/index.js';
import { configSchemaJson } from '../../../src/config/schema.js';

const env = {} as NodeJS.ProcessEnv;

async function problemsOf(overrides: string[]): Promise<ConfigProblem[]> {
  try {
    await loadConfig({ overrides: ['model=tiny', ...overrides], env });
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    return (error as ConfigError).problems;
  }
  throw new Error(`expected a ConfigError for ${overrides.join(' ')}`);
}

test('configs/schema.json is current (regenerate with `npm run schema`)', () => {
  expect(readFileSync(resolve('configs/schema.json'), 'utf8')).toBe(configSchemaJson());
});

test.each([
  ['model.pad_token_id=-1', 'model.pad_token_id', -1, 'a number >= 0'],
  ['model.pad_token_id=abc', 'model.pad_token_id', 'abc', 'integer or null'],
  ['model.tiny=5', 'model.tiny', 5, 'object or null'],
  ['model.tiny.hidden_size=null', 'model.tiny.hidden_size', null, 'integer'],
  ['model.num_labels=3', 'model.num_labels', 3, 'one of: 1, 2'],
  [
    'model.dora.target_modules=[x_proj]',
    'model.dora.target_modules.0',
    'x_proj',
    'one of: q_proj, k_proj, v_proj, o_proj, gate_proj, up_proj, down_proj',
  ],
  ['+logging.mlflow.tags.k=1', 'logging.mlflow.tags.k', 1, 'string'],
  ['training.folds=[]', 'training.folds', [], 'a list of at least 1 item(s)'],
  ['training.folds=[0,0]', 'training.folds', [0, 0], 'a list without duplicates'],
  ['training.lr=2', 'training.lr', 2, 'a number <= 1'],
  ['training.max_grad_norm=0', 'training.max_grad_norm', 0, 'a number > 0'],
  [
    'data.splits.inner_validation_fraction=1',
    'data.splits.inner_validation_fraction',
    1,
    'a number < 1',
  ],
  ['model.name=""', 'model.name', '', 'a non-empty string'],
  ['data.count_override.reason=""', 'data.count_override.reason', '', 'a non-empty string'],
])(
  '%s: one problem naming the key, the value and what was expected',
  async (override, path, value, expected) => {
    expect(await problemsOf([override])).toEqual([{ path, value, expected }]);
  },
);

test('a tag name outside the allowed characters is named with the pattern, once', async () => {
  const { config } = await loadConfig({ env });
  const copy = structuredClone(config) as unknown as {
    logging: { mlflow: { tags: Record<string, string> } };
  };
  copy.logging.mlflow.tags = { 'bad!key': 'x' };
  expect(() => validateConfig(copy)).toThrow(ConfigError);
  try {
    validateConfig(copy);
  } catch (error) {
    expect((error as ConfigError).problems).toEqual([
      {
        path: 'logging.mlflow.tags.bad!key',
        value: 'bad!key',
        expected: 'a key matching /^[A-Za-z0-9_.\\-/ ]{1,250}$/',
      },
    ]);
  }
});
