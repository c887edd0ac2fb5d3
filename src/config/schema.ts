// The resolved configuration's JSON Schema, written once in TypeBox: ajv validates configs against
// this value and types.ts derives the TypeScript types from it (Static<>), so a field is declared
// in one place. configs/schema.json is generated from it (`npm run schema`; a unit test checks it
// is current) for editors and for readers outside TypeScript.
import { Type, type Static, type TSchema } from '@sinclair/typebox';

/**
 * `{ enum: [...] }`, as the schema always spelled enumerations: TypeBox's own literal unions
 * become `anyOf` lists, whose errors ("must be equal to constant" once per option) read worse
 * than ajv's single enum error ("one of: a, b, c").
 */
function OneOf<const T extends readonly (string | number)[]>(
  values: T,
  options: { description?: string } = {},
) {
  return Type.Unsafe<T[number]>({ ...options, enum: [...values] });
}

/**
 * The schema with `null` added to its `type` (`["integer", "null"]`), so its other keywords
 * (minimum, properties, ...) still apply to non-null values and an error names both types.
 */
function Nullable<T extends TSchema & { type: string }>(schema: T) {
  return Type.Unsafe<Static<T> | null>({ ...schema, type: [schema.type, 'null'] });
}

/** A string → string mapping whose keys match `pattern`. */
function StringMap(pattern: string, options: { description?: string } = {}) {
  return Type.Unsafe<Record<string, string>>({
    type: 'object',
    additionalProperties: { type: 'string' },
    propertyNames: { pattern },
    ...options,
  });
}

/** Every object is closed (an unknown key is an error) and lists all of its keys as required. */
function Closed<T extends Parameters<typeof Type.Object>[0]>(
  properties: T,
  options: { description?: string } = {},
) {
  return Type.Object(properties, { additionalProperties: false, ...options });
}

const Seed = (options: { description?: string } = {}) =>
  Type.Integer({ minimum: 0, maximum: 4294967295, ...options });

const NonEmpty = (options: { description?: string } = {}) =>
  Type.String({ minLength: 1, ...options });

/** A deliberate exception to a check; reason null = the check applies. */
export const ExemptionSchema = Closed({ reason: Nullable(Type.String({ minLength: 1 })) });

export const DataNameSchema = OneOf(['synthetic', 'redsm5']);
export const TruncationSchema = OneOf(['head', 'tail', 'head_tail']);
export const DtypeChoiceSchema = OneOf(['auto', 'float32', 'bfloat16']);
export const DeviceChoiceSchema = OneOf(['auto', 'cpu', 'cuda']);
/** The Llama projections DoRA can adapt, in peft's names and the layer's order. */
export const doraTargetModules = [
  'q_proj',
  'k_proj',
  'v_proj',
  'o_proj',
  'gate_proj',
  'up_proj',
  'down_proj',
] as const;
export const DoraTargetModuleSchema = OneOf(doraTargetModules);
export const EarlyStoppingMetricSchema = OneOf([
  'f1',
  'loss',
  'auprc',
  'roc_auc',
  'mcc',
  'balanced_accuracy',
  'accuracy',
]);

export const DataConfigSchema = Closed({
  name: DataNameSchema,
  dir: NonEmpty(),
  criteria_path: NonEmpty(),
  synthetic: Closed({
    seed: Seed(),
    n_posts: Type.Integer({ minimum: 10, maximum: 1000000 }),
  }),
  count_override: ExemptionSchema,
  prompt: Closed({
    template: Type.String({
      allOf: [{ pattern: '\\{post\\}' }, { pattern: '\\{criterion\\}' }],
      description: 'Must contain {post} and {criterion}.',
    }),
    truncation: TruncationSchema,
    max_length: Type.Integer({ minimum: 8, maximum: 131072 }),
    share_prefix: Type.Unsafe<'auto' | false>({
      enum: ['auto', false],
      description:
        'auto: when the template has {post} (once) before any criterion placeholder, encode each ' +
        "post's shared part once for its criteria and batch by post (exact); false: one prompt per pair.",
    }),
  }),
  splits: Closed({
    n_splits: Type.Integer({ minimum: 2, maximum: 100 }),
    seed: Seed(),
    inner_validation_fraction: Type.Number({
      exclusiveMinimum: 0,
      exclusiveMaximum: 1,
      description:
        'Share of each training part (by post) held out for early stopping and the threshold.',
    }),
    stratify: OneOf(['criterion_label', 'label']),
  }),
});

