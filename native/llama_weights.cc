#include "llama_weights.h"

#include <ATen/CPUGeneratorImpl.h>

#include <filesystem>
#include <set>

#include "errors.h"

namespace mentallam {

namespace fs = std::filesystem;

const std::vector<LayerModule>& DecoderLayerModules() {
  using D = WeightDim;
  static const std::vector<LayerModule> modules = {
      {"input_layernorm", &DecoderLayer::input_norm, nullptr, D::kHidden, D::kHidden, nullptr},
      {"self_attn.q_proj", nullptr, &DecoderLayer::q, D::kQuery, D::kHidden,
       &LlamaConfig::attention_bias},
      {"self_attn.k_proj", nullptr, &DecoderLayer::k, D::kKeyValue, D::kHidden,
       &LlamaConfig::attention_bias},
      {"self_attn.v_proj", nullptr, &DecoderLayer::v, D::kKeyValue, D::kHidden,
       &LlamaConfig::attention_bias},
      {"self_attn.o_proj", nullptr, &DecoderLayer::o, D::kHidden, D::kQuery,
       &LlamaConfig::attention_bias},
      {"post_attention_layernorm", &DecoderLayer::post_norm, nullptr, D::kHidden, D::kHidden,
       nullptr},
      {"mlp.gate_proj", nullptr, &DecoderLayer::gate, D::kIntermediate, D::kHidden,
       &LlamaConfig::mlp_bias},
      {"mlp.up_proj", nullptr, &DecoderLayer::up, D::kIntermediate, D::kHidden,
       &LlamaConfig::mlp_bias},
      {"mlp.down_proj", nullptr, &DecoderLayer::down, D::kHidden, D::kIntermediate,
       &LlamaConfig::mlp_bias},
  };
  return modules;
}

namespace {

int64_t Size(WeightDim dim, const LlamaConfig& c) {
  switch (dim) {
    case WeightDim::kHidden:
      return c.hidden_size;
    case WeightDim::kIntermediate:
      return c.intermediate_size;
    case WeightDim::kQuery:
      return c.num_attention_heads * c.head_dim;
    case WeightDim::kKeyValue:
      return c.num_key_value_heads * c.head_dim;
  }
  return 0;
}

}  // namespace

std::string LayerKey(int64_t layer, const std::string& module, const char* part) {
  return "model.layers." + std::to_string(layer) + "." + module + "." + part;
}

std::vector<int64_t> ModuleShape(const LayerModule& module, const LlamaConfig& config) {
  if (module.norm) return {Size(module.out, config)};
  return {Size(module.out, config), Size(module.in, config)};
}

std::vector<LlamaWeight> LlamaWeights(const LlamaConfig& config) {
  const int64_t hidden = config.hidden_size;
  std::vector<LlamaWeight> weights;
  weights.push_back({kEmbedTokensKey, {config.vocab_size, hidden}, WeightInit::kNormal});
  for (int64_t layer = 0; layer < config.num_hidden_layers; ++layer) {
    for (const LayerModule& module : DecoderLayerModules()) {
      std::vector<int64_t> shape = ModuleShape(module, config);
      if (module.norm) {
        weights.push_back({LayerKey(layer, module.name), shape, WeightInit::kOnes});
        continue;
      }
      weights.push_back({LayerKey(layer, module.name), shape, WeightInit::kNormal});
      if (module.has_bias && config.*module.has_bias) {
        weights.push_back({LayerKey(layer, module.name, "bias"), {shape[0]}, WeightInit::kZeros});
      }
    }
  }
  weights.push_back({kFinalNormKey, {hidden}, WeightInit::kOnes});
  weights.push_back({kScoreKey, {config.num_labels, hidden}, WeightInit::kNormal, true});
  return weights;
}

void CheckShape(const std::string& file, const std::string& tensor, at::IntArrayRef actual,
                at::IntArrayRef expected, const std::string& said_by) {
  if (actual == expected) return;
  throw UserError(file + ": tensor '" + tensor + "' has shape " + ShapeText(actual) + ", " +
                  said_by + " says " + ShapeText(expected));
}

CheckpointCheck CheckLlamaWeights(const ModelSource& source, const LlamaConfig& config) {
  CheckpointCheck check;
  std::set<std::string> used;
  for (const LlamaWeight& weight : LlamaWeights(config)) {
    if (weight.optional) {
      // Absent (a CausalLM checkpoint) or for another label count: the head starts fresh.
      if (!source.Has(weight.key) || source.Shape(weight.key) != weight.shape) continue;
      check.has_score = true;
    } else {
      // Shape() throws "... is missing".
      CheckShape(source.File(weight.key), source.FileKey(weight.key), source.Shape(weight.key),
                 weight.shape, source.ConfigOrigin());
    }
    used.insert(source.FileKey(weight.key));
    ++check.checked;
  }
  // By the file's own key, so a GGUF's tied lm_head (an alias of token_embd) is not "ignored".
  for (const auto& name : source.Names()) {
    if (!used.count(source.FileKey(name))) check.ignored.push_back(name);
  }
  return check;
}

CheckpointCheck CheckLlamaCheckpoint(const std::string& path) {
  ModelSource source = ModelSource::Open(path);
  return CheckLlamaWeights(source, source.Config());
}

void CreateRandomWeights(const std::string& dir, const LlamaConfig& config, uint64_t seed) {
  torch::NoGradGuard no_grad;
  auto gen = at::make_generator<at::CPUGeneratorImpl>(seed);
  std::vector<std::pair<std::string, torch::Tensor>> tensors;
  for (const LlamaWeight& weight : LlamaWeights(config)) {
    torch::Tensor t;
    switch (weight.init) {
      case WeightInit::kNormal:
        t = torch::empty(weight.shape, torch::kFloat32);
        t.normal_(0, config.initializer_range, gen);
        break;
      case WeightInit::kZeros:
        t = torch::zeros(weight.shape, torch::kFloat32);
        break;
      case WeightInit::kOnes:
        t = torch::ones(weight.shape, torch::kFloat32);
        break;
    }
    // nn.Embedding(padding_idx): the pad token's row starts at zero.
    if (weight.key == kEmbedTokensKey && config.pad_token_id) {
      if (*config.pad_token_id >= config.vocab_size) {
        throw UserError("pad_token_id " + std::to_string(*config.pad_token_id) +
                        " is outside the vocabulary [0, " + std::to_string(config.vocab_size) +
                        ")");
      }
      t[*config.pad_token_id].zero_();
    }
    tensors.emplace_back(weight.key, t);
  }
  WriteSafetensors((fs::path(dir) / "model.safetensors").string(), tensors, {{"format", "pt"}});
}

void CreateRandomModel(const std::string& dir, const LlamaConfig& config, uint64_t seed) {
  std::error_code error;
  fs::create_directories(dir, error);
  if (error) throw UserError(dir + ": cannot create directory: " + error.message());
  WriteLlamaConfig((fs::path(dir) / "config.json").string(), config);
  CreateRandomWeights(dir, config, seed);
}

}  // namespace mentallam
