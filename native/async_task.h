// Runs a C++ computation off the JS thread and settles a JS Promise with its result. A libuv
// worker hands the computation to the compute thread (compute_thread.h) and waits for it.
// Any exception (c10::Error, std::exception, anything) becomes a rejected Promise with a
// one-line message and the error's `code` (js_values.h ToJsError), never a crash. Values the
// computation reads from JS (typed arrays) must be pinned with Keep() so the garbage collector
// cannot free them while the worker runs.
#pragma once

#include <napi.h>

#include <exception>
#include <functional>
#include <memory>
#include <vector>

#include "compute_thread.h"
#include "device.h"
#include "js_values.h"

namespace mentallam {

template <typename Result>
class AsyncTask : public Napi::AsyncWorker {
 public:
  using Compute = std::function<Result()>;
  using Convert = std::function<Napi::Value(Napi::Env, Result&)>;

  AsyncTask(Napi::Env env, Compute compute, Convert convert)
      : Napi::AsyncWorker(env),
        deferred_(Napi::Promise::Deferred::New(env)),
        compute_(std::move(compute)),
        convert_(std::move(convert)) {}

  Napi::Promise Promise() { return deferred_.Promise(); }

  void Keep(Napi::Value value) { pinned_.push_back(Napi::Persistent(value.As<Napi::Object>())); }

  // Runs on the worker thread: no N-API calls here.
  void Execute() override {
    try {
      RunOnComputeThread([this] {
        ApplyNumThreads();
        result_ = compute_();
      });
    } catch (...) {
      // Kept whole, so OnError can give the JS error its type and code.
      error_ = std::current_exception();
      SetError("native error");
    }
  }

  void OnOK() override {
    Napi::Env env = Env();
    try {
      deferred_.Resolve(convert_(env, result_));
    } catch (const Napi::Error& error) {
      deferred_.Reject(error.Value());
    } catch (...) {
      deferred_.Reject(ToJsError(env, std::current_exception()).Value());
    }
  }

  void OnError(const Napi::Error&) override { deferred_.Reject(ToJsError(Env(), error_).Value()); }

 private:
  Napi::Promise::Deferred deferred_;
  Compute compute_;
  Convert convert_;
  Result result_{};
  std::exception_ptr error_;
  std::vector<Napi::ObjectReference> pinned_;
};

// Creates the task, queues it and returns its Promise.
template <typename Result>
Napi::Promise RunAsync(Napi::Env env, typename AsyncTask<Result>::Compute compute,
                       typename AsyncTask<Result>::Convert convert,
                       std::vector<Napi::Value> keep_alive = {}) {
  auto* task = new AsyncTask<Result>(env, std::move(compute), std::move(convert));
  for (auto& value : keep_alive) task->Keep(value);
  auto promise = task->Promise();
  task->Queue();  // the worker deletes itself after OnOK/OnError
  return promise;
}

}  // namespace mentallam
