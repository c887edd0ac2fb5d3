// The CUDA caching allocator's memory figures and knobs (what torch.cuda.memory_stats(),
// reset_peak_memory_stats(), empty_cache() and set_per_process_memory_fraction() give Python),
// for dispose(), the out-of-memory back-off, the GPU tests and the GPU bench.
//
// Only a CUDA build (MENTALLAM_WITH_CUDA) has these; on a CPU build ReleaseCachedCudaMemory is a
// no-op and the others throw UserError.
#pragma once

#include <cstdint>

namespace mentallam {

struct CudaMemoryStats {
  int64_t device;
  // Bytes held by live tensors, and by the allocator (live + cached blocks), now and at their
  // peak since the last ResetCudaPeakMemory.
  int64_t allocated, reserved, max_allocated, max_reserved;
  // cudaMalloc failures the allocator recovered from by freeing its cache, and those it did not
  // (each one an out-of-memory error).
  int64_t alloc_retries, ooms;
  // The device as the driver sees it (cudaMemGetInfo).
  int64_t free, total;
  // The cap set by SetCudaMemoryFraction (1 when none).
  double memory_fraction;
};

CudaMemoryStats GetCudaMemoryStats(int64_t device);

void ResetCudaPeakMemory(int64_t device);

// Caps what the allocator may reserve on `device` to fraction x total memory; an allocation past
// the cap is a real out-of-memory error (after the allocator has freed its cache and retried).
void SetCudaMemoryFraction(double fraction, int64_t device);

// Returns the allocator's cached, unused blocks to the driver. A no-op on a CPU build and before
// anything ran on CUDA.
void ReleaseCachedCudaMemory();

// Waits for every kernel queued on `device`.
void SynchronizeCuda(int64_t device);

}  // namespace mentallam