export const TinyModelConfigSchema = Closed(
  {
    hidden_size: Type.Integer({ minimum: 8, maximum: 4096 }),
    intermediate_size: Type.Integer({ minimum: 8, maximum: 16384 }),
    num_hidden_layers: Type.Integer({ minimum: 1, maximum: 64 }),
    num_attention_heads: Type.Integer({ minimum: 1, maximum: 128 }),
    num_key_value_heads: Type.Integer({ minimum: 1, maximum: 128 }),
    vocab_size: Type.Integer({ minimum: 16, maximum: 1000000 }),
    max_position_embeddings: Type.Integer({ minimum: 16, maximum: 131072 }),
  },
  { description: 'Sizes of a generated tiny Llama (model/tiny.yaml); null for a real checkpoint.' },
);

/**
 * The decoder layers that get adapters (peft's layers_to_transform): null = every layer, a list
 * of layer indices, or { top: K } = the K layers nearest the output.
 */
export const DoraLayersSchema = Type.Union(
  [
    Type.Null(),
    Type.Array(Type.Integer({ minimum: 0 }), { minItems: 1, uniqueItems: true }),
    Closed({ top: Type.Integer({ minimum: 1 }) }),
  ],
  {
    description:
      'Layers with adapters: null = all, a list of layer indices, or { top: K } (the top K layers).',
  },
);

export const DoraConfigSchema = Closed({
  r: Type.Integer({ minimum: 1, maximum: 4096 }),
  alpha: Type.Number({ exclusiveMinimum: 0 }),
  dropout: Type.Number({ minimum: 0, exclusiveMaximum: 1 }),
  target_modules: Type.Array(DoraTargetModuleSchema, { minItems: 1, uniqueItems: true }),
  use_rslora: Type.Boolean(),
  layers: DoraLayersSchema,
});

export const ModelConfigSchema = Closed({
  name: NonEmpty(),
  path: NonEmpty(),
  create_if_missing: Type.Boolean({
    description: 'Generate a random tiny Llama at path when it does not exist (tiny models only).',
  }),
  dtype: DtypeChoiceSchema,
  device: DeviceChoiceSchema,
  pad_token_id: Nullable(Type.Integer({ minimum: 0 })),
  padding_side: OneOf(['right', 'left']),
  num_labels: OneOf([1, 2]),
  gradient_checkpointing: Type.Boolean(),
  shared_attention: OneOf(['block_mask', 'prefix_kv'], {
    description:
      'How shared-prefix rows attend (both exact): one call with a block mask, or the prefix ' +
      "once and each criterion suffix on the prefix's keys/values plus its own.",
  }),
  tiny: Nullable(TinyModelConfigSchema),
  dora: DoraConfigSchema,
});

export const TrainingConfigSchema = Closed({
  lr: Type.Number({ maximum: 1, exclusiveMinimum: 0 }),
  weight_decay: Type.Number({ minimum: 0 }),
  max_epochs: Type.Integer({ minimum: 1, maximum: 100000 }),
  max_steps: Nullable(Type.Integer({ minimum: 1 })),
  micro_batch_size: Type.Integer({ minimum: 1, maximum: 65536 }),
  effective_batch_size: Type.Integer({
    minimum: 1,
    maximum: 1048576,
    description: 'micro_batch_size x gradient accumulation steps.',
  }),
  warmup_ratio: Type.Number({ minimum: 0, maximum: 1 }),
  lr_schedule: OneOf(['linear', 'cosine', 'constant']),
  max_grad_norm: Nullable(Type.Number({ exclusiveMinimum: 0 })),
  eval_every_steps: Type.Integer({
    minimum: 0,
    description: '0 = evaluate at the end of each epoch.',
  }),
  early_stopping: Closed({
    metric: EarlyStoppingMetricSchema,
    mode: OneOf(['max', 'min']),
    patience: Type.Integer({ minimum: 0 }),
    min_delta: Type.Number({ minimum: 0 }),
  }),
  pos_weight: Nullable(Type.Number({ exclusiveMinimum: 0 })),
  threads: Type.Integer({ minimum: 0, maximum: 1024, description: "0 = libtorch's default." }),
  folds: Nullable(
    Type.Array(Type.Integer({ minimum: 0 }), {
      minItems: 1,
      uniqueItems: true,
      description: 'null = every fold.',
    }),
  ),
  length_bucketing: Type.Boolean(),
  frozen_cache: Closed(
    {
      enabled: Type.Boolean({
        description:
          'Compute the hidden states below the first adapted layer once per run and reuse them ' +
          '(only when model.dora.layers leaves the bottom layers without adapters).',
      }),
      max_memory_mb: Type.Integer({
        minimum: 0,
        description: 'Larger caches go to a memory-mapped file in the run directory.',
      }),
    },
    { description: 'The frozen-bottom cache (docs/training.md).' },
  ),
  distributed: Closed(
    {
      mode: OneOf(['folds', 'ddp'], {
        description:
          'With several ranks (torchrun, srun, --nproc): folds = ranks take folds round-robin; ' +
          'ddp = every fold is data-parallel over all ranks.',
      }),
      backend: OneOf(['auto', 'gloo', 'nccl'], {
        description: 'auto = nccl on CUDA, gloo on the CPU.',
      }),
      timeout_s: Type.Number({
        minimum: 1,
        maximum: 86400,
        description:
          'A rank that dies, hangs or misses a collective for this long ends the run (FAILED, naming it).',
      }),
      bucket_mb: Type.Number({
        exclusiveMinimum: 0,
        maximum: 4096,
        description: 'ddp: size of the gradient buckets all-reduced during backward (MB).',
      }),
    },
    { description: 'Multi-process training; ignored when the run has a single rank.' },
  ),
});

