// Node-API bindings, and only bindings: argument checks, conversion between JS values and C++
// types, and dispatch to worker threads. The computations live in the other files.
#include <napi.h>

#include <cstring>
#include <map>
#include <optional>

#include "async_task.h"
#include "device.h"
#include "errors.h"
#include "matmul.h"
#include "model_config.h"
#include "safetensors.h"

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

// ---------------------------------------------------------------------------------------------
// Checkpoint I/O bindings (safetensors.h, model_config.h): inspection, single-tensor reads and
// float32 writes, used by tests and by the TypeScript tiny-model generator.
// ---------------------------------------------------------------------------------------------

Napi::Array ShapeToJs(Napi::Env env, at::IntArrayRef shape) {
  auto out = Napi::Array::New(env, shape.size());
  for (size_t i = 0; i < shape.size(); ++i) {
    out.Set(static_cast<uint32_t>(i), Napi::Number::New(env, static_cast<double>(shape[i])));
  }
  return out;
}

// inspectSafetensors(pathOrDir) -> Promise<{ name, dtype, shape, file, begin, end }[]>
Napi::Value InspectSafetensorsAsync(const Napi::CallbackInfo& info) {
  std::string path = ExpectString(info, 0, "pathOrDir");
  return RunAsync<std::vector<TensorEntry>>(
      info.Env(),
      [path] {
        SafetensorsReader reader = SafetensorsReader::Open(path);
        std::vector<TensorEntry> entries;
        for (const auto& name : reader.Names()) entries.push_back(reader.Entry(name));
        return entries;
      },
      [](Napi::Env env, std::vector<TensorEntry>& entries) -> Napi::Value {
        auto out = Napi::Array::New(env, entries.size());
        for (size_t i = 0; i < entries.size(); ++i) {
          const TensorEntry& entry = entries[i];
          auto item = Napi::Object::New(env);
          item.Set("name", entry.name);
          item.Set("dtype", entry.dtype);
          item.Set("shape", ShapeToJs(env, entry.shape));
          item.Set("file", entry.file);
          item.Set("begin", Napi::Number::New(env, static_cast<double>(entry.begin)));
          item.Set("end", Napi::Number::New(env, static_cast<double>(entry.end)));
          out.Set(static_cast<uint32_t>(i), item);
        }
        return out;
      });
}

struct ReadTensorResult {
  std::string dtype;   // as stored in the file
  torch::Tensor data;  // float32, contiguous
};

// readSafetensorsTensor(pathOrDir, name) -> Promise<{ shape, dtype, data: Float32Array }>
Napi::Value ReadSafetensorsTensorAsync(const Napi::CallbackInfo& info) {
  std::string path = ExpectString(info, 0, "pathOrDir");
  std::string name = ExpectString(info, 1, "name");
  return RunAsync<ReadTensorResult>(
      info.Env(),
      [path, name] {
        SafetensorsReader reader = SafetensorsReader::Open(path);
        return ReadTensorResult{reader.Entry(name).dtype, reader.Load(name, torch::kFloat)};
      },
      [](Napi::Env env, ReadTensorResult& result) -> Napi::Value {
        auto out = Napi::Object::New(env);
        out.Set("shape", ShapeToJs(env, result.data.sizes()));
        out.Set("dtype", result.dtype);
        auto data = Napi::Float32Array::New(env, static_cast<size_t>(result.data.numel()));
        if (result.data.numel() > 0) {
          std::memcpy(data.Data(), result.data.data_ptr<float>(), result.data.nbytes());
        }
        out.Set("data", data);
        return out;
      });
}

