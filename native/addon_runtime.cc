// Bindings for process-wide facts and settings: the libtorch build, threads, devices, seeds.
#include "addon.h"
#include "classifier.h"
#include "cpu_allocator.h"
#include "device.h"
#include "js_values.h"

namespace mentallam {
namespace {

// info() -> { torchVersion, cudaAvailable, cudaDeviceCount, threads, builtWithCuda, cpuCache }
Napi::Value Info(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto number = [env](double value) { return Napi::Number::New(env, value); };
  RuntimeInfo runtime = GetRuntimeInfo();
  Napi::Object out = Napi::Object::New(env);
  out.Set("torchVersion", runtime.torch_version);
  out.Set("cudaAvailable", runtime.cuda_available);
  out.Set("cudaDeviceCount", number(static_cast<double>(runtime.cuda_device_count)));
  out.Set("threads", number(static_cast<double>(runtime.threads)));
  out.Set("builtWithCuda", runtime.built_with_cuda);
  CpuCacheStats cache = GetCpuCacheStats();
  Napi::Object cpu_cache = Napi::Object::New(env);
  cpu_cache.Set("enabled", CachingCpuAllocatorInstalled());
  cpu_cache.Set("liveBytes", number(static_cast<double>(cache.live_bytes)));
  cpu_cache.Set("cachedBytes", number(static_cast<double>(cache.cached_bytes)));
  cpu_cache.Set("peakLiveBytes", number(static_cast<double>(cache.peak_live_bytes)));
  cpu_cache.Set("hits", number(static_cast<double>(cache.hits)));
  cpu_cache.Set("misses", number(static_cast<double>(cache.misses)));
  out.Set("cpuCache", cpu_cache);
  return out;
}

// setNumThreads(threads)
Napi::Value SetThreads(const Napi::CallbackInfo& info) {
  SetNumThreads(ToInteger(info[0], "threads", kPositive));
  return info.Env().Undefined();
}

// checkDevice(name) -> the canonical name; throws the error a model load would for an unusable
// device.
Napi::Value CheckDevice(const Napi::CallbackInfo& info) {
  torch::Device device = ParseDevice(ToString(info[0], "device"));
  return Napi::String::New(info.Env(), device.str());
}

// manualSeed(seed): libtorch's global generators (dropout masks).
Napi::Value ManualSeedBinding(const Napi::CallbackInfo& info) {
  ManualSeed(static_cast<uint64_t>(ToInteger(info[0], "seed", kNonNegative)));
  return info.Env().Undefined();
}

}  // namespace

void InitRuntimeBindings(Napi::Env env, Napi::Object exports) {
  ExportFunction<Info>(env, exports, "info");
  ExportFunction<SetThreads>(env, exports, "setNumThreads");
  ExportFunction<CheckDevice>(env, exports, "checkDevice");
  ExportFunction<ManualSeedBinding>(env, exports, "manualSeed");
}

}  // namespace mentallam
