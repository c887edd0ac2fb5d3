#include "gguf.h"

#include <ATen/Parallel.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <limits>
#include <set>

#include "errors.h"
#include "ggml_quants.h"
#include "mapped_file.h"

namespace mentallam {

static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__,
              "GGUF files are read as little-endian; the reader copies bytes as they are");

namespace fs = std::filesystem;

namespace {

constexpr uint32_t kMaxDims = 4;     // GGML_MAX_DIMS
constexpr int kMaxArrayNesting = 8;  // arrays of arrays; real files use none
constexpr uint64_t kDefaultAlignment = 32;
constexpr const char* kSupportedVersions = "2, 3";

std::string ShapeText(const std::vector<int64_t>& shape) {
  std::string out = "[";
  for (size_t i = 0; i < shape.size(); ++i) {
    if (i) out += ", ";
    out += std::to_string(shape[i]);
  }
  return out + "]";
}

std::string Quoted(const std::string& text) { return "'" + text + "'"; }

// Bounds-checked little-endian reads over the mapped header; every failure names the file,
// the byte offset and the field being read.
class Cursor {
 public:
  Cursor(const uint8_t* data, uint64_t size, const std::string& file)
      : data_(data), size_(size), file_(file) {}

  uint64_t Position() const { return pos_; }
  uint64_t Remaining() const { return size_ - pos_; }
  const std::string& File() const { return file_; }

  template <typename T>
  T Read(const std::string& what) {
    if (Remaining() < sizeof(T)) Truncated(what, sizeof(T));
    T value;
    std::memcpy(&value, data_ + pos_, sizeof(T));
    pos_ += sizeof(T);
    return value;
  }

  const uint8_t* Take(uint64_t bytes, const std::string& what) {
    if (Remaining() < bytes) Truncated(what, bytes);
    const uint8_t* at = data_ + pos_;
    pos_ += bytes;
    return at;
  }

  std::string ReadString(const std::string& what) {
    uint64_t start = pos_;
    uint64_t length = Read<uint64_t>("the length of " + what);
    if (length > Remaining()) {
      throw UserError(file_ + ": " + what + " (byte " + std::to_string(start) + ") has length " +
                      std::to_string(length) + ", beyond the end of the file (" +
                      std::to_string(Remaining()) + " bytes left)");
    }
    const uint8_t* at = Take(length, what);
    return std::string(reinterpret_cast<const char*>(at), length);
  }

  [[noreturn]] void Truncated(const std::string& what, uint64_t need) const {
    throw UserError(file_ + ": truncated: the file (" + std::to_string(size_) +
                    " bytes) ends inside " + what + " (" + std::to_string(need) +
                    " bytes at byte " + std::to_string(pos_) + ")");
  }

