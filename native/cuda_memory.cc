#include "cuda_memory.h"

#include <string>

#include "errors.h"

#ifdef MENTALLAM_WITH_CUDA
#include <c10/cuda/CUDACachingAllocator.h>
#include <c10/cuda/CUDAFunctions.h>
#include <torch/cuda.h>
#endif

namespace mentallam {

#ifdef MENTALLAM_WITH_CUDA
namespace {

// Throws unless `device` names a visible CUDA device. Asking the allocator about any other index
// would abort inside libtorch rather than throw.
c10::DeviceIndex CheckedDevice(int64_t device) {
  int64_t count = static_cast<int64_t>(torch::cuda::device_count());
  if (count == 0) throw UserError("no CUDA device is visible to this process");
  if (device < 0 || device >= count) {
    throw UserError("CUDA device " + std::to_string(device) +
                    " does not exist: " + std::to_string(count) + " visible");
  }
  return static_cast<c10::DeviceIndex>(device);
}

}  // namespace

CudaMemoryStats GetCudaMemoryStats(int64_t device) {
  c10::DeviceIndex index = CheckedDevice(device);
  namespace alloc = c10::cuda::CUDACachingAllocator;
  auto stats = alloc::getDeviceStats(index);
  constexpr auto kAll = static_cast<size_t>(c10::CachingAllocator::StatType::AGGREGATE);
  CudaMemoryStats out{};
  out.device = device;
  out.allocated = stats.allocated_bytes[kAll].current;
  out.reserved = stats.reserved_bytes[kAll].current;
  out.max_allocated = stats.allocated_bytes[kAll].peak;
  out.max_reserved = stats.reserved_bytes[kAll].peak;
  out.alloc_retries = stats.num_alloc_retries;
  out.ooms = stats.num_ooms;
  auto [free, total] = alloc::get()->getMemoryInfo(index);
  out.free = static_cast<int64_t>(free);
  out.total = static_cast<int64_t>(total);
  out.memory_fraction = alloc::getMemoryFraction(index);
  return out;
}

void ResetCudaPeakMemory(int64_t device) {
  c10::cuda::CUDACachingAllocator::resetPeakStats(CheckedDevice(device));
}

void SetCudaMemoryFraction(double fraction, int64_t device) {
  if (!(fraction > 0 && fraction <= 1)) {
    throw UserError("memory fraction must be in (0, 1], got " + std::to_string(fraction));
  }
  c10::cuda::CUDACachingAllocator::setMemoryFraction(fraction, CheckedDevice(device));
}

void ReleaseCachedCudaMemory() {
  // Before CUDA is initialised there is nothing cached, and device_count() would initialise it.
  if (!c10::cuda::CUDACachingAllocator::get()->initialized()) return;
  c10::cuda::CUDACachingAllocator::emptyCache();
}

void SynchronizeCuda(int64_t device) { torch::cuda::synchronize(CheckedDevice(device)); }

#else

namespace {
[[noreturn]] void NoCuda() {
  throw UserError("this addon was built against a CPU-only libtorch: no CUDA memory to report");
}
}  // namespace

CudaMemoryStats GetCudaMemoryStats(int64_t) { NoCuda(); }
void ResetCudaPeakMemory(int64_t) { NoCuda(); }
void SetCudaMemoryFraction(double, int64_t) { NoCuda(); }
void ReleaseCachedCudaMemory() {}
void SynchronizeCuda(int64_t) { NoCuda(); }

#endif

}  // namespace mentallam
