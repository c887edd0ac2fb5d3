// The pieces of one optimizer step: the classification loss, clip_grad_norm and AdamW, written
// to match torch.nn.functional / torch.nn.utils / torch.optim.AdamW (single-tensor path) op by
// op, so a step here equals a step in PyTorch to rounding.
#pragma once

#include <torch/torch.h>

#include <map>
#include <optional>
#include <string>
#include <vector>

namespace mentallam {

// A trainable tensor with a stable name (its peft key) and whether weight decay applies
// (matrices only: A, B and the score head; never the magnitude vectors).
struct NamedParam {
  std::string name;
  torch::Tensor tensor;
  bool decay = true;
};

// logits (B, C) fp32, labels (B,): C == 1 -> BCE with logits (labels 0/1 as float, optional
// pos_weight); C >= 2 -> cross entropy on integer labels (pos_weight, when given and C == 2,
// becomes class weights [1, pos_weight]). Mean over the batch, as transformers/torch do.
torch::Tensor ClassificationLoss(const torch::Tensor& logits, const torch::Tensor& labels,
                                 std::optional<double> pos_weight);

// torch.nn.utils.clip_grad_norm_: total L2 norm over all grads (returned, before clipping);
// grads are scaled by min(1, max_norm / (norm + 1e-6)) when max_norm is finite and > 0.
double ClipGradNorm(const std::vector<NamedParam>& params, double max_norm);

// torch.optim.AdamW (decoupled weight decay, no amsgrad), one shared step count. State is keyed
// by parameter name so it can be saved next to an adapter and restored.
class AdamW {
 public:
  struct State {
    torch::Tensor exp_avg, exp_avg_sq;
  };
  double beta1 = 0.9, beta2 = 0.999, eps = 1e-8;

  // One step over params with .grad defined; weight decay only where param.decay.
  void Step(const std::vector<NamedParam>& params, double lr, double weight_decay);
  void Reset() {
    step_ = 0;
    state_.clear();
  }
  int64_t StepCount() const { return step_; }
  void SetStepCount(int64_t step) { step_ = step; }
  std::map<std::string, State>& States() { return state_; }

 private:
  int64_t step_ = 0;
  std::map<std::string, State> state_;
};

}  // namespace mentallam
