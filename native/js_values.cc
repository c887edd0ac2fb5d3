#include "js_values.h"

#include <charconv>
#include <cmath>
#include <cstring>

namespace mentallam {
namespace {

constexpr int kMaxJsonDepth = 64;

// How an error message shows the JS value it got.
std::string Shown(Napi::Value value) {
  if (value.IsUndefined()) return "undefined";
  if (value.IsNull()) return "null";
  if (value.IsBoolean()) return value.As<Napi::Boolean>().Value() ? "true" : "false";
  if (value.IsNumber()) {
    double number = value.As<Napi::Number>().DoubleValue();
    if (std::isnan(number)) return "NaN";
    if (std::isinf(number)) return number > 0 ? "Infinity" : "-Infinity";
    char buffer[64];
    // Integral values as JS prints them (2 ** 63 -> 9223372036854775808), others shortest.
    auto result =
        std::fabs(number) < 1e21 && number == std::floor(number)
            ? std::to_chars(buffer, buffer + sizeof buffer, number, std::chars_format::fixed)
            : std::to_chars(buffer, buffer + sizeof buffer, number);
    return std::string(buffer, result.ptr);
  }
  if (value.IsString()) return "a string";
  if (value.IsFunction()) return "a function";
  if (value.IsArray()) return "an array";
  if (value.IsTypedArray()) return "a typed array";
  if (value.IsBigInt()) return "a bigint";
  if (value.IsSymbol()) return "a symbol";
  return "an object";
}

std::string RangeText(IntegerRange range) {
  if (range.min == -kMaxSafeInteger && range.max == kMaxSafeInteger) {
    return "a safe integer (|n| <= 2^53 - 1)";
  }
  if (range.max == kMaxSafeInteger) return ">= " + std::to_string(range.min);
  return "between " + std::to_string(range.min) + " and " + std::to_string(range.max);
}

bool IsAbsent(Napi::Value value) { return value.IsUndefined() || value.IsNull(); }

Json ToJsonAt(Napi::Value value, const std::string& name, int depth) {
  if (depth > kMaxJsonDepth) {
    throw ArgumentTypeError(name + " nests deeper than " + std::to_string(kMaxJsonDepth) +
                            " levels (a cycle?)");
  }
  if (value.IsNull()) return nullptr;
  if (value.IsBoolean()) return value.As<Napi::Boolean>().Value();
  if (value.IsString()) return value.As<Napi::String>().Utf8Value();
  if (value.IsNumber()) {
    double number = value.As<Napi::Number>().DoubleValue();
    if (!std::isfinite(number)) {
      throw ArgumentRangeError(name + " must be a finite number, got " + Shown(value));
    }
    if (number == std::floor(number) && std::fabs(number) <= static_cast<double>(kMaxSafeInteger)) {
      return static_cast<int64_t>(number);
    }
    return number;
  }
  if (value.IsArray()) {
    auto array = value.As<Napi::Array>();
    Json out = Json::array();
    for (uint32_t i = 0; i < array.Length(); ++i) {
      Napi::Value item = array.Get(i);
      // JSON.stringify writes null for an undefined array element.
      out.push_back(item.IsUndefined()
                        ? Json(nullptr)
                        : ToJsonAt(item, name + "[" + std::to_string(i) + "]", depth + 1));
    }
    return out;
  }
  if (value.IsObject() && !value.IsFunction() && !value.IsTypedArray() && !value.IsArrayBuffer()) {
    auto object = value.As<Napi::Object>();
    Json out = Json::object();
    Napi::Array keys = object.GetPropertyNames();
    for (uint32_t i = 0; i < keys.Length(); ++i) {
      std::string key = keys.Get(i).ToString().Utf8Value();
      Napi::Value member = object.Get(key);
      if (member.IsUndefined()) continue;
      out[key] = ToJsonAt(member, name + "." + key, depth + 1);
    }
    return out;
  }
  throw ArgumentTypeError(name + " must be plain data (JSON), got " + Shown(value));
}

}  // namespace

int64_t ToInteger(Napi::Value value, const std::string& name, IntegerRange range) {
  if (!value.IsNumber()) throw ArgumentTypeError(name + " must be an integer, got " + Shown(value));
  double number = value.As<Napi::Number>().DoubleValue();
  // Every check happens on the double: casting NaN, an infinity or 2^63 to int64 is undefined.
  if (!std::isfinite(number) || number != std::floor(number)) {
    throw ArgumentRangeError(name + " must be an integer, got " + Shown(value));
  }
  if (number < static_cast<double>(range.min) || number > static_cast<double>(range.max)) {
    throw ArgumentRangeError(name + " must be " + RangeText(range) + ", got " + Shown(value));
  }
  return static_cast<int64_t>(number);
}

std::optional<int64_t> ToOptionalInteger(Napi::Value value, const std::string& name,
                                         IntegerRange range) {
  if (IsAbsent(value)) return std::nullopt;
  return ToInteger(value, name, range);
}

double ToNumber(Napi::Value value, const std::string& name) {
  if (!value.IsNumber()) throw ArgumentTypeError(name + " must be a number, got " + Shown(value));
  return value.As<Napi::Number>().DoubleValue();
}

double ToNumber(Napi::Value value, const std::string& name, double fallback) {
  return IsAbsent(value) ? fallback : ToNumber(value, name);
}

std::optional<double> ToOptionalNumber(Napi::Value value, const std::string& name) {
  if (IsAbsent(value)) return std::nullopt;
  return ToNumber(value, name);
}

bool ToBool(Napi::Value value, const std::string& name, bool fallback) {
  if (IsAbsent(value)) return fallback;
  if (!value.IsBoolean()) throw ArgumentTypeError(name + " must be a boolean, got " + Shown(value));
  return value.As<Napi::Boolean>().Value();
}

std::string ToString(Napi::Value value, const std::string& name) {
  if (!value.IsString()) throw ArgumentTypeError(name + " must be a string, got " + Shown(value));
  return value.As<Napi::String>().Utf8Value();
}

std::optional<std::string> ToOptionalString(Napi::Value value, const std::string& name) {
  if (IsAbsent(value)) return std::nullopt;
  return ToString(value, name);
}

std::vector<std::string> ToStringList(Napi::Value value, const std::string& name) {
  if (!value.IsArray()) {
    throw ArgumentTypeError(name + " must be an array of strings, got " + Shown(value));
  }
  auto array = value.As<Napi::Array>();
  std::vector<std::string> out;
  for (uint32_t i = 0; i < array.Length(); ++i) {
    out.push_back(ToString(array.Get(i), name + "[" + std::to_string(i) + "]"));
  }
  return out;
}

std::vector<int64_t> ToIntegerList(Napi::Value value, const std::string& name, IntegerRange range) {
  if (!value.IsArray()) {
    throw ArgumentTypeError(name + " must be an array of integers, got " + Shown(value));
  }
  auto array = value.As<Napi::Array>();
  std::vector<int64_t> out;
  for (uint32_t i = 0; i < array.Length(); ++i) {
    out.push_back(ToInteger(array.Get(i), name + "[" + std::to_string(i) + "]", range));
  }
  return out;
}

Napi::Object ToObject(Napi::Value value, const std::string& name) {
  if (!value.IsObject() || value.IsArray() || value.IsFunction()) {
    throw ArgumentTypeError(name + " must be an object, got " + Shown(value));
  }
  return value.As<Napi::Object>();
}

std::vector<int64_t> ToShape(Napi::Value value, const std::string& name) {
  if (!value.IsArray()) throw ArgumentTypeError(name + " must be an array, got " + Shown(value));
  auto array = value.As<Napi::Array>();
  std::vector<int64_t> shape;
  int64_t numel = 1;
  for (uint32_t d = 0; d < array.Length(); ++d) {
    shape.push_back(ToInteger(array.Get(d), name + "[" + std::to_string(d) + "]", kNonNegative));
    if (__builtin_mul_overflow(numel, shape.back(), &numel)) {
      throw ArgumentRangeError(name + " has too many elements");
    }
  }
  return shape;
}

Json ToJson(Napi::Value value, const std::string& name) { return ToJsonAt(value, name, 0); }

Napi::Value FromJson(Napi::Env env, const Json& value) {
  switch (value.type()) {
    case Json::value_t::null:
      return env.Null();
    case Json::value_t::boolean:
      return Napi::Boolean::New(env, value.get<bool>());
    case Json::value_t::number_integer:
    case Json::value_t::number_unsigned:
    case Json::value_t::number_float:
      return Napi::Number::New(env, value.get<double>());
    case Json::value_t::string:
      return Napi::String::New(env, value.get_ref<const std::string&>());
    case Json::value_t::array: {
      auto out = Napi::Array::New(env, value.size());
      for (std::size_t i = 0; i < value.size(); ++i) {
        out.Set(static_cast<uint32_t>(i), FromJson(env, value[i]));
      }
      return out;
    }
    case Json::value_t::object: {
      auto out = Napi::Object::New(env);
      for (const auto& [key, member] : value.items()) out.Set(key, FromJson(env, member));
      return out;
    }
    default:
      return env.Undefined();
  }
}

Napi::Array FromShape(Napi::Env env, at::IntArrayRef shape) {
  auto out = Napi::Array::New(env, shape.size());
  for (std::size_t i = 0; i < shape.size(); ++i) {
    out.Set(static_cast<uint32_t>(i), Napi::Number::New(env, static_cast<double>(shape[i])));
  }
  return out;
}

Napi::Array FromStrings(Napi::Env env, const std::vector<std::string>& strings) {
  auto out = Napi::Array::New(env, strings.size());
  for (std::size_t i = 0; i < strings.size(); ++i) {
    out.Set(static_cast<uint32_t>(i), Napi::String::New(env, strings[i]));
  }
  return out;
}

Napi::Value FromOptional(Napi::Env env, const std::optional<int64_t>& value) {
  return value ? Napi::Value(Napi::Number::New(env, static_cast<double>(*value))) : env.Null();
}

Napi::Array FromIntegers(Napi::Env env, const std::vector<int64_t>& values) {
  auto out = Napi::Array::New(env, values.size());
  for (std::size_t i = 0; i < values.size(); ++i) {
    out.Set(static_cast<uint32_t>(i), Napi::Number::New(env, static_cast<double>(values[i])));
  }
  return out;
}

Napi::Float32Array FromTensor(Napi::Env env, const torch::Tensor& tensor) {
  auto t = tensor.to(torch::kCPU, torch::kFloat32).contiguous();
  auto out = Napi::Float32Array::New(env, static_cast<std::size_t>(t.numel()));
  if (t.numel() > 0) std::memcpy(out.Data(), t.data_ptr<float>(), t.nbytes());
  return out;
}

Napi::Error ToJsError(Napi::Env env, const std::exception& error) {
  std::string message = MessageOf(error);
  Napi::Error js;
  if (dynamic_cast<const ArgumentTypeError*>(&error) != nullptr) {
    js = Napi::TypeError::New(env, message);
  } else if (dynamic_cast<const ArgumentRangeError*>(&error) != nullptr) {
    js = Napi::RangeError::New(env, message);
  } else {
    js = Napi::Error::New(env, message);
  }
  js.Value().Set("code", Napi::String::New(env, CodeOf(KindOf(error))));
  return js;
}

Napi::Error ToJsError(Napi::Env env, std::exception_ptr error) {
  try {
    std::rethrow_exception(error);
  } catch (const std::exception& e) {
    return ToJsError(env, e);
  } catch (...) {
    Napi::Error js = Napi::Error::New(env, "unknown native error");
    js.Value().Set("code", Napi::String::New(env, CodeOf(ErrorKind::kInternal)));
    return js;
  }
}

}  // namespace mentallam
