import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { load } from 'js-yaml';
import {
  ConfigError,
  configToYaml,
  flattenConfig,
  loadConfig,
  overridesToYaml,
  packageRoot,
  validateConfig,
  type ConfigProblem,
} from '../../../src/config/index.js';

const env = {} as NodeJS.ProcessEnv;
const now = new Date(2025, 0, 2, 3, 4, 5);

async function problemsOf(
  overrides: string[],
  extra: { env?: NodeJS.ProcessEnv } = {},
): Promise<ConfigProblem[]> {
  try {
    await loadConfig({ overrides, env, now, ...extra });
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    return (error as ConfigError).problems;
  }
  throw new Error(`expected a ConfigError for ${overrides.join(' ')}`);
}

describe('defaults', () => {
  test('synthetic data, SmolLM2 with its recipe, a dated run dir; valid and frozen', async () => {
    const { config, overrides, choices } = await loadConfig({ env, now });
    expect(overrides).toEqual([]);
    expect(choices).toEqual({
      data: 'synthetic',
      model: 'smollm2',
      training: 'smollm2',
      logging: 'default',
      inference: 'default',
      bench: 'default',
    });
    expect(config.data.name).toBe('synthetic');
    expect(config.model.path).toBe(join(packageRoot, 'models', 'smollm2'));
    expect(config.model.create_if_missing).toBe(false);
    expect(config.model.tiny).toBeNull();
    // Adapters on the top layers only, so the frozen-bottom cache applies.
    expect(config.model.dora.layers).toEqual({ top: 2 });
    expect(config.training.frozen_cache.enabled).toBe(true);
  });

  test('model=tiny training=default: the tiny model and its quick training', async () => {
    const { config } = await loadConfig({
      overrides: ['model=tiny', 'training=default'],
      env,
      now,
    });
    expect(config.model.path).toBe('models/tiny-llama');
    expect(config.model.create_if_missing).toBe(true);
    expect(config.model.tiny!.num_key_value_heads).toBeLessThan(
      config.model.tiny!.num_attention_heads,
    );
    expect(config.training.lr).toBe(0.001);
  });

  test('the resolved defaults are valid and frozen', async () => {
    const { config } = await loadConfig({ env, now });
    expect(config.run_dir).toBe('outputs/2025-01-02/03-04-05');
    expect(config.logging.mlflow.tracking_uri).toBe('');
    expect(Object.isFrozen(config.training.early_stopping)).toBe(true);
    expect(Object.keys(config)).toEqual([
      'seed',
      'run_dir',
      'data',
      'model',
      'training',
      'logging',
      'inference',
      'bench',
    ]);
  });

  test('the tracking URI comes from MLFLOW_TRACKING_URI when set', async () => {
    const { config } = await loadConfig({ env: { MLFLOW_TRACKING_URI: 'http://h:5000' }, now });
    expect(config.logging.mlflow.tracking_uri).toBe('http://h:5000');
  });
});

describe('experiment=mentallama-redsm5', () => {
  test("carries the seed's values and switches data, model and training groups", async () => {
    const { config, choices } = await loadConfig({
      overrides: ['experiment=mentallama-redsm5'],
      env,
      now,
    });
    expect(choices).toMatchObject({
      data: 'redsm5',
      model: 'mentallama-chat-7b',
      training: 'mentallama',
      experiment: 'mentallama-redsm5',
    });
    expect(config.seed).toBe(42);
    expect(config.data.name).toBe('redsm5');
    expect(config.data.prompt.template).toBe(
      'post: {post}, criterion: {criterion} Does the post match the criterion description? Output yes or no',
    );
    expect(config.data.prompt.max_length).toBe(512);
    expect(config.data.splits.n_splits).toBe(5);
    expect(config.model.dora).toEqual({
      r: 8,
      alpha: 16,
      dropout: 0.05,
      target_modules: ['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj'],
      use_rslora: false,
      layers: null,
    });
    expect(config.model.path).toBe('/models/MentaLLaMA-chat-7B-hf');
    expect(config.model.dtype).toBe('auto');
    expect(config.training).toMatchObject({
      max_epochs: 100,
      micro_batch_size: 8,
      effective_batch_size: 32,
      early_stopping: { patience: 20 },
    });
  });

  test('MENTALLAMA_PATH replaces the placeholder path', async () => {
    const { config } = await loadConfig({
      overrides: ['experiment=mentallama-redsm5'],
      env: { MENTALLAMA_PATH: '/data/ml' },
      now,
    });
    expect(config.model.path).toBe('/data/ml');
  });

  test('a group chosen on the command line beats the experiment', async () => {
    const { config, choices } = await loadConfig({
      overrides: ['experiment=mentallama-redsm5', 'data=synthetic'],
      env,
      now,
    });
    expect(choices.data).toBe('synthetic');
    // The experiment's own values still apply on top of the chosen group.
    expect(config.data.name).toBe('synthetic');
    expect(config.data.prompt.max_length).toBe(512);
  });

  test('overrides=debug shrinks the experiment', async () => {
    const { config } = await loadConfig({
      overrides: ['experiment=mentallama-redsm5', 'overrides=debug'],
      env,
      now,
    });
    expect(config.training.max_epochs).toBe(1);
    expect(config.training.max_steps).toBe(20);
    expect(config.training.folds).toEqual([0]);
    // After the experiment in the defaults list: its 512-token prompts shrink too.
    expect(config.data.prompt.max_length).toBe(128);
    expect(config.logging.mlflow.enabled).toBe(false);
    expect(config.data.name).toBe('redsm5');
    // The smallest useful run is on the tiny model, whatever the experiment's model.
    expect(config.model.path).toBe('models/tiny-llama');
  });
});