 private:
  const uint8_t* data_;
  uint64_t size_;
  uint64_t pos_ = 0;
  const std::string& file_;
};

// Bytes per element of a scalar type; 0 for string and array.
uint64_t ScalarSize(GgufValueType type) {
  switch (type) {
    case GgufValueType::kUint8:
    case GgufValueType::kInt8:
    case GgufValueType::kBool:
      return 1;
    case GgufValueType::kUint16:
    case GgufValueType::kInt16:
      return 2;
    case GgufValueType::kUint32:
    case GgufValueType::kInt32:
    case GgufValueType::kFloat32:
      return 4;
    case GgufValueType::kUint64:
    case GgufValueType::kInt64:
    case GgufValueType::kFloat64:
      return 8;
    default:
      return 0;
  }
}

bool KnownValueType(uint32_t type) {
  return type <= static_cast<uint32_t>(GgufValueType::kFloat64);
}

// The fewest bytes one array element of `type` can take: a string is at least its 8-byte length,
// an array at least its 4-byte type and 8-byte count.
uint64_t MinElementSize(GgufValueType type) {
  if (type == GgufValueType::kString) return 8;
  if (type == GgufValueType::kArray) return 12;
  return ScalarSize(type);
}

GgufValueType ReadValueType(Cursor& cursor, const std::string& what) {
  uint64_t at = cursor.Position();
  uint32_t type = cursor.Read<uint32_t>("the value type of " + what);
  if (!KnownValueType(type)) {
    throw UserError(cursor.File() + ": " + what + " has unknown value type " +
                    std::to_string(type) + " (byte " + std::to_string(at) +
                    "; GGUF defines 0 to 12)");
  }
  return static_cast<GgufValueType>(type);
}

void ReadScalar(Cursor& cursor, GgufValue& value, const std::string& what) {
  switch (value.type) {
    case GgufValueType::kUint8:
      value.uint_value = cursor.Read<uint8_t>(what);
      break;
    case GgufValueType::kInt8:
      value.int_value = cursor.Read<int8_t>(what);
      break;
    case GgufValueType::kUint16:
      value.uint_value = cursor.Read<uint16_t>(what);
      break;
    case GgufValueType::kInt16:
      value.int_value = cursor.Read<int16_t>(what);
      break;
    case GgufValueType::kUint32:
      value.uint_value = cursor.Read<uint32_t>(what);
      break;
    case GgufValueType::kInt32:
      value.int_value = cursor.Read<int32_t>(what);
      break;
    case GgufValueType::kUint64:
      value.uint_value = cursor.Read<uint64_t>(what);
      break;
    case GgufValueType::kInt64:
      value.int_value = cursor.Read<int64_t>(what);
      break;
    case GgufValueType::kFloat32:
      value.float_value = cursor.Read<float>(what);
      break;
    case GgufValueType::kFloat64:
      value.float_value = cursor.Read<double>(what);
      break;
    case GgufValueType::kBool: {
      uint64_t at = cursor.Position();
      uint8_t byte = cursor.Read<uint8_t>(what);
      if (byte > 1) {
        throw UserError(cursor.File() + ": " + what + " is a bool stored as " +
                        std::to_string(byte) + " (byte " + std::to_string(at) +
                        "; must be 0 or 1)");
      }
      value.uint_value = byte;
      break;
    }
    default:
      break;
  }
}

GgufValue ReadValue(Cursor& cursor, GgufValueType type, const std::string& what, int depth) {
  GgufValue value;
  value.type = type;
  if (type == GgufValueType::kString) {
    value.string_value = cursor.ReadString(what);
    return value;
  }
  if (type != GgufValueType::kArray) {
    ReadScalar(cursor, value, what);
    return value;
  }
  if (depth >= kMaxArrayNesting) {
    throw UserError(cursor.File() + ": " + what + " nests arrays more than " +
                    std::to_string(kMaxArrayNesting) + " deep");
  }
  value.element_type = ReadValueType(cursor, what + "'s elements");
  uint64_t at = cursor.Position();
  value.count = cursor.Read<uint64_t>("the element count of " + what);
  // Checked before anything is allocated: every element takes at least this many bytes.
  uint64_t min_size = MinElementSize(value.element_type);
  if (value.count > cursor.Remaining() / min_size) {
    throw UserError(cursor.File() + ": " + what + " (byte " + std::to_string(at) + ") claims " +
                    std::to_string(value.count) + " " + GgufValueTypeName(value.element_type) +
                    " elements, more than the " + std::to_string(cursor.Remaining()) +
                    " bytes left in the file can hold");
  }
  if (value.element_type == GgufValueType::kString) {
    for (uint64_t i = 0; i < value.count; ++i) {
      value.strings.push_back(cursor.ReadString(what + "[" + std::to_string(i) + "]"));
    }
  } else if (value.element_type == GgufValueType::kArray) {
    for (uint64_t i = 0; i < value.count; ++i) {
      std::string item = what + "[" + std::to_string(i) + "]";
      GgufValueType inner = GgufValueType::kArray;
      value.arrays.push_back(ReadValue(cursor, inner, item, depth + 1));
    }
  } else {
    uint64_t bytes = value.count * min_size;
    const uint8_t* data = cursor.Take(bytes, what);
    if (value.element_type == GgufValueType::kBool) {
      for (uint64_t i = 0; i < value.count; ++i) {
        if (data[i] > 1) {
          throw UserError(cursor.File() + ": " + what + "[" + std::to_string(i) +
                          "] is a bool stored as " + std::to_string(data[i]) + " (must be 0 or 1)");
        }
      }
    }
    value.raw.assign(data, data + bytes);
  }
  return value;
}

// --- Llama tensor names: GGUF (gguf-py's tensor_mapping for LLAMA) <-> Hugging Face ----------

struct NamePair {
  const char* gguf;
  const char* hf;
};

constexpr NamePair kGlobalNames[] = {
    {"token_embd", "model.embed_tokens"},
    {"output_norm", "model.norm"},
    {"output", "lm_head"},
};

constexpr NamePair kBlockNames[] = {
    {"attn_norm", "input_layernorm"},    {"attn_q", "self_attn.q_proj"},
    {"attn_k", "self_attn.k_proj"},      {"attn_v", "self_attn.v_proj"},
    {"attn_output", "self_attn.o_proj"}, {"ffn_norm", "post_attention_layernorm"},
    {"ffn_gate", "mlp.gate_proj"},       {"ffn_up", "mlp.up_proj"},
    {"ffn_down", "mlp.down_proj"},
};

// "weight" or "bias" after the last dot; the stem before it.
bool SplitSuffix(const std::string& name, std::string* stem, std::string* suffix) {
  size_t dot = name.rfind('.');
  if (dot == std::string::npos) return false;
  *suffix = name.substr(dot);
  if (*suffix != ".weight" && *suffix != ".bias") return false;
  *stem = name.substr(0, dot);
  return true;
}

// "<prefix><N>.<rest>" with N a canonical decimal (no sign, no leading zero) -> N and rest.
bool SplitLayer(const std::string& stem, const std::string& prefix, std::string* layer,
                std::string* rest) {
  if (stem.compare(0, prefix.size(), prefix) != 0) return false;
  size_t dot = stem.find('.', prefix.size());
  if (dot == std::string::npos) return false;
  *layer = stem.substr(prefix.size(), dot - prefix.size());
  if (layer->empty() || layer->size() > 9 || (layer->size() > 1 && (*layer)[0] == '0'))
    return false;
  for (char c : *layer) {
    if (c < '0' || c > '9') return false;
  }
  *rest = stem.substr(dot + 1);
  return true;
}

std::optional<std::string> HfToGgufName(const std::string& hf_name) {
  std::string stem, suffix, layer, rest;
  if (!SplitSuffix(hf_name, &stem, &suffix)) return std::nullopt;
  for (const auto& pair : kGlobalNames) {
    if (stem == pair.hf) return std::string(pair.gguf) + suffix;
  }
  if (!SplitLayer(stem, "model.layers.", &layer, &rest)) return std::nullopt;
  for (const auto& pair : kBlockNames) {
    if (rest == pair.hf) return "blk." + layer + "." + pair.gguf + suffix;
  }
  return std::nullopt;
}

// The row permutation llama.cpp's converter applies to q and k (LlamaModel.permute): viewed as
// (heads, 2, head_dim / 2, ...), the middle two axes were swapped. Undo it exactly as transformers'
// LlamaTensorProcessor._reverse_permute_weights: view as (heads, head_dim / 2, 2, ...), swap.
torch::Tensor ReversePermute(const torch::Tensor& weight, int64_t heads, const std::string& where) {
  int64_t rows = weight.size(0);
  if (heads <= 0 || rows % (2 * heads) != 0) {
    throw UserError(where + ": " + std::to_string(rows) + " rows cannot be split into " +
                    std::to_string(heads) + " heads of pairs (un-permuting for RoPE)");
  }
  std::vector<int64_t> view = {heads, rows / heads / 2, 2};
  for (int64_t d = 1; d < weight.dim(); ++d) view.push_back(weight.size(d));
  return weight.reshape(view).transpose(1, 2).reshape(weight.sizes()).contiguous();
}

bool EndsWith(const std::string& text, const std::string& suffix) {
  return text.size() >= suffix.size() &&
         text.compare(text.size() - suffix.size(), suffix.size(), suffix) == 0;
}

std::string Lowercase(std::string text) {
  for (char& c : text) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return text;
}

// Typed access to metadata keys; every error names the file and the key.
class MetadataKeys {
 public:
  explicit MetadataKeys(const GgufReader& reader) : reader_(reader) {}

