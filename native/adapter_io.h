// Adapters in peft's on-disk layout (dora-llama-spec.md section 4): adapter_config.json +
// adapter_model.safetensors, loadable by PeftModel.from_pretrained, and readers for adapters
// peft wrote. Beside them, optimizer.safetensors holds the AdamW moments and step for resuming.
#pragma once

#include <string>
#include <vector>

#include "dora.h"
#include "llama.h"
#include "train_step.h"

namespace mentallam {

// peft key of a DoRA tensor: base_model.model.model.layers.{layer}.{module}.{suffix}, with
// suffix "lora_A.weight", "lora_B.weight" or "lora_magnitude_vector".
std::string PeftAdapterKey(int64_t layer, const std::string& module, const std::string& suffix);
inline const char* kPeftScoreKey = "base_model.model.score.weight";

// peft's targeting rule: the module's full name ("model.layers.3.self_attn.q_proj") equals an
// entry or ends with "." + entry.
bool IsTargeted(const std::string& full_name, const std::vector<std::string>& targets);

// Writes <dir>/adapter_config.json and <dir>/adapter_model.safetensors (atomically, dir created),
// and <dir>/optimizer.safetensors when the optimizer has taken a step.
void SaveAdapter(const std::string& dir, const LlamaModel& model, const DoraOptions& dora,
                 const std::string& base_model_path, AdamW* optimizer);

// Reads an adapter written by SaveAdapter or by peft (LORA with use_dora, list or regex
// target_modules, no rank/alpha patterns). Replaces the model's adapters and score head and
// returns the adapter's DoRA options. The optimizer is reset, then restored from
// optimizer.safetensors when present.
DoraOptions LoadAdapter(const std::string& dir, LlamaModel& model, AdamW* optimizer);

}  // namespace mentallam