export const RetryConfigSchema = Closed({
  base_ms: Type.Integer({ minimum: 0, maximum: 600000 }),
  cap_ms: Type.Integer({ minimum: 0, maximum: 3600000 }),
  max_attempts: Type.Integer({ minimum: 1, maximum: 100 }),
  retryable_statuses: Type.Array(Type.Integer({ minimum: 100, maximum: 599 }), {
    uniqueItems: true,
  }),
});

export const LoggingConfigSchema = Closed({
  level: OneOf(['debug', 'info', 'warn', 'error']),
  progress: Closed({
    mode: OneOf(['auto', 'bar', 'lines', 'none'], {
      description: 'auto = a bar on a TTY, lines otherwise; none = silent.',
    }),
    every_seconds: Type.Number({
      minimum: 0,
      description:
        'Lines mode: a progress line once this many seconds passed since the last; 0 = off.',
    }),
    every_steps: Type.Integer({
      minimum: 0,
      description: 'Lines mode: a progress line every this many optimizer steps; 0 = off.',
    }),
  }),
  mlflow: Closed({
    enabled: Type.Boolean(),
    tracking_uri: Type.String({ description: 'Empty = start a local mlflow server.' }),
    experiment_name: NonEmpty(),
    tags: StringMap('^[A-Za-z0-9_.\\-/ ]{1,250}$', {
      description: 'Extra tags on every run; add with +logging.mlflow.tags.<name>=<value>.',
    }),
    local_server: Closed({
      host: NonEmpty(),
      port: Type.Integer({ minimum: 0, maximum: 65535, description: '0 = a free port.' }),
      backend_store_uri: NonEmpty({
        description:
          'Store of the local server (sqlite:/// or file:; relative paths from the working directory).',
      }),
      artifacts_destination: NonEmpty({
        description: "Folder of the local server's artifacts (relative to the working directory).",
      }),
    }),
    retry: RetryConfigSchema,
  }),
});

export const InferenceConfigSchema = Closed({
  batch_size: Type.Integer({ minimum: 1, maximum: 65536 }),
  threshold: Nullable(
    Type.Number({ minimum: 0, maximum: 1, description: "null = from the run's thresholds.json." }),
  ),
  ensemble: Type.Boolean(),
});

export const BenchConfigSchema = Closed({
  lengths: Type.Array(Type.Integer({ minimum: 1, maximum: 131072 }), { minItems: 1 }),
  warmup: Type.Integer({ minimum: 0 }),
  runs: Type.Integer({ minimum: 1 }),
  threads: Type.Integer({ minimum: 0, maximum: 1024 }),
  max_p95_ms: Type.Number({ exclusiveMinimum: 0 }),
  allow_slow: ExemptionSchema,
});

export const ConfigSchema = Type.Object(
  {
    seed: Seed({ description: 'Global seed: JS RNG, libtorch, DoRA init, shuffling.' }),
    run_dir: NonEmpty({ description: 'Output directory of the run.' }),
    data: DataConfigSchema,
    model: ModelConfigSchema,
    training: TrainingConfigSchema,
    logging: LoggingConfigSchema,
    inference: InferenceConfigSchema,
    bench: BenchConfigSchema,
  },
  {
    $schema: 'http://json-schema.org/draft-07/schema#',
    $id: 'https://mentallam.local/config.schema.json',
    title: 'mentallam resolved configuration',
    additionalProperties: false,
  },
);

/** The schema as plain JSON (TypeBox's symbol keys dropped): what configs/schema.json holds. */
export function configSchemaJson(): string {
  return `${JSON.stringify(ConfigSchema, null, 2)}\n`;
}
