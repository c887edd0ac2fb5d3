// Bindings for the NativeProcessGroup class (distributed.h) and distributedBackends(). A
// NativeProcessGroup JS object owns this process's one ProcessGroup. Collectives and store waits
// run on the compute thread, in call order, like the classifier's operations (a data-parallel
// step's all-reduces are issued from there too); failure() is answered at once.
#include <atomic>
#include <cstring>
#include <memory>

#include "addon.h"
#include "async_task.h"
#include "distributed.h"
#include "js_values.h"

namespace mentallam {
namespace {

// join(options): { rank, worldSize, masterAddr, masterPort, agentStore?, timeoutMs, backend?,
// device?, glooInterface? }
ProcessGroupOptions ToProcessGroupOptions(Napi::Value value) {
  Napi::Object object = ToObject(value, "options");
  ProcessGroupOptions options;
  options.rank = static_cast<int>(ToInteger(object.Get("rank"), "rank", {0, 1 << 20}));
  options.world_size =
      static_cast<int>(ToInteger(object.Get("worldSize"), "worldSize", {1, 1 << 20}));
  options.master_addr = ToString(object.Get("masterAddr"), "masterAddr");
  options.master_port =
      static_cast<int>(ToInteger(object.Get("masterPort"), "masterPort", {1, 65535}));
  options.agent_store = ToBool(object.Get("agentStore"), "agentStore", false);
  options.timeout = std::chrono::milliseconds(
      ToInteger(object.Get("timeoutMs"), "timeoutMs", {1, int64_t{1} << 40}));
  options.backend = ToOptionalString(object.Get("backend"), "backend").value_or("gloo");
  options.device = ToOptionalString(object.Get("device"), "device").value_or("cpu");
  options.gloo_interface =
      ToOptionalString(object.Get("glooInterface"), "glooInterface").value_or("");
  return options;
}

Napi::Value Undefined(Napi::Env env, bool&) { return env.Undefined(); }

// A JS typed array's values as a CPU tensor (a copy), for the small collectives.
torch::Tensor TensorOf(Napi::Value value, const std::string& name) {
  if (IsTypedArrayOf<float>(value)) {
    auto array = value.As<Napi::Float32Array>();
    return torch::from_blob(array.Data(), {static_cast<int64_t>(array.ElementLength())},
                            torch::kFloat32)
        .clone();
  }
  if (value.IsTypedArray() && value.As<Napi::TypedArray>().TypedArrayType() == napi_float64_array) {
    auto array = value.As<Napi::Float64Array>();
    return torch::from_blob(array.Data(), {static_cast<int64_t>(array.ElementLength())},
                            torch::kFloat64)
        .clone();
  }
  throw ArgumentTypeError(name + " must be a Float32Array or a Float64Array");
}

// The result in the argument's own array type.
Napi::Value TypedArrayLike(Napi::Env env, const torch::Tensor& tensor) {
  auto t = tensor.to(torch::kCPU).contiguous();
  if (t.scalar_type() == torch::kFloat64) {
    auto out = Napi::Float64Array::New(env, static_cast<size_t>(t.numel()));
    if (t.numel() > 0) std::memcpy(out.Data(), t.data_ptr<double>(), t.nbytes());
    return out;
  }
  return FromTensor(env, t);
}

class ProcessGroupWrap : public Napi::ObjectWrap<ProcessGroupWrap> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(
        env, "NativeProcessGroup",
        {Bind<&ProcessGroupWrap::Join>("join"), Bind<&ProcessGroupWrap::Info>("info"),
         Bind<&ProcessGroupWrap::AllReduceSum>("allReduceSum"),
         Bind<&ProcessGroupWrap::AllGather>("allGather"),
         Bind<&ProcessGroupWrap::Broadcast>("broadcast"),
         Bind<&ProcessGroupWrap::Barrier>("barrier"), Bind<&ProcessGroupWrap::Publish>("publish"),
         Bind<&ProcessGroupWrap::Await>("await"), Bind<&ProcessGroupWrap::Exchange>("exchange"),
         Bind<&ProcessGroupWrap::Add>("add"), Bind<&ProcessGroupWrap::Failure>("failure"),
         Bind<&ProcessGroupWrap::Leave>("leave")});
  }

  explicit ProcessGroupWrap(const Napi::CallbackInfo& info)
      : Napi::ObjectWrap<ProcessGroupWrap>(info), state_(std::make_shared<State>()) {}

