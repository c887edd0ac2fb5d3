// Shared-prefix rows: one batch row holds a post's shared prompt part once, then several
// criterion suffixes (segments). Every suffix token attends to the shared part and, causally, to
// its own segment only; its position ids continue after the shared part. So each segment sees
// exactly the keys and positions it has as a separate sequence (shared part + that suffix) and,
// pooled at its last token, gives that sequence's logits: one row computes the shared part once
// for all of its segments, forward and backward.
//
// Row b (right-padded to L columns):
//   [ shared: prefix_lengths[b] | seg 1 | seg 2 | ... | seg segment_counts[b] | pad ... ]
// Two ways to attend (chosen per classifier, SharedAttention):
//   kBlockMask: one SDPA call over the packed row with an additive block mask;
//   kPrefixKv:  the shared parts attend causally among themselves (one SDPA call over the first
//               max(prefix) columns), and each segment becomes its own query row attending to its
//               post's prefix keys/values plus its own (a second SDPA call), so no score between
//               two segments is ever computed.
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace mentallam {

enum class SharedAttention { kBlockMask, kPrefixKv };

// "block_mask" | "prefix_kv" (UserError naming `name` otherwise), and back.
SharedAttention ParseSharedAttention(const std::string& text, const std::string& name);
std::string SharedAttentionName(SharedAttention mode);

struct SegmentLayout {
  std::vector<int64_t> prefix_lengths;   // (B) >= 0
  std::vector<int64_t> segment_counts;   // (B) >= 1
  std::vector<int64_t> segment_lengths;  // (S = sum of segment_counts) >= 1, row after row

  int64_t Segments() const { return static_cast<int64_t>(segment_lengths.size()); }
  // Columns row b uses: its prefix plus its segments.
  std::vector<int64_t> RowLengths() const;
  // Checks the layout against a (batch, seq_len) batch whose attention mask must be 1 on each
  // row's used columns and 0 after them (right padding). UserError naming batch.segments.* or
  // batch.attentionMask otherwise.
  void Check(int64_t batch, int64_t seq_len, const uint8_t* mask) const;
};

// What every layer needs to run shared-prefix rows, built once per forward (on the model's
// device). Only the attention tensors of the chosen mode are defined.
struct SharedPrefixPlan {
  torch::Tensor positions;  // (B, L) fp32 position ids; pad columns 0
  // kBlockMask
  torch::Tensor block_mask;  // (B, 1, L, L) additive
  // kPrefixKv (see AttentionInputs in llama.h)
  torch::Tensor prefix_mask;     // (B, 1, P, P) additive, P = max prefix length (>= 1)
  torch::Tensor segment_rows;    // (S,) int64: the row of each segment
  torch::Tensor segment_gather;  // (S * Ls,) int64 flat packed positions b * L + t (Ls = max seg)
  torch::Tensor segment_mask;    // (S, 1, Ls, P + Ls) additive
  torch::Tensor output_gather;   // (B * L,) int64 rows of cat(prefix out, segment out, zero row)
  // Pooling: each segment's last token.
  torch::Tensor pool_rows, pool_cols;  // (S,) int64
};

// The additive mask value for "not allowed": the dtype's finite minimum (never -inf: a fully
// masked pad row would become NaN and leak through K/V).
double MaskMinimum(torch::Dtype dtype);

// input_ids: (B, L) int64 on the CPU (pooling follows transformers' rightmost-non-pad rule over
// the shared part + the segment, so a segment pools where its separate sequence would).
SharedPrefixPlan PlanSharedPrefix(const SegmentLayout& layout, const torch::Tensor& input_ids,
                                  std::optional<int64_t> pad_token_id, SharedAttention mode,
                                  torch::Dtype dtype, torch::Device device);

}  // namespace mentallam
