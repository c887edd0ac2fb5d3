// Bindings only tests use, gathered on the module's `testing` object so the production surface
// stays what src/native/index.ts wraps.
#include <algorithm>

#include "addon.h"
#include "async_task.h"
#include "cuda_memory.h"
#include "js_values.h"
#include "matmul.h"

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
#ifdef MENTALLAM_WITH_CUDA
  ExportFunction<CudaSetMemoryFraction>(env, testing, "cudaSetMemoryFraction");
#endif
}

}  // namespace mentallam
