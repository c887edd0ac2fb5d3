#include "hidden_state_cache.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "errors.h"

namespace mentallam {
namespace {

std::string SystemError(const std::string& path, const char* what) {
  return path + ": cannot " + what + ": " + std::strerror(errno);
}

}  // namespace

HiddenStateCache::HiddenStateCache(const Options& options) : options_(options) {
  if (options.layer < 1) {
    throw UserError("a hidden-state cache needs layer >= 1 (the states entering that layer)");
  }
  if (options.hidden_size < 1 || options.tokens < 1 || options.units < 1) {
    throw UserError("hiddenSize, tokens and units of a hidden-state cache must be >= 1");
  }
  int64_t element = c10::elementSize(options.dtype);
  int64_t bytes = 0;
  if (__builtin_mul_overflow(options.tokens, options.hidden_size * element, &bytes)) {
    throw UserError("hidden-state cache size overflows");
  }
  units_.resize(options.units);
  if (bytes <= options.max_memory_bytes || options.file_path.empty()) {
    storage_ = torch::empty({options.tokens, options.hidden_size},
                            torch::TensorOptions().dtype(options.dtype));
    return;
  }
  // Bigger than the memory budget: a file of the exact size, mapped shared and unlinked at once,
  // so nothing is left on disk whatever ends the process.
  path_ = options.file_path;
  int fd = ::open(path_.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0) throw UserError(SystemError(path_, "create the hidden-state cache file"));
  auto fail = [&](const char* what) {
    std::string message = SystemError(path_, what);
    ::close(fd);
    ::unlink(path_.c_str());
    throw UserError(message);
  };
  if (::ftruncate(fd, static_cast<off_t>(bytes)) != 0) fail("size the hidden-state cache file");
  void* map =
      ::mmap(nullptr, static_cast<size_t>(bytes), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  if (map == MAP_FAILED) fail("map the hidden-state cache file");
  ::close(fd);
  ::unlink(path_.c_str());
  mapping_ = map;
  mapping_bytes_ = static_cast<size_t>(bytes);
  storage_ = torch::from_blob(mapping_, {options.tokens, options.hidden_size},
                              torch::TensorOptions().dtype(options.dtype));
}

HiddenStateCache::~HiddenStateCache() {
  storage_ = torch::Tensor();
  if (mapping_) ::munmap(mapping_, mapping_bytes_);
}

int64_t HiddenStateCache::Bytes() const {
  return options_.tokens * options_.hidden_size * c10::elementSize(options_.dtype);
}

void HiddenStateCache::Store(int64_t unit, int64_t prefix, std::vector<int64_t> segments,
                             const torch::Tensor& states) {
  if (unit < 0 || unit >= options_.units) {
    throw UserError("hidden-state cache unit " + std::to_string(unit) + " is outside 0.." +
                    std::to_string(options_.units - 1));
  }
  auto& entry = units_[unit];
  if (entry.offset >= 0) {
    throw UserError("hidden-state cache unit " + std::to_string(unit) + " is stored already");
  }
  int64_t length = states.size(0);
  int64_t offset = stored_tokens_;
  if (offset + length > options_.tokens) {
    throw UserError("the hidden-state cache holds " + std::to_string(options_.tokens) +
                    " tokens; unit " + std::to_string(unit) + " would end at " +
                    std::to_string(offset + length));
  }
  {
    torch::NoGradGuard no_grad;
    storage_.narrow(0, offset, length).copy_(states.to(torch::kCPU, options_.dtype));
  }
  entry.offset = offset;
  entry.prefix = prefix;
  int64_t at = prefix;
  for (int64_t l : segments) {
    entry.segment_offsets.push_back(at);
    at += l;
  }
  entry.segments = std::move(segments);
  stored_tokens_ += length;
  stored_units_ += 1;
}

torch::Tensor HiddenStateCache::Gather(const std::vector<int64_t>& units,
                                       const std::vector<int64_t>& segments,
                                       const SegmentLayout& layout, int64_t seq_len) const {
  const int64_t batch = static_cast<int64_t>(units.size());
  // Storage row src[i] goes to packed position dest[i] (b * L + t); pad positions stay zero.
  std::vector<int64_t> src, dest;
  std::size_t next = 0;
  for (int64_t b = 0; b < batch; ++b) {
    int64_t u = units[b];
    auto row = "batch.hiddenStates row " + std::to_string(b) + " (unit " + std::to_string(u) + ")";
    if (u < 0 || u >= options_.units || units_[u].offset < 0) {
      throw UserError(row + ": the unit is not in the cache");
    }
    const auto& entry = units_[u];
    if (layout.prefix_lengths[b] != entry.prefix) {
      throw UserError(row + ": prefix length " + std::to_string(layout.prefix_lengths[b]) +
                      ", but the cached unit's is " + std::to_string(entry.prefix));
    }
    int64_t column = 0;
    auto take = [&](int64_t from) {
      src.push_back(from);
      dest.push_back(b * seq_len + column++);
    };
    for (int64_t t = 0; t < entry.prefix; ++t) take(entry.offset + t);
    for (int64_t k = 0; k < layout.segment_counts[b]; ++k, ++next) {
      int64_t s = segments[next];
      if (s < 0 || s >= static_cast<int64_t>(entry.segments.size())) {
        throw UserError(row + ": segment " + std::to_string(s) + " is not one of the unit's " +
                        std::to_string(entry.segments.size()));
      }
      if (entry.segments[s] != layout.segment_lengths[next]) {
        throw UserError(row + ": segment " + std::to_string(s) + " has " +
                        std::to_string(layout.segment_lengths[next]) +
                        " tokens, but the cached one has " + std::to_string(entry.segments[s]));
      }
      int64_t from = entry.offset + entry.segment_offsets[s];
      for (int64_t t = 0; t < entry.segments[s]; ++t) take(from + t);
    }
  }
  torch::NoGradGuard no_grad;
  auto out = torch::zeros({batch * seq_len, options_.hidden_size}, storage_.options());
  auto i64 = torch::TensorOptions().dtype(torch::kInt64);
  out.index_copy_(0, torch::tensor(dest, i64), storage_.index_select(0, torch::tensor(src, i64)));
  return out.view({batch, seq_len, options_.hidden_size});
}

}  // namespace mentallam