// writeSafetensors(path, [{ name, shape, data: Float32Array, dtype? }], metadata?) -> Promise<void>
// The arrays are copied here, on the JS thread, so JS may reuse them as soon as this returns.
Napi::Value WriteSafetensorsAsync(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string path = ExpectString(info, 0, "path");
  if (info.Length() < 2 || !info[1].IsArray()) {
    throw Napi::TypeError::New(env, "tensors must be an array of { name, shape, data }");
  }
  auto list = info[1].As<Napi::Array>();
  std::vector<std::pair<std::string, torch::Tensor>> tensors;
  for (uint32_t i = 0; i < list.Length(); ++i) {
    std::string where = "tensors[" + std::to_string(i) + "]";
    Napi::Value element = list.Get(i);
    if (!element.IsObject()) throw Napi::TypeError::New(env, where + " must be an object");
    auto item = element.As<Napi::Object>();
    Napi::Value name = item.Get("name");
    if (!name.IsString()) throw Napi::TypeError::New(env, where + ".name must be a string");
    Napi::Value shape_value = item.Get("shape");
    if (!shape_value.IsArray()) throw Napi::TypeError::New(env, where + ".shape must be an array");
    auto shape_array = shape_value.As<Napi::Array>();
    std::vector<int64_t> shape;
    int64_t numel = 1;
    for (uint32_t d = 0; d < shape_array.Length(); ++d) {
      Napi::Value dim = shape_array.Get(d);
      double value = dim.IsNumber() ? dim.As<Napi::Number>().DoubleValue() : -1;
      if (!(value >= 0 && value <= 9.0e15) ||
          value != static_cast<double>(static_cast<int64_t>(value))) {
        throw Napi::TypeError::New(env, where + ".shape must hold non-negative integers");
      }
      shape.push_back(static_cast<int64_t>(value));
      numel *= shape.back();
    }
    Napi::Value data_value = item.Get("data");
    if (!data_value.IsTypedArray() ||
        data_value.As<Napi::TypedArray>().TypedArrayType() != napi_float32_array) {
      throw Napi::TypeError::New(env, where + ".data must be a Float32Array");
    }
    auto data = data_value.As<Napi::Float32Array>();
    if (static_cast<int64_t>(data.ElementLength()) != numel) {
      throw Napi::RangeError::New(env, where + ".data has " + std::to_string(data.ElementLength()) +
                                           " elements, shape needs " + std::to_string(numel));
    }
    torch::Dtype dtype = torch::kFloat;
    Napi::Value dtype_value = item.Get("dtype");
    if (!dtype_value.IsUndefined()) {
      std::string text = dtype_value.IsString() ? dtype_value.As<Napi::String>().Utf8Value() : "";
      if (text == "F32") {
        dtype = torch::kFloat;
      } else if (text == "BF16") {
        dtype = torch::kBFloat16;
      } else if (text == "F16") {
        dtype = torch::kHalf;
      } else {
        throw Napi::TypeError::New(env, where + ".dtype must be 'F32', 'BF16' or 'F16'");
      }
    }
    torch::Tensor tensor = torch::empty(shape, torch::kFloat);
    if (numel > 0) std::memcpy(tensor.data_ptr<float>(), data.Data(), numel * sizeof(float));
    tensors.emplace_back(name.As<Napi::String>().Utf8Value(), tensor.to(dtype));
  }
  std::map<std::string, std::string> metadata;
  if (info.Length() > 2 && !info[2].IsUndefined() && !info[2].IsNull()) {
    if (!info[2].IsObject()) throw Napi::TypeError::New(env, "metadata must be an object");
    auto object = info[2].As<Napi::Object>();
    auto keys = object.GetPropertyNames();
    for (uint32_t i = 0; i < keys.Length(); ++i) {
      std::string key = keys.Get(i).ToString().Utf8Value();
      Napi::Value value = object.Get(key);
      if (!value.IsString()) {
        throw Napi::TypeError::New(env, "metadata." + key + " must be a string");
      }
      metadata[key] = value.As<Napi::String>().Utf8Value();
    }
  }
  return RunAsync<bool>(
      env,
      [path, tensors = std::move(tensors), metadata = std::move(metadata)] {
        WriteSafetensors(path, tensors, metadata);
        return true;
      },
      [](Napi::Env env, bool&) -> Napi::Value { return env.Undefined(); });
}

Napi::Value OptionalIdToJs(Napi::Env env, const std::optional<int64_t>& id) {
  return id ? Napi::Number::New(env, static_cast<double>(*id)) : env.Null();
}