  [[noreturn]] void Fail(const std::string& key, const std::string& what) const {
    throw UserError(reader_.Source() + ": metadata " + key + " " + what);
  }

  static std::string Describe(const GgufValue& value) {
    if (value.type == GgufValueType::kString) return "the string '" + value.string_value + "'";
    if (value.type == GgufValueType::kArray) return "an array";
    if (value.IsInteger()) {
      bool is_signed = value.type == GgufValueType::kInt8 || value.type == GgufValueType::kInt16 ||
                       value.type == GgufValueType::kInt32 || value.type == GgufValueType::kInt64;
      return is_signed ? std::to_string(value.int_value) : std::to_string(value.uint_value);
    }
    if (value.type == GgufValueType::kBool) return value.uint_value ? "true" : "false";
    char text[64];
    std::snprintf(text, sizeof text, "%.17g", value.float_value);
    return text;
  }

  // An integer in [minimum, 2^31): shapes multiply, so sizes stay far from overflow.
  std::optional<int64_t> Int(const std::string& key, int64_t minimum) const {
    const GgufValue* value = reader_.Find(key);
    if (!value) return std::nullopt;
    if (!value->IsInteger()) Fail(key, "must be an integer, got " + Describe(*value));
    std::optional<int64_t> number = value->AsInt64();
    if (!number || *number < minimum || *number >= (int64_t{1} << 31)) {
      Fail(key, "must be an integer from " + std::to_string(minimum) + " to 2^31 - 1, got " +
                    Describe(*value));
    }
    return *number;
  }

