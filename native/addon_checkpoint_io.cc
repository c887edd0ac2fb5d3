// Bindings for checkpoint files: safetensors inspection, single-tensor reads and writes
// (safetensors.h), config.json (model_config.h: JS sees and gives the config.json object itself,
// converted by LlamaConfig's to_json / from_json), the weight check and random models
// (llama_weights.h).
#include <cstring>
#include <map>

#include "addon.h"
#include "async_task.h"
#include "js_values.h"
#include "llama_weights.h"
#include "model_config.h"
#include "safetensors.h"

namespace mentallam {
namespace {

Napi::Value Undefined(Napi::Env env, bool&) { return env.Undefined(); }

// inspectSafetensors(pathOrDir) -> Promise<{ name, dtype, shape, file, begin, end }[]>
Napi::Value InspectSafetensorsAsync(const Napi::CallbackInfo& info) {
  std::string path = ToString(info[0], "pathOrDir");
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
          item.Set("shape", FromShape(env, entry.shape));
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
  std::string path = ToString(info[0], "pathOrDir");
  std::string name = ToString(info[1], "name");
  return RunAsync<ReadTensorResult>(
      info.Env(),
      [path, name] {
        SafetensorsReader reader = SafetensorsReader::Open(path);
        return ReadTensorResult{reader.Entry(name).dtype, reader.Load(name, torch::kFloat)};
      },
      [](Napi::Env env, ReadTensorResult& result) -> Napi::Value {
        auto out = Napi::Object::New(env);
        out.Set("shape", FromShape(env, result.data.sizes()));
        out.Set("dtype", result.dtype);
        out.Set("data", FromTensor(env, result.data));
        return out;
      });
}

torch::Dtype ToStoredDtype(Napi::Value value, const std::string& name) {
  std::optional<std::string> text = ToOptionalString(value, name);
  if (!text || *text == "F32") return torch::kFloat;
  if (*text == "BF16") return torch::kBFloat16;
  if (*text == "F16") return torch::kHalf;
  throw ArgumentTypeError(name + " must be 'F32', 'BF16' or 'F16'");
}

// writeSafetensors(path, [{ name, shape, data: Float32Array, dtype? }], metadata?) -> Promise<void>
// The arrays are copied here, on the JS thread, so JS may reuse them as soon as this returns.
Napi::Value WriteSafetensorsAsync(const Napi::CallbackInfo& info) {
  std::string path = ToString(info[0], "path");
  if (!info[1].IsArray())
    throw ArgumentTypeError("tensors must be an array of { name, shape, data }");
  auto list = info[1].As<Napi::Array>();
  std::vector<std::pair<std::string, torch::Tensor>> tensors;
  for (uint32_t i = 0; i < list.Length(); ++i) {
    std::string where = "tensors[" + std::to_string(i) + "]";
    Napi::Object item = ToObject(list.Get(i), where);
    std::string name = ToString(item.Get("name"), where + ".name");
    std::vector<int64_t> shape = ToShape(item.Get("shape"), where + ".shape");
    auto data = ToTypedArray<float>(item.Get("data"), where + ".data");
    torch::Dtype dtype = ToStoredDtype(item.Get("dtype"), where + ".dtype");
    int64_t numel = 1;
    for (int64_t size : shape) numel *= size;  // ToShape checked it does not overflow
    if (static_cast<int64_t>(data.ElementLength()) != numel) {
      throw ArgumentRangeError(where + ".data has " + std::to_string(data.ElementLength()) +
                               " elements, shape needs " + std::to_string(numel));
    }
    torch::Tensor tensor = torch::empty(shape, torch::kFloat);
    if (tensor.numel() > 0) std::memcpy(tensor.data_ptr<float>(), data.Data(), tensor.nbytes());
    tensors.emplace_back(name, tensor.to(dtype));
  }
  std::map<std::string, std::string> metadata;
  if (!info[2].IsUndefined() && !info[2].IsNull()) {
    Napi::Object object = ToObject(info[2], "metadata");
    Napi::Array keys = object.GetPropertyNames();
    for (uint32_t i = 0; i < keys.Length(); ++i) {
      std::string key = keys.Get(i).ToString().Utf8Value();
      metadata[key] = ToString(object.Get(key), "metadata." + key);
    }
  }
  return RunAsync<bool>(
      info.Env(),
      [path, tensors = std::move(tensors), metadata = std::move(metadata)] {
        WriteSafetensors(path, tensors, metadata);
        return true;
      },
      Undefined);
}

// loadLlamaConfig(dir) -> Promise<config.json as to_json writes it: transformers' keys, every
// default and derived value explicit>
Napi::Value LoadLlamaConfigAsync(const Napi::CallbackInfo& info) {
  std::string dir = ToString(info[0], "dir");
  return RunAsync<Json>(
      info.Env(), [dir] { return Json(LoadModelConfig(dir)); },
      [](Napi::Env env, Json& config) { return FromJson(env, config); });
}

// A config.json object from JS -> LlamaConfig (from_json fills the defaults).
LlamaConfig ToLlamaConfig(Napi::Value value) {
  return LlamaConfigFromJson(ToJson(ToObject(value, "config"), "config"), "config");
}

// writeLlamaConfig(path, config) -> Promise<void>: a transformers-loadable config.json.
Napi::Value WriteLlamaConfigAsync(const Napi::CallbackInfo& info) {
  std::string path = ToString(info[0], "path");
  LlamaConfig config = ToLlamaConfig(info[1]);
  return RunAsync<bool>(
      info.Env(),
      [path, config] {
        WriteLlamaConfig(path, config);
        return true;
      },
      Undefined);
}

// checkLlamaCheckpoint(dir) -> Promise<{ checked, hasScore, ignored: string[] }>
Napi::Value CheckLlamaCheckpointAsync(const Napi::CallbackInfo& info) {
  std::string dir = ToString(info[0], "dir");
  return RunAsync<CheckpointCheck>(
      info.Env(), [dir] { return CheckLlamaCheckpoint(dir); },
      [](Napi::Env env, CheckpointCheck& check) -> Napi::Value {
        auto out = Napi::Object::New(env);
        out.Set("checked", Napi::Number::New(env, static_cast<double>(check.checked)));
        out.Set("hasScore", check.has_score);
        out.Set("ignored", FromStrings(env, check.ignored));
        return out;
      });
}

// createRandomModel(dir, config, seed) -> Promise<void>: dir/config.json + dir/model.safetensors
// with weights drawn as transformers initialises a Llama.
Napi::Value CreateRandomModelAsync(const Napi::CallbackInfo& info) {
  std::string dir = ToString(info[0], "dir");
  LlamaConfig config = ToLlamaConfig(info[1]);
  auto seed = static_cast<uint64_t>(ToInteger(info[2], "seed", kNonNegative));
  return RunAsync<bool>(
      info.Env(),
      [dir, config, seed] {
        CreateRandomModel(dir, config, seed);
        return true;
      },
      Undefined);
}

}  // namespace

void InitCheckpointIoBindings(Napi::Env env, Napi::Object exports) {
  ExportFunction<InspectSafetensorsAsync>(env, exports, "inspectSafetensors");
  ExportFunction<ReadSafetensorsTensorAsync>(env, exports, "readSafetensorsTensor");
  ExportFunction<WriteSafetensorsAsync>(env, exports, "writeSafetensors");
  ExportFunction<LoadLlamaConfigAsync>(env, exports, "loadLlamaConfig");
  ExportFunction<WriteLlamaConfigAsync>(env, exports, "writeLlamaConfig");
  ExportFunction<CheckLlamaCheckpointAsync>(env, exports, "checkLlamaCheckpoint");
  ExportFunction<CreateRandomModelAsync>(env, exports, "createRandomModel");
}

}  // namespace mentallam
