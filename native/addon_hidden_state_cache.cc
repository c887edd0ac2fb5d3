// Bindings for the NativeHiddenStateCache class (hidden_state_cache.h): the frozen-bottom cache a
// NativeClassifier fills (fillHiddenStateCache) and reads in place of input ids (a batch's
// hiddenStates). The JS object owns the cache; a batch being computed holds it too, so
// dispose() during a running call frees it when that call ends.
#include <memory>

#include "addon.h"
#include "device.h"
#include "hidden_state_cache.h"
#include "js_values.h"

namespace mentallam {
namespace {

// Marks NativeHiddenStateCache objects, so a batch cannot pass another object off as one.
constexpr napi_type_tag kCacheTag = {0x6d656e74616c6c61ULL, 0x6d2d68732d636163ULL};

// new NativeHiddenStateCache({ layer, hiddenSize, dtype, units, tokens, maxMemoryBytes,
// filePath? })
HiddenStateCache::Options ToCacheOptions(Napi::Value value) {
  Napi::Object object = ToObject(value, "options");
  HiddenStateCache::Options options;
  options.layer = ToInteger(object.Get("layer"), "options.layer", kPositive);
  options.hidden_size = ToInteger(object.Get("hiddenSize"), "options.hiddenSize", kPositive);
  options.dtype = ParseDtype(ToString(object.Get("dtype"), "options.dtype"));
  options.units = ToInteger(object.Get("units"), "options.units", kPositive);
  options.tokens = ToInteger(object.Get("tokens"), "options.tokens", kPositive);
  options.max_memory_bytes =
      ToInteger(object.Get("maxMemoryBytes"), "options.maxMemoryBytes", kNonNegative);
  options.file_path = ToOptionalString(object.Get("filePath"), "options.filePath").value_or("");
  return options;
}

class HiddenStateCacheWrap : public Napi::ObjectWrap<HiddenStateCacheWrap> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "NativeHiddenStateCache",
                       {InstanceMethod<&HiddenStateCacheWrap::Info>("info"),
                        InstanceMethod<&HiddenStateCacheWrap::Dispose>("dispose")});
  }

  explicit HiddenStateCacheWrap(const Napi::CallbackInfo& info)
      : Napi::ObjectWrap<HiddenStateCacheWrap>(info) {
    Guard(info.Env(), [&] {
      cache_ = std::make_shared<HiddenStateCache>(ToCacheOptions(info[0]));
      info.This().As<Napi::Object>().TypeTag(&kCacheTag);
      return info.Env().Undefined();
    });
  }

  std::shared_ptr<HiddenStateCache> Cache(const std::string& name) const {
    if (!cache_) throw UserError(name + " is disposed");
    return cache_;
  }

 private:
  // info() -> { layer, hiddenSize, dtype, units, tokens, bytes, storage, path, storedUnits,
  // storedTokens }
  Napi::Value Info(const Napi::CallbackInfo& info) {
    return Guard(info.Env(), [&]() -> Napi::Value {
      auto cache = Cache("HiddenStateCache");
      Napi::Env env = info.Env();
      auto num = [env](int64_t v) { return Napi::Number::New(env, static_cast<double>(v)); };
      auto out = Napi::Object::New(env);
      out.Set("layer", num(cache->Layer()));
      out.Set("hiddenSize", num(cache->HiddenSize()));
      out.Set("dtype", DtypeName(cache->Dtype()));
      out.Set("units", num(cache->Units()));
      out.Set("tokens", num(cache->Capacity()));
      out.Set("bytes", num(cache->Bytes()));
      out.Set("storage", cache->InMemory() ? "memory" : "file");
      out.Set("path", cache->InMemory() ? env.Null() : Napi::String::New(env, cache->Path()));
      out.Set("storedUnits", num(cache->StoredUnits()));
      out.Set("storedTokens", num(cache->StoredTokens()));
      return out;
    });
  }

  Napi::Value Dispose(const Napi::CallbackInfo& info) {
    cache_.reset();
    return info.Env().Undefined();
  }

  std::shared_ptr<HiddenStateCache> cache_;
};

}  // namespace

std::shared_ptr<HiddenStateCache> ToHiddenStateCache(Napi::Value value, const std::string& name) {
  if (!value.IsObject() || !value.As<Napi::Object>().CheckTypeTag(&kCacheTag)) {
    throw ArgumentTypeError(name + " must be a NativeHiddenStateCache");
  }
  return HiddenStateCacheWrap::Unwrap(value.As<Napi::Object>())->Cache(name);
}

void InitHiddenStateCacheBindings(Napi::Env env, Napi::Object exports) {
  exports.Set("NativeHiddenStateCache", HiddenStateCacheWrap::Define(env));
}

}  // namespace mentallam
