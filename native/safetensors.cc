#include "safetensors.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <optional>
#include <set>
#include <tuple>

#include "atomic_file.h"
#include "errors.h"
#include "json_parse.h"
#include "mapped_file.h"

namespace mentallam {

static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__,
              "safetensors data is little-endian; the reader copies bytes as they are");

namespace fs = std::filesystem;

namespace {

// safetensors' MAX_HEADER_SIZE: a larger length prefix is rejected before anything is read.
constexpr uint64_t kMaxHeaderSize = 100'000'000;

struct DtypeInfo {
  const char* name;
  int bits;                           // per element
  std::optional<torch::Dtype> torch;  // nullopt: valid in a file, but libtorch cannot hold it
};

// Every dtype the safetensors format defines (ST tensor.rs), with its size.
const std::vector<DtypeInfo>& Dtypes() {
  static const std::vector<DtypeInfo> table = {
      {"BOOL", 8, torch::kBool},
      {"U8", 8, torch::kByte},
      {"I8", 8, torch::kChar},
      {"I16", 16, torch::kShort},
      {"U16", 16, torch::kUInt16},
      {"I32", 32, torch::kInt},
      {"U32", 32, torch::kUInt32},
      {"I64", 64, torch::kLong},
      {"U64", 64, torch::kUInt64},
      {"F16", 16, torch::kHalf},
      {"BF16", 16, torch::kBFloat16},
      {"F32", 32, torch::kFloat},
      {"F64", 64, torch::kDouble},
      {"C64", 64, torch::kComplexFloat},
      {"F8_E5M2", 8, torch::kFloat8_e5m2},
      {"F8_E4M3", 8, torch::kFloat8_e4m3fn},
      {"F8_E8M0", 8, torch::kFloat8_e8m0fnu},
      {"F8_E4M3FNUZ", 8, torch::kFloat8_e4m3fnuz},
      {"F8_E5M2FNUZ", 8, torch::kFloat8_e5m2fnuz},
      {"F4", 4, std::nullopt},
      {"F6_E2M3", 6, std::nullopt},
      {"F6_E3M2", 6, std::nullopt},
  };
  return table;
}

const DtypeInfo* FindDtype(const std::string& name) {
  for (const auto& info : Dtypes()) {
    if (name == info.name) return &info;
  }
  return nullptr;
}

struct ParsedFile {
  std::shared_ptr<const MappedFile> mapping;
  uint64_t data_start = 0;  // 8 + N
  std::vector<TensorEntry> entries;
  std::map<std::string, std::string> metadata;
};

int64_t ExpectNonNegativeInteger(const Json& value, const std::string& what) {
  std::optional<int64_t> integer = JsonInt64(value);
  if (!integer || *integer < 0) {
    throw UserError(what + " must be a non-negative integer, got " +
                    (value.is_number() ? value.dump() : DescribeJson(value)));
  }
  return *integer;
}

TensorEntry ParseEntry(const std::string& file, const std::string& name, const Json& value,
                       uint64_t data_size) {
  std::string where = file + ": tensor '" + name + "'";
  if (!value.is_object()) {
    throw UserError(where + ": header entry must be an object, got " + DescribeJson(value));
  }
  TensorEntry entry;
  entry.name = name;
  entry.file = file;

  auto dtype = value.find("dtype");
  if (dtype == value.end() || !dtype->is_string()) {
    throw UserError(where + ": header entry has no string dtype");
  }
  entry.dtype = dtype->get<std::string>();
  const DtypeInfo* info = FindDtype(entry.dtype);
  if (!info) throw UserError(where + " has unknown dtype '" + entry.dtype + "'");

  auto shape = value.find("shape");
  if (shape == value.end() || !shape->is_array()) {
    throw UserError(where + ": header entry has no shape array");
  }
  // numel * bits, checked for overflow: a corrupted shape must not wrap around to a small size.
  int64_t bits = info->bits;
  for (const auto& dim : *shape) {
    int64_t size = ExpectNonNegativeInteger(dim, where + ": every shape entry");
    entry.shape.push_back(size);
    if (__builtin_mul_overflow(bits, size, &bits)) {
      throw UserError(where + ": shape " + ShapeText(entry.shape) + "... is too large");
    }
  }
  if (bits % 8 != 0) {
    throw UserError(where + ": shape " + ShapeText(entry.shape) + " of " + entry.dtype +
                    " is not a whole number of bytes");
  }
  int64_t nbytes = bits / 8;

  auto offsets = value.find("data_offsets");
  if (offsets == value.end() || !offsets->is_array() || offsets->size() != 2) {
    throw UserError(where + ": header entry needs data_offsets [begin, end]");
  }
  entry.begin = ExpectNonNegativeInteger((*offsets)[0], where + ": data_offsets");
  entry.end = ExpectNonNegativeInteger((*offsets)[1], where + ": data_offsets");
  std::string range =
      "data_offsets [" + std::to_string(entry.begin) + ", " + std::to_string(entry.end) + "]";
  if (entry.end < entry.begin) throw UserError(where + ": " + range + " end before they begin");
  if (entry.end - entry.begin != nbytes) {
    throw UserError(where + ": " + range + " hold " + std::to_string(entry.end - entry.begin) +
                    " bytes, but dtype " + entry.dtype + " and shape " + ShapeText(entry.shape) +
                    " need " + std::to_string(nbytes));
  }
  if (static_cast<uint64_t>(entry.end) > data_size) {
    throw UserError(where + ": " + range + " run past the end of the data section (" +
                    std::to_string(data_size) + " bytes)");
  }
  return entry;
}

ParsedFile ParseFile(const std::string& file) {
  ParsedFile parsed;
  parsed.mapping = std::make_shared<const MappedFile>(file);
  const uint8_t* bytes = parsed.mapping->data();
  uint64_t size = parsed.mapping->size();
  if (size < 8) {
    throw UserError(file + ": file is too short for the 8-byte header length (" +
                    std::to_string(size) + " bytes)");
  }
  uint64_t header_size = 0;
  std::memcpy(&header_size, bytes, 8);  // little-endian u64 (static_assert above)
  if (header_size > kMaxHeaderSize) {
    throw UserError(file + ": header length " + std::to_string(header_size) +
                    " exceeds the safetensors limit of " + std::to_string(kMaxHeaderSize) +
                    " bytes");
  }
  if (header_size > size - 8) {
    throw UserError(file + ": header length " + std::to_string(header_size) +
                    " runs past the end of the file (" + std::to_string(size) + " bytes)");
  }
  std::string_view header(reinterpret_cast<const char*>(bytes + 8), header_size);
  if (header.empty() || header[0] != '{') {
    throw UserError(file + ": header is not a JSON object (it must start with '{')");
  }
  // A name listed twice would make the file mean two things; safetensors itself refuses it.
  JsonParseOptions strict;
  strict.on_duplicate_key = [&file](const std::string& key, int depth) {
    throw UserError(file + ": duplicate " + (depth <= 1 ? "name" : "key") + " '" + key +
                    "' in the header");
  };
  Json root = ParseJson(header, file + " header", strict);
  if (!root.is_object()) throw UserError(file + ": header is not a JSON object");
  parsed.data_start = 8 + header_size;
  uint64_t data_size = size - parsed.data_start;

  for (const auto& [key, value] : root.items()) {
    if (key == "__metadata__") {
      if (!value.is_object()) throw UserError(file + ": __metadata__ must be an object");
      for (const auto& [meta_key, meta_value] : value.items()) {
        if (!meta_value.is_string()) {
          throw UserError(file + ": __metadata__ value '" + meta_key + "' must be a string, got " +
                          DescribeJson(meta_value));
        }
        parsed.metadata[meta_key] = meta_value.get<std::string>();
      }
      continue;
    }
    parsed.entries.push_back(ParseEntry(file, key, value, data_size));
  }

  // The format has no holes and no sharing: sorted by offsets, tensors tile [0, data_size).
  std::vector<const TensorEntry*> order;
  for (const auto& entry : parsed.entries) order.push_back(&entry);
  std::sort(order.begin(), order.end(), [](const TensorEntry* a, const TensorEntry* b) {
    return std::tie(a->begin, a->end) < std::tie(b->begin, b->end);
  });
  int64_t covered = 0;
  const TensorEntry* previous = nullptr;
  for (const TensorEntry* entry : order) {
    if (entry->begin < covered) {
      throw UserError(file + ": tensors '" + previous->name + "' and '" + entry->name +
                      "' overlap in the data section");
    }
    if (entry->begin > covered) {
      throw UserError(file + ": bytes " + std::to_string(covered) + " to " +
                      std::to_string(entry->begin) +
                      " of the data section belong to no tensor (tensors must tile it exactly)");
    }
    covered = entry->end;
    if (entry->end > entry->begin) previous = entry;
  }
  if (static_cast<uint64_t>(covered) != data_size) {
    throw UserError(file + ": the data section has " + std::to_string(data_size) +
                    " bytes but the tensors cover " + std::to_string(covered) +
                    " (tensors must tile it exactly)");
  }
  return parsed;
}

}  // namespace

