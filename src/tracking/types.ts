/** MLflow entities as this client returns them: camelCase, metrics decoded to numbers, arrays always present. */

export type RunStatus = 'RUNNING' | 'SCHEDULED' | 'FINISHED' | 'FAILED' | 'KILLED';

export interface Experiment {
  experimentId: string;
  name: string;
  artifactLocation: string;
  lifecycleStage: 'active' | 'deleted';
  tags: Record<string, string>;
}

export interface RunInfo {
  runId: string;
  experimentId: string;
  runName: string;
  status: RunStatus;
  startTime?: number;
  endTime?: number;
  artifactUri: string;
  lifecycleStage: 'active' | 'deleted';
}

export interface Run {
  info: RunInfo;
  /** Latest value per metric key (MLflow keeps the row with the highest step). */
  metrics: Record<string, number>;
  params: Record<string, string>;
  tags: Record<string, string>;
}

export interface ArtifactEntry {
  /** Run-relative path. */
  path: string;
  isDir: boolean;
  fileSize?: number;
}

export interface RegisteredModel {
  name: string;
  aliases: Record<string, string>;
  tags: Record<string, string>;
}

export interface ModelVersion {
  name: string;
  version: string;
  source: string;
  runId?: string;
  status?: string;
  tags: Record<string, string>;
  aliases: string[];
}

/** Wire shapes (snake_case, optional arrays) as MLflow sends them. */
export interface WireTag {
  key: string;
  value?: string;
}

export interface WireExperiment {
  experiment_id: string;
  name: string;
  artifact_location?: string;
  lifecycle_stage?: string;
  tags?: WireTag[];
}

export interface WireRunInfo {
  run_id?: string;
  run_uuid?: string;
  experiment_id: string;
  run_name?: string;
  status?: string;
  start_time?: number;
  end_time?: number;
  artifact_uri?: string;
  lifecycle_stage?: string;
}

export interface WireRun {
  info: WireRunInfo;
  data?: {
    metrics?: { key: string; value: unknown }[];
    params?: WireTag[];
    tags?: WireTag[];
  };
}

export interface WireModelVersion {
  name: string;
  version: string;
  source?: string;
  run_id?: string;
  status?: string;
  tags?: WireTag[];
  aliases?: string[];
}
