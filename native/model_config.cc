#include "model_config.h"

#include <cmath>
#include <filesystem>
#include <map>

#include "atomic_file.h"
#include "errors.h"

namespace mentallam {

namespace fs = std::filesystem;

namespace {

// Typed access to config.json keys; every error names the key (with its parent's prefix).
class Keys {
 public:
  explicit Keys(const Json& object, std::string prefix = "")
      : object_(object), prefix_(std::move(prefix)) {}

  // Absent and null both mean "use the default", as in transformers.
  const Json* Get(const std::string& key) const {
    auto it = object_.find(key);
    return it != object_.end() && !it->is_null() ? &*it : nullptr;
  }

  [[noreturn]] void Fail(const std::string& key, const std::string& what) const {
    throw UserError(prefix_ + key + " " + what);
  }

  int64_t Int(const std::string& key, int64_t fallback) const {
    const Json* value = Get(key);
    if (!value) return fallback;
    std::optional<int64_t> integer = JsonInt64(*value);
    if (!integer) {
      Fail(key, value->is_number_integer() ? "is too large, got " + Shown(*value)
                                           : "must be an integer, got " + Shown(*value));
    }
    return *integer;
  }

  int64_t PositiveInt(const std::string& key, int64_t fallback) const {
    int64_t value = Int(key, fallback);
    if (value <= 0) Fail(key, "must be positive, got " + std::to_string(value));
    return value;
  }

  std::optional<int64_t> OptionalTokenId(const std::string& key,
                                         std::optional<int64_t> fallback) const {
    auto present = object_.find(key);
    if (present == object_.end()) return fallback;
    if (present->is_null()) return std::nullopt;
    // Some configs list several end-of-sequence ids; the first is the one generation stops on.
    const Json* value = &*present;
    if (present->is_array()) {
      if (present->empty()) return std::nullopt;
      value = &(*present)[0];
    }
    std::optional<int64_t> id = JsonInt64(*value);
    if (!id || *id < 0) {
      Fail(key, "must be a non-negative integer or null, got " + Shown(*value));
    }
    return id;
  }

  double Double(const std::string& key, double fallback) const {
    const Json* value = Get(key);
    if (!value) return fallback;
    if (!value->is_number()) Fail(key, "must be a number, got " + Shown(*value));
    double number = value->get<double>();
    if (!std::isfinite(number)) Fail(key, "must be a finite number");
    return number;
  }

  bool Bool(const std::string& key, bool fallback) const {
    const Json* value = Get(key);
    if (!value) return fallback;
    if (!value->is_boolean()) Fail(key, "must be true or false, got " + Shown(*value));
    return value->get<bool>();
  }

  std::optional<std::string> String(const std::string& key) const {
    const Json* value = Get(key);
    if (!value) return std::nullopt;
    if (!value->is_string()) Fail(key, "must be a string, got " + Shown(*value));
    return value->get<std::string>();
  }

  static std::string Shown(const Json& value) {
    if (value.is_string() || value.is_number()) return value.dump();
    return DescribeJson(value);
  }