std::string ShapeText(at::IntArrayRef shape) {
  std::string out = "[";
  for (size_t i = 0; i < shape.size(); ++i) {
    if (i) out += ", ";
    out += std::to_string(shape[i]);
  }
  return out + "]";
}

torch::Dtype SafetensorsDtypeToTorch(const std::string& dtype, const std::string& context) {
  const DtypeInfo* info = FindDtype(dtype);
  if (!info) throw UserError(context + ": unknown safetensors dtype '" + dtype + "'");
  if (!info->torch) throw UserError(context + ": dtype " + dtype + " is not supported by libtorch");
  return *info->torch;
}

std::string TorchDtypeToSafetensors(torch::Dtype dtype, const std::string& context) {
  for (const auto& info : Dtypes()) {
    if (info.torch && *info.torch == dtype) return info.name;
  }
  throw UserError(context + ": dtype " + std::string(c10::toString(dtype)) +
                  " cannot be stored in safetensors");
}

SafetensorsReader SafetensorsReader::Open(const std::string& path_or_dir) {
  SafetensorsReader reader;
  reader.source_ = path_or_dir;
  std::error_code error;
  if (!fs::exists(path_or_dir, error)) {
    throw UserError(path_or_dir + ": no such file or directory");
  }
  auto add_file = [&reader](const std::string& file) {
    ParsedFile parsed = ParseFile(file);
    for (auto& entry : parsed.entries) {
      auto [it, inserted] = reader.entries_.emplace(entry.name, entry);
      if (!inserted) {
        throw UserError(file + ": tensor '" + entry.name + "' is also in " + it->second.file);
      }
    }
    for (const auto& [key, value] : parsed.metadata) reader.metadata_.emplace(key, value);
    reader.files_[file] = parsed.mapping;
  };

  if (!fs::is_directory(path_or_dir, error)) {
    add_file(path_or_dir);
    return reader;
  }
  fs::path dir(path_or_dir);
  fs::path single = dir / "model.safetensors";
  fs::path index = dir / "model.safetensors.index.json";
  // transformers looks for the single file first, then the index.
  if (fs::exists(single, error)) {
    add_file(single.string());
    reader.source_ = single.string();  // errors name the file, not just its directory
    return reader;
  }
  if (!fs::exists(index, error)) {
    throw UserError(path_or_dir +
                    ": no model.safetensors or model.safetensors.index.json in this directory");
  }
  std::string index_path = index.string();
  reader.source_ = index_path;
  Json root = ReadJsonFile(index_path);
  const Json* weight_map =
      root.is_object() && root.contains("weight_map") ? &root["weight_map"] : nullptr;
  if (!weight_map || !weight_map->is_object()) {
    throw UserError(index_path + ": expected an object with a \"weight_map\" object");
  }
  // Shards in file-name order; each shard is opened once whatever the number of its tensors.
  std::map<std::string, std::string> shard_of;  // tensor -> shard file name
  std::set<std::string> shards;
  for (const auto& [tensor, shard] : weight_map->items()) {
    if (!shard.is_string()) {
      throw UserError(index_path + ": weight_map['" + tensor + "'] must be a file name");
    }
    const std::string& name = shard.get_ref<const std::string&>();
    if (name.empty() || name.find('/') != std::string::npos || name == "." || name == "..") {
      throw UserError(index_path + ": weight_map['" + tensor + "'] = '" + name +
                      "' is not a file name in this directory");
    }
    shard_of[tensor] = name;
    shards.insert(name);
  }
  for (const auto& shard : shards) {
    fs::path file = dir / shard;
    if (!fs::exists(file, error)) {
      throw UserError(index_path + ": shard '" + shard + "' does not exist (" + file.string() +
                      ")");
    }
    add_file(file.string());
  }
  for (const auto& [tensor, shard] : shard_of) {
    auto it = reader.entries_.find(tensor);
    std::string expected = (dir / shard).string();
    if (it == reader.entries_.end() || it->second.file != expected) {
      throw UserError(index_path + ": weight_map puts tensor '" + tensor + "' in " + shard +
                      ", but that shard does not hold it");
    }
  }
  return reader;
}

