// Node-API bindings, and only bindings: argument checks, conversion between JS values and C++
// types, and dispatch to worker threads. The computations live in the other files.
#include <napi.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstring>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <type_traits>

#include "addon_gguf.h"
#include "async_task.h"
#include "classifier.h"
#include "cpu_allocator.h"
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
  CpuCacheStats cache = GetCpuCacheStats();
  Napi::Object cpu_cache = Napi::Object::New(info.Env());
  auto number = [&info](std::size_t value) {
    return Napi::Number::New(info.Env(), static_cast<double>(value));
  };
  cpu_cache.Set("enabled", CachingCpuAllocatorInstalled());
  cpu_cache.Set("liveBytes", number(cache.live_bytes));
  cpu_cache.Set("cachedBytes", number(cache.cached_bytes));
  cpu_cache.Set("peakLiveBytes", number(cache.peak_live_bytes));
  cpu_cache.Set("hits", number(cache.hits));
  cpu_cache.Set("misses", number(cache.misses));
  out.Set("cpuCache", cpu_cache);
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
    throw Napi::RangeError::New(info.Env(), "matmul: array lengths do not match the given shapes");
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

// checkLlamaCheckpoint(dir) -> Promise<{ checked, hasScore, ignored: string[] }>
Napi::Value CheckLlamaCheckpointAsync(const Napi::CallbackInfo& info) {
  std::string dir = ExpectString(info, 0, "dir");
  return RunAsync<CheckpointCheck>(
      info.Env(), [dir] { return CheckLlamaCheckpoint(dir); },
      [](Napi::Env env, CheckpointCheck& check) -> Napi::Value {
        auto out = Napi::Object::New(env);
        out.Set("checked", Napi::Number::New(env, static_cast<double>(check.checked)));
        out.Set("hasScore", check.has_score);
        auto ignored = Napi::Array::New(env, check.ignored.size());
        for (size_t i = 0; i < check.ignored.size(); ++i) {
          ignored.Set(static_cast<uint32_t>(i), check.ignored[i]);
        }
        out.Set("ignored", ignored);
        return out;
      });
}

