// The binding's one place for converting between JS values and C++ (arguments in, results out)
// and for turning C++ exceptions into JS errors. Every bound function and method uses these, so
// every argument follows the same rules and every error reaching JS carries a `code`.
//
// Arguments: a value of the wrong JS type throws ArgumentTypeError ("seed must be an integer,
// got a string"); a number that is not an integer (NaN, +-Infinity, 1.5) or outside the allowed
// range throws ArgumentRangeError. Integers are never cast from a double that does not hold one.
// Both become TypeError / RangeError in JS with code ERR_NATIVE_USER, as node's own argument
// checks do (ERR_INVALID_ARG_TYPE / ERR_OUT_OF_RANGE).
#pragma once

#include <napi.h>
#include <torch/torch.h>

#include <cstdint>
#include <exception>
#include <optional>
#include <string>
#include <vector>

#include "errors.h"
#include "json_parse.h"

namespace mentallam {

struct ArgumentTypeError : UserError {
  using UserError::UserError;
};
struct ArgumentRangeError : UserError {
  using UserError::UserError;
};

// Number.MAX_SAFE_INTEGER: the largest n such that every integer up to n is a double.
inline constexpr int64_t kMaxSafeInteger = (int64_t{1} << 53) - 1;

struct IntegerRange {
  int64_t min = -kMaxSafeInteger;
  int64_t max = kMaxSafeInteger;
};
inline constexpr IntegerRange kNonNegative{0, kMaxSafeInteger};
inline constexpr IntegerRange kPositive{1, kMaxSafeInteger};

// ------------------------------------ JS -> C++ ----------------------------------------------
// `name` is how the error names the value ("seed", "batch.seqLen", "options.adamBetas[1]").

int64_t ToInteger(Napi::Value value, const std::string& name, IntegerRange range = {});
// undefined and null -> nullopt.
std::optional<int64_t> ToOptionalInteger(Napi::Value value, const std::string& name,
                                         IntegerRange range = {});
// Any number, NaN and infinities included (the callee checks what it accepts).
double ToNumber(Napi::Value value, const std::string& name);
// undefined and null -> fallback.
double ToNumber(Napi::Value value, const std::string& name, double fallback);
std::optional<double> ToOptionalNumber(Napi::Value value, const std::string& name);
bool ToBool(Napi::Value value, const std::string& name, bool fallback);
std::string ToString(Napi::Value value, const std::string& name);
std::optional<std::string> ToOptionalString(Napi::Value value, const std::string& name);
std::vector<std::string> ToStringList(Napi::Value value, const std::string& name);
// An array of integers, each in `range`.
std::vector<int64_t> ToIntegerList(Napi::Value value, const std::string& name,
                                   IntegerRange range = {});
Napi::Object ToObject(Napi::Value value, const std::string& name);
// A shape: an array of integers in [0, 2^53); their product must not overflow int64.
std::vector<int64_t> ToShape(Napi::Value value, const std::string& name);
// Plain data (null, booleans, finite numbers, strings, arrays, objects; undefined members are
// skipped as JSON.stringify does) -> JSON. Integral numbers become JSON integers. Anything else
// (functions, typed arrays, NaN, cycles deeper than 64 levels) is an ArgumentTypeError.
Json ToJson(Napi::Value value, const std::string& name);

template <typename T>
struct TypedArrayName;
template <>
struct TypedArrayName<float> {
  static constexpr napi_typedarray_type kType = napi_float32_array;
  static constexpr const char* kName = "a Float32Array";
};
template <>
struct TypedArrayName<int32_t> {
  static constexpr napi_typedarray_type kType = napi_int32_array;
  static constexpr const char* kName = "an Int32Array";
};
template <>
struct TypedArrayName<uint8_t> {
  static constexpr napi_typedarray_type kType = napi_uint8_array;
  static constexpr const char* kName = "a Uint8Array";
};

template <typename T>
bool IsTypedArrayOf(Napi::Value value) {
  return value.IsTypedArray() &&
         value.As<Napi::TypedArray>().TypedArrayType() == TypedArrayName<T>::kType;
}

template <typename T>
Napi::TypedArrayOf<T> ToTypedArray(Napi::Value value, const std::string& name) {
  if (!IsTypedArrayOf<T>(value)) {
    throw ArgumentTypeError(name + " must be " + TypedArrayName<T>::kName);
  }
  return value.As<Napi::TypedArrayOf<T>>();
}

// ------------------------------------ C++ -> JS ----------------------------------------------

Napi::Value FromJson(Napi::Env env, const Json& value);
Napi::Array FromShape(Napi::Env env, at::IntArrayRef shape);
Napi::Array FromStrings(Napi::Env env, const std::vector<std::string>& strings);
Napi::Value FromOptional(Napi::Env env, const std::optional<int64_t>& value);  // null when empty
Napi::Array FromIntegers(Napi::Env env, const std::vector<int64_t>& values);
// A copy as float32 on the CPU.
Napi::Float32Array FromTensor(Napi::Env env, const torch::Tensor& tensor);

// ------------------------------------ errors -------------------------------------------------

// The JS error for a C++ exception: TypeError / RangeError for argument errors, Error otherwise;
// the message is MessageOf(error) and `code` is CodeOf(KindOf(error)).
Napi::Error ToJsError(Napi::Env env, const std::exception& error);
Napi::Error ToJsError(Napi::Env env, std::exception_ptr error);

// Runs a binding's body; a C++ exception leaves as the matching JS error. A Napi::Error (a JS
// exception raised while calling into JS) passes through unchanged.
template <typename Body>
Napi::Value Guard(Napi::Env env, Body&& body) {
  try {
    return body();
  } catch (const Napi::Error&) {
    throw;
  } catch (...) {
    throw ToJsError(env, std::current_exception());
  }
}

// A plain function as a JS function, guarded.
template <Napi::Value (*F)(const Napi::CallbackInfo&)>
Napi::Value Guarded(const Napi::CallbackInfo& info) {
  return Guard(info.Env(), [&info] { return F(info); });
}

template <Napi::Value (*F)(const Napi::CallbackInfo&)>
void ExportFunction(Napi::Env env, Napi::Object target, const char* name) {
  target.Set(name, Napi::Function::New<Guarded<F>>(env, name));
}

}  // namespace mentallam
