#include "model_config.h"

#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <map>
#include <set>
#include <tuple>

#include "errors.h"
#include "gguf.h"
#include "json.h"
#include "safetensors.h"

namespace mentallam {

namespace fs = std::filesystem;

namespace {

std::string ShapeText(at::IntArrayRef shape) {
  std::string out = "[";
  for (size_t i = 0; i < shape.size(); ++i) {
    if (i) out += ", ";
    out += std::to_string(shape[i]);
  }
  return out + "]";
}

std::string ReadFile(const std::string& path) {
  std::error_code error;
  if (!fs::exists(path, error)) throw UserError(path + ": no such file");
  if (fs::is_directory(path, error)) throw UserError(path + ": is a directory, expected a file");
  FILE* file = std::fopen(path.c_str(), "rb");
  if (!file) throw UserError(path + ": cannot open");
  std::string text;
  char buffer[65536];
  size_t got;
  while ((got = std::fread(buffer, 1, sizeof buffer, file)) > 0) text.append(buffer, got);
  bool failed = std::ferror(file);
  std::fclose(file);
  if (failed) throw UserError(path + ": read failed");
  return text;
}

// Typed access to config.json keys; every error names the file and the key.
class Keys {
 public:
  Keys(const JsonValue& object, std::string file, std::string prefix = "")
      : object_(object), file_(std::move(file)), prefix_(std::move(prefix)) {}

  // Absent and null both mean "use the default", as in transformers.
  const JsonValue* Get(const std::string& key) const {
    const JsonValue* value = object_.Find(key);
    return value && !value->IsNull() ? value : nullptr;
  }

  [[noreturn]] void Fail(const std::string& key, const std::string& what) const {
    throw UserError(file_ + ": " + prefix_ + key + " " + what);
  }

  int64_t Int(const std::string& key, int64_t fallback) const {
    const JsonValue* value = Get(key);
    if (!value) return fallback;
    if (!value->IsInteger()) Fail(key, "must be an integer, got " + Shown(*value));
    return value->AsInt64();
  }

  int64_t PositiveInt(const std::string& key, int64_t fallback) const {
    int64_t value = Int(key, fallback);
    if (value <= 0) Fail(key, "must be positive, got " + std::to_string(value));
    return value;
  }

  std::optional<int64_t> OptionalTokenId(const std::string& key,
                                         std::optional<int64_t> fallback) const {
    const JsonValue* present = object_.Find(key);
    if (!present) return fallback;
    if (present->IsNull()) return std::nullopt;
    // Some configs list several end-of-sequence ids; the first is the one generation stops on.
    const JsonValue* value = present;
    if (present->IsArray()) {
      if (present->Items().empty()) return std::nullopt;
      value = &present->Items()[0];
    }
    if (!value->IsInteger() || value->AsInt64() < 0) {
      Fail(key, "must be a non-negative integer or null, got " + Shown(*value));
    }
    return value->AsInt64();
  }

  double Double(const std::string& key, double fallback) const {
    const JsonValue* value = Get(key);
    if (!value) return fallback;
    if (!value->IsNumber()) Fail(key, "must be a number, got " + Shown(*value));
    // JSON has no infinity, but 1e400 parses to one; no config value can be infinite.
    if (!std::isfinite(value->AsDouble())) Fail(key, "must be a finite number");
    return value->AsDouble();
  }

  bool Bool(const std::string& key, bool fallback) const {
    const JsonValue* value = Get(key);
    if (!value) return fallback;
    if (!value->IsBool()) Fail(key, "must be true or false, got " + Shown(*value));
    return value->AsBool();
  }

  std::optional<std::string> String(const std::string& key) const {
    const JsonValue* value = Get(key);
    if (!value) return std::nullopt;
    if (!value->IsString()) Fail(key, "must be a string, got " + Shown(*value));
    return value->AsString();
  }

  static std::string Shown(const JsonValue& value) {
    if (value.IsString()) return "\"" + value.AsString() + "\"";
    if (value.IsNumber()) {
      return std::isfinite(value.AsDouble()) ? JsonNumber(value.AsDouble()) : "an infinite number";
    }
    return value.Describe();
  }