  int64_t RequiredInt(const std::string& key, int64_t minimum) const {
    auto value = Int(key, minimum);
    if (!value) Fail(key, "is missing");
    return *value;
  }

  std::optional<double> PositiveNumber(const std::string& key) const {
    const GgufValue* value = reader_.Find(key);
    if (!value) return std::nullopt;
    if (!value->IsNumber()) Fail(key, "must be a number, got " + Describe(*value));
    double number = value->AsDouble();
    if (!std::isfinite(number) || !(number > 0)) {
      Fail(key, "must be a positive finite number, got " + Describe(*value));
    }
    return number;
  }

  std::optional<std::string> String(const std::string& key) const {
    const GgufValue* value = reader_.Find(key);
    if (!value) return std::nullopt;
    if (value->type != GgufValueType::kString) {
      Fail(key, "must be a string, got " + Describe(*value));
    }
    return value->string_value;
  }

 private:
  const GgufReader& reader_;
};

}  // namespace

const char* GgufValueTypeName(GgufValueType type) {
  switch (type) {
    case GgufValueType::kUint8:
      return "uint8";
    case GgufValueType::kInt8:
      return "int8";
    case GgufValueType::kUint16:
      return "uint16";
    case GgufValueType::kInt16:
      return "int16";
    case GgufValueType::kUint32:
      return "uint32";
    case GgufValueType::kInt32:
      return "int32";
    case GgufValueType::kFloat32:
      return "float32";
    case GgufValueType::kBool:
      return "bool";
    case GgufValueType::kString:
      return "string";
    case GgufValueType::kArray:
      return "array";
    case GgufValueType::kUint64:
      return "uint64";
    case GgufValueType::kInt64:
      return "int64";
    case GgufValueType::kFloat64:
      return "float64";
  }
  return "unknown";
}

bool GgufValue::IsInteger() const {
  switch (type) {
    case GgufValueType::kUint8:
    case GgufValueType::kInt8:
    case GgufValueType::kUint16:
    case GgufValueType::kInt16:
    case GgufValueType::kUint32:
    case GgufValueType::kInt32:
    case GgufValueType::kUint64:
    case GgufValueType::kInt64:
      return true;
    default:
      return false;
  }
}

bool GgufValue::IsNumber() const {
  return IsInteger() || type == GgufValueType::kFloat32 || type == GgufValueType::kFloat64;
}

std::optional<int64_t> GgufValue::AsInt64() const {
  if (!IsInteger()) return std::nullopt;
  bool is_unsigned = type == GgufValueType::kUint8 || type == GgufValueType::kUint16 ||
                     type == GgufValueType::kUint32 || type == GgufValueType::kUint64;
  if (!is_unsigned) return int_value;
  if (uint_value > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) return std::nullopt;
  return static_cast<int64_t>(uint_value);
}

double GgufValue::AsDouble() const {
  if (type == GgufValueType::kFloat32 || type == GgufValueType::kFloat64) return float_value;
  if (auto integer = AsInt64()) return static_cast<double>(*integer);
  return IsInteger() ? static_cast<double>(uint_value) : 0;
}

std::optional<std::string> GgufToHfName(const std::string& gguf_name) {
  std::string stem, suffix, layer, rest;
  if (!SplitSuffix(gguf_name, &stem, &suffix)) return std::nullopt;
  for (const auto& pair : kGlobalNames) {
    if (stem == pair.gguf) return std::string(pair.hf) + suffix;
  }
  if (!SplitLayer(stem, "blk.", &layer, &rest)) return std::nullopt;
  for (const auto& pair : kBlockNames) {
    if (rest == pair.gguf) return "model.layers." + layer + "." + pair.hf + suffix;
  }
  return std::nullopt;
}

