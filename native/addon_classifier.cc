// Bindings for the NativeClassifier class (classifier.h). A NativeClassifier JS object owns one
// Classifier. Every computing method runs on a worker thread; one operation at a time per
// instance (a second one is rejected, naming the first), and dispose() drops the model at once
// or, when a task is running, when that task ends.
#include <atomic>
#include <functional>
#include <memory>

#include "addon.h"
#include "async_task.h"
#include "classifier.h"
#include "cpu_allocator.h"
#include "cuda_memory.h"
#include "gradient_sync.h"
#include "js_values.h"

namespace mentallam {
namespace {

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

// load(options): { modelDir, dora: { r, alpha?, dropout?, useRslora?, targetModules?, layers? },
// numLabels?, device?, dtype?, gradientCheckpointing?, seed, padTokenId? }
ClassifierOptions ToClassifierOptions(Napi::Value value) {
  Napi::Object object = ToObject(value, "options");
  ClassifierOptions options;
  options.model_dir = ToString(object.Get("modelDir"), "modelDir");
  Napi::Object dora = ToObject(object.Get("dora"), "dora");
  options.dora.r = ToInteger(dora.Get("r"), "dora.r");
  options.dora.alpha = ToNumber(dora.Get("alpha"), "dora.alpha", options.dora.alpha);
  options.dora.dropout = ToNumber(dora.Get("dropout"), "dora.dropout", 0);
  options.dora.use_rslora = ToBool(dora.Get("useRslora"), "dora.useRslora", false);
  if (!dora.Get("targetModules").IsUndefined()) {
    options.dora.target_modules = ToStringList(dora.Get("targetModules"), "dora.targetModules");
  }
  // layers: null / undefined (every layer), [i, j, ...] or { top: K }.
  Napi::Value layers = dora.Get("layers");
  if (layers.IsArray()) {
    options.dora.layers = ToIntegerList(layers, "dora.layers", kNonNegative);
  } else if (!layers.IsUndefined() && !layers.IsNull()) {
    Napi::Object top =
        ToObject(layers, "dora.layers (null, a list of layer indices or { top: K })");
    options.dora.top_layers = ToInteger(top.Get("top"), "dora.layers.top", kPositive);
  }
  options.num_labels = ToOptionalInteger(object.Get("numLabels"), "numLabels");
  options.device = ToOptionalString(object.Get("device"), "device").value_or(options.device);
  options.dtype = ToOptionalString(object.Get("dtype"), "dtype").value_or(options.dtype);
  options.gradient_checkpointing =
      ToBool(object.Get("gradientCheckpointing"), "gradientCheckpointing", false);
  options.seed = static_cast<uint64_t>(ToInteger(object.Get("seed"), "seed", kNonNegative));
  options.pad_token_id = ToOptionalInteger(object.Get("padTokenId"), "padTokenId");
  if (auto mode = ToOptionalString(object.Get("sharedAttention"), "sharedAttention")) {
    options.shared_attention = ParseSharedAttention(*mode, "sharedAttention");
  }
  return options;
}

// trainStep(batch, options): { lr, weightDecay?, maxGradNorm?, accumulate?, posWeight?,
// adamEps?, adamBetas? }
TrainOptions ToTrainOptions(Napi::Value value) {
  Napi::Object object = ToObject(value, "options");
  TrainOptions options;
  options.lr = ToNumber(object.Get("lr"), "options.lr");
  options.weight_decay = ToNumber(object.Get("weightDecay"), "options.weightDecay", 0);
  options.max_grad_norm = ToNumber(object.Get("maxGradNorm"), "options.maxGradNorm", 0);
  options.accumulate = ToBool(object.Get("accumulate"), "options.accumulate", false);
  options.pos_weight = ToOptionalNumber(object.Get("posWeight"), "options.posWeight");
  options.eps = ToNumber(object.Get("adamEps"), "options.adamEps", options.eps);
  Napi::Value betas = object.Get("adamBetas");
  if (!betas.IsUndefined() && !betas.IsNull()) {
    if (!betas.IsArray() || betas.As<Napi::Array>().Length() != 2) {
      throw ArgumentTypeError("options.adamBetas must be [beta1, beta2]");
    }
    auto pair = betas.As<Napi::Array>();
    options.beta1 = ToNumber(pair.Get(0u), "options.adamBetas[0]");
    options.beta2 = ToNumber(pair.Get(1u), "options.adamBetas[1]");
  }
  return options;
}

std::vector<int64_t> ToIndexVector(Napi::Value value, const std::string& name) {
  auto array = ToTypedArray<int32_t>(value, name);
  return std::vector<int64_t>(array.Data(), array.Data() + array.ElementLength());
}

// segments: { prefixLengths: Int32Array, segmentCounts: Int32Array, segmentLengths: Int32Array }
// (shared_prefix.h); undefined / null = one sequence per row.
std::optional<SegmentLayout> ToSegmentLayout(Napi::Value value) {
  if (value.IsUndefined() || value.IsNull()) return std::nullopt;
  Napi::Object object = ToObject(value, "batch.segments");
  SegmentLayout layout;
  layout.prefix_lengths =
      ToIndexVector(object.Get("prefixLengths"), "batch.segments.prefixLengths");
  layout.segment_counts =
      ToIndexVector(object.Get("segmentCounts"), "batch.segments.segmentCounts");
  layout.segment_lengths =
      ToIndexVector(object.Get("segmentLengths"), "batch.segments.segmentLengths");
  return layout;
}

// A batch: { inputIds: Int32Array, attentionMask: Uint8Array, labels?: Float32Array |
// Int32Array, batchSize, seqLen, segments? }, copied onto the model's device here, on the JS
// thread, so the worker never touches JS memory.
Batch ToBatch(const Classifier& model, Napi::Value value) {
  Napi::Object object = ToObject(value, "batch");
  auto ids = ToTypedArray<int32_t>(object.Get("inputIds"), "batch.inputIds");
  auto mask = ToTypedArray<uint8_t>(object.Get("attentionMask"), "batch.attentionMask");
  int64_t batch_size = ToInteger(object.Get("batchSize"), "batch.batchSize", kPositive);
  int64_t seq_len = ToInteger(object.Get("seqLen"), "batch.seqLen", kPositive);
  int64_t cells = 0;
  if (__builtin_mul_overflow(batch_size, seq_len, &cells) ||
      static_cast<int64_t>(ids.ElementLength()) != cells ||
      static_cast<int64_t>(mask.ElementLength()) != cells) {
    throw ArgumentRangeError(
        "batch.inputIds and batch.attentionMask must have batchSize * seqLen = " +
        std::to_string(batch_size) + " * " + std::to_string(seq_len) + " entries (got " +
        std::to_string(ids.ElementLength()) + " and " + std::to_string(mask.ElementLength()) + ")");
  }
  auto segments = ToSegmentLayout(object.Get("segments"));
  // The layout first: the label count below depends on it.
  if (segments) segments->Check(batch_size, seq_len, mask.Data());
  int64_t examples = segments ? segments->Segments() : batch_size;
  const float* float_labels = nullptr;
  const int32_t* int_labels = nullptr;
  Napi::Value labels = object.Get("labels");
  if (!labels.IsUndefined() && !labels.IsNull()) {
    size_t length = 0;
    if (IsTypedArrayOf<float>(labels)) {
      float_labels = labels.As<Napi::Float32Array>().Data();
      length = labels.As<Napi::Float32Array>().ElementLength();
    } else if (IsTypedArrayOf<int32_t>(labels)) {
      int_labels = labels.As<Napi::Int32Array>().Data();
      length = labels.As<Napi::Int32Array>().ElementLength();
    } else {
      throw ArgumentTypeError("batch.labels must be a Float32Array or an Int32Array");
    }
    if (length != static_cast<size_t>(examples)) {
      throw ArgumentRangeError(
          std::string("batch.labels must have ") +
          (segments ? "one entry per segment, sum(segments.segmentCounts) = " : "batchSize = ") +
          std::to_string(examples) + " entries (got " + std::to_string(length) + ")");
    }
  }
  // hiddenStates: { cache: NativeHiddenStateCache, units: Int32Array (batchSize),
  // segments: Int32Array (one per segment) }: the rows' states from the frozen-bottom cache.
  Napi::Value hidden = object.Get("hiddenStates");
  std::shared_ptr<const HiddenStateCache> cache;
  std::vector<int64_t> units, unit_segments;
  if (!hidden.IsUndefined() && !hidden.IsNull()) {
    if (!segments) {
      throw ArgumentTypeError("batch.hiddenStates needs batch.segments (shared-prefix rows)");
    }
    Napi::Object states = ToObject(hidden, "batch.hiddenStates");
    cache = ToHiddenStateCache(states.Get("cache"), "batch.hiddenStates.cache");
    units = ToIndexVector(states.Get("units"), "batch.hiddenStates.units");
    unit_segments = ToIndexVector(states.Get("segments"), "batch.hiddenStates.segments");
    if (static_cast<int64_t>(units.size()) != batch_size) {
      throw ArgumentRangeError(
          "batch.hiddenStates.units must have batchSize = " + std::to_string(batch_size) +
          " entries (got " + std::to_string(units.size()) + ")");
    }
    if (static_cast<int64_t>(unit_segments.size()) != examples) {
      throw ArgumentRangeError("batch.hiddenStates.segments must have one entry per segment, " +
                               std::to_string(examples) + " (got " +
                               std::to_string(unit_segments.size()) + ")");
    }
  }
  Batch batch = model.MakeBatch(ids.Data(), mask.Data(), batch_size, seq_len, std::move(segments),
                                float_labels, int_labels);
  batch.cache = std::move(cache);
  batch.cache_units = std::move(units);
  batch.cache_segments = std::move(unit_segments);
  return batch;
}

Napi::Object FromClassifierInfo(Napi::Env env, const ClassifierInfo& i) {
  auto out = Napi::Object::New(env);
  auto num = [env](double v) { return Napi::Number::New(env, v); };
  out.Set("numLayers", num(i.num_layers));
  out.Set("hiddenSize", num(i.hidden_size));
  out.Set("numLabels", num(i.num_labels));
  out.Set("vocabSize", num(i.vocab_size));
  out.Set("padTokenId", FromOptional(env, i.pad_token_id));
  out.Set("device", i.device);
  out.Set("dtype", i.dtype);
  out.Set("baseParameters", num(i.base_parameters));
  out.Set("trainableParameters", num(i.trainable_parameters));
  out.Set("optimizerStep", num(i.optimizer_step));
  out.Set("accumulatedMicroBatches", num(i.accumulated_micro_batches));
  out.Set("merged", i.merged);
  out.Set("gradientCheckpointing", i.gradient_checkpointing);
  out.Set("sharedAttention", SharedAttentionName(i.shared_attention));
  out.Set("firstAdaptedLayer", num(i.first_adapted_layer));
  out.Set("parameterBytes", num(i.parameter_bytes));
  auto dora = Napi::Object::New(env);
  dora.Set("r", num(i.dora.r));
  dora.Set("alpha", num(i.dora.alpha));
  dora.Set("dropout", num(i.dora.dropout));
  dora.Set("useRslora", i.dora.use_rslora);
  dora.Set("targetModules", FromStrings(env, i.dora.target_modules));
  dora.Set("layers", i.dora.layers ? Napi::Value(FromIntegers(env, *i.dora.layers)) : env.Null());
  out.Set("dora", dora);
  return out;
}

Napi::Value Undefined(Napi::Env env, bool&) { return env.Undefined(); }

Napi::Value ToTensorValue(Napi::Env env, torch::Tensor& t) { return FromTensor(env, t); }

class ClassifierWrap : public Napi::ObjectWrap<ClassifierWrap> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(
        env, "NativeClassifier",
        {Bind<&ClassifierWrap::Load>("load"), Bind<&ClassifierWrap::TrainStep>("trainStep"),
         Bind<&ClassifierWrap::PredictLogits>("predictLogits"),
         Bind<&ClassifierWrap::PredictProba>("predictProba"),
         Bind<&ClassifierWrap::Gradients>("gradients"),
         Bind<&ClassifierWrap::FillHiddenStateCache>("fillHiddenStateCache"),
         Bind<&ClassifierWrap::SaveAdapter>("saveAdapter"),
         Bind<&ClassifierWrap::LoadAdapter>("loadAdapter"),
         Bind<&ClassifierWrap::ResetAdapter>("resetAdapter"),
         Bind<&ClassifierWrap::DiscardGradients>("discardGradients"),
         Bind<&ClassifierWrap::Merge>("merge"), Bind<&ClassifierWrap::Info>("info"),
         Bind<&ClassifierWrap::SetGradientSync>("setGradientSync"),
         Bind<&ClassifierWrap::SyncStep>("syncStep"),
         Bind<&ClassifierWrap::GradientSyncStats>("gradientSyncStats"),
         Bind<&ClassifierWrap::Dispose>("dispose")});
  }

