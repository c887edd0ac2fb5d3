// Module initialisation: the allocator first (before any tensor exists), then every binding
// file's exports (addon.h).
#include "addon.h"

#include "cpu_allocator.h"

namespace mentallam {
namespace {

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  InstallCachingCpuAllocator();
  InitRuntimeBindings(env, exports);
  InitCheckpointIoBindings(env, exports);
  InitClassifierBindings(env, exports);
  InitHiddenStateCacheBindings(env, exports);
  InitGgufBindings(env, exports);
  InitCudaBindings(env, exports);
  InitDistributedBindings(env, exports);
  Napi::Object testing = Napi::Object::New(env);
  InitTestingBindings(env, testing);
  exports.Set("testing", testing);
  return exports;
}

}  // namespace
}  // namespace mentallam

// NODE_API_MODULE pastes its second argument into a name, so it must be a plain identifier.
static Napi::Object InitAddon(Napi::Env env, Napi::Object exports) {
  return mentallam::Init(env, exports);
}

NODE_API_MODULE(mentallam, InitAddon)