std::vector<std::string> SafetensorsReader::Names() const {
  std::vector<std::string> names;
  names.reserve(entries_.size());
  for (const auto& [name, entry] : entries_) names.push_back(name);
  return names;
}

bool SafetensorsReader::Has(const std::string& name) const { return entries_.count(name) > 0; }

const TensorEntry& SafetensorsReader::Entry(const std::string& name) const {
  auto it = entries_.find(name);
  if (it == entries_.end()) throw UserError(source_ + ": tensor '" + name + "' is missing");
  return it->second;
}

torch::Tensor SafetensorsReader::LoadRaw(const std::string& name) const {
  const TensorEntry& entry = Entry(name);
  std::string where = entry.file + ": tensor '" + name + "'";
  torch::Dtype raw = SafetensorsDtypeToTorch(entry.dtype, where);
  const MappedFile& mapping = *files_.at(entry.file);
  uint64_t header_size = 0;  // validated by Open(): the data section starts at 8 + N
  std::memcpy(&header_size, mapping.data(), 8);
  uint64_t data_start = 8 + header_size;
  // Copy out of the mapping (the data section is not necessarily aligned for the dtype, and
  // the caller must own memory that outlives this reader).
  torch::Tensor out = torch::empty(entry.shape, torch::TensorOptions().dtype(raw));
  size_t nbytes = static_cast<size_t>(entry.end - entry.begin);
  if (nbytes > 0) std::memcpy(out.data_ptr(), mapping.data() + data_start + entry.begin, nbytes);
  return out;
}