describe('overrides', () => {
  test('a.b=value is parsed as YAML', async () => {
    const { config, overrides } = await loadConfig({
      overrides: [
        'training.lr=3e-5',
        'training.folds=[0, 2]',
        'training.max_steps=100',
        'model.name=x y',
      ],
      env,
      now,
    });
    expect(config.training.lr).toBeCloseTo(3e-5, 15);
    expect(config.training.folds).toEqual([0, 2]);
    expect(config.training.max_steps).toBe(100);
    expect(config.model.name).toBe('x y');
    expect(overrides).toEqual([
      'training.lr=3e-5',
      'training.folds=[0, 2]',
      'training.max_steps=100',
      'model.name=x y',
    ]);
  });

  test('later overrides win', async () => {
    const { config } = await loadConfig({ overrides: ['seed=1', 'seed=2'], env, now });
    expect(config.seed).toBe(2);
  });

  test('group=option picks a file', async () => {
    const { config } = await loadConfig({ overrides: ['data=redsm5'], env, now });
    expect(config.data.name).toBe('redsm5');
    expect(config.data.dir).toBe('data/redsm5');
  });

  test('+key adds where the schema allows it, and is refused for existing keys', async () => {
    const { config } = await loadConfig({
      overrides: ['+logging.mlflow.tags.owner=ana'],
      env,
      now,
    });
    expect(config.logging.mlflow.tags).toEqual({ owner: 'ana' });
    const problems = await problemsOf(['+training.lr=0.1']);
    expect(problems).toHaveLength(1);
    expect(problems[0]!.path).toBe('training.lr');
    expect(problems[0]!.expected).toMatch(/does not exist yet.*\+\+training\.lr/);
  });

  test('+key where the schema does not allow it names the key', async () => {
    const problems = await problemsOf(['+training.nope=1']);
    expect(problems).toEqual([
      expect.objectContaining({
        path: 'training.nope',
        value: 1,
        expected: expect.stringMatching(/no such key.*lr/),
      }),
    ]);
  });

  test('++key sets whether or not it exists', async () => {
    const { config } = await loadConfig({
      overrides: ['++training.lr=0.5', '++logging.mlflow.tags.a=b'],
      env,
      now,
    });
    expect(config.training.lr).toBe(0.5);
    expect(config.logging.mlflow.tags).toEqual({ a: 'b' });
  });

  test('~key deletes; a required key deleted is reported', async () => {
    const { config } = await loadConfig({
      overrides: ['+logging.mlflow.tags.a=b', '~logging.mlflow.tags.a'],
      env,
      now,
    });
    expect(config.logging.mlflow.tags).toEqual({});
    const problems = await problemsOf(['~training.lr']);
    expect(problems).toEqual([
      expect.objectContaining({ path: 'training.lr', expected: 'a value (required key)' }),
    ]);
    const missing = await problemsOf(['~training.nothing']);
    expect(missing[0]!.path).toBe('training.nothing');
  });

  test('~key=value deletes only on a match', async () => {
    const problems = await problemsOf(['training=default', '~training.lr=0.5']);
    expect(problems[0]).toMatchObject({ path: 'training.lr', value: 0.001 });
  });

  test('unknown key on plain set: named, with the known keys and a hint', async () => {
    const problems = await problemsOf(['training.nope=1']);
    expect(problems).toHaveLength(1);
    expect(problems[0]).toMatchObject({ path: 'training.nope', value: 1 });
    expect(problems[0]!.expected).toMatch(/known key of training \(lr, weight_decay/);
    expect(problems[0]!.expected).toMatch(/\+training\.nope=/);
  });

  test('wrong type: key, value and expected type', async () => {
    const problems = await problemsOf(['training.lr=abc']);
    expect(problems).toEqual([{ path: 'training.lr', value: 'abc', expected: 'number' }]);
  });

  test('every problem is listed at once', async () => {
    const problems = await problemsOf([
      'training.lr=abc',
      'training.nope=1',
      'model.dtype=float16',
      'data.splits.n_splits=1',
      'training.micro_batch_size=0',
      'logging.level=loud',
    ]);
    const byPath = Object.fromEntries(problems.map((p) => [p.path, p.expected]));
    expect(byPath).toEqual({
      'training.lr': 'number',
      'training.nope': expect.stringMatching(/known key/),
      'model.dtype': 'one of: auto, float32, bfloat16',
      'data.splits.n_splits': 'a number >= 2',
      'training.micro_batch_size': 'a number >= 1',
      'logging.level': 'one of: debug, info, warn, error',
    });
  });

  test('an unknown group option lists the available ones', async () => {
    const problems = await problemsOf(['data=nosuch']);
    expect(problems).toEqual([
      { path: 'data', value: 'nosuch', expected: 'one of: redsm5, synthetic' },
    ]);
  });

  test('malformed override text', async () => {
    const problems = await problemsOf(['training.lr', '=3', 'a..b=1', 'training.lr=[1,']);
    expect(problems.map((p) => p.path)).toEqual([
      "override 'training.lr'",
      "override '=3'",
      "override 'a..b=1'",
      "override 'training.lr=[1,'",
    ]);
  });

  test('cross-key checks', async () => {
    const problems = await problemsOf([
      'training.effective_batch_size=20',
      'training.folds=[5]',
      'training.early_stopping.metric=loss',
    ]);
    expect(problems.map((p) => p.path).sort()).toEqual([
      'training.early_stopping.mode',
      'training.effective_batch_size',
      'training.folds',
    ]);
  });

  test('the template must keep both placeholders', async () => {
    const problems = await problemsOf(['data.prompt.template=just {post}']);
    expect(problems).toEqual([
      expect.objectContaining({
        path: 'data.prompt.template',
        expected: expect.stringContaining('criterion'),
      }),
    ]);
  });
});

describe('interpolation', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'mentallam-config-'));
    // A copy of the real config tree whose primary file adds interpolations under test.
    for (const group of ['data', 'model', 'training', 'logging', 'inference', 'bench'])
      mkdirSync(join(dir, group));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  async function loadWith(
    primaryExtra: string,
    options: { env?: NodeJS.ProcessEnv; overrides?: string[] } = {},
  ) {
    const { readFileSync, readdirSync } = await import('node:fs');
    const source = join(process.cwd(), 'configs');
    for (const group of ['data', 'model', 'training', 'logging', 'inference', 'bench'])
      for (const file of readdirSync(join(source, group)))
        writeFileSync(join(dir, group, file), readFileSync(join(source, group, file)));
    writeFileSync(
      join(dir, 'config.yaml'),
      `defaults:\n  - data: synthetic\n  - model: tiny\n  - training: default\n  - logging: default\n  - inference: default\n  - bench: default\n  - _self_\nseed: 42\nrun_dir: outputs/x\n${primaryExtra}`,
    );
    return loadConfig({
      configDir: dir,
      env: options.env ?? {},
      now,
      overrides: options.overrides,
    });
  }

  test('${key} keeps the type when alone, is text inside a string', async () => {
    const { config } = await loadWith(
      'data:\n  splits:\n    seed: ${seed}\nmodel:\n  name: tiny-${seed}-${now:%Y}\n',
    );
    expect(config.data.splits.seed).toBe(42);
    expect(config.model.name).toBe('tiny-42-2025');
  });

  test('references see command-line overrides', async () => {
    const { config } = await loadWith('data:\n  splits:\n    seed: ${seed}\n', {
      overrides: ['seed=7'],
    });
    expect(config.data.splits.seed).toBe(7);
  });

  test('${env:NAME} without default and unset is a problem naming the key and variable', async () => {
    await expect(loadWith('model:\n  path: ${env:NO_SUCH_VAR}\n')).rejects.toMatchObject({
      problems: [
        expect.objectContaining({
          path: 'model.path',
          expected: expect.stringContaining('NO_SUCH_VAR'),
        }),
      ],
    });
    const { config } = await loadWith('model:\n  path: ${env:NO_SUCH_VAR}\n', {
      env: { NO_SUCH_VAR: '/m' },
    });
    expect(config.model.path).toBe('/m');
  });

  test('a default may contain commas and colons; \\${ stays literal', async () => {
    const { config } = await loadWith('model:\n  path: ${env:X,/a,b:c}\n  name: \\${seed}\n');
    expect(config.model.path).toBe('/a,b:c');
    expect(config.model.name).toBe('${seed}');
  });

  test('${package:PATH} is the path inside the package, whatever the working directory', async () => {
    const { config } = await loadWith('model:\n  path: ${package:models/x}\n');
    expect(config.model.path).toBe(join(packageRoot, 'models', 'x'));
    // The shipped data groups point at the criteria the package ships, absolute and present.
    expect(config.data.criteria_path).toBe(join(packageRoot, 'data', 'dsm5', 'criteria.json'));
    expect(existsSync(config.data.criteria_path)).toBe(true);
    const problems = await loadWith(
      'model:\n  path: ${package:../outside}\n  name: ${package:/etc/passwd}\n',
    ).then(
      () => [],
      (error: ConfigError) => error.problems,
    );
    expect(problems).toEqual([
      expect.objectContaining({ path: 'model.name', expected: expect.stringContaining('inside') }),
      expect.objectContaining({ path: 'model.path', expected: expect.stringContaining('inside') }),
    ]);
  });

  test('reference cycles and unknown resolvers are problems', async () => {
    const problems = await loadWith(
      'model:\n  name: ${model.path}\n  path: ${model.name}\n  padding_side: ${oops:x}\n',
    ).then(
      () => [],
      (error: ConfigError) => error.problems,
    );
    expect(problems.map((p) => p.expected)).toEqual(
      expect.arrayContaining([
        'references without a cycle',
        expect.stringContaining('an interpolation'),
      ]),
    );
  });

  test('bad YAML in a config file names the file and line', async () => {
    await loadWith('');
    writeFileSync(join(dir, 'training', 'broken.yaml'), 'lr: [1,\n');
    await expect(
      loadConfig({ configDir: dir, env: {}, overrides: ['training=broken'] }),
    ).rejects.toThrow(
      /training\/broken\.yaml:2:1: got \(missing\), expected valid YAML \(unexpected end/,
    );
  });
});