GgufReader GgufReader::Open(const std::string& path) {
  GgufReader reader;
  reader.source_ = path;
  std::error_code error;
  if (!fs::exists(path, error)) throw UserError(path + ": no such file");
  reader.mapping_ = std::make_shared<const MappedFile>(path);
  const std::string& file = reader.source_;
  uint64_t size = reader.mapping_->size();
  Cursor cursor(reader.mapping_->data(), size, file);

  // Header: magic, version, tensor count, metadata count.
  const uint8_t* magic = cursor.Take(4, "the magic \"GGUF\"");
  if (std::memcmp(magic, "GGUF", 4) != 0) {
    char shown[64];
    std::snprintf(shown, sizeof shown, "%02x %02x %02x %02x", magic[0], magic[1], magic[2],
                  magic[3]);
    throw UserError(file + ": not a GGUF file (the first 4 bytes are " + shown +
                    ", expected \"GGUF\")");
  }
  reader.version_ = cursor.Read<uint32_t>("the version");
  if (reader.version_ == 0x02000000 || reader.version_ == 0x03000000) {
    throw UserError(file + ": a big-endian GGUF file; only little-endian files are supported");
  }
  if (reader.version_ == 1) {
    throw UserError(file + ": GGUF version 1 is not supported (it predates 64-bit counts; " +
                    "convert the model again with a current llama.cpp)");
  }
  if (reader.version_ != 2 && reader.version_ != 3) {
    throw UserError(file + ": unsupported GGUF version " + std::to_string(reader.version_) +
                    " (supported: " + kSupportedVersions + ")");
  }
  uint64_t tensor_count = cursor.Read<uint64_t>("the tensor count");
  uint64_t kv_count = cursor.Read<uint64_t>("the metadata count");
  // A metadata entry takes at least 13 bytes (key length, value type, one byte of value), a
  // tensor info at least 24 (name length, dimension count, type, offset).
  if (kv_count > cursor.Remaining() / 13) {
    throw UserError(file + ": the header claims " + std::to_string(kv_count) +
                    " metadata entries, more than the rest of the file (" +
                    std::to_string(cursor.Remaining()) + " bytes) can hold");
  }
  if (tensor_count > cursor.Remaining() / 24) {
    throw UserError(file + ": the header claims " + std::to_string(tensor_count) +
                    " tensors, more than the rest of the file (" +
                    std::to_string(cursor.Remaining()) + " bytes) can hold");
  }

  // Metadata.
  for (uint64_t i = 0; i < kv_count; ++i) {
    std::string key = cursor.ReadString("the key of metadata entry " + std::to_string(i));
    std::string what = "metadata " + Quoted(key);
    GgufValueType type = ReadValueType(cursor, what);
    GgufValue value = ReadValue(cursor, type, what, 0);
    if (!reader.metadata_index_.emplace(key, reader.metadata_.size()).second) {
      throw UserError(file + ": metadata key " + Quoted(key) + " appears twice");
    }
    reader.metadata_.emplace_back(std::move(key), std::move(value));
  }
  if (const GgufValue* alignment = reader.Find("general.alignment")) {
    uint64_t value = alignment->uint_value;
    bool ok = alignment->type == GgufValueType::kUint32 ||
              alignment->type == GgufValueType::kUint64 ||
              alignment->type == GgufValueType::kUint16 || alignment->type == GgufValueType::kUint8;
    if (!ok || value == 0 || (value & (value - 1)) != 0) {
      throw UserError(
          file + ": general.alignment must be a power of two stored as an unsigned " +
          "integer, got " +
          (ok ? std::to_string(value) : std::string("a ") + GgufValueTypeName(alignment->type)));
    }
    reader.alignment_ = value;
  } else {
    reader.alignment_ = kDefaultAlignment;
  }

  // Tensor infos.
  for (uint64_t i = 0; i < tensor_count; ++i) {
    GgufTensorInfo info;
    info.name = cursor.ReadString("the name of tensor " + std::to_string(i));
    std::string where = file + ": tensor " + Quoted(info.name);
    uint32_t n_dims = cursor.Read<uint32_t>("the dimension count of tensor " + Quoted(info.name));
    if (n_dims > kMaxDims) {
      throw UserError(where + " has " + std::to_string(n_dims) +
                      " dimensions (GGUF allows at most " + std::to_string(kMaxDims) + ")");
    }
    std::vector<int64_t> dims;
    int64_t numel = 1;
    for (uint32_t d = 0; d < n_dims; ++d) {
      uint64_t dim = cursor.Read<uint64_t>("dimension " + std::to_string(d) + " of tensor " +
                                           Quoted(info.name));
      if (dim > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()) ||
          __builtin_mul_overflow(numel, static_cast<int64_t>(dim), &numel)) {
        throw UserError(where + " has dimension " + std::to_string(dim) + ": too large");
      }
      dims.push_back(static_cast<int64_t>(dim));
    }
    info.shape.assign(dims.rbegin(), dims.rend());
    info.type = cursor.Read<uint32_t>("the type of tensor " + Quoted(info.name));
    const GgmlType* type = FindGgmlType(info.type);
    if (!type) {
      throw UserError(where + " has unknown ggml type " + std::to_string(info.type));
    }
    int64_t row = dims.empty() ? 1 : dims[0];
    if (row % type->block_size != 0) {
      throw UserError(where + ": its rows of " + std::to_string(row) + " elements are not whole " +
                      type->name + " blocks of " + std::to_string(type->block_size));
    }
    int64_t bytes = 0;
    if (__builtin_mul_overflow(numel / type->block_size, type->type_size, &bytes)) {
      throw UserError(where + " of shape " + ShapeText(info.shape) + " is too large");
    }
    info.nbytes = static_cast<uint64_t>(bytes);
    info.offset = cursor.Read<uint64_t>("the data offset of tensor " + Quoted(info.name));
    if (!reader.tensor_index_.emplace(info.name, reader.tensors_.size()).second) {
      throw UserError(file + ": tensor name " + Quoted(info.name) + " appears twice");
    }
    reader.tensors_.push_back(std::move(info));
  }

  // The data section starts at the next multiple of the alignment. alignment <= 2^63 and the
  // position is below the file size, so the sum cannot overflow.
  uint64_t position = cursor.Position();
  uint64_t alignment = reader.alignment_;
  reader.data_offset_ = (position + alignment - 1) / alignment * alignment;
  if (reader.data_offset_ > size && !reader.tensors_.empty()) {
    throw UserError(file + ": truncated: the data section would start at byte " +
                    std::to_string(reader.data_offset_) + ", past the end of the file (" +
                    std::to_string(size) + " bytes)");
  }
  uint64_t data_size = size > reader.data_offset_ ? size - reader.data_offset_ : 0;
  std::vector<const GgufTensorInfo*> order;
  for (const auto& info : reader.tensors_) {
    std::string where = file + ": tensor " + Quoted(info.name);
    if (info.offset % alignment != 0) {
      throw UserError(where + " starts at offset " + std::to_string(info.offset) +
                      " of the data section, not a multiple of the alignment " +
                      std::to_string(alignment));
    }
    if (info.offset > data_size || info.nbytes > data_size - info.offset) {
      throw UserError(where + ": its data (" + std::to_string(info.nbytes) + " bytes at offset " +
                      std::to_string(info.offset) +
                      " of the data section) runs past the end of the file (the data section has " +
                      std::to_string(data_size) + " bytes)");
    }
    if (info.nbytes > 0) order.push_back(&info);
  }
  std::sort(order.begin(), order.end(),
            [](const GgufTensorInfo* a, const GgufTensorInfo* b) { return a->offset < b->offset; });
  for (size_t i = 1; i < order.size(); ++i) {
    if (order[i]->offset < order[i - 1]->offset + order[i - 1]->nbytes) {
      throw UserError(file + ": tensors " + Quoted(order[i - 1]->name) + " and " +
                      Quoted(order[i]->name) + " overlap in the data section");
    }
  }

  for (const auto& info : reader.tensors_) {
    if (auto hf = GgufToHfName(info.name)) reader.hf_to_gguf_.emplace(*hf, info.name);
  }
  if (!reader.hf_to_gguf_.count("lm_head.weight") && reader.FindTensor("token_embd.weight")) {
    reader.hf_to_gguf_.emplace("lm_head.weight", "token_embd.weight");  // tied embeddings
  }
  return reader;
}