// The camelCase object loadLlamaConfig returns -> LlamaConfig. Absent keys keep LlamaConfig's
// defaults; headDim, numKeyValueHeads and id2label are derived as config.json loading does.
LlamaConfig LlamaConfigFromJs(Napi::Env env, Napi::Object object) {
  auto number = [&](Napi::Object from, const char* key, auto fallback) {
    Napi::Value value = from.Get(key);
    if (value.IsUndefined()) return fallback;
    if (!value.IsNumber()) throw Napi::TypeError::New(env, std::string(key) + " must be a number");
    double number = value.As<Napi::Number>().DoubleValue();
    if constexpr (std::is_integral_v<decltype(fallback)>) {
      if (number != static_cast<double>(static_cast<int64_t>(number))) {
        throw Napi::TypeError::New(env, std::string(key) + " must be an integer");
      }
    }
    return static_cast<decltype(fallback)>(number);
  };
  auto boolean = [&](const char* key, bool fallback) {
    Napi::Value value = object.Get(key);
    if (value.IsUndefined()) return fallback;
    if (!value.IsBoolean()) throw Napi::TypeError::New(env, std::string(key) + " must be boolean");
    return value.As<Napi::Boolean>().Value();
  };
  auto text = [&](Napi::Object from, const char* key, std::string fallback) {
    Napi::Value value = from.Get(key);
    if (value.IsUndefined()) return fallback;
    if (!value.IsString()) throw Napi::TypeError::New(env, std::string(key) + " must be a string");
    return value.As<Napi::String>().Utf8Value();
  };
  auto id = [&](const char* key, std::optional<int64_t> fallback) -> std::optional<int64_t> {
    Napi::Value value = object.Get(key);
    if (value.IsUndefined()) return fallback;
    if (value.IsNull()) return std::nullopt;
    return number(object, key, int64_t{0});
  };
  LlamaConfig c;
  c.hidden_size = number(object, "hiddenSize", c.hidden_size);
  c.intermediate_size = number(object, "intermediateSize", c.intermediate_size);
  c.num_hidden_layers = number(object, "numHiddenLayers", c.num_hidden_layers);
  c.num_attention_heads = number(object, "numAttentionHeads", c.num_attention_heads);
  c.num_key_value_heads = number(object, "numKeyValueHeads", c.num_attention_heads);
  c.head_dim =
      number(object, "headDim", c.hidden_size / std::max<int64_t>(c.num_attention_heads, 1));
  c.vocab_size = number(object, "vocabSize", c.vocab_size);
  c.max_position_embeddings = number(object, "maxPositionEmbeddings", c.max_position_embeddings);
  c.rms_norm_eps = number(object, "rmsNormEps", c.rms_norm_eps);
  c.rope_theta = number(object, "ropeTheta", c.rope_theta);
  Napi::Value rope = object.Get("ropeScaling");
  if (rope.IsObject()) {
    auto r = rope.As<Napi::Object>();
    c.rope_scaling.type = text(r, "type", c.rope_scaling.type);
    c.rope_scaling.factor = number(r, "factor", c.rope_scaling.factor);
    c.rope_scaling.low_freq_factor = number(r, "lowFreqFactor", c.rope_scaling.low_freq_factor);
    c.rope_scaling.high_freq_factor = number(r, "highFreqFactor", c.rope_scaling.high_freq_factor);
    c.rope_scaling.original_max_position_embeddings =
        number(r, "originalMaxPositionEmbeddings", c.rope_scaling.original_max_position_embeddings);
  }
  c.pad_token_id = id("padTokenId", c.pad_token_id);
  c.bos_token_id = id("bosTokenId", c.bos_token_id);
  c.eos_token_id = id("eosTokenId", c.eos_token_id);
  c.num_labels = number(object, "numLabels", c.num_labels);
  Napi::Value labels = object.Get("id2label");
  c.id2label.clear();
  if (labels.IsArray()) {
    auto array = labels.As<Napi::Array>();
    for (uint32_t i = 0; i < array.Length(); ++i) {
      c.id2label.push_back(array.Get(i).ToString().Utf8Value());
    }
  } else {
    for (int64_t i = 0; i < c.num_labels; ++i) c.id2label.push_back("LABEL_" + std::to_string(i));
  }
  if (static_cast<int64_t>(c.id2label.size()) != c.num_labels) {
    throw Napi::RangeError::New(env, "id2label must have numLabels entries");
  }
  c.attention_bias = boolean("attentionBias", c.attention_bias);
  c.mlp_bias = boolean("mlpBias", c.mlp_bias);
  c.tie_word_embeddings = boolean("tieWordEmbeddings", c.tie_word_embeddings);
  c.torch_dtype = text(object, "torchDtype", c.torch_dtype);
  c.hidden_act = text(object, "hiddenAct", c.hidden_act);
  c.initializer_range = number(object, "initializerRange", c.initializer_range);
  c.attention_dropout = number(object, "attentionDropout", c.attention_dropout);
  Napi::Value problem = object.Get("problemType");
  if (problem.IsString()) c.problem_type = problem.As<Napi::String>().Utf8Value();
  return c;
}

// writeLlamaConfig(path, config) -> Promise<void>: a transformers-loadable config.json.
Napi::Value WriteLlamaConfigAsync(const Napi::CallbackInfo& info) {
  std::string path = ExpectString(info, 0, "path");
  if (info.Length() < 2 || !info[1].IsObject()) {
    throw Napi::TypeError::New(info.Env(), "config must be an object");
  }
  LlamaConfig config = LlamaConfigFromJs(info.Env(), info[1].As<Napi::Object>());
  return RunAsync<bool>(
      info.Env(),
      [path, config] {
        WriteLlamaConfig(path, config);
        return true;
      },
      [](Napi::Env env, bool&) -> Napi::Value { return env.Undefined(); });
}

void RegisterCheckpointIo(Napi::Env env, Napi::Object exports) {
  exports.Set("inspectSafetensors",
              Napi::Function::New(env, InspectSafetensorsAsync, "inspectSafetensors"));
  exports.Set("readSafetensorsTensor",
              Napi::Function::New(env, ReadSafetensorsTensorAsync, "readSafetensorsTensor"));
  exports.Set("writeSafetensors",
              Napi::Function::New(env, WriteSafetensorsAsync, "writeSafetensors"));
  exports.Set("loadLlamaConfig", Napi::Function::New(env, LoadLlamaConfigAsync, "loadLlamaConfig"));
  exports.Set("checkLlamaCheckpoint",
              Napi::Function::New(env, CheckLlamaCheckpointAsync, "checkLlamaCheckpoint"));
  exports.Set("writeLlamaConfig",
              Napi::Function::New(env, WriteLlamaConfigAsync, "writeLlamaConfig"));
}