  std::shared_ptr<ProcessGroup> Group() const {
    if (!state_->group) throw UserError("the process group is not joined (or was left)");
    return state_->group;
  }

 private:
  struct State {
    std::shared_ptr<ProcessGroup> group;
    std::atomic<bool> joining{false};
  };
  using Method = Napi::Value (ProcessGroupWrap::*)(const Napi::CallbackInfo&);

  template <Method M>
  Napi::Value GuardedMethod(const Napi::CallbackInfo& info) {
    return Guard(info.Env(), [this, &info] { return (this->*M)(info); });
  }

  template <Method M>
  static PropertyDescriptor Bind(const char* name) {
    return InstanceMethod<&ProcessGroupWrap::GuardedMethod<M>>(name);
  }

  Napi::Value Join(const Napi::CallbackInfo& info) {
    ProcessGroupOptions options = ToProcessGroupOptions(info[0]);
    if (state_->group || state_->joining) throw UserError("the process group is already joined");
    state_->joining = true;
    auto state = state_;
    // Set on the JS thread when the join resolves, so no JS call sees a half-made group.
    return RunAsync<std::shared_ptr<ProcessGroup>>(
        info.Env(),
        [state, options] {
          struct Done {
            std::shared_ptr<State> state;
            ~Done() { state->joining = false; }
          } done{state};
          return ProcessGroup::Join(options);
        },
        [state](Napi::Env env, std::shared_ptr<ProcessGroup>& group) -> Napi::Value {
          state->group = group;
          return env.Undefined();
        });
  }

  // info() -> { rank, worldSize, backend, device }
  Napi::Value Info(const Napi::CallbackInfo& info) {
    auto group = Group();
    auto out = Napi::Object::New(info.Env());
    out.Set("rank", Napi::Number::New(info.Env(), group->Rank()));
    out.Set("worldSize", Napi::Number::New(info.Env(), group->WorldSize()));
    out.Set("backend", group->Options().backend);
    out.Set("device", group->Device().str());
    return out;
  }

  // allReduceSum(values: Float32Array | Float64Array, what) -> Promise<same type>: the sum over
  // ranks (small vectors: step totals, flags).
  Napi::Value AllReduceSum(const Napi::CallbackInfo& info) {
    auto group = Group();
    auto values = TensorOf(info[0], "values");
    std::string what = ToString(info[1], "what");
    return RunAsync<torch::Tensor>(
        info.Env(),
        [group, values, what] {
          auto on_device = values.to(group->Device());
          group->AllReduceSum(on_device, what);
          return on_device.to(torch::kCPU);
        },
        [](Napi::Env env, torch::Tensor& result) { return TypedArrayLike(env, result); });
  }

  // allGather(values: Float32Array, what) -> Promise<Float32Array>: every rank's values (all of
  // the same length) concatenated in rank order.
  Napi::Value AllGather(const Napi::CallbackInfo& info) {
    auto group = Group();
    auto values = TensorOf(info[0], "values").to(torch::kFloat32);
    std::string what = ToString(info[1], "what");
    return RunAsync<torch::Tensor>(
        info.Env(),
        [group, values, what] {
          return group->AllGather(values.to(group->Device()), what).reshape({-1});
        },
        [](Napi::Env env, torch::Tensor& result) -> Napi::Value {
          return FromTensor(env, result);
        });
  }

  // broadcast(values: Float32Array | Float64Array, root, what) -> Promise<same type>: root's.
  Napi::Value Broadcast(const Napi::CallbackInfo& info) {
    auto group = Group();
    auto values = TensorOf(info[0], "values");
    int root = static_cast<int>(ToInteger(info[1], "root", {0, group->WorldSize() - 1}));
    std::string what = ToString(info[2], "what");
    return RunAsync<torch::Tensor>(
        info.Env(),
        [group, values, root, what] {
          auto on_device = values.to(group->Device());
          group->Broadcast(on_device, root, what);
          return on_device.to(torch::kCPU);
        },
        [](Napi::Env env, torch::Tensor& result) { return TypedArrayLike(env, result); });
  }

  Napi::Value Barrier(const Napi::CallbackInfo& info) {
    auto group = Group();
    std::string what = ToString(info[0], "what");
    return RunAsync<bool>(
        info.Env(),
        [group, what] {
          group->Barrier(what);
          return true;
        },
        Undefined);
  }

