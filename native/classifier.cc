#include "classifier.h"

#include <ATen/CPUGeneratorImpl.h>

#include <cmath>
#include <filesystem>
#include <limits>

#include "adapter_io.h"
#include "device.h"
#include "errors.h"
#include "gradient_sync.h"

namespace mentallam {
namespace fs = std::filesystem;

namespace {

void CheckDoraOptions(const DoraOptions& dora) {
  if (dora.r < 1) throw UserError("dora.r must be >= 1");
  if (!(dora.alpha > 0)) throw UserError("dora.alpha must be > 0");
  if (!(dora.dropout >= 0 && dora.dropout < 1)) throw UserError("dora.dropout must be in [0, 1)");
  if (dora.target_modules.empty()) throw UserError("dora.targetModules must not be empty");
}

void CheckTrainOptions(const TrainOptions& options) {
  if (!std::isfinite(options.lr) || options.lr < 0)
    throw UserError("lr must be a finite number >= 0");
  if (!std::isfinite(options.weight_decay) || options.weight_decay < 0) {
    throw UserError("weightDecay must be a finite number >= 0");
  }
  if (options.pos_weight && !(*options.pos_weight > 0)) throw UserError("posWeight must be > 0");
  if (!(options.beta1 >= 0 && options.beta1 < 1 && options.beta2 >= 0 && options.beta2 < 1)) {
    throw UserError("adamBetas must be in [0, 1)");
  }
  if (!(options.eps > 0)) throw UserError("adamEps must be > 0");
}

}  // namespace

std::unique_ptr<Classifier> Classifier::Load(const ClassifierOptions& options) {
  CheckDoraOptions(options.dora);
  auto device = ParseDevice(options.device);
  torch::Dtype dtype = options.dtype.empty()
                           ? (device.is_cuda() ? torch::kBFloat16 : torch::kFloat32)
                           : ParseDtype(options.dtype);
  LlamaModel::LoadOptions load;
  load.device = device;
  load.dtype = dtype;
  load.num_labels = options.num_labels;
  load.pad_token_id = options.pad_token_id;
  load.seed = options.seed;
  auto classifier = std::make_unique<Classifier>();
  classifier->options_ = options;
  classifier->model_ = LlamaModel::Load(options.model_dir, load);
  classifier->options_.dora.ResolveLayers(classifier->model_.Config().num_hidden_layers);
  classifier->ResetAdapter(options.seed);
  // A target that names no Linear is a configuration mistake, as in peft.
  bool any = false;
  for (auto& layer : classifier->model_.Layers()) {
    for (auto& [name, linear] : layer.Linears()) any = any || linear->HasAdapter();
  }
  if (!any) throw UserError("dora.targetModules match no Linear of the model's dora.layers");
  return classifier;
}

void Classifier::ResetAdapter(uint64_t seed) {
  if (merged_) throw UserError("the model is merged: reload it to get adapters back");
  // One CPU generator for every A, in layer and module order: the same seed gives the same
  // adapter on any device.
  auto gen = at::make_generator<at::CPUGeneratorImpl>(seed);
  double scaling = options_.dora.Scaling();
  auto& layers = model_.Layers();
  for (int64_t i = 0; i < static_cast<int64_t>(layers.size()); ++i) {
    for (auto& [name, linear] : layers[i].Linears()) {
      std::string full = "model.layers." + std::to_string(i) + "." + name;
      if (options_.dora.AdaptsLayer(i) && IsTargeted(full, options_.dora.target_modules)) {
        linear->InitAdapter(options_.dora.r, scaling, options_.dora.dropout, gen);
      } else {
        linear->RemoveAdapter();
      }
    }
  }
  {
    torch::NoGradGuard no_grad;
    model_.Score().copy_(model_.InitialScore());
  }
  ClearGrads();
  optimizer_.Reset();
  accumulated_ = 0;
}

std::vector<NamedParam> Classifier::TrainableParams() {
  std::vector<NamedParam> params;
  auto& layers = model_.Layers();
  for (int64_t i = 0; i < static_cast<int64_t>(layers.size()); ++i) {
    for (auto& [name, linear] : layers[i].Linears()) {
      if (!linear->HasAdapter()) continue;
      params.push_back({PeftAdapterKey(i, name, "lora_A.weight"), linear->A(), true});
      params.push_back({PeftAdapterKey(i, name, "lora_B.weight"), linear->B(), true});
      params.push_back({PeftAdapterKey(i, name, "lora_magnitude_vector"), linear->M(), false});
    }
  }
  params.push_back({kPeftScoreKey, model_.Score(), true});
  return params;
}

void Classifier::ClearGrads() {
  for (auto& p : TrainableParams()) {
    if (p.tensor.grad().defined()) p.tensor.mutable_grad().reset();
  }
}

void Classifier::InvalidateNorms() {
  for (auto& layer : model_.Layers()) {
    for (auto& [name, linear] : layer.Linears()) linear->InvalidateNorm();
  }
}

int64_t Batch::Examples() const { return segments ? segments->Segments() : input_ids.size(0); }

Batch Classifier::MakeBatch(const int32_t* ids, const uint8_t* mask, int64_t batch_size,
                            int64_t seq_len, std::optional<SegmentLayout> segments,
                            const float* float_labels, const int32_t* int_labels) const {
  if (batch_size < 1 || seq_len < 1) throw UserError("batchSize and seqLen must be >= 1");
  if (segments) segments->Check(batch_size, seq_len, mask);
  int64_t examples = segments ? segments->Segments() : batch_size;
  Batch batch;
  batch.segments = std::move(segments);
  auto cpu_ids = torch::from_blob(const_cast<int32_t*>(ids), {batch_size, seq_len}, torch::kInt32)
                     .to(torch::kInt64);
  auto cpu_mask = torch::from_blob(const_cast<uint8_t*>(mask), {batch_size, seq_len}, torch::kUInt8)
                      .to(torch::kInt64);
  auto device = model_.Device();
  batch.input_ids = cpu_ids.to(device);
  batch.attention_mask = cpu_mask.to(device);
  if (float_labels) {
    batch.labels = torch::from_blob(const_cast<float*>(float_labels), {examples}, torch::kFloat32)
                       .clone()
                       .to(device);
  } else if (int_labels) {
    batch.labels = torch::from_blob(const_cast<int32_t*>(int_labels), {examples}, torch::kInt32)
                       .to(torch::kInt64)
                       .to(device);
  }
  return batch;
}

ForwardInput Classifier::Input(const Batch& batch, std::optional<SharedPrefixPlan>& plan) const {
  ForwardInput input;
  input.input_ids = batch.input_ids;
  input.attention_mask = batch.attention_mask;
  if (batch.segments) {
    plan = PlanSharedPrefix(*batch.segments, batch.input_ids, model_.PadTokenId(),
                            options_.shared_attention, model_.Dtype(), model_.Device());
    input.shared = &*plan;
  }
  if (batch.cache) {
    CheckCache(*batch.cache, "batch.hiddenStates.cache");
    input.hidden = batch.cache
                       ->Gather(batch.cache_units, batch.cache_segments, *batch.segments,
                                batch.input_ids.size(1))
                       .to(model_.Device());
    input.start_layer = batch.cache->Layer();
  }
  return input;
}

void Classifier::CheckCache(const HiddenStateCache& cache, const std::string& name) const {
  if (cache.HiddenSize() != model_.Config().hidden_size || cache.Dtype() != model_.Dtype()) {
    throw UserError(name + " holds " + std::to_string(cache.HiddenSize()) + "-wide " +
                    DtypeName(cache.Dtype()) + " states; this model's are " +
                    std::to_string(model_.Config().hidden_size) + "-wide " +
                    DtypeName(model_.Dtype()));
  }
  if (cache.Layer() > model_.Config().num_hidden_layers) {
    throw UserError(name + " holds the input of layer " + std::to_string(cache.Layer()) +
                    "; the model has " + std::to_string(model_.Config().num_hidden_layers));
  }
  int64_t first = model_.FirstAdaptedLayer();
  if (cache.Layer() > first) {
    throw UserError(name + " holds the input of layer " + std::to_string(cache.Layer()) +
                    ", but layer " + std::to_string(first) +
                    " has an adapter: the cached states would not be the ones it trains on");
  }
}

void Classifier::FillHiddenStateCache(HiddenStateCache& cache, const Batch& batch,
                                      const std::vector<int64_t>& units) {
  if (!batch.segments) throw UserError("fillHiddenStateCache needs batch.segments");
  if (batch.cache) throw UserError("fillHiddenStateCache computes states: no batch.hiddenStates");
  if (static_cast<int64_t>(units.size()) != batch.input_ids.size(0)) {
    throw UserError("fillHiddenStateCache: units must have batchSize = " +
                    std::to_string(batch.input_ids.size(0)) + " entries (got " +
                    std::to_string(units.size()) + ")");
  }
  CheckCache(cache, "cache");
  c10::InferenceMode guard;
  std::optional<SharedPrefixPlan> plan;
  auto hidden = model_.HiddenStatesBefore(Input(batch, plan), cache.Layer());
  const auto& layout = *batch.segments;
  auto lengths = layout.RowLengths();
  std::size_t next = 0;
  for (std::size_t b = 0; b < units.size(); ++b) {
    std::vector<int64_t> segments(layout.segment_lengths.begin() + next,
                                  layout.segment_lengths.begin() + next + layout.segment_counts[b]);
    next += layout.segment_counts[b];
    cache.Store(units[b], layout.prefix_lengths[b], std::move(segments),
                hidden[b].narrow(0, 0, lengths[b]));
  }
}

torch::Tensor Classifier::Logits(const Batch& batch, bool training, bool checkpointing) {
  std::optional<SharedPrefixPlan> plan;
  return model_.Forward(Input(batch, plan), training, checkpointing);
}

TrainResult Classifier::TrainStep(const Batch& batch, const TrainOptions& options) {
  if (merged_) throw UserError("the model is merged: trainStep needs the unmerged adapters");
  if (!batch.labels.defined()) throw UserError("trainStep needs labels");
  CheckTrainOptions(options);
  torch::AutoGradMode grad(true);
  auto logits = Logits(batch, /*training=*/true, options_.gradient_checkpointing);
  auto loss = ClassificationLoss(logits, batch.labels, options.pos_weight);
  // Data-parallel: this backward also sums the gradients over the ranks, bucket by bucket.
  if (sync_ && !options.accumulate) sync_->Arm(TrainableParams(), accumulated_ + 1);
  loss.backward();
  ++accumulated_;
  TrainResult result;
  result.loss = loss.item<double>();
  if (options.accumulate) {
    result.grad_norm = std::numeric_limits<double>::quiet_NaN();
    return result;
  }
  return OptimizerStep(options, result);
}

TrainResult Classifier::SyncStep(const TrainOptions& options) {
  if (merged_) throw UserError("the model is merged: syncStep needs the unmerged adapters");
  if (!sync_) throw UserError("syncStep is for data-parallel training (no gradient sync set)");
  CheckTrainOptions(options);
  sync_->Arm(TrainableParams(), accumulated_);
  TrainResult result;
  result.loss = std::numeric_limits<double>::quiet_NaN();
  return OptimizerStep(options, result);
}

void Classifier::SetGradientSync(std::shared_ptr<GradientSync> sync) {
  if (accumulated_ > 0) throw UserError("the gradient sync cannot change inside a step");
  sync_ = std::move(sync);
}

TrainResult Classifier::OptimizerStep(const TrainOptions& options, TrainResult result) {
  auto params = TrainableParams();
  // The mean over the micro-batches of the window (of every rank's, when data-parallel), as a
  // Trainer dividing each loss by the accumulation count would have it.
  int64_t micro_batches = sync_ ? sync_->Finish() : accumulated_;
  if (micro_batches < 1) throw UserError("an optimizer step without any micro-batch");
  {
    torch::NoGradGuard no_grad;
    if (micro_batches > 1) {
      for (auto& p : params) {
        if (p.tensor.grad().defined()) p.tensor.mutable_grad().div_(micro_batches);
      }
    }
  }
  result.grad_norm = ClipGradNorm(params, options.max_grad_norm);
  optimizer_.beta1 = options.beta1;
  optimizer_.beta2 = options.beta2;
  optimizer_.eps = options.eps;
  optimizer_.Step(params, options.lr, options.weight_decay);
  ClearGrads();
  accumulated_ = 0;
  // A and B changed: the DoRA norms are recomputed once, at the next forward.
  InvalidateNorms();
  return result;
}

std::pair<double, std::vector<std::pair<std::string, torch::Tensor>>> Classifier::Gradients(
    const Batch& batch, bool checkpointing) {
  if (merged_) throw UserError("the model is merged: no adapter gradients");
  if (!batch.labels.defined()) throw UserError("gradients needs labels");
  if (accumulated_ > 0) throw UserError("gradients cannot run inside an accumulation window");
  torch::AutoGradMode grad(true);
  auto logits = Logits(batch, /*training=*/true, checkpointing);
  auto loss = ClassificationLoss(logits, batch.labels, std::nullopt);
  loss.backward();
  std::vector<std::pair<std::string, torch::Tensor>> grads;
  for (auto& p : TrainableParams()) {
    auto g = p.tensor.grad();
    grads.emplace_back(
        p.name, g.defined() ? g.to(torch::kCPU).clone() : torch::zeros_like(p.tensor, torch::kCPU));
  }
  ClearGrads();
  return {loss.item<double>(), grads};
}

torch::Tensor Classifier::PredictLogits(const Batch& batch) {
  c10::InferenceMode guard;
  return Logits(batch, /*training=*/false, /*checkpointing=*/false).to(torch::kCPU).contiguous();
}

torch::Tensor Classifier::PredictProba(const Batch& batch) {
  auto logits = PredictLogits(batch);
  c10::InferenceMode guard;
  if (logits.size(1) == 1) return torch::sigmoid(logits.squeeze(1)).contiguous();
  return torch::softmax(logits, 1).select(1, 1).contiguous();
}

void Classifier::SaveAdapter(const std::string& dir) {
  mentallam::SaveAdapter(dir, model_, options_.dora, fs::absolute(options_.model_dir).string(),
                         &optimizer_);
}

void Classifier::DiscardGradients() {
  if (sync_) sync_->Disarm();
  ClearGrads();
  accumulated_ = 0;
}

void Classifier::LoadAdapter(const std::string& dir) {
  if (merged_) throw UserError("the model is merged: reload it before loading an adapter");
  ClearGrads();
  accumulated_ = 0;
  options_.dora = mentallam::LoadAdapter(dir, model_, &optimizer_);
}

void Classifier::Merge() {
  if (merged_) return;
  ClearGrads();
  for (auto& layer : model_.Layers()) {
    for (auto& [name, linear] : layer.Linears()) linear->Merge();
  }
  merged_ = true;
}

ClassifierInfo Classifier::Info() const {
  const auto& config = model_.Config();
  ClassifierInfo info;
  info.num_layers = config.num_hidden_layers;
  info.hidden_size = config.hidden_size;
  info.num_labels = model_.NumLabels();
  info.vocab_size = config.vocab_size;
  info.pad_token_id = model_.PadTokenId();
  info.device = model_.Device().str();
  info.dtype = DtypeName(model_.Dtype());
  info.base_parameters = model_.BaseParameterCount();
  int64_t trainable = 0;
  for (const auto& layer : model_.Layers()) {
    for (const auto& t : layer.AdapterTensors()) trainable += t.numel();
  }
  auto& score = const_cast<LlamaModel&>(model_).Score();
  trainable += score.numel();
  info.trainable_parameters = trainable;
  info.optimizer_step = optimizer_.StepCount();
  info.accumulated_micro_batches = accumulated_;
  info.merged = merged_;
  info.gradient_checkpointing = options_.gradient_checkpointing;
  info.shared_attention = options_.shared_attention;
  info.first_adapted_layer = model_.FirstAdaptedLayer();
  info.dora = options_.dora;
  int64_t elem = model_.Dtype() == torch::kFloat32 ? 4 : 2;
  info.parameter_bytes = info.base_parameters * elem + trainable * 4;
  return info;
}

void ManualSeed(uint64_t seed) { torch::manual_seed(seed); }

}  // namespace mentallam