const GgufValue* GgufReader::Find(const std::string& key) const {
  auto it = metadata_index_.find(key);
  return it == metadata_index_.end() ? nullptr : &metadata_[it->second].second;
}

const GgufTensorInfo* GgufReader::FindTensor(const std::string& gguf_name) const {
  auto it = tensor_index_.find(gguf_name);
  return it == tensor_index_.end() ? nullptr : &tensors_[it->second];
}

torch::Tensor GgufReader::LoadGguf(const std::string& gguf_name, torch::Dtype dtype) const {
  const GgufTensorInfo* info = FindTensor(gguf_name);
  if (!info) throw UserError(source_ + ": tensor " + Quoted(gguf_name) + " is missing");
  const GgmlType* type = FindGgmlType(info->type);  // known: checked at Open
  if (!type->decode) {
    throw UserError(source_ + ": tensor " + Quoted(gguf_name) + " has type " + type->name +
                    ", which mentallam cannot dequantize (supported: " + DecodableGgmlTypes() +
                    ")");
  }
  torch::Tensor out = torch::empty(info->shape, torch::kFloat32);
  int64_t blocks = out.numel() / type->block_size;
  const uint8_t* data = mapping_->data() + data_offset_ + info->offset;
  float* target = out.data_ptr<float>();
  // About 64 K elements per task: enough work to be worth a thread.
  int64_t grain = std::max<int64_t>(1, 65536 / type->block_size);
  at::parallel_for(0, blocks, grain, [&](int64_t begin, int64_t end) {
    type->decode(data + begin * type->type_size, end - begin, target + begin * type->block_size);
  });
  return dtype == torch::kFloat32 ? out : out.to(dtype);
}

