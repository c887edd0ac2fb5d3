// Bindings for the CUDA caching allocator's memory figures (cuda_memory.h), on `exports.cuda`.
// A CPU build has no `cuda` export: `addon.cuda === undefined` says so without a call.
#include "addon.h"
#include "cuda_memory.h"
#include "js_values.h"

namespace mentallam {

#ifdef MENTALLAM_WITH_CUDA
namespace {

int64_t DeviceArgument(const Napi::CallbackInfo& info) {
  return ToOptionalInteger(info[0], "device", kNonNegative).value_or(0);
}

// cuda.memoryStats(device = 0) -> { device, allocated, reserved, maxAllocated, maxReserved,
// allocRetries, ooms, free, total, memoryFraction } (bytes)
Napi::Value MemoryStats(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  CudaMemoryStats stats = GetCudaMemoryStats(DeviceArgument(info));
  auto number = [env](double value) { return Napi::Number::New(env, value); };
  Napi::Object out = Napi::Object::New(env);
  out.Set("device", number(static_cast<double>(stats.device)));
  out.Set("allocated", number(static_cast<double>(stats.allocated)));
  out.Set("reserved", number(static_cast<double>(stats.reserved)));
  out.Set("maxAllocated", number(static_cast<double>(stats.max_allocated)));
  out.Set("maxReserved", number(static_cast<double>(stats.max_reserved)));
  out.Set("allocRetries", number(static_cast<double>(stats.alloc_retries)));
  out.Set("ooms", number(static_cast<double>(stats.ooms)));
  out.Set("free", number(static_cast<double>(stats.free)));
  out.Set("total", number(static_cast<double>(stats.total)));
  out.Set("memoryFraction", number(stats.memory_fraction));
  return out;
}

// cuda.resetPeakMemoryStats(device = 0): maxAllocated/maxReserved start again from now.
Napi::Value ResetPeak(const Napi::CallbackInfo& info) {
  ResetCudaPeakMemory(DeviceArgument(info));
  return info.Env().Undefined();
}

// cuda.emptyCache(): cached blocks no tensor uses go back to the driver.
Napi::Value EmptyCache(const Napi::CallbackInfo& info) {
  ReleaseCachedCudaMemory();
  return info.Env().Undefined();
}

// cuda.synchronize(device = 0): waits for the device's queued kernels (for timing).
Napi::Value Synchronize(const Napi::CallbackInfo& info) {
  SynchronizeCuda(DeviceArgument(info));
  return info.Env().Undefined();
}

}  // namespace

void InitCudaBindings(Napi::Env env, Napi::Object exports) {
  Napi::Object cuda = Napi::Object::New(env);
  ExportFunction<MemoryStats>(env, cuda, "memoryStats");
  ExportFunction<ResetPeak>(env, cuda, "resetPeakMemoryStats");
  ExportFunction<EmptyCache>(env, cuda, "emptyCache");
  ExportFunction<Synchronize>(env, cuda, "synchronize");
  exports.Set("cuda", cuda);
}

#else

void InitCudaBindings(Napi::Env, Napi::Object) {}

#endif

}  // namespace mentallam
