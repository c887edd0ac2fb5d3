/**
 * The native addon (native/, libtorch): the Llama + DoRA classifier, checkpoint I/O and runtime
 * settings, typed by addonTypes.ts. Errors from the addon carry a NativeErrorCode.
 */
export type {
  Batch,
  CheckpointCheck,
  ClassifierGradients,
  ClassifierInfo,
  ClassifierLoadOptions,
  CpuCacheStats,
  CudaBinding,
  CudaMemoryStats,
  DistributedBackends,
  DoraOptions,
  GgufInspection,
  GgufTensor,
  GgufTensorInfo,
  GgufValue,
  GradientSyncStats,
  LlamaConfig,
  LlamaConfigInput,
  NativeError,
  NativeErrorCode,
  NativeInfo,
  OpEvent,
  ProcessGroupInfo,
  ProcessGroupJoinOptions,
  RopeScaling,
  SafetensorsDtype,
  SafetensorsEntry,
  SafetensorsTensor,
  SafetensorsTensorInput,
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
export { inspectGguf, readGgufTensor } from './gguf.js';
export { isNativeError, nativeErrorCode } from './errors.js';
export { distributedBackends, ProcessGroup } from './processGroup.js';
export { checkDevice, cudaMemory, manualSeed, nativeInfo, setNumThreads } from './runtime.js';
export { testing } from './testing.js';