 private:
  const Json& object_;
  std::string prefix_;
};

RopeScaling ParseRope(const Json& rope, const std::string& key) {
  Keys keys(rope, key + ".");
  RopeScaling out;
  std::optional<std::string> type = keys.String("rope_type");
  if (!type) type = keys.String("type");  // the v4.3x spelling
  out.type = type.value_or("default");
  if (out.type == "default") return out;
  if (out.type != "linear" && out.type != "llama3") {
    keys.Fail("rope_type",
              "'" + out.type + "' is not supported (supported: default, linear, llama3)");
  }
  if (!keys.Get("factor")) keys.Fail("factor", "is required for rope_type " + out.type);
  out.factor = keys.Double("factor", 1);
  if (out.factor < 1) keys.Fail("factor", "must be >= 1, got " + Json(out.factor).dump());
  if (out.type == "llama3") {
    // transformers' _validate_llama3_parameters requires all of these.
    for (const char* required :
         {"low_freq_factor", "high_freq_factor", "original_max_position_embeddings"}) {
      if (!keys.Get(required)) keys.Fail(required, "is required for rope_type llama3");
    }
    out.low_freq_factor = keys.Double("low_freq_factor", 1);
    out.high_freq_factor = keys.Double("high_freq_factor", 4);
    out.original_max_position_embeddings = keys.PositiveInt("original_max_position_embeddings", 0);
    if (!(out.high_freq_factor > out.low_freq_factor)) {
      keys.Fail("high_freq_factor", "must be greater than low_freq_factor");
    }
  }
  return out;
}

// Labels as PretrainedConfig derives them: id2label wins; num_labels alone makes LABEL_i.
void ParseLabels(const Keys& keys, LlamaConfig& config) {
  const Json* id2label = keys.Get("id2label");
  if (!id2label) {
    config.num_labels = keys.PositiveInt("num_labels", 2);
    for (int64_t i = 0; i < config.num_labels; ++i) {
      config.id2label.push_back("LABEL_" + std::to_string(i));
    }
    return;
  }
  if (!id2label->is_object() || id2label->empty()) {
    keys.Fail("id2label", "must be a non-empty object {\"0\": \"name\", ...}");
  }
  std::map<int64_t, std::string> labels;
  for (const auto& [id, label] : id2label->items()) {
    int64_t index = -1;
    try {
      std::size_t used = 0;
      index = std::stoll(id, &used);
      if (used != id.size()) index = -1;
    } catch (const std::exception&) {
      index = -1;
    }
    if (index < 0) keys.Fail("id2label", "key '" + id + "' is not a label index");
    if (!label.is_string()) keys.Fail("id2label", "value for '" + id + "' must be a string");
    labels[index] = label.get<std::string>();
  }
  config.num_labels = static_cast<int64_t>(labels.size());
  for (int64_t i = 0; i < config.num_labels; ++i) {
    auto it = labels.find(i);
    if (it == labels.end()) {
      keys.Fail("id2label", "must have the keys 0.." + std::to_string(config.num_labels - 1));
    }
    config.id2label.push_back(it->second);
  }
  if (keys.Get("num_labels") && keys.Int("num_labels", 0) != config.num_labels) {
    keys.Fail("num_labels", "(" + std::to_string(keys.Int("num_labels", 0)) +
                                ") disagrees with id2label, which has " +
                                std::to_string(config.num_labels) + " labels");
  }
}

Json OptionalId(const std::optional<int64_t>& id) { return id ? Json(*id) : Json(nullptr); }

}  // namespace

void from_json(const Json& json, LlamaConfig& config) {
  if (!json.is_object()) throw UserError("expected a JSON object, got " + DescribeJson(json));
  Keys keys(json);
  if (auto model_type = keys.String("model_type"); model_type && *model_type != "llama") {
    keys.Fail("model_type", "'" + *model_type + "' is not supported (expected llama)");
  }

  config.rope_scaling = RopeScaling{};
  config.id2label.clear();
  config.vocab_size = keys.PositiveInt("vocab_size", 32000);
  config.hidden_size = keys.PositiveInt("hidden_size", 4096);
  config.intermediate_size = keys.PositiveInt("intermediate_size", 11008);
  config.num_hidden_layers = keys.PositiveInt("num_hidden_layers", 32);
  config.num_attention_heads = keys.PositiveInt("num_attention_heads", 32);
  config.num_key_value_heads = keys.PositiveInt("num_key_value_heads", config.num_attention_heads);
  if (config.num_attention_heads % config.num_key_value_heads != 0) {
    keys.Fail("num_key_value_heads", "(" + std::to_string(config.num_key_value_heads) +
                                         ") must divide num_attention_heads (" +
                                         std::to_string(config.num_attention_heads) + ")");
  }
  if (keys.Get("head_dim")) {
    config.head_dim = keys.PositiveInt("head_dim", 0);
  } else {
    if (config.hidden_size % config.num_attention_heads != 0) {
      keys.Fail("hidden_size", "(" + std::to_string(config.hidden_size) +
                                   ") is not divisible by num_attention_heads (" +
                                   std::to_string(config.num_attention_heads) +
                                   ") and there is no head_dim");
    }
    config.head_dim = config.hidden_size / config.num_attention_heads;
  }
  config.max_position_embeddings = keys.PositiveInt("max_position_embeddings", 2048);
  config.rms_norm_eps = keys.Double("rms_norm_eps", 1e-6);
  if (!(config.rms_norm_eps > 0)) keys.Fail("rms_norm_eps", "must be positive");

  // RoPE: v4 has rope_theta + rope_scaling; v5 has rope_parameters (holding rope_theta too).
  const Json* rope_parameters = keys.Get("rope_parameters");
  const Json* rope_scaling = keys.Get("rope_scaling");
  config.rope_theta = keys.Double("rope_theta", 10000.0);
  if (rope_parameters) {
    if (!rope_parameters->is_object()) keys.Fail("rope_parameters", "must be an object or null");
    config.rope_scaling = ParseRope(*rope_parameters, "rope_parameters");
    // v5 keeps rope_theta inside rope_parameters; it wins over a stale top-level key, as in
    // transformers' standardize_rope_params.
    config.rope_theta =
        Keys(*rope_parameters, "rope_parameters.").Double("rope_theta", config.rope_theta);
  } else if (rope_scaling) {
    if (!rope_scaling->is_object()) keys.Fail("rope_scaling", "must be an object or null");
    config.rope_scaling = ParseRope(*rope_scaling, "rope_scaling");
  }
  if (!(config.rope_theta > 0)) keys.Fail("rope_theta", "must be positive");

  config.pad_token_id = keys.OptionalTokenId("pad_token_id", std::nullopt);
  config.bos_token_id = keys.OptionalTokenId("bos_token_id", 1);
  config.eos_token_id = keys.OptionalTokenId("eos_token_id", 2);
  ParseLabels(keys, config);

  config.attention_bias = keys.Bool("attention_bias", false);
  config.mlp_bias = keys.Bool("mlp_bias", false);
  config.tie_word_embeddings = keys.Bool("tie_word_embeddings", false);
  config.torch_dtype =
      keys.String("torch_dtype").value_or(keys.String("dtype").value_or("float32"));
  config.hidden_act = keys.String("hidden_act").value_or("silu");
  if (config.hidden_act != "silu" && config.hidden_act != "swish") {
    keys.Fail("hidden_act", "'" + config.hidden_act + "' is not supported (expected silu)");
  }
  config.initializer_range = keys.Double("initializer_range", 0.02);
  config.attention_dropout = keys.Double("attention_dropout", 0.0);
  config.problem_type = keys.String("problem_type");
}

void to_json(Json& json, const LlamaConfig& c) {
  Json rope = nullptr;
  if (c.rope_scaling.type != "default") {
    rope = {{"rope_type", c.rope_scaling.type}, {"factor", c.rope_scaling.factor}};
    if (c.rope_scaling.type == "llama3") {
      rope["low_freq_factor"] = c.rope_scaling.low_freq_factor;
      rope["high_freq_factor"] = c.rope_scaling.high_freq_factor;
      rope["original_max_position_embeddings"] = c.rope_scaling.original_max_position_embeddings;
    }
  }
  Json id2label = Json::object(), label2id = Json::object();
  for (std::size_t i = 0; i < c.id2label.size(); ++i) {
    id2label[std::to_string(i)] = c.id2label[i];
    label2id[c.id2label[i]] = static_cast<int64_t>(i);
  }
  json = {
      {"architectures", Json::array({"LlamaForSequenceClassification"})},
      {"model_type", "llama"},
      {"hidden_size", c.hidden_size},
      {"intermediate_size", c.intermediate_size},
      {"num_hidden_layers", c.num_hidden_layers},
      {"num_attention_heads", c.num_attention_heads},
      {"num_key_value_heads", c.num_key_value_heads},
      {"head_dim", c.head_dim},
      {"vocab_size", c.vocab_size},
      {"max_position_embeddings", c.max_position_embeddings},
      {"rms_norm_eps", c.rms_norm_eps},
      {"rope_theta", c.rope_theta},
      {"rope_scaling", rope},
      {"hidden_act", c.hidden_act},
      {"initializer_range", c.initializer_range},
      {"attention_dropout", c.attention_dropout},
      {"attention_bias", c.attention_bias},
      {"mlp_bias", c.mlp_bias},
      {"tie_word_embeddings", c.tie_word_embeddings},
      {"pretraining_tp", 1},
      {"pad_token_id", OptionalId(c.pad_token_id)},
      {"bos_token_id", OptionalId(c.bos_token_id)},
      {"eos_token_id", OptionalId(c.eos_token_id)},
      {"id2label", id2label},
      {"label2id", label2id},
      {"torch_dtype", c.torch_dtype},
  };
  if (c.problem_type) json["problem_type"] = *c.problem_type;
}

LlamaConfig LlamaConfigFromJson(const Json& json, const std::string& source) {
  try {
    return json.get<LlamaConfig>();
  } catch (const UserError& error) {
    throw UserError(source + ": " + error.what());
  }
}

LlamaConfig LoadLlamaConfig(const std::string& model_dir) {
  std::string file = model_dir;
  std::error_code error;
  if (fs::is_directory(model_dir, error)) file = (fs::path(model_dir) / "config.json").string();
  return LlamaConfigFromJson(ReadJsonFile(file), file);
}

void WriteLlamaConfig(const std::string& path, const LlamaConfig& config) {
  WriteFileAtomically(path, Json(config).dump(2) + "\n");
}

}  // namespace mentallam
