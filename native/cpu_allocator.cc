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

class CachingCpuAllocator final : public c10::Allocator {
 public:
  explicit CachingCpuAllocator(c10::Allocator* fallback) : fallback_(fallback) {}

  c10::DataPtr allocate(std::size_t n) override {
    if (n < kLargeBlock) return fallback_->allocate(n);
    std::size_t size = RoundUp(n);
    void* data = Take(size);
    if (data == nullptr) data = Grow(size);
    if (data == nullptr) data = Map(size);
    auto* block = new Block{data, size, this};
    return {data, block, &FreeBlock, c10::Device(c10::DeviceType::CPU)};
  }

  c10::DeleterFnPtr raw_deleter() const override { return nullptr; }

  // Our DataPtrs own their block outright (the context is per allocation, never shared). The
  // default test (context == data) would say otherwise, and c10::impl::cow::lazy_clone_storage
  // then refuses (returns null) to turn such a storage into a copy-on-write one.
  bool is_simple_data_ptr(const c10::DataPtr& data_ptr) const override {
    return data_ptr.get_deleter() == &FreeBlock || data_ptr.get() == data_ptr.get_context();
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
  struct Block {
    void* data;
    std::size_t size;  // the mapped size, which may exceed the request
    CachingCpuAllocator* owner;
  };

  static void FreeBlock(void* context) {
    auto* block = static_cast<Block*>(context);
    block->owner->Put(block->data, block->size);
    delete block;
  }

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
    AddLive(size);
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
    AddLive(size);
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
    AddLive(size);
    return data;
  }

  void Put(void* data, std::size_t size) {
    std::lock_guard<std::mutex> lock(mutex_);
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

  void AddLive(std::size_t size) {
    stats_.live_bytes += size;
    stats_.peak_live_bytes = std::max(stats_.peak_live_bytes, stats_.live_bytes);
  }

  c10::Allocator* fallback_;
  std::mutex mutex_;
  std::multimap<std::size_t, void*> free_;
  CpuCacheStats stats_{};
};

CachingCpuAllocator* instance = nullptr;

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
