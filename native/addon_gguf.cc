// Bindings for GGUF files (gguf.h): the header, metadata and tensor infos of a file, and single
// tensors read as float32. The tokenizers built from GGUF metadata and the tests use them.
#include <cstring>
#include <optional>
#include <string>

#include "addon.h"
#include "async_task.h"
#include "ggml_quants.h"
#include "gguf.h"
#include "js_values.h"

namespace mentallam {
namespace {

template <typename T>
Napi::Value TypedArray(Napi::Env env, const GgufValue& value) {
  auto out = Napi::TypedArrayOf<T>::New(env, static_cast<size_t>(value.count));
  if (!value.raw.empty()) std::memcpy(out.Data(), value.raw.data(), value.raw.size());
  return out;
}

Napi::Value ValueToJs(Napi::Env env, const GgufValue& value);

// Numbers as a typed array of their width (one copy of the file's bytes), bools and strings as
// arrays, arrays of arrays recursively.
Napi::Value ArrayToJs(Napi::Env env, const GgufValue& value) {
  switch (value.element_type) {
    case GgufValueType::kUint8:
      return TypedArray<uint8_t>(env, value);
    case GgufValueType::kInt8:
      return TypedArray<int8_t>(env, value);
    case GgufValueType::kUint16:
      return TypedArray<uint16_t>(env, value);
    case GgufValueType::kInt16:
      return TypedArray<int16_t>(env, value);
    case GgufValueType::kUint32:
      return TypedArray<uint32_t>(env, value);
    case GgufValueType::kInt32:
      return TypedArray<int32_t>(env, value);
    case GgufValueType::kFloat32:
      return TypedArray<float>(env, value);
    case GgufValueType::kFloat64:
      return TypedArray<double>(env, value);
    case GgufValueType::kUint64:
      return TypedArray<uint64_t>(env, value);
    case GgufValueType::kInt64:
      return TypedArray<int64_t>(env, value);
    case GgufValueType::kBool: {
      auto out = Napi::Array::New(env, value.raw.size());
      for (size_t i = 0; i < value.raw.size(); ++i) {
        out.Set(static_cast<uint32_t>(i), Napi::Boolean::New(env, value.raw[i] != 0));
      }
      return out;
    }
    case GgufValueType::kString: {
      auto out = Napi::Array::New(env, value.strings.size());
      for (size_t i = 0; i < value.strings.size(); ++i) {
        out.Set(static_cast<uint32_t>(i), Napi::String::New(env, value.strings[i]));
      }
      return out;
    }
    case GgufValueType::kArray: {
      auto out = Napi::Array::New(env, value.arrays.size());
      for (size_t i = 0; i < value.arrays.size(); ++i) {
        out.Set(static_cast<uint32_t>(i), ValueToJs(env, value.arrays[i]));
      }
      return out;
    }
  }
  return env.Undefined();
}

Napi::Value ValueToJs(Napi::Env env, const GgufValue& value) {
  switch (value.type) {
    case GgufValueType::kUint8:
    case GgufValueType::kUint16:
    case GgufValueType::kUint32:
      return Napi::Number::New(env, static_cast<double>(value.uint_value));
    case GgufValueType::kInt8:
    case GgufValueType::kInt16:
    case GgufValueType::kInt32:
      return Napi::Number::New(env, static_cast<double>(value.int_value));
    case GgufValueType::kUint64:
      // Integers beyond 2^53 do not survive a double: they become BigInt.
      if (value.uint_value <= static_cast<uint64_t>(kMaxSafeInteger)) {
        return Napi::Number::New(env, static_cast<double>(value.uint_value));
      }
      return Napi::BigInt::New(env, value.uint_value);
    case GgufValueType::kInt64:
      if (value.int_value <= kMaxSafeInteger && value.int_value >= -kMaxSafeInteger) {
        return Napi::Number::New(env, static_cast<double>(value.int_value));
      }
      return Napi::BigInt::New(env, value.int_value);
    case GgufValueType::kFloat32:
    case GgufValueType::kFloat64:
      return Napi::Number::New(env, value.float_value);
    case GgufValueType::kBool:
      return Napi::Boolean::New(env, value.uint_value != 0);
    case GgufValueType::kString:
      return Napi::String::New(env, value.string_value);
    case GgufValueType::kArray:
      return ArrayToJs(env, value);
  }
  return env.Undefined();
}

// inspectGguf(path) -> Promise<{ version, alignment, dataOffset, metadata, tensors }>
Napi::Value InspectGgufAsync(const Napi::CallbackInfo& info) {
  std::string path = ToString(info[0], "path");
  return RunAsync<std::optional<GgufReader>>(
      info.Env(), [path] { return std::optional<GgufReader>(GgufReader::Open(path)); },
      [](Napi::Env env, std::optional<GgufReader>& reader) -> Napi::Value {
        auto out = Napi::Object::New(env);
        out.Set("version", Napi::Number::New(env, reader->Version()));
        out.Set("alignment", Napi::Number::New(env, static_cast<double>(reader->Alignment())));
        out.Set("dataOffset", Napi::Number::New(env, static_cast<double>(reader->DataOffset())));
        // Own data properties, so a key such as "__proto__" is a key like any other.
        auto metadata = Napi::Object::New(env);
        for (const auto& [key, value] : reader->Metadata()) {
          metadata.DefineProperty(Napi::PropertyDescriptor::Value(
              key, ValueToJs(env, value),
              static_cast<napi_property_attributes>(napi_default_jsproperty)));
        }
        out.Set("metadata", metadata);
        const auto& tensors = reader->Tensors();
        auto list = Napi::Array::New(env, tensors.size());
        for (size_t i = 0; i < tensors.size(); ++i) {
          const GgufTensorInfo& tensor = tensors[i];
          auto item = Napi::Object::New(env);
          item.Set("name", tensor.name);
          auto hf_name = GgufToHfName(tensor.name);
          item.Set("hfName", hf_name ? Napi::Value(Napi::String::New(env, *hf_name)) : env.Null());
          item.Set("type", GgmlTypeName(tensor.type));
          item.Set("shape", FromShape(env, tensor.shape));
          item.Set("offset", Napi::Number::New(env, static_cast<double>(tensor.offset)));
          item.Set("nbytes", Napi::Number::New(env, static_cast<double>(tensor.nbytes)));
          list.Set(static_cast<uint32_t>(i), item);
        }
        out.Set("tensors", list);
        return out;
      });
}

struct GgufTensorRead {
  std::string name;    // the GGUF name
  std::string type;    // its ggml type
  torch::Tensor data;  // float32, contiguous
};

// readGgufTensor(path, name) -> Promise<{ name, type, shape, data: Float32Array }>. A GGUF name
// reads the tensor as stored; a Hugging Face name reads it as the model loads it (q/k rows
// un-permuted).
Napi::Value ReadGgufTensorAsync(const Napi::CallbackInfo& info) {
  std::string path = ToString(info[0], "path");
  std::string name = ToString(info[1], "name");
  return RunAsync<GgufTensorRead>(
      info.Env(),
      [path, name] {
        GgufReader reader = GgufReader::Open(path);
        if (const GgufTensorInfo* tensor = reader.FindTensor(name)) {
          return GgufTensorRead{name, GgmlTypeName(tensor->type),
                                reader.LoadGguf(name, torch::kFloat32)};
        }
        const GgufTensorInfo& tensor = reader.Entry(name);  // "... is missing"
        return GgufTensorRead{tensor.name, GgmlTypeName(tensor.type),
                              reader.Load(name, torch::kFloat32)};
      },
      [](Napi::Env env, GgufTensorRead& result) -> Napi::Value {
        auto out = Napi::Object::New(env);
        out.Set("name", result.name);
        out.Set("type", result.type);
        out.Set("shape", FromShape(env, result.data.sizes()));
        out.Set("data", FromTensor(env, result.data));
        return out;
      });
}

}  // namespace

void InitGgufBindings(Napi::Env env, Napi::Object exports) {
  ExportFunction<InspectGgufAsync>(env, exports, "inspectGguf");
  ExportFunction<ReadGgufTensorAsync>(env, exports, "readGgufTensor");
}

}  // namespace mentallam
