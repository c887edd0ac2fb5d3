// A base model on disk, whatever its format: a Hugging Face checkpoint directory (config.json +
// safetensors) or a GGUF file (gguf.h; a directory holding exactly one also counts). Both give
// the LlamaConfig and the weights under Hugging Face names, so the model loader does not care.
#pragma once

#include <torch/torch.h>

#include <optional>
#include <string>
#include <vector>

#include "gguf.h"
#include "model_config.h"
#include "safetensors.h"

namespace mentallam {

// The config alone: config.json, or the metadata of a GGUF model.
LlamaConfig LoadModelConfig(const std::string& path);

class ModelSource {
 public:
  // Reads the config (config.json, or the GGUF metadata) and opens the weights; every problem is
  // a UserError naming the file.
  static ModelSource Open(const std::string& path);

  const LlamaConfig& Config() const { return config_; }
  // Where the config came from, for error messages: "config.json" or "the llama.* metadata".
  const char* ConfigOrigin() const { return gguf_ ? "the llama.* metadata" : "config.json"; }
  // The file or directory the weights come from, for error messages.
  const std::string& Source() const;
  // The file holding `name` (a shard of a safetensors checkpoint, or the GGUF file).
  const std::string& File(const std::string& name) const;
  // `name` as the file spells it, for error messages ("token_embd.weight" in a GGUF file).
  std::string FileKey(const std::string& name) const;
  // Every tensor under its Hugging Face name, sorted.
  std::vector<std::string> Names() const;
  bool Has(const std::string& name) const;
  std::vector<int64_t> Shape(const std::string& name) const;  // UserError when missing
  // An owned contiguous CPU tensor in `dtype` (a GGUF tensor dequantized, q/k un-permuted).
  torch::Tensor Load(const std::string& name, torch::Dtype dtype) const;

 private:
  LlamaConfig config_;
  std::optional<SafetensorsReader> safetensors_;
  std::optional<GgufReader> gguf_;
};

}  // namespace mentallam
