#include "shared_prefix.h"

#include <algorithm>
#include <limits>

#include "errors.h"

namespace mentallam {

SharedAttention ParseSharedAttention(const std::string& text, const std::string& name) {
  if (text == "block_mask") return SharedAttention::kBlockMask;
  if (text == "prefix_kv") return SharedAttention::kPrefixKv;
  throw UserError(name + " must be \"block_mask\" or \"prefix_kv\", got \"" + text + "\"");
}

std::string SharedAttentionName(SharedAttention mode) {
  return mode == SharedAttention::kBlockMask ? "block_mask" : "prefix_kv";
}

double MaskMinimum(torch::Dtype dtype) {
  if (dtype == torch::kFloat32) return std::numeric_limits<float>::lowest();
  if (dtype == torch::kBFloat16) return -3.3895313892515355e38;
  return -65504.0;
}

std::vector<int64_t> SegmentLayout::RowLengths() const {
  std::vector<int64_t> lengths;
  std::size_t next = 0;
  for (std::size_t b = 0; b < prefix_lengths.size(); ++b) {
    int64_t length = prefix_lengths[b];
    for (int64_t k = 0; k < segment_counts[b]; ++k) length += segment_lengths[next++];
    lengths.push_back(length);
  }
  return lengths;
}

void SegmentLayout::Check(int64_t batch, int64_t seq_len, const uint8_t* mask) const {
  auto count = [](const std::vector<int64_t>& v) { return std::to_string(v.size()); };
  if (static_cast<int64_t>(prefix_lengths.size()) != batch) {
    throw UserError("batch.segments.prefixLengths must have batchSize = " + std::to_string(batch) +
                    " entries (got " + count(prefix_lengths) + ")");
  }
  if (static_cast<int64_t>(segment_counts.size()) != batch) {
    throw UserError("batch.segments.segmentCounts must have batchSize = " + std::to_string(batch) +
                    " entries (got " + count(segment_counts) + ")");
  }
  int64_t total = 0;
  for (int64_t b = 0; b < batch; ++b) {
    if (prefix_lengths[b] < 0) {
      throw UserError("batch.segments.prefixLengths[" + std::to_string(b) + "] must be >= 0");
    }
    if (segment_counts[b] < 1) {
      throw UserError("batch.segments.segmentCounts[" + std::to_string(b) +
                      "] must be >= 1 (a row without a segment has nothing to pool)");
    }
    total += segment_counts[b];
  }
  if (static_cast<int64_t>(segment_lengths.size()) != total) {
    throw UserError("batch.segments.segmentLengths must have sum(segmentCounts) = " +
                    std::to_string(total) + " entries (got " + count(segment_lengths) + ")");
  }
  for (std::size_t s = 0; s < segment_lengths.size(); ++s) {
    if (segment_lengths[s] < 1) {
      throw UserError("batch.segments.segmentLengths[" + std::to_string(s) + "] must be >= 1");
    }
  }
  auto rows = RowLengths();
  for (int64_t b = 0; b < batch; ++b) {
    if (rows[b] > seq_len) {
      throw UserError("batch.segments: row " + std::to_string(b) + " needs " +
                      std::to_string(rows[b]) + " columns (prefix + segments) but seqLen is " +
                      std::to_string(seq_len));
    }
    for (int64_t t = 0; t < seq_len; ++t) {
      bool used = t < rows[b];
      if ((mask[b * seq_len + t] != 0) != used) {
        throw UserError("batch.attentionMask row " + std::to_string(b) +
                        " must be 1 on the row's " + std::to_string(rows[b]) +
                        " prefix + segment columns and 0 after them (shared-prefix rows are "
                        "right-padded); column " +
                        std::to_string(t) + " is " + std::to_string(mask[b * seq_len + t]));
      }
    }
  }
}

SharedPrefixPlan PlanSharedPrefix(const SegmentLayout& layout, const torch::Tensor& input_ids,
                                  std::optional<int64_t> pad_token_id, SharedAttention mode,
                                  torch::Dtype dtype, torch::Device device) {
  auto ids = input_ids.to(torch::kCPU, torch::kInt64).contiguous();
  const int64_t batch = ids.size(0), len = ids.size(1);
  const int64_t segments = layout.Segments();
  const int64_t* id = ids.data_ptr<int64_t>();
  auto i64 = torch::TensorOptions().dtype(torch::kInt64);

  // Per column: its position id and its segment (0 = shared part, k >= 1 = segment k, -1 = pad).
  auto positions = torch::zeros({batch, len}, torch::kFloat32);
  auto segment_of = torch::full({batch, len}, -1, i64);
  float* pos = positions.data_ptr<float>();
  int64_t* seg = segment_of.data_ptr<int64_t>();
  std::vector<int64_t> starts(segments), rows(segments);
  auto pool_rows = torch::empty({segments}, i64);
  auto pool_cols = torch::empty({segments}, i64);
  int64_t* pool_row = pool_rows.data_ptr<int64_t>();
  int64_t* pool_col = pool_cols.data_ptr<int64_t>();
  int64_t next = 0;
  for (int64_t b = 0; b < batch; ++b) {
    int64_t prefix = layout.prefix_lengths[b];
    for (int64_t t = 0; t < prefix; ++t) {
      pos[b * len + t] = static_cast<float>(t);
      seg[b * len + t] = 0;
    }
    // The shared part's rightmost non-pad column, for segments that are all pad.
    int64_t prefix_last = -1;
    if (pad_token_id) {
      for (int64_t t = prefix - 1; t >= 0; --t) {
        if (id[b * len + t] != *pad_token_id) {
          prefix_last = t;
          break;
        }
      }
    }
    int64_t column = prefix;
    for (int64_t k = 0; k < layout.segment_counts[b]; ++k, ++next) {
      int64_t length = layout.segment_lengths[next];
      starts[next] = column;
      rows[next] = b;
      for (int64_t u = 0; u < length; ++u) {
        pos[b * len + column + u] = static_cast<float>(prefix + u);
        seg[b * len + column + u] = k + 1;
      }
      // transformers pools at the rightmost non-pad token of the sequence (shared part + this
      // segment), or at its first position when every token is pad.
      int64_t pool = column + length - 1;
      if (pad_token_id) {
        pool = prefix_last >= 0 ? prefix_last : (prefix > 0 ? 0 : column);
        for (int64_t u = length - 1; u >= 0; --u) {
          if (id[b * len + column + u] != *pad_token_id) {
            pool = column + u;
            break;
          }
        }
      }
      pool_row[next] = b;
      pool_col[next] = pool;
      column += length;
    }
  }

  SharedPrefixPlan plan;
  plan.positions = positions.to(device);
  plan.pool_rows = pool_rows.to(device);
  plan.pool_cols = pool_cols.to(device);
  const double minimum = MaskMinimum(dtype);
  auto additive = [&](const torch::Tensor& allowed) {
    return torch::zeros(allowed.sizes(), torch::TensorOptions().dtype(dtype))
        .masked_fill(allowed.logical_not(), minimum)
        .to(device);
  };
  auto causal = [](int64_t n) { return torch::ones({n, n}, torch::kBool).tril(); };

  if (mode == SharedAttention::kBlockMask) {
    // Query i may read key j when both are real, j <= i, and j is in the shared part or in i's
    // own segment.
    auto query = segment_of.view({batch, 1, len, 1});
    auto key = segment_of.view({batch, 1, 1, len});
    auto allowed = causal(len)
                       .view({1, 1, len, len})
                       .logical_and(query.ge(0))
                       .logical_and(key.ge(0))
                       .logical_and(key.eq(0).logical_or(key.eq(query)));
    plan.block_mask = additive(allowed);
    return plan;
  }

  // kPrefixKv. P: the widest shared part (at least one column, so the prefix call has a shape).
  int64_t prefix_width = 1;
  for (int64_t p : layout.prefix_lengths) prefix_width = std::max(prefix_width, p);
  int64_t segment_width = 1;
  for (int64_t l : layout.segment_lengths) segment_width = std::max(segment_width, l);
  auto prefix_lengths = torch::tensor(layout.prefix_lengths, i64);

  // Shared part: causal over the first P columns, keys limited to the row's own prefix. Queries
  // past a row's prefix are segment tokens whose output here is not used.
  auto prefix_keys = torch::arange(prefix_width, i64).view({1, 1, 1, prefix_width});
  plan.prefix_mask =
      additive(causal(prefix_width)
                   .view({1, 1, prefix_width, prefix_width})
                   .logical_and(prefix_keys.lt(prefix_lengths.view({batch, 1, 1, 1}))));

  // Segments: query row s reads its row's prefix keys (j < prefix) and its own keys causally.
  auto gather = torch::empty({segments, segment_width}, i64);
  auto seg_lengths = torch::tensor(layout.segment_lengths, i64);
  int64_t* g = gather.data_ptr<int64_t>();
  for (int64_t s = 0; s < segments; ++s) {
    for (int64_t u = 0; u < segment_width; ++u) {
      int64_t column = u < layout.segment_lengths[s] ? starts[s] + u : starts[s];
      g[s * segment_width + u] = rows[s] * len + column;
    }
  }
  auto seg_rows = torch::tensor(rows, i64);
  auto own_keys = torch::arange(segment_width, i64);
  auto own_allowed =
      causal(segment_width)
          .view({1, 1, segment_width, segment_width})
          .logical_and(
              own_keys.view({1, 1, 1, segment_width}).lt(seg_lengths.view({segments, 1, 1, 1})));
  auto prefix_allowed =
      prefix_keys.lt(prefix_lengths.index_select(0, seg_rows).view({segments, 1, 1, 1}))
          .expand({segments, 1, segment_width, prefix_width});
  plan.segment_mask = additive(torch::cat({prefix_allowed, own_allowed}, 3));
  plan.segment_rows = seg_rows.to(device);
  plan.segment_gather = gather.view({-1}).to(device);

  // Where each packed column's output comes from: the prefix call's (B * P) rows, then the
  // segment call's (S * Ls) rows, then one zero row for padding.
  auto output = torch::full({batch, len}, batch * prefix_width + segments * segment_width, i64);
  int64_t* out = output.data_ptr<int64_t>();
  for (int64_t b = 0; b < batch; ++b) {
    for (int64_t t = 0; t < layout.prefix_lengths[b]; ++t) out[b * len + t] = b * prefix_width + t;
  }
  for (int64_t s = 0; s < segments; ++s) {
    for (int64_t u = 0; u < layout.segment_lengths[s]; ++u) {
      out[rows[s] * len + starts[s] + u] = batch * prefix_width + s * segment_width + u;
    }
  }
  plan.output_gather = output.view({-1}).to(device);
  return plan;
}

}  // namespace mentallam