// ------------------------------- end of checkpoint I/O bindings -------------------------------

// --------------------------------- Classifier bindings ---------------------------------------
// A NativeClassifier JS object owns one Classifier. Every computing method runs on a worker
// thread; one operation at a time per instance (a second one is rejected, naming the first),
// and dispose() drops the model at once or, when a task is running, when that task ends.

struct ClassifierState {
  std::shared_ptr<Classifier> model;
  std::atomic<bool> busy{false};
  std::atomic<bool> disposed{false};
  std::string busy_with;  // read and written on the JS thread only
};

// Clears the busy flag when a worker task ends, however it ends.
struct BusyRelease {
  std::shared_ptr<ClassifierState> state;
  ~BusyRelease() { state->busy = false; }
};

int64_t ClfInteger(Napi::Env env, Napi::Value value, const std::string& name) {
  if (!value.IsNumber()) throw Napi::TypeError::New(env, name + " must be an integer");
  double number = value.As<Napi::Number>().DoubleValue();
  if (!std::isfinite(number) || number != std::floor(number)) {
    throw Napi::TypeError::New(env, name + " must be an integer");
  }
  return static_cast<int64_t>(number);
}

double ClfNumber(Napi::Env env, Napi::Value value, const std::string& name, double fallback) {
  if (value.IsUndefined() || value.IsNull()) return fallback;
  if (!value.IsNumber()) throw Napi::TypeError::New(env, name + " must be a number");
  return value.As<Napi::Number>().DoubleValue();
}

bool ClfBool(Napi::Env env, Napi::Value value, const std::string& name, bool fallback) {
  if (value.IsUndefined() || value.IsNull()) return fallback;
  if (!value.IsBoolean()) throw Napi::TypeError::New(env, name + " must be a boolean");
  return value.As<Napi::Boolean>().Value();
}

bool ClfIsTyped(Napi::Value value, napi_typedarray_type type) {
  return value.IsTypedArray() && value.As<Napi::TypedArray>().TypedArrayType() == type;
}

ClassifierOptions ClfOptions(Napi::Env env, Napi::Value value) {
  if (!value.IsObject()) throw Napi::TypeError::New(env, "options must be an object");
  auto object = value.As<Napi::Object>();
  ClassifierOptions options;
  auto dir = object.Get("modelDir");
  if (!dir.IsString()) throw Napi::TypeError::New(env, "modelDir must be a string");
  options.model_dir = dir.As<Napi::String>().Utf8Value();
  auto dora_value = object.Get("dora");
  if (!dora_value.IsObject()) throw Napi::TypeError::New(env, "dora must be an object");
  auto dora = dora_value.As<Napi::Object>();
  options.dora.r = ClfInteger(env, dora.Get("r"), "dora.r");
  options.dora.alpha = ClfNumber(env, dora.Get("alpha"), "dora.alpha", options.dora.alpha);
  options.dora.dropout = ClfNumber(env, dora.Get("dropout"), "dora.dropout", 0);
  options.dora.use_rslora = ClfBool(env, dora.Get("useRslora"), "dora.useRslora", false);
  auto targets = dora.Get("targetModules");
  if (!targets.IsUndefined()) {
    if (!targets.IsArray()) throw Napi::TypeError::New(env, "dora.targetModules must be an array");
    auto array = targets.As<Napi::Array>();
    options.dora.target_modules.clear();
    for (uint32_t i = 0; i < array.Length(); ++i) {
      auto item = array.Get(i);
      if (!item.IsString()) throw Napi::TypeError::New(env, "dora.targetModules must hold strings");
      options.dora.target_modules.push_back(item.As<Napi::String>().Utf8Value());
    }
  }
  auto labels = object.Get("numLabels");
  if (!labels.IsUndefined()) options.num_labels = ClfInteger(env, labels, "numLabels");
  auto device = object.Get("device");
  if (device.IsString()) options.device = device.As<Napi::String>().Utf8Value();
  auto dtype = object.Get("dtype");
  if (dtype.IsString()) options.dtype = dtype.As<Napi::String>().Utf8Value();
  options.gradient_checkpointing =
      ClfBool(env, object.Get("gradientCheckpointing"), "gradientCheckpointing", false);
  int64_t seed = ClfInteger(env, object.Get("seed"), "seed");
  if (seed < 0) throw Napi::RangeError::New(env, "seed must be >= 0");
  options.seed = static_cast<uint64_t>(seed);
  auto pad = object.Get("padTokenId");
  if (!pad.IsUndefined() && !pad.IsNull()) {
    options.pad_token_id = ClfInteger(env, pad, "padTokenId");
  }
  return options;
}