// loadLlamaConfig(dir) -> Promise<LlamaConfig (camelCase keys)>
Napi::Value LoadLlamaConfigAsync(const Napi::CallbackInfo& info) {
  std::string dir = ExpectString(info, 0, "dir");
  return RunAsync<LlamaConfig>(
      info.Env(), [dir] { return LoadLlamaConfig(dir); },
      [](Napi::Env env, LlamaConfig& c) -> Napi::Value {
        auto number = [env](double value) { return Napi::Number::New(env, value); };
        auto out = Napi::Object::New(env);
        out.Set("hiddenSize", number(c.hidden_size));
        out.Set("intermediateSize", number(c.intermediate_size));
        out.Set("numHiddenLayers", number(c.num_hidden_layers));
        out.Set("numAttentionHeads", number(c.num_attention_heads));
        out.Set("numKeyValueHeads", number(c.num_key_value_heads));
        out.Set("headDim", number(c.head_dim));
        out.Set("vocabSize", number(c.vocab_size));
        out.Set("maxPositionEmbeddings", number(c.max_position_embeddings));
        out.Set("rmsNormEps", number(c.rms_norm_eps));
        out.Set("ropeTheta", number(c.rope_theta));
        auto rope = Napi::Object::New(env);
        rope.Set("type", c.rope_scaling.type);
        rope.Set("factor", number(c.rope_scaling.factor));
        rope.Set("lowFreqFactor", number(c.rope_scaling.low_freq_factor));
        rope.Set("highFreqFactor", number(c.rope_scaling.high_freq_factor));
        rope.Set("originalMaxPositionEmbeddings",
                 number(c.rope_scaling.original_max_position_embeddings));
        out.Set("ropeScaling", rope);
        out.Set("padTokenId", OptionalIdToJs(env, c.pad_token_id));
        out.Set("bosTokenId", OptionalIdToJs(env, c.bos_token_id));
        out.Set("eosTokenId", OptionalIdToJs(env, c.eos_token_id));
        out.Set("numLabels", number(c.num_labels));
        auto labels = Napi::Array::New(env, c.id2label.size());
        for (size_t i = 0; i < c.id2label.size(); ++i) {
          labels.Set(static_cast<uint32_t>(i), c.id2label[i]);
        }
        out.Set("id2label", labels);
        out.Set("attentionBias", c.attention_bias);
        out.Set("mlpBias", c.mlp_bias);
        out.Set("tieWordEmbeddings", c.tie_word_embeddings);
        out.Set("torchDtype", c.torch_dtype);
        out.Set("hiddenAct", c.hidden_act);
        out.Set("initializerRange", number(c.initializer_range));
        out.Set("attentionDropout", number(c.attention_dropout));
        out.Set("problemType",
                c.problem_type ? Napi::Value(Napi::String::New(env, *c.problem_type)) : env.Null());
        return out;
      });
}

void RegisterCheckpointIo(Napi::Env env, Napi::Object exports) {
  exports.Set("inspectSafetensors",
              Napi::Function::New(env, InspectSafetensorsAsync, "inspectSafetensors"));
  exports.Set("readSafetensorsTensor",
              Napi::Function::New(env, ReadSafetensorsTensorAsync, "readSafetensorsTensor"));
  exports.Set("writeSafetensors",
              Napi::Function::New(env, WriteSafetensorsAsync, "writeSafetensors"));
  exports.Set("loadLlamaConfig", Napi::Function::New(env, LoadLlamaConfigAsync, "loadLlamaConfig"));
}

// ------------------------------- end of checkpoint I/O bindings -------------------------------

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("info", Napi::Function::New(env, Info, "info"));
  exports.Set("setNumThreads", Napi::Function::New(env, SetThreads, "setNumThreads"));
  exports.Set("checkDevice", Napi::Function::New(env, CheckDevice, "checkDevice"));
  exports.Set("matmul", Napi::Function::New(env, MatmulAsync, "matmul"));
  RegisterCheckpointIo(env, exports);
  return exports;
}

}  // namespace
}  // namespace mentallam

// NODE_API_MODULE pastes its second argument into a name, so it must be a plain identifier.
static Napi::Object InitAddon(Napi::Env env, Napi::Object exports) {
  return mentallam::Init(env, exports);
}

NODE_API_MODULE(mentallam, InitAddon)
