#include "dora.h"

#include <algorithm>
#include <cmath>

#include "errors.h"

namespace mentallam {
namespace {

// Row block for fp32 work on a low-precision W: bounds the fp32 temporary to block x i floats.
constexpr int64_t kRowBlock = 1024;

}  // namespace

double DoraOptions::Scaling() const {
  // peft update_layer: alpha / r, or alpha / sqrt(r) with rsLoRA.
  return use_rslora ? alpha / std::sqrt(static_cast<double>(r)) : alpha / static_cast<double>(r);
}

void DoraOptions::ResolveLayers(int64_t num_layers) {
  if (top_layers) {
    if (layers) throw UserError("dora.layers: give a list of layers or { top: K }, not both");
    if (*top_layers < 1 || *top_layers > num_layers) {
      throw UserError("dora.layers.top must be between 1 and the model's " +
                      std::to_string(num_layers) + " layers, got " + std::to_string(*top_layers));
    }
    std::vector<int64_t> top;
    for (int64_t i = num_layers - *top_layers; i < num_layers; ++i) top.push_back(i);
    layers = top;
    top_layers.reset();
    return;
  }
  if (!layers) return;
  if (layers->empty()) throw UserError("dora.layers must name at least one layer (null = all)");
  std::vector<int64_t> sorted = *layers;
  std::sort(sorted.begin(), sorted.end());
  for (std::size_t i = 0; i < sorted.size(); ++i) {
    if (sorted[i] < 0 || sorted[i] >= num_layers) {
      throw UserError("dora.layers: layer " + std::to_string(sorted[i]) +
                      " does not exist (the model has layers 0.." + std::to_string(num_layers - 1) +
                      ")");
    }
    if (i > 0 && sorted[i] == sorted[i - 1]) {
      throw UserError("dora.layers names layer " + std::to_string(sorted[i]) + " twice");
    }
  }
  layers = sorted;
}

bool DoraOptions::AdaptsLayer(int64_t index) const {
  return !layers || std::binary_search(layers->begin(), layers->end(), index);
}

torch::Tensor RowSquaredNorms(const torch::Tensor& weight) {
  torch::NoGradGuard no_grad;
  if (weight.scalar_type() == torch::kFloat32) return weight.square().sum(1);
  std::vector<torch::Tensor> parts;
  for (int64_t start = 0; start < weight.size(0); start += kRowBlock) {
    auto block = weight.slice(0, start, std::min(start + kRowBlock, weight.size(0)));
    parts.push_back(block.to(torch::kFloat32).square().sum(1));
  }
  return torch::cat(parts);
}

torch::Tensor LowRankRowNorm(const torch::Tensor& w2, const torch::Tensor& weight,
                             const torch::Tensor& a, const torch::Tensor& b, double scaling) {
  torch::NoGradGuard no_grad;
  // P = W A^T: (o, r). The only o*i*r term; in row blocks when W is not fp32.
  torch::Tensor p;
  if (weight.scalar_type() == torch::kFloat32) {
    p = torch::matmul(weight, a.t());
  } else {
    std::vector<torch::Tensor> parts;
    for (int64_t start = 0; start < weight.size(0); start += kRowBlock) {
      auto block = weight.slice(0, start, std::min(start + kRowBlock, weight.size(0)));
      parts.push_back(torch::matmul(block.to(torch::kFloat32), a.t()));
    }
    p = torch::cat(parts);
  }
  auto cross = (b * p).sum(1);                      // (o,)  B_j . (A W_j^T)
  auto gram = torch::matmul(a, a.t());              // (r, r) A A^T
  auto quad = (torch::matmul(b, gram) * b).sum(1);  // (o,)  B_j (A A^T) B_j^T
  auto n2 = w2 + (2 * scaling) * cross + (scaling * scaling) * quad;
  return n2.clamp_min(0).sqrt();
}

DoraLinear::DoraLinear(torch::Tensor weight, torch::Tensor bias)
    : weight_(std::move(weight)), bias_(std::move(bias)) {}

void DoraLinear::InitAdapter(int64_t r, double scaling, double dropout, at::Generator& gen) {
  torch::NoGradGuard no_grad;
  auto fp32 = torch::TensorOptions().dtype(torch::kFloat32).device(weight_.device());
  int64_t in = InFeatures();
  // kaiming_uniform_(a = sqrt(5)) on an (r, in) weight: gain = sqrt(2 / (1 + 5)), bound =
  // gain * sqrt(3 / fan_in) = 1 / sqrt(in). Drawn on the CPU so a seed gives the same A anywhere.
  double bound = 1.0 / std::sqrt(static_cast<double>(in));
  auto a = torch::empty({r, in}, torch::kFloat32);
  a.uniform_(-bound, bound, gen);
  if (!w2_.defined()) w2_ = RowSquaredNorms(weight_);
  // m = ||W + s B A|| with B = 0 is ||W||; taking it as sqrt(w2) makes n == m bitwise, so a fresh
  // adapter leaves the base model's output exactly unchanged.
  SetAdapter(a.to(fp32.device()), torch::zeros({OutFeatures(), r}, fp32), w2_.sqrt(), scaling,
             dropout);
}

void DoraLinear::SetAdapter(const torch::Tensor& a, const torch::Tensor& b, const torch::Tensor& m,
                            double scaling, double dropout) {
  torch::NoGradGuard no_grad;
  if (merged_) throw UserError("the model is merged: its adapters cannot be replaced");
  auto fp32 = torch::TensorOptions().dtype(torch::kFloat32).device(weight_.device());
  if (a.dim() != 2 || a.size(1) != InFeatures() || b.dim() != 2 || b.size(0) != OutFeatures() ||
      b.size(1) != a.size(0) || m.dim() != 1 || m.size(0) != OutFeatures()) {
    throw UserError("adapter shapes A " + c10::str(a.sizes()) + ", B " + c10::str(b.sizes()) +
                    ", m " + c10::str(m.sizes()) + " do not fit a Linear of weight " +
                    c10::str(weight_.sizes()));
  }
  if (!w2_.defined()) w2_ = RowSquaredNorms(weight_);
  a_ = a.to(fp32, /*non_blocking=*/false, /*copy=*/true).contiguous().set_requires_grad(true);
  b_ = b.to(fp32, false, true).contiguous().set_requires_grad(true);
  m_ = m.to(fp32, false, true).contiguous().set_requires_grad(true);
  scaling_ = scaling;
  dropout_ = dropout;
  InvalidateNorm();
}

void DoraLinear::RemoveAdapter() {
  a_ = b_ = m_ = torch::Tensor();
  InvalidateNorm();
}

torch::Tensor DoraLinear::Norm() const {
  if (norm_.defined()) return norm_;
  if (c10::InferenceMode::is_enabled()) {
    return LowRankRowNorm(w2_, weight_, a_.detach(), b_.detach(), scaling_);
  }
  norm_ = LowRankRowNorm(w2_, weight_, a_.detach(), b_.detach(), scaling_);
  return norm_;
}

torch::Tensor DoraLinear::Forward(const torch::Tensor& x, bool training) const {
  if (!a_.defined() || merged_) {
    return bias_.defined() ? torch::linear(x, weight_, bias_) : torch::linear(x, weight_);
  }
  // peft casts x to the adapter dtype (fp32) for the adapter path.
  auto xa = x.to(a_.scalar_type());
  bool drop = training && dropout_ > 0;
  auto g = m_ / Norm();  // (o,): grad reaches m only
  if (!drop) {
    // peft computes y = (Wx + b) + (g - 1) * Wx + g * (s * BAx), which autograd pays for with two
    // saved (..., o) activations per module. The same value, written y = g * (Wx + s * BAx) + b,
    // saves one: the product's other factor g is (o,). Rounding differs from peft's order at the
    // 1e-7 level (covered by the parity tests).
    auto base = torch::linear(x, weight_);                             // (..., o) base dtype
    auto lora = torch::linear(torch::linear(xa, a_), b_);              // (..., o) fp32 = B A x
    auto y = g * lora.mul(scaling_).add(base.to(lora.scalar_type()));  // (..., o) fp32
    if (bias_.defined()) y = y + bias_;
    return y.to(x.scalar_type());
  }
  auto result = bias_.defined() ? torch::linear(x, weight_, bias_) : torch::linear(x, weight_);
  auto xd = torch::dropout(xa, dropout_, /*train=*/true);
  auto lora = torch::linear(torch::linear(xd, a_), b_);  // (..., o) = B A x~
  // peft recomputes the base product on the dropped-out input (no bias).
  auto base_result = torch::linear(xd.to(weight_.scalar_type()), weight_);
  // Same operation order as peft's DoraLinearVariant: (g - 1) * base + (g * lora) * s.
  auto delta = (g - 1) * base_result + g * lora * scaling_;
  return (result + delta).to(result.scalar_type());
}

void DoraLinear::Merge() {
  torch::NoGradGuard no_grad;
  if (merged_) return;
  if (!a_.defined()) return;
  auto w = weight_.to(torch::kFloat32);
  // peft merge: dW = s (B @ A); n = ||W + dW|| per row; W' = (m / n)[:, None] (W + dW).
  auto combined = w + scaling_ * torch::matmul(b_, a_);
  auto n = torch::linalg_vector_norm(combined, 2, {1});
  weight_ = ((m_ / n).unsqueeze(1) * combined).to(weight_.scalar_type()).contiguous();
  merged_ = true;
  InvalidateNorm();
}

}  // namespace mentallam
