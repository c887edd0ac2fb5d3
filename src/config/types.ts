// The resolved configuration's types, derived from the schema (schema.ts): one declaration per
// field, so a type and the check ajv runs cannot drift apart.
import type { Static } from '@sinclair/typebox';
import type {
  BenchConfigSchema,
  ConfigSchema,
  DataConfigSchema,
  DataNameSchema,
  DeviceChoiceSchema,
  DoraConfigSchema,
  DoraTargetModuleSchema,
  DtypeChoiceSchema,
  EarlyStoppingMetricSchema,
  ExemptionSchema,
  InferenceConfigSchema,
  LoggingConfigSchema,
  ModelConfigSchema,
  RetryConfigSchema,
  TinyModelConfigSchema,
  TrainingConfigSchema,
  TruncationSchema,
} from './schema.js';

export type DataName = Static<typeof DataNameSchema>;
export type Truncation = Static<typeof TruncationSchema>;
export type DtypeChoice = Static<typeof DtypeChoiceSchema>;
export type DeviceChoice = Static<typeof DeviceChoiceSchema>;
export type DoraTargetModule = Static<typeof DoraTargetModuleSchema>;
export type EarlyStoppingMetric = Static<typeof EarlyStoppingMetricSchema>;
/** A deliberate exception to a check; null = the check applies. */
export type Exemption = Static<typeof ExemptionSchema>;
export type DataConfig = Static<typeof DataConfigSchema>;
/** Sizes of a generated tiny Llama (model/tiny.yaml); null for a real checkpoint. */
export type TinyModelConfig = Static<typeof TinyModelConfigSchema>;
export type DoraConfig = Static<typeof DoraConfigSchema>;
export type ModelConfig = Static<typeof ModelConfigSchema>;
export type TrainingConfig = Static<typeof TrainingConfigSchema>;
export type RetryConfig = Static<typeof RetryConfigSchema>;
export type LoggingConfig = Static<typeof LoggingConfigSchema>;
export type InferenceConfig = Static<typeof InferenceConfigSchema>;
export type BenchConfig = Static<typeof BenchConfigSchema>;
export type Config = Static<typeof ConfigSchema>;