Batch ClfBatch(Napi::Env env, const Classifier& model, Napi::Value value) {
  if (!value.IsObject()) throw Napi::TypeError::New(env, "batch must be an object");
  auto object = value.As<Napi::Object>();
  auto ids = object.Get("inputIds");
  auto mask = object.Get("attentionMask");
  if (!ClfIsTyped(ids, napi_int32_array)) {
    throw Napi::TypeError::New(env, "batch.inputIds must be an Int32Array");
  }
  if (!ClfIsTyped(mask, napi_uint8_array)) {
    throw Napi::TypeError::New(env, "batch.attentionMask must be a Uint8Array");
  }
  int64_t batch_size = ClfInteger(env, object.Get("batchSize"), "batch.batchSize");
  int64_t seq_len = ClfInteger(env, object.Get("seqLen"), "batch.seqLen");
  if (batch_size < 1 || seq_len < 1) {
    throw Napi::RangeError::New(env, "batch.batchSize and batch.seqLen must be >= 1");
  }
  auto id_array = ids.As<Napi::Int32Array>();
  auto mask_array = mask.As<Napi::Uint8Array>();
  size_t cells = static_cast<size_t>(batch_size * seq_len);
  if (id_array.ElementLength() != cells || mask_array.ElementLength() != cells) {
    throw Napi::RangeError::New(
        env, "batch.inputIds and batch.attentionMask must have batchSize * seqLen = " +
                 std::to_string(cells) + " entries (got " +
                 std::to_string(id_array.ElementLength()) + " and " +
                 std::to_string(mask_array.ElementLength()) + ")");
  }
  const float* float_labels = nullptr;
  const int32_t* int_labels = nullptr;
  auto labels = object.Get("labels");
  if (!labels.IsUndefined() && !labels.IsNull()) {
    size_t length = 0;
    if (ClfIsTyped(labels, napi_float32_array)) {
      float_labels = labels.As<Napi::Float32Array>().Data();
      length = labels.As<Napi::Float32Array>().ElementLength();
    } else if (ClfIsTyped(labels, napi_int32_array)) {
      int_labels = labels.As<Napi::Int32Array>().Data();
      length = labels.As<Napi::Int32Array>().ElementLength();
    } else {
      throw Napi::TypeError::New(env, "batch.labels must be a Float32Array or an Int32Array");
    }
    if (length != static_cast<size_t>(batch_size)) {
      throw Napi::RangeError::New(
          env, "batch.labels must have batchSize = " + std::to_string(batch_size) +
                   " entries (got " + std::to_string(length) + ")");
    }
  }
  // Copied here, on the JS thread, so the worker never touches JS memory.
  return model.MakeBatch(id_array.Data(), mask_array.Data(), batch_size, seq_len, float_labels,
                         int_labels);
}

Napi::Float32Array ClfToFloat32Array(Napi::Env env, const torch::Tensor& tensor) {
  auto t = tensor.to(torch::kCPU, torch::kFloat32).contiguous();
  auto out = Napi::Float32Array::New(env, static_cast<size_t>(t.numel()));
  std::memcpy(out.Data(), t.data_ptr<float>(), t.numel() * sizeof(float));
  return out;
}