torch::Tensor SafetensorsReader::Load(const std::string& name, torch::Dtype dtype) const {
  torch::Tensor raw = LoadRaw(name);
  if (raw.scalar_type() == dtype) return raw;
  try {
    return raw.to(dtype);
  } catch (const std::exception& error) {
    const TensorEntry& entry = Entry(name);
    throw UserError(entry.file + ": tensor '" + name + "': cannot convert " + entry.dtype + " to " +
                    c10::toString(dtype) + ": " + MessageOf(error));
  }
}

const std::map<std::string, std::string>& SafetensorsReader::Metadata() const { return metadata_; }

std::vector<std::string> SafetensorsReader::Files() const {
  std::vector<std::string> files;
  for (const auto& [file, mapping] : files_) files.push_back(file);
  return files;
}

void WriteSafetensors(const std::string& path,
                      const std::vector<std::pair<std::string, torch::Tensor>>& tensors,
                      const std::map<std::string, std::string>& metadata) {
  struct Item {
    std::string name;
    std::string dtype;
    int64_t itemsize;
    torch::Tensor data;  // contiguous CPU
  };
  std::vector<Item> items;
  std::set<std::string> names;
  for (const auto& [name, tensor] : tensors) {
    if (name == "__metadata__") throw UserError(path + ": '__metadata__' is not a tensor name");
    if (!names.insert(name).second)
      throw UserError(path + ": duplicate tensor name '" + name + "'");
    if (!tensor.defined()) throw UserError(path + ": tensor '" + name + "' is undefined");
    torch::Tensor data = tensor.detach().to(torch::kCPU).contiguous();
    std::string dtype =
        TorchDtypeToSafetensors(data.scalar_type(), path + ": tensor '" + name + "'");
    items.push_back({name, dtype, static_cast<int64_t>(data.element_size()), data});
  }
  // The Rust writer's order: larger alignment first, then by name; keeps every tensor aligned
  // to its item size given the 8-byte-padded header.
  std::sort(items.begin(), items.end(), [](const Item& a, const Item& b) {
    if (a.itemsize != b.itemsize) return a.itemsize > b.itemsize;
    return a.name < b.name;
  });

  // Keys in the Rust writer's order too: __metadata__, then the tensors in data order, each as
  // {dtype, shape, data_offsets}.
  nlohmann::ordered_json header = nlohmann::ordered_json::object();
  if (!metadata.empty()) header["__metadata__"] = metadata;
  int64_t offset = 0;
  for (const auto& item : items) {
    int64_t nbytes = static_cast<int64_t>(item.data.nbytes());
    header[item.name] = {{"dtype", item.dtype},
                         {"shape", item.data.sizes().vec()},
                         {"data_offsets", {offset, offset + nbytes}}};
    offset += nbytes;
  }
  std::string text = header.dump();
  text.append((8 - text.size() % 8) % 8, ' ');
  uint64_t header_size = text.size();

  WriteFileAtomically(path, [&](const FileSink& sink) {
    sink(&header_size, 8);  // little-endian u64 (static_assert above)
    sink(text.data(), text.size());
    for (const auto& item : items) sink(item.data.data_ptr(), item.data.nbytes());
  });
}

}  // namespace mentallam
