// Device selection and runtime facts about the libtorch the addon was built against.
#pragma once

#include <torch/torch.h>

#include <string>

namespace mentallam {

struct RuntimeInfo {
  std::string torch_version;
  bool cuda_available;
  int64_t cuda_device_count;
  int64_t threads;
  bool built_with_cuda;
};

RuntimeInfo GetRuntimeInfo();

// "cpu", "cuda" or "cuda:N" -> a device; a CUDA device on a CPU-only libtorch or a machine
// without a GPU throws UserError saying so.
torch::Device ParseDevice(const std::string& name);

// "float32" | "bfloat16" | "float16" -> dtype; anything else throws UserError.
torch::Dtype ParseDtype(const std::string& name);
// The name ParseDtype reads ("float32", "bfloat16", "float16"; libtorch's for others).
std::string DtypeName(torch::Dtype dtype);

// Records libtorch's intra-op thread count (>= 1). OpenMP keeps the count per thread, so it
// takes effect where computations run: ApplyNumThreads() on the compute thread, before its next
// job. The JS thread never waits for a running computation to change or read it.
void SetNumThreads(int64_t threads);

// Called on the compute thread before each job; applies a count set since the last call.
void ApplyNumThreads();

}  // namespace mentallam
