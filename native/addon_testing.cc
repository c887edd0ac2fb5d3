// Bindings only tests use, gathered on the module's `testing` object so the production surface
// stays what src/native/index.ts wraps.
#include <algorithm>

#include "addon.h"
#include "async_task.h"
#include "cuda_memory.h"
#include "js_values.h"
#include "matmul.h"
#include "op_profiler.h"

namespace mentallam {
namespace {

// testing.matmul(a, m, k, b, k2, n) -> Promise<Float32Array [m*n]>: the smallest real compute
// call, for the build, the worker-thread plumbing and error propagation (k != k2 makes libtorch
// throw, an internal error).
Napi::Value MatmulAsync(const Napi::CallbackInfo& info) {
  auto a = ToTypedArray<float>(info[0], "a");
  int64_t m = ToInteger(info[1], "m", kNonNegative);
  int64_t k = ToInteger(info[2], "k", kNonNegative);
  auto b = ToTypedArray<float>(info[3], "b");
  int64_t k2 = ToInteger(info[4], "k2", kNonNegative);
  int64_t n = ToInteger(info[5], "n", kNonNegative);
  int64_t a_cells = 0, b_cells = 0;
  if (__builtin_mul_overflow(m, k, &a_cells) || __builtin_mul_overflow(k2, n, &b_cells) ||
      static_cast<int64_t>(a.ElementLength()) != a_cells ||
      static_cast<int64_t>(b.ElementLength()) != b_cells) {
    throw ArgumentRangeError("matmul: array lengths do not match the given shapes");
  }
  const float* a_data = a.Data();
  const float* b_data = b.Data();
  return RunAsync<std::vector<float>>(
      info.Env(), [=] { return Matmul(a_data, m, k, b_data, k2, n); },
      [](Napi::Env env, std::vector<float>& product) -> Napi::Value {
        auto out = Napi::Float32Array::New(env, product.size());
        std::copy(product.begin(), product.end(), out.Data());
        return out;
      },
      {a, b});
}

// testing.startProfiler({ recordShapes? }) -> Promise<void>: libtorch's op profiler on the compute
// thread, where every train step and prediction runs.
Napi::Value StartProfilerAsync(const Napi::CallbackInfo& info) {
  bool record_shapes = false;
  if (!info[0].IsUndefined()) {
    record_shapes = ToBool(ToObject(info[0], "options").Get("recordShapes"), "recordShapes", false);
  }
  return RunAsync<bool>(
      info.Env(),
      [record_shapes] {
        StartOpProfiler(record_shapes);
        return true;
      },
      [](Napi::Env env, bool&) { return env.Undefined(); });
}

// testing.stopProfiler({ tracePath? }) -> Promise<{ name, startUs, durationUs, thread, shapes }[]>
Napi::Value StopProfilerAsync(const Napi::CallbackInfo& info) {
  std::string trace_path;
  if (!info[0].IsUndefined()) {
    trace_path =
        ToOptionalString(ToObject(info[0], "options").Get("tracePath"), "tracePath").value_or("");
  }
  return RunAsync<std::vector<OpEvent>>(
      info.Env(), [trace_path] { return StopOpProfiler(trace_path); },
      [](Napi::Env env, std::vector<OpEvent>& events) -> Napi::Value {
        auto out = Napi::Array::New(env, events.size());
        for (size_t i = 0; i < events.size(); ++i) {
          auto event = Napi::Object::New(env);
          event.Set("name", events[i].name);
          event.Set("startUs", events[i].start_us);
          event.Set("durationUs", events[i].duration_us);
          event.Set("thread", static_cast<double>(events[i].thread));
          event.Set("shapes", events[i].shapes);
          out.Set(i, event);
        }
        return out;
      });
}

#ifdef MENTALLAM_WITH_CUDA
// testing.cudaSetMemoryFraction(fraction, device = 0): caps the CUDA caching allocator at
// fraction x the device's memory (torch.cuda.set_per_process_memory_fraction), so a test can run
// out of GPU memory for real. 1 lifts the cap.
Napi::Value CudaSetMemoryFraction(const Napi::CallbackInfo& info) {
  SetCudaMemoryFraction(ToNumber(info[0], "fraction"),
                        ToOptionalInteger(info[1], "device", kNonNegative).value_or(0));
  return info.Env().Undefined();
}
#endif

}  // namespace

void InitTestingBindings(Napi::Env env, Napi::Object testing) {
  ExportFunction<MatmulAsync>(env, testing, "matmul");
  ExportFunction<StartProfilerAsync>(env, testing, "startProfiler");
  ExportFunction<StopProfilerAsync>(env, testing, "stopProfiler");
#ifdef MENTALLAM_WITH_CUDA
  ExportFunction<CudaSetMemoryFraction>(env, testing, "cudaSetMemoryFraction");
#endif
}

}  // namespace mentallam
