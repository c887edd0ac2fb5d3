// Hugging Face Llama config.json, owned here: LlamaConfig and its nlohmann/json conversions hold
// every key name, default and derived value (transformers' LlamaConfig, v4 and v5 spellings;
// dora-llama-spec.md section 1.1). The binding hands JS the JSON form, never a field list of its
// own, so a config field is added in this file only.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "json_parse.h"

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
  std::string hidden_act = "silu";      // anything else is rejected (the model is SwiGLU)
  double initializer_range = 0.02;      // std of freshly initialised weights
  double attention_dropout = 0.0;
  std::optional<std::string> problem_type;  // "single_label_classification", ... or absent
};

// config.json keys -> LlamaConfig. Missing keys (and null) take transformers' defaults; wrong
// types, non-positive sizes, hidden_size not divisible by heads without head_dim, heads not
// divisible by KV heads, unsupported rope_scaling / hidden_act / model_type are UserErrors
// "<key> ..." (LlamaConfigFromJson puts the source in front).
void from_json(const Json& json, LlamaConfig& config);

// LlamaConfig -> a transformers-loadable config.json: architectures
// ["LlamaForSequenceClassification"], model_type "llama", id2label/label2id, rope_scaling null or
// its dict, every size explicit (head_dim, num_key_value_heads). from_json(to_json(c)) == c.
void to_json(Json& json, const LlamaConfig& config);

// from_json with errors "<source>: <key> ...".
LlamaConfig LlamaConfigFromJson(const Json& json, const std::string& source);

// Reads <model_dir>/config.json (or the file itself when given a path that is not a directory).
// A GGUF model carries its config in its metadata instead: model_source.h reads either.
LlamaConfig LoadLlamaConfig(const std::string& model_dir);

// Writes to_json(config) to `path` atomically, sorted keys and two-space indent as transformers'
// save_pretrained writes it.
void WriteLlamaConfig(const std::string& path, const LlamaConfig& config);

}  // namespace mentallam
