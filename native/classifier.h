// The model object behind the JS Classifier: a Llama sequence classifier with DoRA adapters, its
// optimizer and the train / predict / adapter operations. Not thread-safe: the binding runs one
// operation at a time per instance.
#pragma once

#include <torch/torch.h>

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "dora.h"
#include "hidden_state_cache.h"
#include "llama.h"
#include "shared_prefix.h"
#include "train_step.h"

namespace mentallam {

class GradientSync;  // gradient_sync.h

struct ClassifierOptions {
  std::string model_dir;
  DoraOptions dora;
  std::optional<int64_t> num_labels;
  std::string device = "cpu";
  std::string dtype;  // "" = bfloat16 on CUDA, float32 on CPU
  bool gradient_checkpointing = false;
  uint64_t seed = 0;
  std::optional<int64_t> pad_token_id;
  // How shared-prefix rows attend (shared_prefix.h).
  SharedAttention shared_attention = SharedAttention::kBlockMask;
};

// A batch on the model's device: input_ids, attention_mask (B, L) int64; labels (B,) or, for
// shared-prefix rows, (S,) one per segment; or undefined.
struct Batch {
  torch::Tensor input_ids, attention_mask, labels;
  std::optional<SegmentLayout> segments;  // shared-prefix rows; nullopt = one sequence per row
  // With segments: the rows' hidden states entering cache->Layer() come from the cache (row b is
  // unit cache_units[b]; each segment is the unit's segment cache_segments[s]).
  std::shared_ptr<const HiddenStateCache> cache;
  std::vector<int64_t> cache_units, cache_segments;
  // Rows: B; examples (logits, labels): B, or S with segments.
  int64_t Examples() const;
};

struct TrainOptions {
  double lr = 0;
  double weight_decay = 0;
  double max_grad_norm = 0;  // <= 0 or infinite: no clipping (the norm is still returned)
  bool accumulate = false;   // true: backward only, the optimizer step comes later
  std::optional<double> pos_weight;
  double beta1 = 0.9, beta2 = 0.999, eps = 1e-8;  // torch.optim.AdamW defaults
};

struct TrainResult {
  double loss = 0;
  double grad_norm = 0;  // pre-clip norm; NaN for an accumulate-only call
};

struct ClassifierInfo {
  int64_t num_layers, hidden_size, num_labels, vocab_size;
  std::optional<int64_t> pad_token_id;
  std::string device, dtype;
  int64_t base_parameters, trainable_parameters, optimizer_step, accumulated_micro_batches;
  bool merged, gradient_checkpointing;
  SharedAttention shared_attention;
  int64_t first_adapted_layer;
  DoraOptions dora;
  int64_t parameter_bytes;
};

class Classifier {
 public:
  static std::unique_ptr<Classifier> Load(const ClassifierOptions& options);

  TrainResult TrainStep(const Batch& batch, const TrainOptions& options);
  // (B, C) fp32 on the CPU, in inference mode.
  torch::Tensor PredictLogits(const Batch& batch);
  // (B,) P(label = 1): softmax[:, 1] for C >= 2, sigmoid for C == 1.
  torch::Tensor PredictProba(const Batch& batch);
  // One forward + backward without an optimizer step; returns the loss and the gradients by peft
  // key (CPU copies) and clears them again. For tests of checkpointing and of gradients.
  std::pair<double, std::vector<std::pair<std::string, torch::Tensor>>> Gradients(
      const Batch& batch, bool checkpointing);

  // Computes the hidden states entering cache.Layer() for the batch's shared-prefix rows (every
  // segment of each unit), in inference mode, and stores row b as unit units[b].
  void FillHiddenStateCache(HiddenStateCache& cache, const Batch& batch,
                            const std::vector<int64_t>& units);

  void SaveAdapter(const std::string& dir);
  void LoadAdapter(const std::string& dir);
  void ResetAdapter(uint64_t seed);
  // Drops gradients accumulated since the last optimizer step (e.g. after an out-of-memory error
  // in the middle of an accumulation window, before retrying it with smaller micro-batches).
  void DiscardGradients();
  void Merge();
  ClassifierInfo Info() const;

  // Data-parallel training (gradient_sync.h): the last micro-batch of each step sums the
  // trainable gradients over the ranks during its backward, and the step divides by the ranks'
  // total micro-batch count. nullptr: this process alone.
  void SetGradientSync(std::shared_ptr<GradientSync> sync);
  GradientSync* Sync() const { return sync_.get(); }
  // A step in which this rank has no micro-batch of its own (a global batch with fewer
  // micro-batches than ranks): it contributes what it accumulated, if anything, and steps.
  TrainResult SyncStep(const TrainOptions& options);

  // Moves user arrays to a batch on the model's device, checking sizes and the segment layout.
  // Labels (when given) hold one value per example: batch_size, or sum(segment_counts).
  Batch MakeBatch(const int32_t* ids, const uint8_t* mask, int64_t batch_size, int64_t seq_len,
                  std::optional<SegmentLayout> segments, const float* float_labels,
                  const int32_t* int_labels) const;
  const LlamaModel& Model() const { return model_; }

 private:
  // The forward input of `batch`; a shared-prefix plan is built into `plan`, which must outlive
  // the forward (and its backward).
  ForwardInput Input(const Batch& batch, std::optional<SharedPrefixPlan>& plan) const;
  torch::Tensor Logits(const Batch& batch, bool training, bool checkpointing);
  // UserError naming `name` unless the cache fits this model and no layer below its layer has
  // an adapter.
  void CheckCache(const HiddenStateCache& cache, const std::string& name) const;
  std::vector<NamedParam> TrainableParams();
  // Averages the window's gradients, clips, steps AdamW and clears the gradients.
  TrainResult OptimizerStep(const TrainOptions& options, TrainResult result);
  void ClearGrads();
  void InvalidateNorms();

  ClassifierOptions options_;
  LlamaModel model_;
  AdamW optimizer_;
  int64_t accumulated_ = 0;
  bool merged_ = false;
  std::shared_ptr<GradientSync> sync_;
};

// Seeds libtorch's global generators (dropout masks).
void ManualSeed(uint64_t seed);

}  // namespace mentallam
