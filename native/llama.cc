#include "llama.h"

#include <cmath>

#include "checkpointing.h"
#include "errors.h"
#include "llama_weights.h"
#include "model_source.h"

namespace mentallam {

std::vector<std::pair<std::string, DoraLinear*>> DecoderLayer::Linears() {
  std::vector<std::pair<std::string, DoraLinear*>> out;
  for (const LayerModule& module : DecoderLayerModules()) {
    if (module.linear) out.emplace_back(module.name, &(this->*module.linear));
  }
  return out;
}

std::vector<std::pair<std::string, const DoraLinear*>> DecoderLayer::Linears() const {
  std::vector<std::pair<std::string, const DoraLinear*>> out;
  for (auto& [name, linear] : const_cast<DecoderLayer*>(this)->Linears()) {
    out.emplace_back(name, linear);
  }
  return out;
}

std::vector<torch::Tensor> DecoderLayer::AdapterTensors() const {
  std::vector<torch::Tensor> out;
  for (auto& [name, linear] : Linears()) {
    if (!linear->HasAdapter() || linear->Merged()) continue;
    auto* mutable_linear = const_cast<DoraLinear*>(linear);
    out.push_back(mutable_linear->A());
    out.push_back(mutable_linear->B());
    out.push_back(mutable_linear->M());
  }
  return out;
}

torch::Tensor RmsNorm(const torch::Tensor& x, const torch::Tensor& weight, double eps) {
  auto x32 = x.to(torch::kFloat32);
  auto variance = x32.pow(2).mean(-1, /*keepdim=*/true);
  x32 = x32 * torch::rsqrt(variance + eps);
  return weight * x32.to(x.scalar_type());
}

torch::Tensor RopeInverseFrequencies(const LlamaConfig& config) {
  int64_t dim = config.head_dim;
  // transformers: 1 / base ** (arange(0, dim, 2).float() / dim), all fp32; 1/x as reciprocal.
  auto exponents = torch::arange(0, dim, 2, torch::kInt64).to(torch::kFloat32) / dim;
  auto inv_freq = torch::pow(config.rope_theta, exponents).reciprocal();
  const auto& scaling = config.rope_scaling;
  if (scaling.type == "linear") {
    inv_freq = inv_freq / scaling.factor;
  } else if (scaling.type == "llama3") {
    double factor = scaling.factor;
    double old_context = static_cast<double>(scaling.original_max_position_embeddings);
    double low_freq_wavelen = old_context / scaling.low_freq_factor;
    double high_freq_wavelen = old_context / scaling.high_freq_factor;
    auto wavelen = 2 * M_PI / inv_freq;
    // Long wavelengths are divided by factor, short ones kept, and the band between is a
    // linear blend in old_context / wavelen.
    auto scaled = torch::where(wavelen > low_freq_wavelen, inv_freq / factor, inv_freq);
    auto smooth = (old_context / wavelen - scaling.low_freq_factor) /
                  (scaling.high_freq_factor - scaling.low_freq_factor);
    auto smoothed = (1 - smooth) * scaled / factor + smooth * scaled;
    auto medium = (wavelen >= high_freq_wavelen).logical_and(wavelen <= low_freq_wavelen);
    inv_freq = torch::where(medium, smoothed, scaled);
  } else if (scaling.type != "default") {
    throw UserError("rope_scaling type '" + scaling.type + "' is not supported");
  }
  return inv_freq;
}

namespace {

// rotate_half: cat(-x[..., D/2:], x[..., :D/2]).
torch::Tensor RotateHalf(const torch::Tensor& x) {
  int64_t half = x.size(-1) / 2;
  return torch::cat({-x.slice(-1, half), x.slice(-1, 0, half)}, -1);
}

torch::Tensor ApplyRope(const torch::Tensor& x, const AttentionInputs& attn) {
  return x * attn.cos + RotateHalf(x) * attn.sin;
}

// Shared-prefix rows, prefix once: q, k, v (B, h, L, D) after RoPE and repeat_kv -> (B, L, h*D).
// The shared parts attend among themselves over the first P columns; each segment is gathered
// into its own query row and attends to its row's P prefix keys/values plus its own Ls.
torch::Tensor PrefixKvAttention(const torch::Tensor& q, const torch::Tensor& k,
                                const torch::Tensor& v, const AttentionInputs& attn, double scale) {
  int64_t batch = q.size(0), heads = q.size(1), len = q.size(2), dim = q.size(3);
  int64_t prefix = attn.prefix_mask.size(-1);
  int64_t segments = attn.segment_mask.size(0), width = attn.segment_mask.size(2);
  auto kp = k.narrow(2, 0, prefix);
  auto vp = v.narrow(2, 0, prefix);
  auto prefix_out = at::scaled_dot_product_attention(
      q.narrow(2, 0, prefix), kp, vp, attn.prefix_mask, 0.0, false, scale);  // (B, h, P, D)
  // (B, h, L, D) -> (B * L, h, D) -> the segments' tokens (S, h, Ls, D)
  auto own = [&](const torch::Tensor& x) {
    return x.transpose(1, 2)
        .reshape({batch * len, heads, dim})
        .index_select(0, attn.segment_gather)
        .view({segments, width, heads, dim})
        .transpose(1, 2);
  };
  auto ks = torch::cat({kp.index_select(0, attn.segment_rows), own(k)}, 2);
  auto vs = torch::cat({vp.index_select(0, attn.segment_rows), own(v)}, 2);
  auto segment_out =
      at::scaled_dot_product_attention(own(q), ks, vs, attn.segment_mask, 0.0, false, scale);
  // Back to packed columns: prefix rows, segment rows and a zero row for padding.
  auto rows = torch::cat({prefix_out.transpose(1, 2).reshape({batch * prefix, heads * dim}),
                          segment_out.transpose(1, 2).reshape({segments * width, heads * dim}),
                          torch::zeros({1, heads * dim}, q.options())});
  return rows.index_select(0, attn.output_gather).view({batch, len, heads * dim});
}

torch::Tensor Attention(const LlamaConfig& config, const DecoderLayer& layer,
                        const torch::Tensor& x, const AttentionInputs& attn, bool training) {
  int64_t batch = x.size(0), len = x.size(1), dim = config.head_dim;
  int64_t heads = config.num_attention_heads, kv_heads = config.num_key_value_heads;
  // (B, L, h*D) -> (B, h, L, D)
  auto q = layer.q.Forward(x, training).view({batch, len, heads, dim}).transpose(1, 2);
  auto k = layer.k.Forward(x, training).view({batch, len, kv_heads, dim}).transpose(1, 2);
  auto v = layer.v.Forward(x, training).view({batch, len, kv_heads, dim}).transpose(1, 2);
  q = ApplyRope(q, attn);
  k = ApplyRope(k, attn);
  if (kv_heads != heads) {
    // repeat_kv: query head h reads kv head h / n_rep.
    int64_t rep = heads / kv_heads;
    k = k.repeat_interleave(rep, 1);
    v = v.repeat_interleave(rep, 1);
  }
  double scale = 1.0 / std::sqrt(static_cast<double>(dim));
  torch::Tensor out;
  if (attn.PrefixKv()) {
    out = PrefixKvAttention(q, k, v, attn, scale);
  } else {
    if (attn.mask.defined()) {
      out = at::scaled_dot_product_attention(q, k, v, attn.mask, 0.0, false, scale);
    } else {
      out = at::scaled_dot_product_attention(q, k, v, {}, 0.0, len > 1, scale);
    }
    // (B, h, L, D) -> (B, L, h*D)
    out = out.transpose(1, 2).reshape({batch, len, heads * dim});
  }
  return layer.o.Forward(out, training);
}

}  // namespace

torch::Tensor DecoderLayerForward(const LlamaConfig& config, const DecoderLayer& layer,
                                  const torch::Tensor& h, const AttentionInputs& attn,
                                  bool training) {
  // h = x + o(Attn(norm_in(x))); out = h + down(silu(gate(n)) * up(n)), n = norm_post(h)
  auto attn_out =
      Attention(config, layer, RmsNorm(h, layer.input_norm, config.rms_norm_eps), attn, training);
  auto mid = h + attn_out;
  auto normed = RmsNorm(mid, layer.post_norm, config.rms_norm_eps);
  auto act = torch::silu(layer.gate.Forward(normed, training)) * layer.up.Forward(normed, training);
  return mid + layer.down.Forward(act, training);
}

torch::Tensor PoolingIndices(const torch::Tensor& input_ids, std::optional<int64_t> pad_token_id) {
  int64_t batch = input_ids.size(0), len = input_ids.size(1);
  if (!pad_token_id) {
    if (batch > 1) {
      throw UserError(
          "cannot handle batch sizes > 1 without a pad token id: set pad_token_id in config.json "
          "or pass padTokenId");
    }
    return torch::full({batch}, len - 1, input_ids.options().dtype(torch::kInt64));
  }
  // argmax over t of t * [id_t != pad]: the rightmost non-pad token (0 for an all-pad row).
  auto positions = torch::arange(len, input_ids.options().dtype(torch::kInt32));
  auto non_pad = input_ids.ne(*pad_token_id).to(torch::kInt32);
  return (positions * non_pad).argmax(-1);
}

int64_t LlamaModel::FirstAdaptedLayer() const {
  for (int64_t i = 0; i < static_cast<int64_t>(layers_.size()); ++i) {
    if (!layers_[i].AdapterTensors().empty()) return i;
  }
  return static_cast<int64_t>(layers_.size());
}

AttentionInputs LlamaModel::MakeAttentionInputs(const ForwardInput& input) const {
  const auto& input_ids = input.input_ids;
  int64_t batch = input_ids.size(0), len = input_ids.size(1);
  AttentionInputs attn;
  if (input.shared) {
    // Explicit position ids: a segment continues after the shared part, as in its own sequence.
    // Same fp32 products as arange positions give, so equal positions give equal tables.
    const auto& plan = *input.shared;
    auto freqs = plan.positions.unsqueeze(-1) * inv_freq_;   // (B, L, D/2)
    auto emb = torch::cat({freqs, freqs}, -1).unsqueeze(1);  // (B, 1, L, D)
    attn.cos = emb.cos().to(dtype_);
    attn.sin = emb.sin().to(dtype_);
    if (plan.block_mask.defined()) {
      attn.mask = plan.block_mask;
    } else {
      attn.prefix_mask = plan.prefix_mask;
      attn.segment_rows = plan.segment_rows;
      attn.segment_gather = plan.segment_gather;
      attn.segment_mask = plan.segment_mask;
      attn.output_gather = plan.output_gather;
    }
    return attn;
  }
  // Positions are arange(L) for every row whatever the padding, as transformers does.
  auto positions =
      torch::arange(len, torch::TensorOptions().dtype(torch::kFloat32).device(device_));
  auto freqs = positions.unsqueeze(1) * inv_freq_.unsqueeze(0);  // (L, D/2)
  auto emb = torch::cat({freqs, freqs}, -1);                     // (L, D)
  attn.cos = emb.cos().to(dtype_);
  attn.sin = emb.sin().to(dtype_);
  const auto& attention_mask = input.attention_mask;
  if (!attention_mask.eq(1).all().item<bool>()) {
    // Additive (B, 1, L, L): 0 where key <= query and the key is a real token, else the dtype's
    // finite minimum (never -inf: fully masked pad rows would turn into NaN and leak via K/V).
    auto causal =
        torch::ones({len, len}, torch::TensorOptions().dtype(torch::kBool).device(device_)).tril();
    auto keys = attention_mask.ne(0).view({batch, 1, 1, len});
    auto allowed = causal.view({1, 1, len, len}).logical_and(keys);
    attn.mask =
        torch::zeros({batch, 1, len, len}, torch::TensorOptions().dtype(dtype_).device(device_))
            .masked_fill(allowed.logical_not(), MaskMinimum(dtype_));
  }
  return attn;
}

torch::Tensor LlamaModel::RunLayers(const ForwardInput& input, const AttentionInputs& attn,
                                    int64_t end_layer, bool training, bool checkpointing) const {
  const auto& input_ids = input.input_ids;
  int64_t batch = input_ids.size(0), len = input_ids.size(1);
  torch::Tensor h;
  int64_t start = 0;
  if (input.hidden.defined()) {
    h = input.hidden;
    start = input.start_layer;
  } else {
    if (input_ids.numel() > 0) {
      auto [lo, hi] = torch::aminmax(input_ids);
      if (lo.item<int64_t>() < 0 || hi.item<int64_t>() >= config_.vocab_size) {
        throw UserError("input id out of range [0, " + std::to_string(config_.vocab_size) +
                        "): found " + std::to_string(lo.item<int64_t>()) + ".." +
                        std::to_string(hi.item<int64_t>()));
      }
    }
    // (B, L) -> (B, L, H): an exact lookup.
    h = embed_.index_select(0, input_ids.reshape({-1})).view({batch, len, -1});
  }
  bool checkpoint = checkpointing && training && torch::GradMode::is_enabled();
  // Below the first adapted layer nothing needs a gradient: run it without autograd, so no
  // activation is kept for it and backward stops at that layer's input.
  int64_t first_adapted = FirstAdaptedLayer();
  for (int64_t i = start; i < end_layer; ++i) {
    const auto& layer = layers_[i];
    if (i < first_adapted) {
      torch::NoGradGuard frozen;
      h = DecoderLayerForward(config_, layer, h, attn, training);
    } else {
      h = checkpoint ? CheckpointedLayerForward(config_, layer, h, attn, training)
                     : DecoderLayerForward(config_, layer, h, attn, training);
    }
  }
  return h;
}

torch::Tensor LlamaModel::HiddenStatesBefore(const ForwardInput& input, int64_t layer) const {
  torch::NoGradGuard no_grad;
  if (layer < 0 || layer > static_cast<int64_t>(layers_.size())) {
    throw UserError("layer " + std::to_string(layer) + " is outside 0.." +
                    std::to_string(layers_.size()));
  }
  auto attn = MakeAttentionInputs(input);
  return RunLayers(input, attn, layer, /*training=*/false, /*checkpointing=*/false);
}

torch::Tensor LlamaModel::Forward(const ForwardInput& input, bool training,
                                  bool checkpointing) const {
  torch::Tensor rows, cols;
  if (input.shared) {
    rows = input.shared->pool_rows;
    cols = input.shared->pool_cols;
  } else {
    cols = PoolingIndices(input.input_ids, pad_token_id_);
    rows = torch::arange(input.input_ids.size(0), cols.options());
  }
  auto attn = MakeAttentionInputs(input);
  auto h = RunLayers(input, attn, static_cast<int64_t>(layers_.size()), training, checkpointing);
  // Scoring only the pooled rows equals scoring every position then pooling (spec section 2).
  auto pooled = h.index({rows, cols});  // (B or S, H)
  pooled = RmsNorm(pooled, final_norm_, config_.rms_norm_eps);
  return torch::linear(pooled.to(torch::kFloat32), score_);  // (B or S, C)
}

int64_t LlamaModel::BaseParameterCount() const {
  int64_t count = embed_.numel() + final_norm_.numel();
  for (const auto& layer : layers_) {
    count += layer.input_norm.numel() + layer.post_norm.numel();
    for (auto& [name, linear] : layer.Linears()) {
      count += linear->Weight().numel();
      if (linear->Bias().defined()) count += linear->Bias().numel();
    }
  }
  return count;
}

LlamaModel LlamaModel::Load(const std::string& model_dir, const LoadOptions& options) {
  LlamaModel model;
  // An HF checkpoint directory or a GGUF file: the config and the weights come from the source.
  ModelSource source = ModelSource::Open(model_dir);
  model.config_ = source.Config();
  auto& config = model.config_;
  if (config.head_dim % 2 != 0) throw UserError(model_dir + ": head_dim must be even for RoPE");
  model.device_ = options.device;
  model.dtype_ = options.dtype;
  model.pad_token_id_ = options.pad_token_id ? options.pad_token_id : config.pad_token_id;
  if (model.pad_token_id_ &&
      (*model.pad_token_id_ < 0 || *model.pad_token_id_ >= config.vocab_size)) {
    throw UserError("pad token id " + std::to_string(*model.pad_token_id_) +
                    " is outside the vocabulary [0, " + std::to_string(config.vocab_size) + ")");
  }
  int64_t num_labels = options.num_labels.value_or(config.num_labels);
  if (num_labels < 1) throw UserError("numLabels must be >= 1");

  // Every shape is checked from the headers (or GGUF tensor infos) before any tensor is read.
  LlamaConfig expected = config;
  expected.num_labels = num_labels;
  CheckpointCheck check = CheckLlamaWeights(source, expected);
  auto load = [&](const std::string& key) {
    return source.Load(key, options.dtype).to(options.device);
  };
  model.embed_ = load(kEmbedTokensKey);
  for (int64_t i = 0; i < config.num_hidden_layers; ++i) {
    DecoderLayer layer;
    for (const LayerModule& module : DecoderLayerModules()) {
      if (module.norm) {
        layer.*module.norm = load(LayerKey(i, module.name));
        continue;
      }
      torch::Tensor bias;
      if (module.has_bias && config.*module.has_bias) bias = load(LayerKey(i, module.name, "bias"));
      layer.*module.linear = DoraLinear(load(LayerKey(i, module.name)), bias);
    }
    model.layers_.push_back(std::move(layer));
  }
  model.final_norm_ = load(kFinalNormKey);

  torch::Tensor score;
  if (check.has_score) {
    score = source.Load(kScoreKey, torch::kFloat32);
  } else {
    // A CausalLM checkpoint (or another label count): a fresh head, N(0, initializer_range).
    auto gen = at::make_generator<at::CPUGeneratorImpl>(options.seed);
    score = torch::empty({num_labels, config.hidden_size}, torch::kFloat32);
    score.normal_(0, config.initializer_range, gen);
  }
  model.initial_score_ = score.to(options.device);
  model.score_ = model.initial_score_.clone().set_requires_grad(true);
  model.inv_freq_ = RopeInverseFrequencies(config).to(options.device);
  return model;
}

}  // namespace mentallam