 private:
  const JsonValue& object_;
  std::string file_;
  std::string prefix_;
};

RopeScaling ParseRope(const JsonValue& rope, const std::string& file, const std::string& key) {
  Keys keys(rope, file, key + ".");
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
  if (out.factor < 1) keys.Fail("factor", "must be >= 1, got " + JsonNumber(out.factor));
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

// Floats that Python reads back as float (10000 would come back as an int).
std::string FloatText(double value) {
  std::string text = JsonNumber(value);
  if (text.find_first_of(".eE") == std::string::npos) text += ".0";
  return text;
}

std::string OptionalIdText(const std::optional<int64_t>& id) {
  return id ? std::to_string(*id) : "null";
}

}  // namespace

LlamaConfig LoadLlamaConfig(const std::string& model_dir) {
  // A GGUF model carries its config in its metadata.
  if (auto gguf = FindGgufModel(model_dir)) return GgufLlamaConfig(GgufReader::Open(*gguf));
  std::string file = model_dir;
  std::error_code error;
  if (fs::is_directory(model_dir, error)) file = (fs::path(model_dir) / "config.json").string();
  JsonValue root = ParseJson(ReadFile(file), file);
  if (!root.IsObject()) throw UserError(file + ": expected a JSON object, got " + root.Describe());
  Keys keys(root, file);

  if (auto model_type = keys.String("model_type"); model_type && *model_type != "llama") {
    keys.Fail("model_type", "'" + *model_type + "' is not supported (expected llama)");
  }

  LlamaConfig config;
  config.vocab_size = keys.PositiveInt("vocab_size", 32000);
  config.hidden_size = keys.PositiveInt("hidden_size", 4096);
  config.intermediate_size = keys.PositiveInt("intermediate_size", 11008);
  config.num_hidden_layers = keys.PositiveInt("num_hidden_layers", 32);
  config.num_attention_heads = keys.PositiveInt("num_attention_heads", 32);
  config.num_key_value_heads = keys.PositiveInt("num_key_value_heads", config.num_attention_heads);
  if (config.num_attention_heads % config.num_key_value_heads != 0) {
    keys.Fail("num_key_value_heads", std::string("(") + std::to_string(config.num_key_value_heads) +
                                         ") must divide num_attention_heads (" +
                                         std::to_string(config.num_attention_heads) + ")");
  }
  if (keys.Get("head_dim")) {
    config.head_dim = keys.PositiveInt("head_dim", 0);
  } else {
    if (config.hidden_size % config.num_attention_heads != 0) {
      keys.Fail("hidden_size", std::string("(") + std::to_string(config.hidden_size) +
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
  const JsonValue* rope_parameters = keys.Get("rope_parameters");
  const JsonValue* rope_scaling = keys.Get("rope_scaling");
  config.rope_theta = keys.Double("rope_theta", 10000.0);
  if (rope_parameters) {
    if (!rope_parameters->IsObject()) keys.Fail("rope_parameters", "must be an object or null");
    config.rope_scaling = ParseRope(*rope_parameters, file, "rope_parameters");
    // v5 keeps rope_theta inside rope_parameters; it wins over a stale top-level key, as in
    // transformers' standardize_rope_params.
    config.rope_theta =
        Keys(*rope_parameters, file, "rope_parameters.").Double("rope_theta", config.rope_theta);
  } else if (rope_scaling) {
    if (!rope_scaling->IsObject()) keys.Fail("rope_scaling", "must be an object or null");
    config.rope_scaling = ParseRope(*rope_scaling, file, "rope_scaling");
  }
  if (!(config.rope_theta > 0)) keys.Fail("rope_theta", "must be positive");

  config.pad_token_id = keys.OptionalTokenId("pad_token_id", std::nullopt);
  config.bos_token_id = keys.OptionalTokenId("bos_token_id", 1);
  config.eos_token_id = keys.OptionalTokenId("eos_token_id", 2);

  // Labels as PretrainedConfig derives them: id2label wins; num_labels alone makes LABEL_i.
  const JsonValue* id2label = keys.Get("id2label");
  if (id2label) {
    if (!id2label->IsObject() || id2label->Members().empty()) {
      keys.Fail("id2label", "must be a non-empty object {\"0\": \"name\", ...}");
    }
    std::map<int64_t, std::string> labels;
    for (const auto& [id, label] : id2label->Members()) {
      int64_t index = -1;
      try {
        size_t used = 0;
        index = std::stoll(id, &used);
        if (used != id.size()) index = -1;
      } catch (const std::exception&) {
        index = -1;
      }
      if (index < 0) keys.Fail("id2label", "key '" + id + "' is not a label index");
      if (!label.IsString()) keys.Fail("id2label", "value for '" + id + "' must be a string");
      labels[index] = label.AsString();
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
      keys.Fail("num_labels", std::string("(") + std::to_string(keys.Int("num_labels", 0)) +
                                  ") disagrees with id2label, which has " +
                                  std::to_string(config.num_labels) + " labels");
    }
  } else {
    config.num_labels = keys.PositiveInt("num_labels", 2);
    for (int64_t i = 0; i < config.num_labels; ++i) {
      config.id2label.push_back("LABEL_" + std::to_string(i));
    }
  }

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
  return config;
}

std::string LlamaConfigToJson(const LlamaConfig& c) {
  std::string rope = "null";
  if (c.rope_scaling.type != "default") {
    rope = "{\"rope_type\": " + JsonQuote(c.rope_scaling.type) +
           ", \"factor\": " + FloatText(c.rope_scaling.factor);
    if (c.rope_scaling.type == "llama3") {
      rope += ", \"low_freq_factor\": " + FloatText(c.rope_scaling.low_freq_factor) +
              ", \"high_freq_factor\": " + FloatText(c.rope_scaling.high_freq_factor) +
              ", \"original_max_position_embeddings\": " +
              std::to_string(c.rope_scaling.original_max_position_embeddings);
    }
    rope += "}";
  }
  std::string id2label = "{", label2id = "{";
  for (size_t i = 0; i < c.id2label.size(); ++i) {
    if (i) {
      id2label += ", ";
      label2id += ", ";
    }
    id2label += JsonQuote(std::to_string(i)) + ": " + JsonQuote(c.id2label[i]);
    label2id += JsonQuote(c.id2label[i]) + ": " + std::to_string(i);
  }
  id2label += "}";
  label2id += "}";

  std::vector<std::pair<std::string, std::string>> keys = {
      {"architectures", "[\"LlamaForSequenceClassification\"]"},
      {"model_type", "\"llama\""},
      {"hidden_size", std::to_string(c.hidden_size)},
      {"intermediate_size", std::to_string(c.intermediate_size)},
      {"num_hidden_layers", std::to_string(c.num_hidden_layers)},
      {"num_attention_heads", std::to_string(c.num_attention_heads)},
      {"num_key_value_heads", std::to_string(c.num_key_value_heads)},
      {"head_dim", std::to_string(c.head_dim)},
      {"vocab_size", std::to_string(c.vocab_size)},
      {"max_position_embeddings", std::to_string(c.max_position_embeddings)},
      {"rms_norm_eps", FloatText(c.rms_norm_eps)},
      {"rope_theta", FloatText(c.rope_theta)},
      {"rope_scaling", rope},
      {"hidden_act", JsonQuote(c.hidden_act)},
      {"initializer_range", FloatText(c.initializer_range)},
      {"attention_dropout", FloatText(c.attention_dropout)},
      {"attention_bias", c.attention_bias ? "true" : "false"},
      {"mlp_bias", c.mlp_bias ? "true" : "false"},
      {"tie_word_embeddings", c.tie_word_embeddings ? "true" : "false"},
      {"pretraining_tp", "1"},
      {"pad_token_id", OptionalIdText(c.pad_token_id)},
      {"bos_token_id", OptionalIdText(c.bos_token_id)},
      {"eos_token_id", OptionalIdText(c.eos_token_id)},
      {"id2label", id2label},
      {"label2id", label2id},
      {"torch_dtype", JsonQuote(c.torch_dtype)},
  };
  if (c.problem_type) keys.emplace_back("problem_type", JsonQuote(*c.problem_type));
  std::string out = "{\n";
  for (size_t i = 0; i < keys.size(); ++i) {
    out += "  " + JsonQuote(keys[i].first) + ": " + keys[i].second;
    out += i + 1 < keys.size() ? ",\n" : "\n";
  }
  return out + "}\n";
}

void WriteLlamaConfig(const std::string& path, const LlamaConfig& config) {
  std::string text = LlamaConfigToJson(config);
  std::string temp = path + ".tmp-" + std::to_string(::getpid()) + "-" +
                     std::to_string(reinterpret_cast<uintptr_t>(&text));
  FILE* file = std::fopen(temp.c_str(), "wb");
  if (!file) throw UserError(path + ": cannot create " + temp);
  bool ok = std::fwrite(text.data(), 1, text.size(), file) == text.size();
  ok = std::fflush(file) == 0 && ok;
  ok = ::fsync(::fileno(file)) == 0 && ok;
  ok = std::fclose(file) == 0 && ok;
  if (!ok || std::rename(temp.c_str(), path.c_str()) != 0) {
    std::remove(temp.c_str());
    throw UserError(path + ": cannot write config.json");
  }
}

void CheckShape(const std::string& file, const std::string& tensor, const torch::Tensor& t,
                at::IntArrayRef expected) {
  CheckShape(file, tensor, t.sizes(), expected);
}

void CheckShape(const std::string& file, const std::string& tensor, at::IntArrayRef actual,
                at::IntArrayRef expected) {
  if (actual == expected) return;
  throw UserError(file + ": tensor '" + tensor + "' has shape " + ShapeText(actual) +
                  ", config.json says " + ShapeText(expected));
}

std::vector<std::pair<std::string, std::vector<int64_t>>> LlamaWeightShapes(const LlamaConfig& c) {
  const int64_t h = c.hidden_size, i = c.intermediate_size;
  const int64_t q = c.num_attention_heads * c.head_dim, kv = c.num_key_value_heads * c.head_dim;
  std::vector<std::pair<std::string, std::vector<int64_t>>> shapes;
  shapes.push_back({"model.embed_tokens.weight", {c.vocab_size, h}});
  for (int64_t layer = 0; layer < c.num_hidden_layers; ++layer) {
    std::string prefix = "model.layers." + std::to_string(layer) + ".";
    shapes.push_back({prefix + "input_layernorm.weight", {h}});
    for (const auto& [name, out, in] :
         std::vector<std::tuple<std::string, int64_t, int64_t>>{{"self_attn.q_proj", q, h},
                                                                {"self_attn.k_proj", kv, h},
                                                                {"self_attn.v_proj", kv, h},
                                                                {"self_attn.o_proj", h, q}}) {
      shapes.push_back({prefix + name + ".weight", {out, in}});
      if (c.attention_bias) shapes.push_back({prefix + name + ".bias", {out}});
    }
    shapes.push_back({prefix + "post_attention_layernorm.weight", {h}});
    for (const auto& [name, out, in] : std::vector<std::tuple<std::string, int64_t, int64_t>>{
             {"mlp.gate_proj", i, h}, {"mlp.up_proj", i, h}, {"mlp.down_proj", h, i}}) {
      shapes.push_back({prefix + name + ".weight", {out, in}});
      if (c.mlp_bias) shapes.push_back({prefix + name + ".bias", {out}});
    }
  }
  shapes.push_back({"model.norm.weight", {h}});
  shapes.push_back({"score.weight", {c.num_labels, h}});
  return shapes;
}

CheckpointCheck CheckLlamaCheckpoint(const std::string& model_dir) {
  if (auto gguf = FindGgufModel(model_dir)) return CheckGgufCheckpoint(GgufReader::Open(*gguf));
  LlamaConfig config = LoadLlamaConfig(model_dir);
  SafetensorsReader reader = SafetensorsReader::Open(model_dir);
  CheckpointCheck check;
  std::set<std::string> known;
  for (const auto& [name, shape] : LlamaWeightShapes(config)) {
    known.insert(name);
    if (name == "score.weight" && !reader.Has(name)) continue;  // CausalLM: a fresh head
    const TensorEntry& entry = reader.Entry(name);              // throws "... is missing"
    CheckShape(entry.file, name, entry.shape, shape);
    if (name == "score.weight") check.has_score = true;
    ++check.checked;
  }
  for (const auto& name : reader.Names()) {
    if (!known.count(name)) check.ignored.push_back(name);
  }
  return check;
}

}  // namespace mentallam