  // publish(key, value: string) -> Promise<void>
  Napi::Value Publish(const Napi::CallbackInfo& info) {
    auto group = Group();
    std::string key = ToString(info[0], "key");
    std::string value = ToString(info[1], "value");
    return RunAsync<bool>(
        info.Env(),
        [group, key, value] {
          group->Publish(key, value);
          return true;
        },
        Undefined);
  }

  // await(key) -> Promise<string>: waits while every rank is alive.
  Napi::Value Await(const Napi::CallbackInfo& info) {
    auto group = Group();
    std::string key = ToString(info[0], "key");
    return RunAsync<std::string>(
        info.Env(), [group, key] { return group->Await(key); },
        [](Napi::Env env, std::string& value) -> Napi::Value {
          return Napi::String::New(env, value);
        });
  }

  // exchange(key, value: string) -> Promise<string[]>: every rank's value, in rank order.
  Napi::Value Exchange(const Napi::CallbackInfo& info) {
    auto group = Group();
    std::string key = ToString(info[0], "key");
    std::string value = ToString(info[1], "value");
    return RunAsync<std::vector<std::string>>(
        info.Env(), [group, key, value] { return group->Exchange(key, value); },
        [](Napi::Env env, std::vector<std::string>& values) -> Napi::Value {
          return FromStrings(env, values);
        });
  }

  // add(key, delta) -> Promise<number>: the counter's new value (atomic across ranks).
  Napi::Value Add(const Napi::CallbackInfo& info) {
    auto group = Group();
    std::string key = ToString(info[0], "key");
    int64_t delta = ToInteger(info[1], "delta");
    return RunAsync<int64_t>(
        info.Env(), [group, key, delta] { return group->Add(key, delta); },
        [](Napi::Env env, int64_t& value) -> Napi::Value {
          return Napi::Number::New(env, static_cast<double>(value));
        });
  }

  // failure() -> string | null: the watchdog's finding, naming the rank.
  Napi::Value Failure(const Napi::CallbackInfo& info) {
    if (!state_->group) return info.Env().Null();
    auto failure = state_->group->Failure();
    return failure ? Napi::Value(Napi::String::New(info.Env(), *failure)) : info.Env().Null();
  }

  // leave(error?: string) -> Promise<void>: with an error, the others are told why.
  Napi::Value Leave(const Napi::CallbackInfo& info) {
    auto group = state_->group;
    std::optional<std::string> error = ToOptionalString(info[0], "error");
    state_->group.reset();
    if (!group) return RunAsync<bool>(info.Env(), [] { return true; }, Undefined);
    return RunAsync<bool>(
        info.Env(),
        [group, error] {
          if (error) {
            group->LeaveWithError(*error);
          } else {
            group->Leave();
          }
          return true;
        },
        Undefined);
  }

  std::shared_ptr<State> state_;
};

// distributedBackends() -> { gloo: boolean, nccl: boolean, missing: { gloo, nccl } }: what this
// build of the addon can join, and what to install for the rest.
Napi::Value Backends(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto out = Napi::Object::New(env);
  auto missing = Napi::Object::New(env);
  for (const char* backend : {"gloo", "nccl"}) {
    bool built = DistributedBackendBuilt(backend);
    out.Set(backend, built);
    missing.Set(backend,
                built ? env.Null() : Napi::String::New(env, DistributedBackendMissing(backend)));
  }
  out.Set("missing", missing);
  return out;
}

Napi::FunctionReference* constructor = nullptr;

}  // namespace

std::shared_ptr<ProcessGroup> UnwrapProcessGroup(Napi::Value value, const std::string& name) {
  if (!value.IsObject() || constructor == nullptr ||
      !value.As<Napi::Object>().InstanceOf(constructor->Value())) {
    throw ArgumentTypeError(name + " must be a NativeProcessGroup");
  }
  return ProcessGroupWrap::Unwrap(value.As<Napi::Object>())->Group();
}

void InitDistributedBindings(Napi::Env env, Napi::Object exports) {
  Napi::Function cls = ProcessGroupWrap::Define(env);
  // Kept for the process's lifetime (one addon instance per process), for InstanceOf checks.
  constructor = new Napi::FunctionReference(Napi::Persistent(cls));
  exports.Set("NativeProcessGroup", cls);
  ExportFunction<Backends>(env, exports, "distributedBackends");
}

}  // namespace mentallam
