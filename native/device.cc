#include "device.h"

#include <torch/version.h>

#include <atomic>

#include "errors.h"

namespace mentallam {
namespace {

// 0 until setNumThreads is called; the count last asked for afterwards.
std::atomic<int64_t> requested_threads{0};
// What the compute thread last applied (read only there).
int64_t applied_threads = 0;

}  // namespace

RuntimeInfo GetRuntimeInfo() {
  RuntimeInfo info;
  info.torch_version = TORCH_VERSION;
  info.cuda_available = torch::cuda::is_available();
  info.cuda_device_count = info.cuda_available ? torch::cuda::device_count() : 0;
  // Before any setNumThreads every thread starts from libtorch's default, so this thread's
  // count is also the compute thread's.
  int64_t requested = requested_threads.load();
  info.threads = requested > 0 ? requested : at::get_num_threads();
#ifdef MENTALLAM_WITH_CUDA
  info.built_with_cuda = true;
#else
  info.built_with_cuda = false;
#endif
  return info;
}

torch::Device ParseDevice(const std::string& name) {
  if (name == "cpu") return torch::Device(torch::kCPU);
  if (name == "cuda" || name.rfind("cuda:", 0) == 0) {
#ifndef MENTALLAM_WITH_CUDA
    throw UserError("device '" + name +
                    "' was requested, but this addon was built against a CPU-only libtorch; "
                    "rebuild with LIBTORCH pointing at a CUDA build, or use device 'cpu'");
#else
    if (!torch::cuda::is_available()) {
      throw UserError("device '" + name +
                      "' was requested, but no CUDA device is available on this machine");
    }
    int64_t index = 0;
    if (name != "cuda") {
      std::string digits = name.substr(5);
      if (digits.empty() || digits.size() > 4 ||
          digits.find_first_not_of("0123456789") != std::string::npos) {
        throw UserError("unknown device '" + name + "': expected 'cpu', 'cuda' or 'cuda:N'");
      }
      index = std::stoll(digits);
    }
    if (index >= static_cast<int64_t>(torch::cuda::device_count())) {
      throw UserError("device '" + name + "' does not exist: " +
                      std::to_string(torch::cuda::device_count()) + " CUDA device(s) visible");
    }
    return torch::Device(torch::kCUDA, static_cast<c10::DeviceIndex>(index));
#endif
  }
  throw UserError("unknown device '" + name + "': expected 'cpu', 'cuda' or 'cuda:N'");
}

torch::Dtype ParseDtype(const std::string& name) {
  if (name == "float32" || name == "fp32") return torch::kFloat32;
  if (name == "bfloat16" || name == "bf16") return torch::kBFloat16;
  if (name == "float16" || name == "fp16") return torch::kFloat16;
  throw UserError("unknown dtype '" + name + "': expected float32, bfloat16 or float16");
}

std::string DtypeName(torch::Dtype dtype) {
  switch (dtype) {
    case torch::kFloat32:
      return "float32";
    case torch::kBFloat16:
      return "bfloat16";
    case torch::kFloat16:
      return "float16";
    default:
      return c10::toString(dtype);
  }
}

void SetNumThreads(int64_t threads) {
  if (threads < 1) throw UserError("threads must be >= 1, got " + std::to_string(threads));
  requested_threads.store(threads);
}

void ApplyNumThreads() {
  int64_t requested = requested_threads.load();
  if (requested > 0 && requested != applied_threads) {
    at::set_num_threads(static_cast<int>(requested));
    applied_threads = requested;
  }
}

}  // namespace mentallam
