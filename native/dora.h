// peft's DoRA on a frozen Linear (dora-llama-spec.md section 3), with the per-row weight norm
// computed from low-rank factors (section 6.2) so that no out x in temporary is ever formed.
//
//   W: (o, i) frozen base weight (base dtype), b: (o,) optional frozen bias
//   A: (r, i) fp32 trainable, B: (o, r) fp32 trainable, m: (o,) fp32 trainable magnitude
//   s = alpha / r  (alpha / sqrt(r) with rsLoRA)
//   n_j = || W_j + s * B_j A ||  (detached), g = m / n
//   eval or p = 0:  y = W x + b + (g - 1) * (W x) + g * s * B A x
//   train, p > 0:   y = W x + b + (g - 1) * (W x~) + g * s * B A x~,   x~ = dropout(x)
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace mentallam {

struct DoraOptions {
  int64_t r = 8;
  double alpha = 16;
  double dropout = 0;
  std::vector<std::string> target_modules = {"q_proj",    "k_proj",  "v_proj",   "o_proj",
                                             "gate_proj", "up_proj", "down_proj"};
  bool use_rslora = false;
  // peft's layers_to_transform: the decoder layers that get adapters, ascending; nullopt = all.
  std::optional<std::vector<int64_t>> layers;
  // "the top K layers": resolved into `layers` once the layer count is known (ResolveLayers).
  std::optional<int64_t> top_layers;

  double Scaling() const;
  // Checks `layers` / `top_layers` against a model of `num_layers` layers and folds top_layers
  // into a sorted `layers` list (UserError naming dora.layers when out of range or repeated).
  void ResolveLayers(int64_t num_layers);
  // Whether layer `index` gets adapters.
  bool AdaptsLayer(int64_t index) const;
};

class DoraLinear {
 public:
  DoraLinear() = default;
  // `weight` (o, i) and the optional `bias` (o,) are frozen and kept in their own dtype.
  DoraLinear(torch::Tensor weight, torch::Tensor bias);

  // Attaches a fresh adapter as peft initialises it: A ~ kaiming_uniform(a = sqrt 5) =
  // U(-1/sqrt(i), 1/sqrt(i)) drawn from `gen`, B = 0, m = row norms of W. fp32 on W's device.
  void InitAdapter(int64_t r, double scaling, double dropout, at::Generator& gen);
  // Replaces A, B, m with given values (copied, fp32, made trainable leaves).
  void SetAdapter(const torch::Tensor& a, const torch::Tensor& b, const torch::Tensor& m,
                  double scaling, double dropout);
  void RemoveAdapter();

  bool HasAdapter() const { return a_.defined(); }
  bool Merged() const { return merged_; }
  int64_t OutFeatures() const { return weight_.size(0); }
  int64_t InFeatures() const { return weight_.size(1); }

  // y = layer(x); x: (..., i) in the base dtype -> (..., o) in the base dtype.
  torch::Tensor Forward(const torch::Tensor& x, bool training) const;

  // n = ||W + s B A|| per row, (o,) fp32, detached. Computed from the cached ||W_j||^2, W A^T
  // and A A^T; cached until InvalidateNorm() (called after each optimizer step or adapter
  // change), so every micro-batch of an accumulation window and every checkpoint recompute
  // reuses the same tensor.
  // Under InferenceMode the value is computed but not cached (an inference tensor cannot be
  // saved for a later backward).
  torch::Tensor Norm() const;
  void InvalidateNorm() const { norm_ = torch::Tensor(); }

  // W' = (m / n)[:, None] * (W + s B A) (n taken directly, as peft's merge does), cast to W's
  // dtype; the adapter stays attached but is no longer applied.
  void Merge();

  torch::Tensor& A() { return a_; }
  torch::Tensor& B() { return b_; }
  torch::Tensor& M() { return m_; }
  const torch::Tensor& Weight() const { return weight_; }
  const torch::Tensor& Bias() const { return bias_; }
  double Scaling() const { return scaling_; }

 private:
  torch::Tensor weight_, bias_;
  torch::Tensor w2_;  // (o,) fp32 ||W_j||^2, computed once since W is frozen
  torch::Tensor a_, b_, m_;
  double scaling_ = 1;
  double dropout_ = 0;
  bool merged_ = false;
  mutable torch::Tensor norm_;
};

// Row norms ||W_j + s B_j A|| from the factors (dora-llama-spec.md 6.2); exposed for tests.
// w2: (o,), weight: (o, i), a: (r, i), b: (o, r) -> (o,) fp32.
torch::Tensor LowRankRowNorm(const torch::Tensor& w2, const torch::Tensor& weight,
                             const torch::Tensor& a, const torch::Tensor& b, double scaling);

// Sum over rows of W*W in fp32, in row blocks so a bf16 W is never copied to fp32 whole.
torch::Tensor RowSquaredNorms(const torch::Tensor& weight);

}  // namespace mentallam
