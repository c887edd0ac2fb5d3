// Hugging Face Llama config.json: parsing with transformers' defaults (LlamaConfig, v4 and v5 key
// spellings) and writing a config.json transformers can load. See dora-llama-spec.md section 1.1.
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace mentallam {

struct RopeScaling {
  // "default" (no scaling), "linear" (positions / factor) or "llama3" (per-frequency smoothing).
  // Other transformers types (dynamic, yarn, longrope) are rejected at load with a UserError.
  std::string type = "default";
  double factor = 1;
  double low_freq_factor = 1;                       // llama3 only
  double high_freq_factor = 4;                      // llama3 only
  int64_t original_max_position_embeddings = 8192;  // llama3 only
};

struct LlamaConfig {
  int64_t hidden_size = 4096;
  int64_t intermediate_size = 11008;
  int64_t num_hidden_layers = 32;
  int64_t num_attention_heads = 32;
  int64_t num_key_value_heads = 32;  // = num_attention_heads when absent
  int64_t head_dim = 128;            // = hidden_size / num_attention_heads when absent
  int64_t vocab_size = 32000;
  int64_t max_position_embeddings = 2048;
  double rms_norm_eps = 1e-6;
  double rope_theta = 10000.0;
  RopeScaling rope_scaling;
  std::optional<int64_t> pad_token_id;
  std::optional<int64_t> bos_token_id = 1;
  std::optional<int64_t> eos_token_id = 2;
  int64_t num_labels = 2;             // from num_labels, else the size of id2label, else 2
  std::vector<std::string> id2label;  // size num_labels; "LABEL_i" when absent
  bool attention_bias = false;
  bool mlp_bias = false;
  bool tie_word_embeddings = false;
  std::string torch_dtype = "float32";  // torch_dtype or dtype (v5); informational
  // Added beyond the first published interface (kept additive):
  std::string hidden_act = "silu";  // anything else is rejected at load (the model is SwiGLU)
  double initializer_range = 0.02;  // std of a freshly initialised score head
  double attention_dropout = 0.0;
  std::optional<std::string> problem_type;  // "single_label_classification", ... or absent
};

// Reads <model_dir>/config.json (or the file itself when given a path ending in .json); for a
// GGUF model (FindGgufModel in gguf.h) the config comes from its metadata (GgufLlamaConfig).
// Missing keys take LlamaConfig's defaults; wrong types, non-positive sizes, hidden_size not
// divisible by heads without head_dim, heads not divisible by KV heads, and unsupported
// rope_scaling / hidden_act are UserErrors "<file>: <key> ...".
LlamaConfig LoadLlamaConfig(const std::string& model_dir);

// A transformers-loadable config.json text (architectures ["LlamaForSequenceClassification"],
// model_type "llama", id2label/label2id, rope_scaling null or its dict, rope_theta).
std::string LlamaConfigToJson(const LlamaConfig& config);
// Writes LlamaConfigToJson(config) to `path` atomically (temp file in the same dir + rename).
void WriteLlamaConfig(const std::string& path, const LlamaConfig& config);

// Throws UserError "<file>: tensor '<tensor>' has shape [a, b], config.json says [c, d]" when
// t's shape differs from `expected`.
void CheckShape(const std::string& file, const std::string& tensor, const torch::Tensor& t,
                at::IntArrayRef expected);
// The same for a shape known without loading the tensor (a safetensors header entry).
void CheckShape(const std::string& file, const std::string& tensor, at::IntArrayRef actual,
                at::IntArrayRef expected);

// The base weights of LlamaForSequenceClassification and their shapes from the config, in the
// checkpoint's key names (dora-llama-spec.md 1.7): embed_tokens [V, H]; per layer the two norms
// [H], q [nh*D, H], k/v [nkv*D, H], o [H, nh*D], gate/up [I, H], down [H, I] (+ biases when
// attention_bias / mlp_bias); model.norm [H]; score.weight [num_labels, H] last.
std::vector<std::pair<std::string, std::vector<int64_t>>> LlamaWeightShapes(
    const LlamaConfig& config);

struct CheckpointCheck {
  int64_t checked = 0;               // tensors whose shape was checked
  bool has_score = false;            // false for a CausalLM checkpoint: the head starts fresh
  std::vector<std::string> ignored;  // tensors the classifier does not use (lm_head, inv_freq)
};

// Opens <model_dir>/config.json and the weights (model.safetensors or shards), or a GGUF model,
// and checks every base weight is present with the config's shape, reading headers only. Missing
// tensor or a shape mismatch -> UserError naming the file.
CheckpointCheck CheckLlamaCheckpoint(const std::string& model_dir);

}  // namespace mentallam
