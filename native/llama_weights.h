// The Llama weight table: every base weight of LlamaForSequenceClassification, declared once
// (checkpoint key, shape from the config, how a random model draws it, where the model keeps it;
// dora-llama-spec.md section 1.7). Loading (LlamaModel::Load), random creation
// (CreateRandomWeights) and the checkpoint check (CheckLlamaWeights) all walk this table.
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <string>
#include <vector>

#include "llama.h"
#include "model_config.h"
#include "model_source.h"

namespace mentallam {

// How a fresh random model draws a weight, as transformers' LlamaPreTrainedModel._init_weights:
// Linears and embeddings N(0, initializer_range), biases zero, RMSNorm weights one.
enum class WeightInit { kNormal, kZeros, kOnes };

// A size the config determines.
enum class WeightDim {
  kHidden,        // H = hidden_size
  kIntermediate,  // I = intermediate_size
  kQuery,         // nh * D = num_attention_heads * head_dim
  kKeyValue,      // nkv * D = num_key_value_heads * head_dim
};

// One module of a decoder layer, keyed "model.layers.{i}.<name>.weight" (and ".bias"). Exactly
// one of `norm` / `linear` is set: where the loaded tensors go in DecoderLayer.
struct LayerModule {
  const char* name;                    // "input_layernorm", "self_attn.q_proj", ...
  torch::Tensor DecoderLayer::* norm;  // an RMSNorm weight (out,)
  DoraLinear DecoderLayer::* linear;   // a Linear: weight (out, in), optional bias (out,)
  WeightDim out;
  WeightDim in;                  // Linears only
  bool LlamaConfig::* has_bias;  // attention_bias / mlp_bias; null: never a bias
};

// The nine modules of a decoder layer in checkpoint order: input_layernorm, q/k/v/o_proj,
// post_attention_layernorm, gate/up/down_proj.
const std::vector<LayerModule>& DecoderLayerModules();

inline constexpr const char* kEmbedTokensKey = "model.embed_tokens.weight";  // (V, H)
inline constexpr const char* kFinalNormKey = "model.norm.weight";            // (H,)
inline constexpr const char* kScoreKey = "score.weight";                     // (num_labels, H)

std::string LayerKey(int64_t layer, const std::string& module, const char* part = "weight");
std::vector<int64_t> ModuleShape(const LayerModule& module, const LlamaConfig& config);

// The table expanded for one config, in checkpoint order: embed_tokens, each layer's modules
// (+ biases when the config has them), the final norm, the score head.
struct LlamaWeight {
  std::string key;
  std::vector<int64_t> shape;
  WeightInit init;
  bool optional = false;  // score.weight: a CausalLM checkpoint has none; a fresh head is drawn
};
std::vector<LlamaWeight> LlamaWeights(const LlamaConfig& config);

struct CheckpointCheck {
  int64_t checked = 0;     // tensors whose shape was checked and that will be used
  bool has_score = false;  // a score head with the config's shape; else the head starts fresh
  std::vector<std::string> ignored;  // tensors the classifier does not use (lm_head, inv_freq,
                                     // a score head for another number of labels)
};

// Checks, from the headers (or GGUF tensor infos) alone, that every required weight of `config`
// is in `source` with the config's shape. A missing tensor -> UserError "<source>: tensor '<key>'
// is missing"; a wrong shape -> "<file>: tensor '<key>' has shape [a, b], config.json says
// [c, d]" (or "the llama.* metadata implies" for a GGUF model).
CheckpointCheck CheckLlamaWeights(const ModelSource& source, const LlamaConfig& config);

// ModelSource::Open(path) + CheckLlamaWeights with its own config: a Hugging Face directory
// (single file or shards) or a GGUF model.
CheckpointCheck CheckLlamaCheckpoint(const std::string& path);

// Throws UserError "<file>: tensor '<tensor>' has shape [a, b], <said_by> says [c, d]" when
// `actual` differs from `expected`.
void CheckShape(const std::string& file, const std::string& tensor, at::IntArrayRef actual,
                at::IntArrayRef expected, const std::string& said_by = "config.json");

// Writes <dir>/model.safetensors with random weights for `config` (WeightInit, the pad row of
// the embedding zero), drawn from one CPU generator seeded with `seed`.
void CreateRandomWeights(const std::string& dir, const LlamaConfig& config, uint64_t seed);

// Creates `dir` and writes config.json and CreateRandomWeights into it.
void CreateRandomModel(const std::string& dir, const LlamaConfig& config, uint64_t seed);

}  // namespace mentallam
