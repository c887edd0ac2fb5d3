/**
 * The native addon (native/, libtorch): the Llama + DoRA classifier, checkpoint I/O and runtime
 * settings, typed by addonTypes.ts. Errors from the addon carry a NativeErrorCode.
 */
export type {
  CachedRows,
  CheckpointCheck,
  ClassifierGradients,
  ClassifierInfo,
  ClassifierLoadOptions,
  CpuCacheStats,
  CudaBinding,
  CudaMemoryStats,
  DistributedBackends,
  DoraLayers,
  DoraOptions,
  GgufInspection,
  GgufTensor,
  GgufTensorInfo,
  GgufValue,
  GradientSyncStats,
  HiddenStateCacheInfo,
  HiddenStateCacheOptions,
  LlamaConfig,
  LlamaConfigInput,
  NativeError,
  NativeErrorCode,
  NativeInfo,
  OpEvent,
  ProcessGroupInfo,
  ProcessGroupJoinOptions,
  ResolvedDoraOptions,
  RopeScaling,
  SafetensorsDtype,
  SafetensorsEntry,
  SafetensorsTensor,
  SafetensorsTensorInput,
  SegmentLayout,
  SharedAttention,
  TrainStepOptions,
  TrainStepResult,
} from './addonTypes.js';
export { NATIVE_ERROR_CODES } from './addonTypes.js';
export {
  checkLlamaCheckpoint,
  inspectSafetensors,
  loadLlamaConfig,
  readSafetensorsTensor,
  writeLlamaConfig,
  writeSafetensors,
} from './checkpointIo.js';
export { Classifier } from './classifier.js';
export type { Batch } from './classifier.js';
export { HiddenStateCache } from './hiddenStateCache.js';
export { inspectGguf, readGgufTensor } from './gguf.js';
export { isNativeError, nativeErrorCode } from './errors.js';
export { distributedBackends, ProcessGroup } from './processGroup.js';
export { checkDevice, cudaMemory, manualSeed, nativeInfo, setNumThreads } from './runtime.js';
export { testing } from './testing.js';
