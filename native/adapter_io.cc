#include "adapter_io.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <regex>
#include <set>

#include "atomic_file.h"
#include "errors.h"
#include "json_parse.h"
#include "llama_weights.h"
#include "safetensors.h"

namespace mentallam {
namespace fs = std::filesystem;

namespace {

std::string FullModuleName(int64_t layer, const std::string& module) {
  return "model.layers." + std::to_string(layer) + "." + module;
}

// A number as peft writes it: r and an integral alpha as ints (LoraConfig declares them int).
Json PeftNumber(double value) {
  return value == std::floor(value) && std::fabs(value) < 9e15 ? Json(static_cast<int64_t>(value))
                                                               : Json(value);
}

// adapter_config.json as peft writes it: sorted keys, two-space indent.
std::string AdapterConfigJson(const DoraOptions& dora, const std::string& base_model_path) {
  std::vector<std::string> targets = dora.target_modules;
  std::sort(targets.begin(), targets.end());
  // peft matches layers_to_transform against the index after `layers_pattern` in the module
  // name; Llama's decoder layers are model.layers.{i}, so the pattern is "layers".
  Json layers = dora.layers ? Json(*dora.layers) : Json(nullptr);
  Json layers_pattern = dora.layers ? Json("layers") : Json(nullptr);
  Json config = {
      {"alpha_pattern", Json::object()},
      {"base_model_name_or_path", base_model_path},
      {"bias", "none"},
      {"exclude_modules", nullptr},
      {"fan_in_fan_out", false},
      {"inference_mode", true},
      {"init_lora_weights", true},
      {"layer_replication", nullptr},
      {"layers_pattern", layers_pattern},
      {"layers_to_transform", layers},
      {"loftq_config", Json::object()},
      {"lora_alpha", PeftNumber(dora.alpha)},
      {"lora_bias", false},
      {"lora_dropout", dora.dropout},
      {"megatron_config", nullptr},
      {"megatron_core", "megatron.core"},
      {"modules_to_save", Json::array({"classifier", "score"})},
      {"peft_type", "LORA"},
      {"r", dora.r},
      {"rank_pattern", Json::object()},
      {"revision", nullptr},
      {"target_modules", targets},
      {"task_type", "SEQ_CLS"},
      {"use_dora", true},
      {"use_rslora", dora.use_rslora},
  };
  return config.dump(2) + "\n";
}

// Reads the parts of adapter_config.json this model supports; anything else is a UserError.
struct AdapterConfig {
  DoraOptions dora;
  bool regex = false;
  std::string pattern;
};

AdapterConfig ParseAdapterConfig(const std::string& path) {
  Json json = ReadJsonFile(path);
  if (!json.is_object()) throw UserError(path + ": expected a JSON object");
  auto fail = [&](const std::string& what) { throw UserError(path + ": " + what); };
  auto get = [&](const char* key) -> const Json* {
    auto it = json.find(key);
    return it == json.end() ? nullptr : &*it;
  };
  auto peft_type = get("peft_type");
  if (!peft_type || !peft_type->is_string() || peft_type->get<std::string>() != "LORA") {
    fail("peft_type must be \"LORA\" (a DoRA adapter)");
  }
  auto use_dora = get("use_dora");
  if (!use_dora || !use_dora->is_boolean() || !use_dora->get<bool>()) {
    fail("use_dora must be true: plain LoRA adapters are not supported");
  }
  AdapterConfig config;
  auto r = get("r");
  std::optional<int64_t> rank = r ? JsonInt64(*r) : std::nullopt;
  if (!rank || *rank < 1) fail("r must be a positive integer");
  config.dora.r = *rank;
  auto alpha = get("lora_alpha");
  config.dora.alpha = alpha && alpha->is_number() ? alpha->get<double>() : 8.0;
  auto dropout = get("lora_dropout");
  config.dora.dropout = dropout && dropout->is_number() ? dropout->get<double>() : 0.0;
  auto rslora = get("use_rslora");
  config.dora.use_rslora = rslora && rslora->is_boolean() && rslora->get<bool>();
  for (const char* key : {"rank_pattern", "alpha_pattern"}) {
    auto value = get(key);
    if (value && value->is_object() && !value->empty()) {
      fail(std::string(key) + " is not supported (one r and alpha for every module)");
    }
  }
  // layers_to_transform: one index or a list (peft accepts both); null = every layer.
  auto layers = get("layers_to_transform");
  if (layers && !layers->is_null()) {
    std::vector<int64_t> indices;
    auto add = [&](const Json& item) {
      auto index = JsonInt64(item);
      if (!index || *index < 0) fail("layers_to_transform must hold non-negative integers");
      indices.push_back(*index);
    };
    if (layers->is_array()) {
      for (const auto& item : *layers) add(item);
    } else {
      add(*layers);
    }
    // peft treats an empty list as "every layer".
    if (!indices.empty()) config.dora.layers = indices;
  }
  // layers_pattern names the ModuleList the index follows; for Llama that is "layers" (null or
  // empty: peft takes the first numbered segment, which is the same one).
  auto pattern = get("layers_pattern");
  if (pattern && !pattern->is_null()) {
    bool ok = (pattern->is_string() &&
               (pattern->get<std::string>().empty() || pattern->get<std::string>() == "layers"));
    if (pattern->is_array()) {
      ok = true;
      for (const auto& item : *pattern) {
        ok = ok && item.is_string() && item.get<std::string>() == "layers";
      }
      ok = ok && !pattern->empty();
    }
    if (!ok) fail("layers_pattern must be \"layers\" (Llama's decoder layers) or null");
  }
  auto bias = get("bias");
  if (bias && bias->is_string() && bias->get<std::string>() != "none") {
    fail("bias must be \"none\"");
  }
  auto targets = get("target_modules");
  if (!targets || targets->is_null()) fail("target_modules is missing");
  config.dora.target_modules.clear();
  if (targets->is_string()) {
    if (config.dora.layers) fail("layers_to_transform cannot be used with a regex target_modules");
    config.regex = true;
    config.pattern = targets->get<std::string>();
  } else if (targets->is_array()) {
    for (const auto& item : *targets) {
      if (!item.is_string()) fail("target_modules must hold strings");
      config.dora.target_modules.push_back(item.get<std::string>());
    }
  } else {
    fail("target_modules must be a list or a regular expression");
  }
  return config;
}

// The optimizer step count in optimizer.safetensors' metadata.
int64_t ParseStep(const std::string& text, const std::string& path) {
  std::size_t used = 0;
  int64_t step = -1;
  try {
    step = std::stoll(text, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  if (used == 0 || used != text.size() || step < 0) {
    throw UserError(path + ": metadata step '" + text + "' is not a non-negative integer");
  }
  return step;
}

}  // namespace

std::string PeftAdapterKey(int64_t layer, const std::string& module, const std::string& suffix) {
  return "base_model.model." + FullModuleName(layer, module) + "." + suffix;
}

bool IsTargeted(const std::string& full_name, const std::vector<std::string>& targets) {
  for (const auto& target : targets) {
    if (full_name == target) return true;
    std::string tail = "." + target;
    if (full_name.size() > tail.size() &&
        full_name.compare(full_name.size() - tail.size(), tail.size(), tail) == 0) {
      return true;
    }
  }
  return false;
}

void SaveAdapter(const std::string& dir, const LlamaModel& model, const DoraOptions& dora,
                 const std::string& base_model_path, AdamW* optimizer) {
  torch::NoGradGuard no_grad;
  std::error_code error;
  fs::create_directories(dir, error);
  if (error) throw UserError(dir + ": cannot create directory: " + error.message());
  std::vector<std::pair<std::string, torch::Tensor>> tensors;
  std::vector<std::pair<std::string, torch::Tensor>> moments;
  auto add = [&](const std::string& key, const torch::Tensor& t) {
    tensors.emplace_back(key, t.detach().to(torch::kCPU).contiguous());
    if (optimizer) {
      auto it = optimizer->States().find(key);
      if (it != optimizer->States().end()) {
        moments.emplace_back(key + ".exp_avg", it->second.exp_avg.to(torch::kCPU));
        moments.emplace_back(key + ".exp_avg_sq", it->second.exp_avg_sq.to(torch::kCPU));
      }
    }
  };
  const auto& layers = model.Layers();
  for (int64_t i = 0; i < static_cast<int64_t>(layers.size()); ++i) {
    for (auto& [name, linear] : layers[i].Linears()) {
      if (!linear->HasAdapter()) continue;
      auto* l = const_cast<DoraLinear*>(linear);
      add(PeftAdapterKey(i, name, "lora_A.weight"), l->A());
      add(PeftAdapterKey(i, name, "lora_B.weight"), l->B());
      add(PeftAdapterKey(i, name, "lora_magnitude_vector"), l->M());
    }
  }
  add(kPeftScoreKey, const_cast<LlamaModel&>(model).Score());
  WriteSafetensors((fs::path(dir) / "adapter_model.safetensors").string(), tensors,
                   {{"format", "pt"}});
  WriteFileAtomically((fs::path(dir) / "adapter_config.json").string(),
                      AdapterConfigJson(dora, base_model_path));
  auto optimizer_path = (fs::path(dir) / "optimizer.safetensors").string();
  if (optimizer && optimizer->StepCount() > 0) {
    WriteSafetensors(optimizer_path, moments,
                     {{"format", "pt"},
                      {"optimizer", "AdamW"},
                      {"step", std::to_string(optimizer->StepCount())}});
  } else {
    fs::remove(optimizer_path, error);  // no stale moments beside a fresh adapter
  }
}

DoraOptions LoadAdapter(const std::string& dir, LlamaModel& model, AdamW* optimizer) {
  torch::NoGradGuard no_grad;
  auto config_path = (fs::path(dir) / "adapter_config.json").string();
  auto weights_path = (fs::path(dir) / "adapter_model.safetensors").string();
  if (!fs::exists(config_path)) throw UserError(config_path + ": not found (not a peft adapter)");
  if (!fs::exists(weights_path)) {
    throw UserError(weights_path + ": not found (only safetensors adapters are supported)");
  }
  auto config = ParseAdapterConfig(config_path);
  auto reader = SafetensorsReader::Open(weights_path);
  double scaling = config.dora.Scaling();
  std::optional<std::regex> pattern;
  if (config.regex) {
    try {
      pattern.emplace(config.pattern);
    } catch (const std::regex_error& e) {
      throw UserError(config_path + ": target_modules is not a valid regular expression");
    }
  }
  // Read and check everything first, so a bad file leaves the model untouched.
  struct Pending {
    DoraLinear* linear;
    torch::Tensor a, b, m;
  };
  std::vector<Pending> pending;
  std::vector<DoraLinear*> untargeted;
  std::set<std::string> found_modules;
  auto& layers = model.Layers();
  if (config.dora.layers) {
    for (int64_t index : *config.dora.layers) {
      if (index >= static_cast<int64_t>(layers.size())) {
        throw UserError(config_path + ": layers_to_transform names layer " + std::to_string(index) +
                        " but the model has " + std::to_string(layers.size()) + " layers");
      }
    }
    try {
      config.dora.ResolveLayers(static_cast<int64_t>(layers.size()));
    } catch (const UserError& e) {
      throw UserError(config_path + ": layers_to_transform: " + e.what());
    }
  }
  for (int64_t i = 0; i < static_cast<int64_t>(layers.size()); ++i) {
    for (auto& [name, linear] : layers[i].Linears()) {
      auto full = FullModuleName(i, name);
      bool targeted =
          config.dora.AdaptsLayer(i) && (pattern ? std::regex_match(full, *pattern)
                                                 : IsTargeted(full, config.dora.target_modules));
      if (!targeted) {
        untargeted.push_back(linear);
        continue;
      }
      found_modules.insert(name.substr(name.find('.') + 1));
      Pending p{linear, reader.Load(PeftAdapterKey(i, name, "lora_A.weight"), torch::kFloat32),
                reader.Load(PeftAdapterKey(i, name, "lora_B.weight"), torch::kFloat32),
                reader.Load(PeftAdapterKey(i, name, "lora_magnitude_vector"), torch::kFloat32)};
      auto key = PeftAdapterKey(i, name, "lora_A.weight");
      CheckShape(weights_path, key, p.a.sizes(), {config.dora.r, linear->InFeatures()});
      CheckShape(weights_path, PeftAdapterKey(i, name, "lora_B.weight"), p.b.sizes(),
                 {linear->OutFeatures(), config.dora.r});
      CheckShape(weights_path, PeftAdapterKey(i, name, "lora_magnitude_vector"), p.m.sizes(),
                 {linear->OutFeatures()});
      pending.push_back(p);
    }
  }
  if (pending.empty())
    throw UserError(config_path + ": target_modules match no Linear of the model");
  torch::Tensor score;
  if (reader.Has(kPeftScoreKey)) {
    score = reader.Load(kPeftScoreKey, torch::kFloat32);
    CheckShape(weights_path, kPeftScoreKey, score.sizes(), model.Score().sizes());
  }
  for (auto* linear : untargeted) linear->RemoveAdapter();
  auto device = model.Device();
  for (auto& p : pending) {
    p.linear->SetAdapter(p.a.to(device), p.b.to(device), p.m.to(device), scaling,
                         config.dora.dropout);
  }
  model.Score().copy_(score.defined() ? score.to(device) : model.InitialScore());
  if (config.regex) {
    config.dora.target_modules.assign(found_modules.begin(), found_modules.end());
  }

  if (optimizer) {
    optimizer->Reset();
    auto optimizer_path = (fs::path(dir) / "optimizer.safetensors").string();
    if (fs::exists(optimizer_path)) {
      auto state = SafetensorsReader::Open(optimizer_path);
      auto step = state.Metadata().find("step");
      if (step == state.Metadata().end()) throw UserError(optimizer_path + ": no step in metadata");
      int64_t steps = ParseStep(step->second, optimizer_path);
      for (const auto& name : state.Names()) {
        const std::string suffix = ".exp_avg";
        if (name.size() <= suffix.size() ||
            name.compare(name.size() - suffix.size(), suffix.size(), suffix) != 0) {
          continue;
        }
        auto key = name.substr(0, name.size() - suffix.size());
        if (!reader.Has(key))
          throw UserError(optimizer_path + ": '" + key + "' is not in the adapter");
        AdamW::State s{state.Load(name, torch::kFloat32).to(device),
                       state.Load(key + ".exp_avg_sq", torch::kFloat32).to(device)};
        auto shape = reader.Entry(key).shape;
        CheckShape(optimizer_path, name, s.exp_avg.sizes(), shape);
        CheckShape(optimizer_path, key + ".exp_avg_sq", s.exp_avg_sq.sizes(), shape);
        optimizer->States()[key] = s;
      }
      optimizer->SetStepCount(steps);
    }
  }
  return config.dora;
}

}  // namespace mentallam
