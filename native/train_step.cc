#include "train_step.h"

#include <cmath>

#include "errors.h"

namespace mentallam {

torch::Tensor ClassificationLoss(const torch::Tensor& logits, const torch::Tensor& labels,
                                 std::optional<double> pos_weight) {
  int64_t classes = logits.size(1);
  if (labels.size(0) != logits.size(0)) {
    throw UserError("labels has " + std::to_string(labels.size(0)) + " entries for a batch of " +
                    std::to_string(logits.size(0)));
  }
  if (classes == 1) {
    auto target = labels.to(logits.scalar_type());
    auto options = torch::nn::functional::BinaryCrossEntropyWithLogitsFuncOptions();
    if (pos_weight) options.pos_weight(torch::full({1}, *pos_weight, logits.options()));
    return torch::nn::functional::binary_cross_entropy_with_logits(logits.squeeze(-1), target,
                                                                   options);
  }
  auto target = labels.to(torch::kInt64);
  if (!torch::equal(target.to(labels.scalar_type()), labels)) {
    throw UserError("labels must be integers for a classifier with " + std::to_string(classes) +
                    " labels");
  }
  auto [lo, hi] = torch::aminmax(target);
  if (lo.item<int64_t>() < 0 || hi.item<int64_t>() >= classes) {
    throw UserError("labels must be in [0, " + std::to_string(classes) + ")");
  }
  auto options = torch::nn::functional::CrossEntropyFuncOptions();
  if (pos_weight) {
    if (classes != 2) throw UserError("posWeight needs numLabels 1 or 2");
    options.weight(torch::tensor({1.0, *pos_weight}, logits.options()));
  }
  return torch::nn::functional::cross_entropy(logits, target, options);
}

double ClipGradNorm(const std::vector<NamedParam>& params, double max_norm) {
  torch::NoGradGuard no_grad;
  std::vector<torch::Tensor> norms;
  for (const auto& p : params) {
    if (p.tensor.grad().defined()) norms.push_back(torch::linalg_vector_norm(p.tensor.grad(), 2));
  }
  if (norms.empty()) return 0;
  // total = ||(||g_1||, ..., ||g_n||)||, as clip_grad_norm_ (foreach=None) computes it.
  auto total = torch::linalg_vector_norm(torch::stack(norms), 2);
  if (std::isfinite(max_norm) && max_norm > 0) {
    auto coef = (max_norm / (total + 1e-6)).clamp_max(1.0);
    for (const auto& p : params) {
      if (p.tensor.grad().defined()) p.tensor.mutable_grad().mul_(coef);
    }
  }
  return total.item<double>();
}

void AdamW::Step(const std::vector<NamedParam>& params, double lr, double weight_decay) {
  torch::NoGradGuard no_grad;
  ++step_;
  double bias_correction1 = 1 - std::pow(beta1, static_cast<double>(step_));
  double bias_correction2 = 1 - std::pow(beta2, static_cast<double>(step_));
  double step_size = lr / bias_correction1;
  double bias_correction2_sqrt = std::sqrt(bias_correction2);
  for (const auto& p : params) {
    const auto& grad = p.tensor.grad();
    if (!grad.defined()) continue;
    auto& state = state_[p.name];
    if (!state.exp_avg.defined()) {
      state.exp_avg = torch::zeros_like(p.tensor);
      state.exp_avg_sq = torch::zeros_like(p.tensor);
    }
    auto param = p.tensor;  // shares storage with the leaf
    if (p.decay && weight_decay != 0) param.mul_(1 - lr * weight_decay);
    state.exp_avg.lerp_(grad, 1 - beta1);
    state.exp_avg_sq.mul_(beta2).addcmul_(grad, grad, 1 - beta2);
    auto denom = (state.exp_avg_sq.sqrt() / bias_correction2_sqrt).add_(eps);
    param.addcdiv_(state.exp_avg, denom, -step_size);
  }
}

}  // namespace mentallam
