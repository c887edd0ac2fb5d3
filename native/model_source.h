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

class ModelSource {
 public:
  // Reads the config (config.json, or the GGUF metadata) and opens the weights; every problem is
  // a UserError naming the file.
  static ModelSource Open(const std::string& path);

  const LlamaConfig& Config() const { return config_; }
  // The file or directory the weights come from, for error messages.
  const std::string& Source() const;
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