std::vector<std::string> GgufReader::Names() const {
  std::vector<std::string> names;
  for (const auto& [hf, gguf] : hf_to_gguf_) names.push_back(hf);
  return names;
}

bool GgufReader::Has(const std::string& hf_name) const { return hf_to_gguf_.count(hf_name) > 0; }

const GgufTensorInfo& GgufReader::Entry(const std::string& hf_name) const {
  auto it = hf_to_gguf_.find(hf_name);
  if (it == hf_to_gguf_.end()) {
    auto gguf = HfToGgufName(hf_name);
    throw UserError(source_ + ": tensor " + Quoted(gguf.value_or(hf_name)) + " (" + hf_name +
                    ") is missing");
  }
  return *FindTensor(it->second);
}

torch::Tensor GgufReader::Load(const std::string& hf_name, torch::Dtype dtype) const {
  const GgufTensorInfo& info = Entry(hf_name);
  torch::Tensor tensor = LoadGguf(info.name, dtype);
  const GgufValue* arch = Find("general.architecture");
  bool llama = arch && arch->type == GgufValueType::kString && arch->string_value == "llama";
  bool is_q = info.name.find(".attn_q.") != std::string::npos;
  bool is_k = info.name.find(".attn_k.") != std::string::npos;
  if (!llama || !(is_q || is_k)) return tensor;
  MetadataKeys keys(*this);
  int64_t heads = keys.RequiredInt("llama.attention.head_count", 1);
  if (is_k) heads = keys.Int("llama.attention.head_count_kv", 1).value_or(heads);
  return ReversePermute(tensor, heads, source_ + ": tensor " + Quoted(info.name));
}

// --- llama.* metadata -> LlamaConfig -------------------------------------------------------------

