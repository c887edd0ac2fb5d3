#include "cpu_allocator.h"

#include <c10/core/Allocator.h>
#include <c10/core/CPUAllocator.h>
#include <sys/mman.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>
#include <new>
#include <unordered_map>

namespace mentallam {
namespace {

// Below this, glibc's malloc is fast and compact enough; above it, buffers are activations.
constexpr std::size_t kLargeBlock = 256 * 1024;
// Sizes are rounded up to one of four classes per power of two (at most 25 % waste), so buffers
// of nearly equal size, as length-bucketed batches make them, share blocks exactly.
std::size_t RoundUp(std::size_t n) {
  std::size_t power = 1;
  while (power * 2 <= n) power *= 2;
  std::size_t step = power / 4;
  return (n + step - 1) / step * step;
}

class CachingCpuAllocator;
CachingCpuAllocator* instance = nullptr;

// Every DataPtr this allocator hands out, small or large, has context == data and this one
// deleter: libtorch's raw_allocate / raw_deallocate API (which oneDNN's bf16 kernels use for
// scratch memory) requires exactly that, and asserts, from a destructor, so the process
// terminates, when raw_deleter() is null.
void Delete(void* data);

class CachingCpuAllocator final : public c10::Allocator {
 public:
  explicit CachingCpuAllocator(c10::Allocator* fallback)
      : fallback_(fallback), fallback_delete_(fallback->raw_deleter()) {}

  c10::DataPtr allocate(std::size_t n) override {
    if (n < kLargeBlock) {
      c10::DataPtr small = fallback_->allocate(n);
      if (fallback_delete_ == nullptr || small.get() != small.get_context() ||
          small.get_deleter() != fallback_delete_) {
        return small;
      }
      void* data = small.release_context();
      return {data, data, &Delete, c10::Device(c10::DeviceType::CPU)};
    }
    std::size_t size = RoundUp(n);
    void* data = Take(size);
    if (data == nullptr) data = Grow(size);
    if (data == nullptr) data = Map(size);
    return {data, data, &Delete, c10::Device(c10::DeviceType::CPU)};
  }

  c10::DeleterFnPtr raw_deleter() const override {
    return fallback_delete_ != nullptr ? &Delete : nullptr;
  }

  // A large block, back to the cache; anything else, to the fallback allocator's deleter.
  void Free(void* data) {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      auto it = live_.find(data);
      if (it != live_.end()) {
        std::size_t size = it->second;
        live_.erase(it);
        Put(data, size);
        return;
      }
    }
    fallback_delete_(data);
  }

  void copy_data(void* dest, const void* src, std::size_t count) const override {
    default_copy_data(dest, src, count);
  }

  void ReleaseCached() {
    std::lock_guard<std::mutex> lock(mutex_);
    for (auto& [size, data] : free_) munmap(data, size);
    free_.clear();
    stats_.cached_bytes = 0;
  }

  CpuCacheStats Stats() {
    std::lock_guard<std::mutex> lock(mutex_);
    return stats_;
  }

 private:
  // Best fit among cached blocks, up to twice the size asked for: a block from a longer batch
  // serves a shorter one rather than mapping fresh pages.
  void* Take(std::size_t& size) {
    std::lock_guard<std::mutex> lock(mutex_);
    auto it = free_.lower_bound(size);
    if (it == free_.end() || it->first > 2 * size) {
      ++stats_.misses;
      return nullptr;
    }
    void* data = it->second;
    size = it->first;
    free_.erase(it);
    stats_.cached_bytes -= size;
    ++stats_.hits;
    AddLive(data, size);
    return data;
  }

  // A miss: the largest cached block below `size` (at least half of it) is grown in place or
  // moved by mremap, which keeps its pages: only the tail is fresh memory. Length-bucketed batches
  // change length every step, so a step longer than the one before would otherwise map and
  // page-fault most of its activations anew (measured on SmolLM2 with lengths varying by 30 %:
  // 180 ms of kernel time in a 3.8 s step; scripts/profile-step.mjs, variant `shapes`).
  void* Grow(std::size_t size) {
#ifdef __linux__
    void* old = nullptr;
    std::size_t old_size = 0;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      auto it = free_.lower_bound(size);
      if (it == free_.begin()) return nullptr;
      --it;
      if (it->first * 2 < size) return nullptr;
      old = it->second;
      old_size = it->first;
      free_.erase(it);
      stats_.cached_bytes -= old_size;
    }
    void* data = mremap(old, old_size, size, MREMAP_MAYMOVE);
    if (data == MAP_FAILED) {
      munmap(old, old_size);
      return nullptr;
    }
    std::lock_guard<std::mutex> lock(mutex_);
    AddLive(data, size);
    return data;
#else
    (void)size;
    return nullptr;
#endif
  }

  void* Map(std::size_t size) {
    void* data = mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (data == MAP_FAILED) {
      // Cached blocks of the wrong sizes may be what stands in the way.
      ReleaseCached();
      data = mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
      if (data == MAP_FAILED) {
        // libtorch's own out-of-memory type: the binding reports it as ERR_NATIVE_OOM.
        int error = errno;
        TORCH_CHECK_WITH(OutOfMemoryError, false, "CPU out of memory: cannot map ", size,
                         " bytes for a tensor (", std::strerror(error), ")");
      }
    }
    std::lock_guard<std::mutex> lock(mutex_);
    AddLive(data, size);
    return data;
  }

  // Called with mutex_ held. `size` is the mapped size, which may exceed the request.
  void Put(void* data, std::size_t size) {
    stats_.live_bytes -= size;
    free_.emplace(size, data);
    stats_.cached_bytes += size;
    // Bound the cache by the largest live set seen: shapes that changed (another sequence
    // length) must not pile up blocks nobody asks for. The largest blocks go first: they are the
    // least likely to fit a later request within the waste limit.
    while (stats_.cached_bytes > stats_.peak_live_bytes && !free_.empty()) {
      auto largest = std::prev(free_.end());
      munmap(largest->second, largest->first);
      stats_.cached_bytes -= largest->first;
      free_.erase(largest);
    }
  }

  // Called with mutex_ held.
  void AddLive(void* data, std::size_t size) {
    live_.emplace(data, size);
    stats_.live_bytes += size;
    stats_.peak_live_bytes = std::max(stats_.peak_live_bytes, stats_.live_bytes);
  }

  c10::Allocator* fallback_;
  c10::DeleterFnPtr fallback_delete_;
  std::mutex mutex_;
  std::multimap<std::size_t, void*> free_;
  std::unordered_map<void*, std::size_t> live_;  // large blocks in use, by address
  CpuCacheStats stats_{};
};

void Delete(void* data) { instance->Free(data); }

}  // namespace

void InstallCachingCpuAllocator() {
  static std::once_flag once;
  std::call_once(once, [] {
    const char* setting = std::getenv("MENTALLAM_CPU_CACHE");
    if (setting != nullptr && std::strcmp(setting, "0") == 0) return;
    // Never deleted: tensors alive at exit still point at it.
    instance = new CachingCpuAllocator(c10::GetCPUAllocator());
    c10::SetCPUAllocator(instance, /*priority=*/1);
  });
}

void ReleaseCachedCpuMemory() {
  if (instance != nullptr) instance->ReleaseCached();
}

bool CachingCpuAllocatorInstalled() { return instance != nullptr; }

CpuCacheStats GetCpuCacheStats() {
  return instance != nullptr ? instance->Stats() : CpuCacheStats{};
}

}  // namespace mentallam
