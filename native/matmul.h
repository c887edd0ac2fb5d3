// A plain matrix product of two row-major float32 matrices: the addon's smallest real compute
// call, used to check the build, the worker-thread plumbing and error propagation.
#pragma once

#include <cstdint>
#include <vector>

namespace mentallam {

// a: [m, k], b: [k2, n]; k must equal k2 (libtorch's own check raises otherwise). Returns [m, n].
std::vector<float> Matmul(const float* a, int64_t m, int64_t k, const float* b, int64_t k2,
                          int64_t n);

}  // namespace mentallam
