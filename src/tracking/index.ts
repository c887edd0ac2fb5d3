// MLflow tracking: REST client, run contexts, artifacts, registry, local server, spool, privacy guard.
export { MlflowClient, requestIdTag } from './client.js';
export type {
  CreateModelVersionInput,
  CreateRunInput,
  LogBatchInput,
  MlflowClientOptions,
  SearchRunsInput,
} from './client.js';
export { connectionFromEnv, redactUri } from './connection.js';
export type { TrackingAuth, TrackingConnection, TrackingTls } from './connection.js';
export { InterruptedError, MlflowApiError, PrivacyGuardError, SpoolTargetError } from './errors.js';
export { PrivacyGuard, normalizeGuardText } from './privacyGuard.js';
export {
  ActiveRun,
  errorTag,
  gitCommit,
  systemTags,
  withChildRun,
  withParentRun,
} from './runContext.js';
export type { ParentRunOptions, RunContextOptions, RunTracker } from './runContext.js';
export {
  defaultMlflowBin,
  resolveTracking,
  serverInfoFileName,
  startLocalServer,
} from './localServer.js';
export type {
  LocalServer,
  LocalServerOptions,
  ResolvedTracking,
  ResolveTrackingOptions,
} from './localServer.js';
export {
  isPermanentRefusal,
  isUnreachableError,
  readSpool,
  spoolDoneFileName,
  spoolFileName,
  SpoolingTracker,
} from './spool.js';
export type {
  RejectedEntry,
  ReplayResult,
  SpoolContents,
  SpoolEntry,
  SpoolingTrackerOptions,
  SpoolOperation,
} from './spool.js';
export { checkSpoolTarget, formatSpoolStatus, readSpoolStatus, syncSpool } from './sync.js';
export type { SpoolStatus } from './sync.js';
export type {
  ArtifactEntry,
  Experiment,
  ModelVersion,
  RegisteredModel,
  Run,
  RunInfo,
  RunStatus,
} from './types.js';
export {
  batchLimits,
  decodeMetricValue,
  encodeMetricValue,
  flattenParams,
  maxParamValueLength,
  maxTagValueLength,
  splitBatch,
  truncateValue,
  truncationMarker,
  validateArtifactPath,
} from './validation.js';
export type { KeyValue, LoggedMetric, Metric } from './validation.js';
