#include "matmul.h"

#include <torch/torch.h>

namespace mentallam {

std::vector<float> Matmul(const float* a, int64_t m, int64_t k, const float* b, int64_t k2,
                          int64_t n) {
  torch::NoGradGuard no_grad;
  // from_blob wraps the caller's memory without a copy; the caller keeps it alive.
  auto lhs = torch::from_blob(const_cast<float*>(a), {m, k}, torch::kFloat32);
  auto rhs = torch::from_blob(const_cast<float*>(b), {k2, n}, torch::kFloat32);
  auto product = torch::matmul(lhs, rhs).contiguous();
  return std::vector<float>(product.data_ptr<float>(), product.data_ptr<float>() + m * n);
}

}  // namespace mentallam