LlamaConfig GgufLlamaConfig(const GgufReader& reader) {
  const std::string& file = reader.Source();
  MetadataKeys keys(reader);
  auto arch = keys.String("general.architecture");
  if (!arch) keys.Fail("general.architecture", "is missing");
  if (*arch != "llama") {
    keys.Fail("general.architecture", "is '" + *arch + "'; only llama models are supported");
  }
  LlamaConfig config;
  config.num_hidden_layers = keys.RequiredInt("llama.block_count", 1);
  config.hidden_size = keys.RequiredInt("llama.embedding_length", 1);
  config.intermediate_size = keys.RequiredInt("llama.feed_forward_length", 1);
  config.num_attention_heads = keys.RequiredInt("llama.attention.head_count", 1);
  config.num_key_value_heads =
      keys.Int("llama.attention.head_count_kv", 1).value_or(config.num_attention_heads);
  if (config.num_attention_heads % config.num_key_value_heads != 0) {
    keys.Fail("llama.attention.head_count_kv", "(" + std::to_string(config.num_key_value_heads) +
                                                   ") must divide llama.attention.head_count (" +
                                                   std::to_string(config.num_attention_heads) +
                                                   ")");
  }
  // transformers reads head_dim from rope.dimension_count (right for Llama, where RoPE covers
  // the whole head).
  if (auto head_dim = keys.Int("llama.rope.dimension_count", 1)) {
    config.head_dim = *head_dim;
  } else {
    if (config.hidden_size % config.num_attention_heads != 0) {
      keys.Fail("llama.embedding_length", "(" + std::to_string(config.hidden_size) +
                                              ") is not divisible by llama.attention.head_count (" +
                                              std::to_string(config.num_attention_heads) +
                                              ") and there is no llama.rope.dimension_count");
    }
    config.head_dim = config.hidden_size / config.num_attention_heads;
  }
  config.max_position_embeddings = keys.Int("llama.context_length", 1).value_or(2048);
  config.rms_norm_eps =
      keys.PositiveNumber("llama.attention.layer_norm_rms_epsilon").value_or(1e-6);
  config.rope_theta = keys.PositiveNumber("llama.rope.freq_base").value_or(10000.0);

  // RoPE scaling: rope.scaling.type + factor, or the scale_linear key older converters wrote.
  std::string scaling = keys.String("llama.rope.scaling.type").value_or("none");
  std::optional<double> factor = keys.PositiveNumber("llama.rope.scaling.factor");
  if (scaling == "none" && !keys.String("llama.rope.scaling.type")) {
    factor = keys.PositiveNumber("llama.rope.scale_linear");
    if (factor && *factor != 1.0) scaling = "linear";
  }
  if (scaling == "linear") {
    if (!factor) keys.Fail("llama.rope.scaling.factor", "is missing (rope.scaling.type is linear)");
    if (*factor < 1) keys.Fail("llama.rope.scaling.factor", "must be >= 1");
    config.rope_scaling.type = "linear";
    config.rope_scaling.factor = *factor;
  } else if (scaling != "none") {
    keys.Fail("llama.rope.scaling.type",
              "is '" + scaling + "', which is not supported (supported: none, linear)");
  }
  if (reader.FindTensor("rope_freqs.weight")) {
    throw UserError(file + ": tensor 'rope_freqs.weight' (per-frequency RoPE factors, as " +
                    "Llama-3.1-style GGUF files carry) is not supported");
  }

  if (auto vocab = keys.Int("llama.vocab_size", 1)) {
    config.vocab_size = *vocab;
  } else if (const GgufValue* tokens = reader.Find("tokenizer.ggml.tokens")) {
    if (tokens->type != GgufValueType::kArray || tokens->element_type != GgufValueType::kString ||
        tokens->count == 0 || tokens->count >= (1ull << 31)) {
      keys.Fail("tokenizer.ggml.tokens", "must be a non-empty array of strings");
    }
    config.vocab_size = static_cast<int64_t>(tokens->count);
  } else {
    throw UserError(file + ": metadata has neither llama.vocab_size nor tokenizer.ggml.tokens, " +
                    "so the vocabulary size is unknown");
  }
  // transformers takes the special ids from the tokenizer metadata into the config.
  config.bos_token_id = keys.Int("tokenizer.ggml.bos_token_id", 0).value_or(1);
  config.eos_token_id = keys.Int("tokenizer.ggml.eos_token_id", 0).value_or(2);
  config.pad_token_id = keys.Int("tokenizer.ggml.padding_token_id", 0);
  config.tie_word_embeddings = reader.FindTensor("output.weight") == nullptr;
  config.attention_bias = reader.FindTensor("blk.0.attn_q.bias") != nullptr;
  config.mlp_bias = reader.FindTensor("blk.0.ffn_gate.bias") != nullptr;
  config.num_labels = 2;
  config.id2label = {"LABEL_0", "LABEL_1"};

  return config;
}

std::optional<std::string> FindGgufModel(const std::string& path) {
  std::error_code error;
  fs::path target(path);
  if (fs::is_regular_file(target, error)) {
    if (EndsWith(Lowercase(target.filename().string()), ".gguf")) return path;
    char magic[4] = {};
    FILE* file = std::fopen(path.c_str(), "rb");
    if (!file) return std::nullopt;
    size_t got = std::fread(magic, 1, 4, file);
    std::fclose(file);
    if (got == 4 && std::memcmp(magic, "GGUF", 4) == 0) return path;
    return std::nullopt;
  }
  if (!fs::is_directory(target, error)) return std::nullopt;
  std::vector<std::string> ggufs;
  for (const auto& entry : fs::directory_iterator(target, error)) {
    std::string name = entry.path().filename().string();
    // A Hugging Face checkpoint directory wins, whatever else it holds.
    if (name == "config.json" || EndsWith(name, ".safetensors") ||
        name == "model.safetensors.index.json") {
      return std::nullopt;
    }
    if (EndsWith(Lowercase(name), ".gguf") && entry.is_regular_file(error)) ggufs.push_back(name);
  }
  if (ggufs.empty()) return std::nullopt;
  std::sort(ggufs.begin(), ggufs.end());
  if (ggufs.size() > 1) {
    std::string names;
    for (const auto& name : ggufs) names += (names.empty() ? "" : ", ") + name;
    throw UserError(path + ": holds " + std::to_string(ggufs.size()) + " .gguf files (" + names +
                    ") and no config.json; name the one to load");
  }
  return (target / ggufs[0]).string();
}

}  // namespace mentallam