class ClassifierWrap : public Napi::ObjectWrap<ClassifierWrap> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "NativeClassifier",
                       {InstanceMethod<&ClassifierWrap::Load>("load"),
                        InstanceMethod<&ClassifierWrap::TrainStep>("trainStep"),
                        InstanceMethod<&ClassifierWrap::PredictLogits>("predictLogits"),
                        InstanceMethod<&ClassifierWrap::PredictProba>("predictProba"),
                        InstanceMethod<&ClassifierWrap::Gradients>("gradients"),
                        InstanceMethod<&ClassifierWrap::SaveAdapter>("saveAdapter"),
                        InstanceMethod<&ClassifierWrap::LoadAdapter>("loadAdapter"),
                        InstanceMethod<&ClassifierWrap::ResetAdapter>("resetAdapter"),
                        InstanceMethod<&ClassifierWrap::DiscardGradients>("discardGradients"),
                        InstanceMethod<&ClassifierWrap::Merge>("merge"),
                        InstanceMethod<&ClassifierWrap::InfoMethod>("info"),
                        InstanceMethod<&ClassifierWrap::Dispose>("dispose")});
  }

  explicit ClassifierWrap(const Napi::CallbackInfo& info)
      : Napi::ObjectWrap<ClassifierWrap>(info), state_(std::make_shared<ClassifierState>()) {}

 private:
  // Throws unless the instance can start `op`; then marks it busy.
  std::shared_ptr<Classifier> Claim(Napi::Env env, const std::string& op, bool need_model = true) {
    if (state_->disposed) throw Napi::Error::New(env, "Classifier is disposed");
    if (state_->busy) throw Napi::Error::New(env, "Classifier is busy with " + state_->busy_with);
    if (need_model && !state_->model) throw Napi::Error::New(env, "Classifier is not loaded");
    if (!need_model && state_->model) throw Napi::Error::New(env, "Classifier is already loaded");
    state_->busy = true;
    state_->busy_with = op;
    return state_->model;
  }

  template <typename Result>
  Napi::Value Run(Napi::Env env, std::shared_ptr<Classifier> model,
                  std::function<Result(Classifier&)> compute,
                  typename AsyncTask<Result>::Convert convert) {
    auto state = state_;
    return RunAsync<Result>(
        env,
        [state, model, compute] {
          BusyRelease release{state};
          return compute(*model);
        },
        std::move(convert));
  }

  // Claims first, then parses the batch, releasing the claim if the batch is bad.
  Batch ClaimBatch(const Napi::CallbackInfo& info, const std::string& op,
                   std::shared_ptr<Classifier>* model) {
    *model = Claim(info.Env(), op);
    try {
      return ClfBatch(info.Env(), **model, info[0]);
    } catch (...) {
      state_->busy = false;
      throw;
    }
  }

  static Napi::Value Undefined(Napi::Env env, bool&) { return env.Undefined(); }

  Napi::Value Load(const Napi::CallbackInfo& info) {
    auto options = ClfOptions(info.Env(), info[0]);
    Claim(info.Env(), "load", /*need_model=*/false);
    auto state = state_;
    return RunAsync<bool>(
        info.Env(),
        [state, options] {
          BusyRelease release{state};
          std::shared_ptr<Classifier> model = Classifier::Load(options);
          if (!state->disposed) state->model = std::move(model);
          return true;
        },
        Undefined);
  }

  Napi::Value TrainStep(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (info.Length() < 2 || !info[1].IsObject()) {
      throw Napi::TypeError::New(env, "trainStep(batch, options): options must be an object");
    }
    auto object = info[1].As<Napi::Object>();
    TrainOptions options;
    auto lr = object.Get("lr");
    if (!lr.IsNumber()) throw Napi::TypeError::New(env, "options.lr must be a number");
    options.lr = lr.As<Napi::Number>().DoubleValue();
    options.weight_decay = ClfNumber(env, object.Get("weightDecay"), "options.weightDecay", 0);
    options.max_grad_norm = ClfNumber(env, object.Get("maxGradNorm"), "options.maxGradNorm", 0);
    options.accumulate = ClfBool(env, object.Get("accumulate"), "options.accumulate", false);
    auto pos = object.Get("posWeight");
    if (!pos.IsUndefined() && !pos.IsNull()) {
      options.pos_weight = ClfNumber(env, pos, "options.posWeight", 1);
    }
    options.eps = ClfNumber(env, object.Get("adamEps"), "options.adamEps", options.eps);
    auto betas = object.Get("adamBetas");
    if (!betas.IsUndefined() && !betas.IsNull()) {
      if (!betas.IsArray() || betas.As<Napi::Array>().Length() != 2) {
        throw Napi::TypeError::New(env, "options.adamBetas must be [beta1, beta2]");
      }
      auto pair = betas.As<Napi::Array>();
      options.beta1 = ClfNumber(env, pair.Get(0u), "options.adamBetas[0]", options.beta1);
      options.beta2 = ClfNumber(env, pair.Get(1u), "options.adamBetas[1]", options.beta2);
    }
    std::shared_ptr<Classifier> model;
    Batch batch = ClaimBatch(info, "trainStep", &model);
    return Run<TrainResult>(
        env, model, [batch, options](Classifier& m) { return m.TrainStep(batch, options); },
        [](Napi::Env env, TrainResult& result) -> Napi::Value {
          auto out = Napi::Object::New(env);
          out.Set("loss", Napi::Number::New(env, result.loss));
          out.Set("gradNorm", Napi::Number::New(env, result.grad_norm));
          return out;
        });
  }

  Napi::Value PredictLogits(const Napi::CallbackInfo& info) {
    std::shared_ptr<Classifier> model;
    Batch batch = ClaimBatch(info, "predictLogits", &model);
    return Run<torch::Tensor>(
        info.Env(), model, [batch](Classifier& m) { return m.PredictLogits(batch); },
        [](Napi::Env env, torch::Tensor& t) -> Napi::Value { return ClfToFloat32Array(env, t); });
  }

  Napi::Value PredictProba(const Napi::CallbackInfo& info) {
    std::shared_ptr<Classifier> model;
    Batch batch = ClaimBatch(info, "predictProba", &model);
    return Run<torch::Tensor>(
        info.Env(), model, [batch](Classifier& m) { return m.PredictProba(batch); },
        [](Napi::Env env, torch::Tensor& t) -> Napi::Value { return ClfToFloat32Array(env, t); });
  }

  Napi::Value Gradients(const Napi::CallbackInfo& info) {
    bool checkpointing = ClfBool(info.Env(), info[1], "checkpointing", false);
    std::shared_ptr<Classifier> model;
    Batch batch = ClaimBatch(info, "gradients", &model);
    using Grads = std::pair<double, std::vector<std::pair<std::string, torch::Tensor>>>;
    return Run<Grads>(
        info.Env(), model,
        [batch, checkpointing](Classifier& m) { return m.Gradients(batch, checkpointing); },
        [](Napi::Env env, Grads& result) -> Napi::Value {
          auto out = Napi::Object::New(env);
          out.Set("loss", Napi::Number::New(env, result.first));
          auto grads = Napi::Object::New(env);
          for (auto& [name, t] : result.second) grads.Set(name, ClfToFloat32Array(env, t));
          out.Set("grads", grads);
          return out;
        });
  }

  Napi::Value PathOperation(const Napi::CallbackInfo& info, const std::string& op,
                            void (Classifier::*method)(const std::string&)) {
    if (info.Length() < 1 || !info[0].IsString()) {
      throw Napi::TypeError::New(info.Env(), op + "(dir): dir must be a string");
    }
    std::string dir = info[0].As<Napi::String>().Utf8Value();
    auto model = Claim(info.Env(), op);
    return Run<bool>(
        info.Env(), model,
        [dir, method](Classifier& m) {
          (m.*method)(dir);
          return true;
        },
        Undefined);
  }

  Napi::Value SaveAdapter(const Napi::CallbackInfo& info) {
    return PathOperation(info, "saveAdapter", &Classifier::SaveAdapter);
  }

  Napi::Value LoadAdapter(const Napi::CallbackInfo& info) {
    return PathOperation(info, "loadAdapter", &Classifier::LoadAdapter);
  }

  Napi::Value ResetAdapter(const Napi::CallbackInfo& info) {
    int64_t seed = ClfInteger(info.Env(), info[0], "seed");
    if (seed < 0) throw Napi::RangeError::New(info.Env(), "seed must be >= 0");
    auto model = Claim(info.Env(), "resetAdapter");
    return Run<bool>(
        info.Env(), model,
        [seed](Classifier& m) {
          m.ResetAdapter(static_cast<uint64_t>(seed));
          return true;
        },
        Undefined);
  }

  Napi::Value DiscardGradients(const Napi::CallbackInfo& info) {
    auto model = Claim(info.Env(), "discardGradients");
    return Run<bool>(
        info.Env(), model,
        [](Classifier& m) {
          m.DiscardGradients();
          return true;
        },
        Undefined);
  }

  Napi::Value Merge(const Napi::CallbackInfo& info) {
    auto model = Claim(info.Env(), "merge");
    return Run<bool>(
        info.Env(), model,
        [](Classifier& m) {
          m.Merge();
          return true;
        },
        Undefined);
  }

  Napi::Value InfoMethod(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (state_->disposed) throw Napi::Error::New(env, "Classifier is disposed");
    if (state_->busy) throw Napi::Error::New(env, "Classifier is busy with " + state_->busy_with);
    if (!state_->model) throw Napi::Error::New(env, "Classifier is not loaded");
    ClassifierInfo i = state_->model->Info();
    auto out = Napi::Object::New(env);
    auto num = [&](double v) { return Napi::Number::New(env, v); };
    out.Set("numLayers", num(i.num_layers));
    out.Set("hiddenSize", num(i.hidden_size));
    out.Set("numLabels", num(i.num_labels));
    out.Set("vocabSize", num(i.vocab_size));
    out.Set("padTokenId", i.pad_token_id ? Napi::Value(num(*i.pad_token_id)) : env.Null());
    out.Set("device", i.device);
    out.Set("dtype", i.dtype);
    out.Set("baseParameters", num(i.base_parameters));
    out.Set("trainableParameters", num(i.trainable_parameters));
    out.Set("optimizerStep", num(i.optimizer_step));
    out.Set("accumulatedMicroBatches", num(i.accumulated_micro_batches));
    out.Set("merged", i.merged);
    out.Set("gradientCheckpointing", i.gradient_checkpointing);
    out.Set("parameterBytes", num(i.parameter_bytes));
    auto dora = Napi::Object::New(env);
    dora.Set("r", num(i.dora.r));
    dora.Set("alpha", num(i.dora.alpha));
    dora.Set("dropout", num(i.dora.dropout));
    dora.Set("useRslora", i.dora.use_rslora);
    auto targets = Napi::Array::New(env, i.dora.target_modules.size());
    for (size_t k = 0; k < i.dora.target_modules.size(); ++k) {
      targets.Set(static_cast<uint32_t>(k), i.dora.target_modules[k]);
    }
    dora.Set("targetModules", targets);
    out.Set("dora", dora);
    return out;
  }

  // Drops the model now, or when the running task ends (it holds its own reference).
  Napi::Value Dispose(const Napi::CallbackInfo& info) {
    state_->disposed = true;
    state_->model.reset();
    // The model's freed buffers went to the allocator's cache; give them back to the system.
    ReleaseCachedCpuMemory();
    return info.Env().Undefined();
  }

  std::shared_ptr<ClassifierState> state_;
};

