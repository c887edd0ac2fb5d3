// The frozen-bottom cache. When no layer below L has an adapter, the hidden states entering
// layer L depend on the tokens only: they are computed once per run (inference mode, in the
// model's dtype) for every unit (a post's shared-prefix row, or one sequence) and then read in
// place of the embedding and layers 0..L-1 by every epoch of every fold and every evaluation.
//
// A unit's states are stored packed as its row was: shared part, then its segments, so a batch
// row may hold any subset of a unit's segments (block attention makes a segment's states
// independent of the other segments). Storage is one (tokens, hidden) tensor: in memory when it
// fits the budget, else a memory-mapped file, unlinked as soon as it is mapped so that it
// disappears however the process ends (the disk space is returned when the mapping goes).
#pragma once

#include <torch/torch.h>

#include <atomic>
#include <cstdint>
#include <string>
#include <vector>

#include "shared_prefix.h"

namespace mentallam {

class HiddenStateCache {
 public:
  struct Options {
    int64_t layer = 0;        // the states enter this layer
    int64_t hidden_size = 0;  // H
    torch::Dtype dtype = torch::kFloat32;
    int64_t units = 0;             // unit ids are 0..units-1
    int64_t tokens = 0;            // capacity: the sum of every unit's packed length
    int64_t max_memory_bytes = 0;  // larger storage goes to `file_path`
    std::string file_path;         // where the file goes when memory is not enough ("" = never)
  };

  explicit HiddenStateCache(const Options& options);
  ~HiddenStateCache();
  HiddenStateCache(const HiddenStateCache&) = delete;
  HiddenStateCache& operator=(const HiddenStateCache&) = delete;

  // Stores unit `unit`'s packed row: `states` (prefix + sum(segments), H) in the cache dtype.
  // A unit is stored once (UserError on a second time or when capacity is exceeded).
  void Store(int64_t unit, int64_t prefix, std::vector<int64_t> segments,
             const torch::Tensor& states);

  // The (B, L, H) states of a batch of shared-prefix rows whose row b is unit units[b] with the
  // segments segments[...] (indices into the unit's own segments, row after row), laid out as
  // `layout` says; pad columns are zero. UserError naming the row when the batch does not match
  // what was stored.
  torch::Tensor Gather(const std::vector<int64_t>& units, const std::vector<int64_t>& segments,
                       const SegmentLayout& layout, int64_t seq_len) const;

  int64_t Layer() const { return options_.layer; }
  int64_t HiddenSize() const { return options_.hidden_size; }
  torch::Dtype Dtype() const { return options_.dtype; }
  int64_t Units() const { return options_.units; }
  int64_t Capacity() const { return options_.tokens; }
  int64_t Bytes() const;
  bool InMemory() const { return mapping_ == nullptr; }
  // The file's path (unlinked already) when the storage is a mapped file, else "".
  const std::string& Path() const { return path_; }
  int64_t StoredTokens() const { return stored_tokens_; }
  int64_t StoredUnits() const { return stored_units_; }

 private:
  struct Unit {
    int64_t offset = -1;  // first token row in storage; -1 = not stored
    int64_t prefix = 0;
    std::vector<int64_t> segments;         // lengths
    std::vector<int64_t> segment_offsets;  // from the unit's offset
  };

  Options options_;
  torch::Tensor storage_;  // (tokens, H)
  void* mapping_ = nullptr;
  size_t mapping_bytes_ = 0;
  std::string path_;
  std::vector<Unit> units_;
  std::atomic<int64_t> stored_tokens_{0};
  std::atomic<int64_t> stored_units_{0};
};

}  // namespace mentallam
