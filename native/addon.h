// The binding files, one per bound class or group (as node-llama-cpp's addon/ does). Each Init
// function adds its exports to the module object; addon.cc calls them all at load. A new binding
// file declares its Init here and adds one call in addon.cc's Init. The TypeScript side of every
// export is declared in src/native/addonTypes.ts.
#pragma once

#include <napi.h>

#include <memory>
#include <string>

namespace mentallam {

class HiddenStateCache;
class ProcessGroup;  // distributed.h

// addon_runtime.cc: info, setNumThreads, checkDevice, manualSeed.
void InitRuntimeBindings(Napi::Env env, Napi::Object exports);

// addon_checkpoint_io.cc: inspectSafetensors, readSafetensorsTensor, writeSafetensors,
// loadLlamaConfig, writeLlamaConfig, checkLlamaCheckpoint, createRandomModel.
void InitCheckpointIoBindings(Napi::Env env, Napi::Object exports);

// addon_classifier.cc: the NativeClassifier class.
void InitClassifierBindings(Napi::Env env, Napi::Object exports);

// addon_hidden_state_cache.cc: the NativeHiddenStateCache class; ToHiddenStateCache reads one
// out of a JS value (a batch's hiddenStates.cache), TypeError naming `name` otherwise.
void InitHiddenStateCacheBindings(Napi::Env env, Napi::Object exports);
std::shared_ptr<HiddenStateCache> ToHiddenStateCache(Napi::Value value, const std::string& name);

// addon_gguf.cc: inspectGguf, readGgufTensor.
void InitGgufBindings(Napi::Env env, Napi::Object exports);

// addon_cuda.cc: `exports.cuda` (memoryStats, resetPeakMemoryStats, emptyCache, synchronize),
// on a CUDA build only.
void InitCudaBindings(Napi::Env env, Napi::Object exports);

// addon_distributed.cc: the NativeProcessGroup class, distributedBackends.
void InitDistributedBindings(Napi::Env env, Napi::Object exports);
// The ProcessGroup of a NativeProcessGroup JS object (for the classifier's gradient sync).
std::shared_ptr<ProcessGroup> UnwrapProcessGroup(Napi::Value value, const std::string& name);

// addon_testing.cc: exports used only by tests, on `exports.testing` (matmul, and on a CUDA
// build cudaSetMemoryFraction).
void InitTestingBindings(Napi::Env env, Napi::Object testing);

}  // namespace mentallam