// createRandomWeights(dir, seed) -> Promise<void>: model.safetensors for dir/config.json.
Napi::Value CreateRandomWeightsAsync(const Napi::CallbackInfo& info) {
  std::string dir = ExpectString(info, 0, "dir");
  int64_t seed = ExpectInteger(info, 1, "seed");
  if (seed < 0) throw Napi::RangeError::New(info.Env(), "seed must be >= 0");
  return RunAsync<bool>(
      info.Env(),
      [dir, seed] {
        CreateRandomWeights(dir, static_cast<uint64_t>(seed));
        return true;
      },
      [](Napi::Env env, bool&) -> Napi::Value { return env.Undefined(); });
}

Napi::Value ManualSeedBinding(const Napi::CallbackInfo& info) {
  int64_t seed = ExpectInteger(info, 0, "seed");
  if (seed < 0) throw Napi::RangeError::New(info.Env(), "seed must be >= 0");
  ManualSeed(static_cast<uint64_t>(seed));
  return info.Env().Undefined();
}

void RegisterClassifier(Napi::Env env, Napi::Object exports) {
  exports.Set("NativeClassifier", ClassifierWrap::Define(env));
  exports.Set("createRandomWeights",
              Napi::Function::New(env, CreateRandomWeightsAsync, "createRandomWeights"));
  exports.Set("manualSeed", Napi::Function::New(env, ManualSeedBinding, "manualSeed"));
}

// ------------------------------- end of Classifier bindings ----------------------------------

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  InstallCachingCpuAllocator();
  exports.Set("info", Napi::Function::New(env, Info, "info"));
  exports.Set("setNumThreads", Napi::Function::New(env, SetThreads, "setNumThreads"));
  exports.Set("checkDevice", Napi::Function::New(env, CheckDevice, "checkDevice"));
  exports.Set("matmul", Napi::Function::New(env, MatmulAsync, "matmul"));
  RegisterCheckpointIo(env, exports);
  RegisterClassifier(env, exports);
  InitGguf(env, exports);
  return exports;
}

}  // namespace
}  // namespace mentallam

// NODE_API_MODULE pastes its second argument into a name, so it must be a plain identifier.
static Napi::Object InitAddon(Napi::Env env, Napi::Object exports) {
  return mentallam::Init(env, exports);
}

NODE_API_MODULE(mentallam, InitAddon)