describe('output helpers', () => {
  test('configToYaml round-trips and shows a small lr readably', async () => {
    const { config } = await loadConfig({ overrides: ['training.lr=3e-5'], env, now });
    const yaml = configToYaml(config);
    expect(yaml).toMatch(/^ {2}lr: 0\.00003$/m);
    expect(load(yaml)).toEqual(JSON.parse(JSON.stringify(config)));
  });

  test('flattenConfig gives dotted string params', async () => {
    const { config } = await loadConfig({ overrides: ['training=default'], env, now });
    const flat = flattenConfig(config);
    expect(flat['training.lr']).toBe('0.001');
    expect(flat['training.max_steps']).toBe('null');
    expect(flat['model.dora.target_modules']).toBe(
      '["q_proj","k_proj","v_proj","o_proj","gate_proj","up_proj","down_proj"]',
    );
    expect(flat['logging.mlflow.tags']).toBe('{}');
    expect(flat['data.count_override.reason']).toBe('null');
    expect(Object.values(flat).every((v) => typeof v === 'string')).toBe(true);
  });

  test('overridesToYaml is a YAML list', () => {
    expect(load(overridesToYaml(['a=1', '+b.c=x']))).toEqual(['a=1', '+b.c=x']);
  });

  test('validateConfig accepts a loaded config and rejects a broken copy with all problems', async () => {
    const { config } = await loadConfig({ env, now });
    expect(validateConfig(config)).toEqual(config);
    const broken = structuredClone(config) as unknown as Record<string, Record<string, unknown>>;
    broken.training!.lr = -1;
    broken.model!.extra = true;
    expect(() => validateConfig(broken)).toThrow(ConfigError);
    try {
      validateConfig(broken);
    } catch (error) {
      expect((error as ConfigError).problems.map((p) => p.path).sort()).toEqual([
        'model.extra',
        'training.lr',
      ]);
      expect((error as ConfigError).message).toMatch(/training\.lr: got -1, expected a number > 0/);
    }
  });
});
