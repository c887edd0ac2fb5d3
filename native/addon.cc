// Node-API bindings, and only bindings: argument checks, conversion between JS values and C++
// types, and dispatch to worker threads. The computations live in the other files.
#include <napi.h>

#include "async_task.h"
#include "device.h"
#include "errors.h"
#include "matmul.h"

namespace mentallam {
namespace {

Napi::Float32Array ExpectFloat32Array(const Napi::CallbackInfo& info, size_t index,
                                      const char* name) {
  if (info.Length() <= index || !info[index].IsTypedArray() ||
      info[index].As<Napi::TypedArray>().TypedArrayType() != napi_float32_array) {
    throw Napi::TypeError::New(info.Env(), std::string(name) + " must be a Float32Array");
  }
  return info[index].As<Napi::Float32Array>();
}

int64_t ExpectInteger(const Napi::CallbackInfo& info, size_t index, const char* name) {
  if (info.Length() <= index || !info[index].IsNumber()) {
    throw Napi::TypeError::New(info.Env(), std::string(name) + " must be an integer");
  }
  double value = info[index].As<Napi::Number>().DoubleValue();
  if (value != static_cast<double>(static_cast<int64_t>(value))) {
    throw Napi::TypeError::New(info.Env(), std::string(name) + " must be an integer");
  }
  return static_cast<int64_t>(value);
}

std::string ExpectString(const Napi::CallbackInfo& info, size_t index, const char* name) {
  if (info.Length() <= index || !info[index].IsString()) {
    throw Napi::TypeError::New(info.Env(), std::string(name) + " must be a string");
  }
  return info[index].As<Napi::String>().Utf8Value();
}

Napi::Value Info(const Napi::CallbackInfo& info) {
  RuntimeInfo runtime = GetRuntimeInfo();
  Napi::Object out = Napi::Object::New(info.Env());
  out.Set("torchVersion", runtime.torch_version);
  out.Set("cudaAvailable", runtime.cuda_available);
  out.Set("cudaDeviceCount", Napi::Number::New(info.Env(), runtime.cuda_device_count));
  out.Set("threads", Napi::Number::New(info.Env(), runtime.threads));
  out.Set("builtWithCuda", runtime.built_with_cuda);
  return out;
}

Napi::Value SetThreads(const Napi::CallbackInfo& info) {
  SetNumThreads(ExpectInteger(info, 0, "threads"));
  return info.Env().Undefined();
}

// checkDevice(name): throws the same error a model load would for an unusable device.
Napi::Value CheckDevice(const Napi::CallbackInfo& info) {
  torch::Device device = ParseDevice(ExpectString(info, 0, "device"));
  return Napi::String::New(info.Env(), device.str());
}

// matmul(a, m, k, b, k2, n) -> Promise<Float32Array [m*n]>
Napi::Value MatmulAsync(const Napi::CallbackInfo& info) {
  auto a = ExpectFloat32Array(info, 0, "a");
  int64_t m = ExpectInteger(info, 1, "m");
  int64_t k = ExpectInteger(info, 2, "k");
  auto b = ExpectFloat32Array(info, 3, "b");
  int64_t k2 = ExpectInteger(info, 4, "k2");
  int64_t n = ExpectInteger(info, 5, "n");
  if (m < 0 || k < 0 || k2 < 0 || n < 0 || static_cast<int64_t>(a.ElementLength()) != m * k ||
      static_cast<int64_t>(b.ElementLength()) != k2 * n) {
    throw Napi::RangeError::New(info.Env(),
                                "matmul: array lengths do not match the given shapes");
  }
  const float* a_data = a.Data();
  const float* b_data = b.Data();
  return RunAsync<std::vector<float>>(
      info.Env(), [=] { return Matmul(a_data, m, k, b_data, k2, n); },
      [](Napi::Env env, std::vector<float>& product) {
        auto out = Napi::Float32Array::New(env, product.size());
        std::copy(product.begin(), product.end(), out.Data());
        return out;
      },
      {a, b});
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("info", Napi::Function::New(env, Info, "info"));
  exports.Set("setNumThreads", Napi::Function::New(env, SetThreads, "setNumThreads"));
  exports.Set("checkDevice", Napi::Function::New(env, CheckDevice, "checkDevice"));
  exports.Set("matmul", Napi::Function::New(env, MatmulAsync, "matmul"));
  return exports;
}

}  // namespace
}  // namespace mentallam

// NODE_API_MODULE pastes its second argument into a name, so it must be a plain identifier.
static Napi::Object InitAddon(Napi::Env env, Napi::Object exports) {
  return mentallam::Init(env, exports);
}

NODE_API_MODULE(mentallam, InitAddon)
