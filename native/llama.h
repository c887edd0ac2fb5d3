// LlamaForSequenceClassification as transformers computes it (dora-llama-spec.md sections 1-2):
// embeddings, RMSNorm in fp32, half-split RoPE (default / linear / llama3), GQA attention through
// scaled_dot_product_attention with a causal + padding additive mask, SwiGLU MLP, final norm and
// a bias-free score head pooled at the rightmost non-pad token. Every Linear of the decoder is a
// DoraLinear, so adapters can be attached to any subset of them.
#pragma once

#include <torch/torch.h>

#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "dora.h"
#include "model_config.h"
#include "shared_prefix.h"

namespace mentallam {

struct DecoderLayer {
  torch::Tensor input_norm, post_norm;  // (H,)
  DoraLinear q, k, v, o;                // (nh*D, H), (nkv*D, H) x2, (H, nh*D)
  DoraLinear gate, up, down;            // (I, H), (I, H), (H, I)

  // The seven Linears with their names inside a layer ("self_attn.q_proj", "mlp.down_proj", ...)
  // in the weight table's order (llama_weights.h): every list of adapter tensors follows it.
  std::vector<std::pair<std::string, DoraLinear*>> Linears();
  std::vector<std::pair<std::string, const DoraLinear*>> Linears() const;
  // The trainable adapter leaves of this layer (A, B, m of each adapted Linear, in order).
  std::vector<torch::Tensor> AdapterTensors() const;
};

// What every layer of one forward shares: rotary tables and the attention mask.
struct AttentionInputs {
  // (L, D) in the compute dtype for positions arange(L); (B, 1, L, D) for explicit position ids
  // (shared-prefix rows).
  torch::Tensor cos, sin;
  torch::Tensor mask;  // (B, 1, L, L) additive (0 or dtype min), or undefined = plain causal
  // Shared-prefix rows attended as "prefix once, segments on its K/V" (SharedPrefixPlan's
  // kPrefixKv tensors); all undefined otherwise.
  torch::Tensor prefix_mask, segment_rows, segment_gather, segment_mask, output_gather;

  bool PrefixKv() const { return prefix_mask.defined(); }
};

// The input of one forward.
struct ForwardInput {
  torch::Tensor input_ids;       // (B, L) int64 on the model's device (pooling reads them)
  torch::Tensor attention_mask;  // (B, L)
  // Shared-prefix rows (positions, masks, pooling); null = one sequence per row.
  const SharedPrefixPlan* shared = nullptr;
  // Hidden states entering layer `start_layer`, (B, L, H) in the model dtype, used in place of
  // the embedding and the layers below it (the frozen-bottom cache); undefined = from input_ids.
  torch::Tensor hidden;
  int64_t start_layer = 0;
};

class LlamaModel {
 public:
  struct LoadOptions {
    torch::Device device = torch::kCPU;
    torch::Dtype dtype = torch::kFloat32;
    std::optional<int64_t> num_labels;    // overrides config.json
    std::optional<int64_t> pad_token_id;  // overrides config.json
    uint64_t seed = 0;                    // for a fresh score head
  };

  // Reads config.json and the safetensors weights of an HF Llama checkpoint directory, after
  // checking every weight's presence and shape from the headers (CheckLlamaWeights). Unknown
  // tensors (lm_head, rotary inv_freq buffers) are ignored; without a score.weight of the right
  // shape the head is drawn from N(0, initializer_range) with `seed`.
  static LlamaModel Load(const std::string& model_dir, const LoadOptions& options);

  // -> pooled logits (B, C) fp32, or (S, C) for shared-prefix rows (one per segment). Layers
  // below the first adapted one run without autograd: no backward ever reaches them.
  torch::Tensor Forward(const ForwardInput& input, bool training, bool checkpointing) const;
  // The hidden states entering layer `layer` (B, L, H) in the model dtype, without gradients
  // (what the frozen-bottom cache stores).
  torch::Tensor HiddenStatesBefore(const ForwardInput& input, int64_t layer) const;
  // The lowest layer with an unmerged adapter; the layer count when there is none.
  int64_t FirstAdaptedLayer() const;

  const LlamaConfig& Config() const { return config_; }
  std::optional<int64_t> PadTokenId() const { return pad_token_id_; }
  torch::Device Device() const { return device_; }
  torch::Dtype Dtype() const { return dtype_; }
  std::vector<DecoderLayer>& Layers() { return layers_; }
  const std::vector<DecoderLayer>& Layers() const { return layers_; }
  torch::Tensor& Score() { return score_; }  // (C, H) fp32, trainable
  const torch::Tensor& InitialScore() const { return initial_score_; }
  int64_t NumLabels() const { return score_.size(0); }
  // Frozen base parameters (element count) for info().
  int64_t BaseParameterCount() const;

 private:
  AttentionInputs MakeAttentionInputs(const ForwardInput& input) const;
  // Embedding (or input.hidden) then layers [input.start_layer, end_layer).
  torch::Tensor RunLayers(const ForwardInput& input, const AttentionInputs& attn, int64_t end_layer,
                          bool training, bool checkpointing) const;

  LlamaConfig config_;
  std::optional<int64_t> pad_token_id_;
  torch::Device device_ = torch::kCPU;
  torch::Dtype dtype_ = torch::kFloat32;
  torch::Tensor embed_;  // (V, H)
  std::vector<DecoderLayer> layers_;
  torch::Tensor final_norm_;  // (H,)
  torch::Tensor score_;       // (C, H)
  torch::Tensor initial_score_;
  torch::Tensor inv_freq_;  // (D/2,) fp32
};

// RMSNorm as transformers: fp32 statistics, downcast, then times the weight. x: (..., H).
torch::Tensor RmsNorm(const torch::Tensor& x, const torch::Tensor& weight, double eps);

// inv_freq (D/2,) fp32 for the config's RoPE variant (spec 1.3).
torch::Tensor RopeInverseFrequencies(const LlamaConfig& config);

// One decoder layer: h (B, L, H) -> (B, L, H).
torch::Tensor DecoderLayerForward(const LlamaConfig& config, const DecoderLayer& layer,
                                  const torch::Tensor& h, const AttentionInputs& attn,
                                  bool training);

// Index of the rightmost non-pad token per row, (B,) int64, as transformers pools.
torch::Tensor PoolingIndices(const torch::Tensor& input_ids, std::optional<int64_t> pad_token_id);

}  // namespace mentallam
