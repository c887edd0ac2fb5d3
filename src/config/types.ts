// The resolved configuration. Mirrors configs/schema.json, which is the authority at run time.

export type DataName = 'synthetic' | 'redsm5';
export type Truncation = 'head' | 'tail' | 'head_tail';
export type DtypeChoice = 'auto' | 'float32' | 'bfloat16';
export type DeviceChoice = 'auto' | 'cpu' | 'cuda';
export type DoraTargetModule =
  'q_proj' | 'k_proj' | 'v_proj' | 'o_proj' | 'gate_proj' | 'up_proj' | 'down_proj';
export type EarlyStoppingMetric =
  'f1' | 'loss' | 'auprc' | 'roc_auc' | 'mcc' | 'balanced_accuracy' | 'accuracy';

/** A deliberate exception to a check; null = the check applies. */
export interface Exemption {
  reason: string | null;
}

export interface DataConfig {
  name: DataName;
  dir: string;
  criteria_path: string;
  synthetic: { seed: number; n_posts: number };
  count_override: Exemption;
  prompt: { template: string; truncation: Truncation; max_length: number };
  splits: {
    n_splits: number;
    seed: number;
    /** Share of each training part (by post) held out for early stopping and the threshold. */
    inner_validation_fraction: number;
    stratify: 'criterion_label' | 'label';
  };
}

/** Sizes of a generated tiny Llama (model/tiny.yaml); null for a real checkpoint. */
export interface TinyModelConfig {
  hidden_size: number;
  intermediate_size: number;
  num_hidden_layers: number;
  num_attention_heads: number;
  num_key_value_heads: number;
  vocab_size: number;
  max_position_embeddings: number;
}

export interface DoraConfig {
  r: number;
  alpha: number;
  dropout: number;
  target_modules: DoraTargetModule[];
  use_rslora: boolean;
}

export interface ModelConfig {
  name: string;
  path: string;
  create_if_missing: boolean;
  dtype: DtypeChoice;
  device: DeviceChoice;
  pad_token_id: number | null;
  padding_side: 'right' | 'left';
  num_labels: 1 | 2;
  gradient_checkpointing: boolean;
  tiny: TinyModelConfig | null;
  dora: DoraConfig;
}

export interface TrainingConfig {
  lr: number;
  weight_decay: number;
  max_epochs: number;
  max_steps: number | null;
  micro_batch_size: number;
  /** micro_batch_size x gradient accumulation steps. */
  effective_batch_size: number;
  warmup_ratio: number;
  lr_schedule: 'linear' | 'cosine' | 'constant';
  max_grad_norm: number | null;
  /** 0 = evaluate once per epoch. */
  eval_every_steps: number;
  early_stopping: {
    metric: EarlyStoppingMetric;
    mode: 'max' | 'min';
    patience: number;
    min_delta: number;
  };
  pos_weight: number | null;
  /** 0 = libtorch's default thread count. */
  threads: number;
  /** null = every fold. */
  folds: number[] | null;
  length_bucketing: boolean;
}

export interface RetryConfig {
  base_ms: number;
  cap_ms: number;
  max_attempts: number;
  retryable_statuses: number[];
}

export interface LoggingConfig {
  level: 'debug' | 'info' | 'warn' | 'error';
  progress: 'auto' | 'bar' | 'lines' | 'none';
  mlflow: {
    enabled: boolean;
    /** '' = start a local mlflow server for the run. */
    tracking_uri: string;
    experiment_name: string;
    tags: Record<string, string>;
    local_server: {
      host: string;
      /** 0 = a free port. */
      port: number;
      backend_store_uri: string;
      artifacts_destination: string;
    };
    retry: RetryConfig;
  };
}

export interface InferenceConfig {
  batch_size: number;
  /** null = from the run's thresholds.json. */
  threshold: number | null;
  ensemble: boolean;
}

export interface BenchConfig {
  lengths: number[];
  warmup: number;
  runs: number;
  threads: number;
  max_p95_ms: number;
  allow_slow: Exemption;
}

export interface Config {
  seed: number;
  run_dir: string;
  data: DataConfig;
  model: ModelConfig;
  training: TrainingConfig;
  logging: LoggingConfig;
  inference: InferenceConfig;
  bench: BenchConfig;
}