  explicit ClassifierWrap(const Napi::CallbackInfo& info)
      : Napi::ObjectWrap<ClassifierWrap>(info), state_(std::make_shared<ClassifierState>()) {}

 private:
  using Method = Napi::Value (ClassifierWrap::*)(const Napi::CallbackInfo&);

  // A method as a JS method whose C++ exceptions leave as JS errors with a code.
  template <Method M>
  Napi::Value GuardedMethod(const Napi::CallbackInfo& info) {
    return Guard(info.Env(), [this, &info] { return (this->*M)(info); });
  }

  template <Method M>
  static PropertyDescriptor Bind(const char* name) {
    return InstanceMethod<&ClassifierWrap::GuardedMethod<M>>(name);
  }

  // Throws unless the instance is in a state to run an operation (which needs a loaded model,
  // or for load, none yet).
  void CheckState(bool need_model) const {
    if (state_->disposed) throw UserError("Classifier is disposed");
    if (state_->busy) throw UserError("Classifier is busy with " + state_->busy_with);
    if (need_model && !state_->model) throw UserError("Classifier is not loaded");
    if (!need_model && state_->model) throw UserError("Classifier is already loaded");
  }

  // CheckState, then marks the instance busy with `op`.
  std::shared_ptr<Classifier> Claim(const std::string& op, bool need_model = true) {
    CheckState(need_model);
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

  // Claims first, then reads the batch, releasing the claim if the batch is bad.
  Batch ClaimBatch(const Napi::CallbackInfo& info, const std::string& op,
                   std::shared_ptr<Classifier>* model) {
    *model = Claim(op);
    try {
      return ToBatch(**model, info[0]);
    } catch (...) {
      state_->busy = false;
      throw;
    }
  }

  Napi::Value Load(const Napi::CallbackInfo& info) {
    ClassifierOptions options = ToClassifierOptions(info[0]);
    Claim("load", /*need_model=*/false);
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
    TrainOptions options = ToTrainOptions(info[1]);
    std::shared_ptr<Classifier> model;
    Batch batch = ClaimBatch(info, "trainStep", &model);
    return Run<TrainResult>(
        info.Env(), model, [batch, options](Classifier& m) { return m.TrainStep(batch, options); },
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
        ToTensorValue);
  }

  Napi::Value PredictProba(const Napi::CallbackInfo& info) {
    std::shared_ptr<Classifier> model;
    Batch batch = ClaimBatch(info, "predictProba", &model);
    return Run<torch::Tensor>(
        info.Env(), model, [batch](Classifier& m) { return m.PredictProba(batch); }, ToTensorValue);
  }

  // gradients(batch, checkpointing) -> { loss, grads: { [peft key]: Float32Array } }: for
  // inspecting and testing gradients without an optimizer step.
  Napi::Value Gradients(const Napi::CallbackInfo& info) {
    bool checkpointing = ToBool(info[1], "checkpointing", false);
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
          for (auto& [name, t] : result.second) grads.Set(name, FromTensor(env, t));
          out.Set("grads", grads);
          return out;
        });
  }

  // fillHiddenStateCache(cache, batch, units: Int32Array): stores the hidden states entering
  // cache.layer of each row b (every segment) as unit units[b].
  Napi::Value FillHiddenStateCache(const Napi::CallbackInfo& info) {
    auto cache = ToHiddenStateCache(info[0], "fillHiddenStateCache(cache, batch, units): cache");
    auto units = ToIndexVector(info[2], "fillHiddenStateCache(cache, batch, units): units");
    std::shared_ptr<Classifier> model = Claim("fillHiddenStateCache");
    Batch batch;
    try {
      batch = ToBatch(*model, info[1]);
    } catch (...) {
      state_->busy = false;
      throw;
    }
    return Run<bool>(
        info.Env(), model,
        [cache, batch, units](Classifier& m) {
          m.FillHiddenStateCache(*cache, batch, units);
          return true;
        },
        Undefined);
  }

  // A model operation without a result.
  Napi::Value RunVoid(Napi::Env env, const std::string& op,
                      std::function<void(Classifier&)> operation) {
    auto model = Claim(op);
    return Run<bool>(
        env, model,
        [operation](Classifier& m) {
          operation(m);
          return true;
        },
        Undefined);
  }

  Napi::Value SaveAdapter(const Napi::CallbackInfo& info) {
    std::string dir = ToString(info[0], "saveAdapter(dir): dir");
    return RunVoid(info.Env(), "saveAdapter", [dir](Classifier& m) { m.SaveAdapter(dir); });
  }

  Napi::Value LoadAdapter(const Napi::CallbackInfo& info) {
    std::string dir = ToString(info[0], "loadAdapter(dir): dir");
    return RunVoid(info.Env(), "loadAdapter", [dir](Classifier& m) { m.LoadAdapter(dir); });
  }

  Napi::Value ResetAdapter(const Napi::CallbackInfo& info) {
    auto seed = static_cast<uint64_t>(ToInteger(info[0], "seed", kNonNegative));
    return RunVoid(info.Env(), "resetAdapter", [seed](Classifier& m) { m.ResetAdapter(seed); });
  }

  // After an out-of-memory error the allocator's cache holds the failed step's blocks, cut to
  // the sizes of the larger micro-batch: give them back so the smaller retry can allocate.
  Napi::Value DiscardGradients(const Napi::CallbackInfo& info) {
    return RunVoid(info.Env(), "discardGradients", [](Classifier& m) {
      m.DiscardGradients();
      if (m.Model().Device().is_cuda()) ReleaseCachedCudaMemory();
    });
  }

  Napi::Value Merge(const Napi::CallbackInfo& info) {
    return RunVoid(info.Env(), "merge", [](Classifier& m) { m.Merge(); });
  }

  // setGradientSync(group: NativeProcessGroup | null, bucketBytes): data-parallel training
  // (gradient_sync.h); null goes back to this process alone.
  Napi::Value SetGradientSync(const Napi::CallbackInfo& info) {
    std::shared_ptr<GradientSync> sync;
    if (!info[0].IsNull() && !info[0].IsUndefined()) {
      auto group = UnwrapProcessGroup(info[0], "group");
      sync = std::make_shared<GradientSync>(group, ToInteger(info[1], "bucketBytes", kPositive));
    }
    auto model = Claim("setGradientSync");
    return Run<bool>(
        info.Env(), model,
        [sync](Classifier& m) {
          m.SetGradientSync(sync);
          return true;
        },
        Undefined);
  }

  // syncStep(options) -> { loss: NaN, gradNorm }: a data-parallel step with no micro-batch here.
  Napi::Value SyncStep(const Napi::CallbackInfo& info) {
    TrainOptions options = ToTrainOptions(info[0]);
    auto model = Claim("syncStep");
    return Run<TrainResult>(
        info.Env(), model, [options](Classifier& m) { return m.SyncStep(options); },
        [](Napi::Env env, TrainResult& result) -> Napi::Value {
          auto out = Napi::Object::New(env);
          out.Set("loss", Napi::Number::New(env, result.loss));
          out.Set("gradNorm", Napi::Number::New(env, result.grad_norm));
          return out;
        });
  }

  // gradientSyncStats() -> { buckets, startedInBackward, steps } | null
  Napi::Value GradientSyncStats(const Napi::CallbackInfo& info) {
    CheckState(/*need_model=*/true);
    GradientSync* sync = state_->model->Sync();
    if (sync == nullptr) return info.Env().Null();
    auto stats = sync->LastStats();
    auto out = Napi::Object::New(info.Env());
    out.Set("buckets", Napi::Number::New(info.Env(), static_cast<double>(stats.buckets)));
    out.Set("startedInBackward",
            Napi::Number::New(info.Env(), static_cast<double>(stats.started_in_backward)));
    out.Set("steps", Napi::Number::New(info.Env(), static_cast<double>(stats.steps)));
    return out;
  }

  Napi::Value Info(const Napi::CallbackInfo& info) {
    CheckState(/*need_model=*/true);
    return FromClassifierInfo(info.Env(), state_->model->Info());
  }

  // Drops the model now, or when the running task ends (it holds its own reference).
  Napi::Value Dispose(const Napi::CallbackInfo& info) {
    state_->disposed = true;
    bool on_cuda = state_->model && state_->model->Model().Device().is_cuda();
    state_->model.reset();
    // The model's freed buffers went to the allocators' caches; give them back to the system.
    ReleaseCachedCpuMemory();
    if (on_cuda) ReleaseCachedCudaMemory();
    return info.Env().Undefined();
  }

  std::shared_ptr<ClassifierState> state_;
};

}  // namespace

void InitClassifierBindings(Napi::Env env, Napi::Object exports) {
  exports.Set("NativeClassifier", ClassifierWrap::Define(env));
}

}  // namespace mentallam
