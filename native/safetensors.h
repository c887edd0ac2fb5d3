// safetensors checkpoints: a validating mmap reader (one file, or a Hugging Face model directory
// with model.safetensors or model.safetensors.index.json shards) and an atomic writer.
// Format: 8-byte little-endian header length N, N bytes of JSON header, then the data section;
// see dora-llama-spec.md section 7. Every problem with a file is a UserError naming the file.
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace mentallam {

struct TensorEntry {
  std::string name;
  std::string dtype;           // safetensors spelling: "F32", "F16", "BF16", "I64", ...
  std::vector<int64_t> shape;  // [] for a scalar
  int64_t begin = 0;           // byte offsets relative to the start of the data section;
  int64_t end = 0;             // end is exclusive, end - begin == numel * itemsize
  std::string file;            // the .safetensors file holding the tensor
};

class MappedFile;  // mapped_file.h; unmapped when the last reader copy goes away

class SafetensorsReader {
 public:
  // `path_or_dir` is a .safetensors file, or a directory holding model.safetensors or
  // model.safetensors.index.json (+ the shards it names). All files are mapped and their
  // headers validated here, so a bad checkpoint fails before any tensor is read.
  static SafetensorsReader Open(const std::string& path_or_dir);

  // Tensor names, sorted.
  std::vector<std::string> Names() const;
  bool Has(const std::string& name) const;
  // Throws UserError "<file>: tensor '<name>' is missing" when absent.
  const TensorEntry& Entry(const std::string& name) const;
  // An owned, contiguous CPU copy converted to `dtype` (F16/BF16/F32/F64 between each other;
  // integer and BOOL tensors also convert). Missing tensor or unsupported dtype -> UserError.
  torch::Tensor Load(const std::string& name, torch::Dtype dtype) const;
  // The same, in the file's own dtype (no conversion).
  torch::Tensor LoadRaw(const std::string& name) const;
  // The header's "__metadata__" (string -> string). For shards, the union over shards (the first
  // shard in file-name order wins a conflict).
  const std::map<std::string, std::string>& Metadata() const;
  // For error messages: the .safetensors file, or the shard index of a sharded directory.
  const std::string& Source() const { return source_; }
  // The .safetensors files behind this reader, sorted.
  std::vector<std::string> Files() const;

 private:
  std::string source_;
  std::map<std::string, TensorEntry> entries_;
  std::map<std::string, std::shared_ptr<const MappedFile>> files_;  // path -> mapping
  std::map<std::string, std::string> metadata_;
};

// Writes `tensors` (any device/layout; copied to contiguous CPU) to `path` atomically
// (WriteFileAtomically). Dtype is each tensor's own (F32/F16/BF16/F64/I64/I32/
// I16/I8/U8/BOOL). Data is laid out as the safetensors Rust writer does (descending dtype
// alignment, then name); the header is padded with spaces to a multiple of 8 bytes. Duplicate
// names or an unsupported dtype -> UserError; nothing is left behind on failure.
void WriteSafetensors(const std::string& path,
                      const std::vector<std::pair<std::string, torch::Tensor>>& tensors,
                      const std::map<std::string, std::string>& metadata = {});

// "[a, b]" for error messages.
std::string ShapeText(at::IntArrayRef shape);

// "F32" <-> torch dtype. Unknown names/dtypes throw UserError mentioning `context`.
torch::Dtype SafetensorsDtypeToTorch(const std::string& dtype, const std::string& context);
std::string TorchDtypeToSafetensors(torch::Dtype dtype, const std::string& context);

}  // namespace mentallam
