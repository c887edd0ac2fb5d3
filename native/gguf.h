// GGUF model files (llama.cpp's format; ggml docs/gguf.md): a validating mmap reader of v2 and v3
// little-endian files. Header, metadata of every value type, tensor infos and the data section
// are checked at Open, so a bad file fails before any tensor is read; every problem is a
// UserError naming the file and what is wrong, and no length or count read from the file is
// trusted before it is checked against the bytes that remain.
//
// Tensors are dequantized at load as ggml does (ggml_quants.h) to the requested torch dtype, and
// a Llama's tensor names map to Hugging Face's (token_embd -> model.embed_tokens, blk.N.attn_q ->
// model.layers.N.self_attn.q_proj, ...). llama.cpp's converter permutes the rows of q and k for
// its RoPE layout; the Hugging Face view undoes that as transformers' GGUF loader does.
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "model_config.h"

namespace mentallam {

// GGUF metadata value types, as numbered in the file.
enum class GgufValueType : uint32_t {
  kUint8 = 0,
  kInt8 = 1,
  kUint16 = 2,
  kInt16 = 3,
  kUint32 = 4,
  kInt32 = 5,
  kFloat32 = 6,
  kBool = 7,
  kString = 8,
  kArray = 9,
  kUint64 = 10,
  kInt64 = 11,
  kFloat64 = 12,
};

// "uint32", "string", "array", ...
const char* GgufValueTypeName(GgufValueType type);

// One metadata value. A scalar sets the field of its type; an array sets element_type, count
// and one of raw (numbers and bools, little-endian as in the file, so a large array costs one
// copy), strings or arrays (nested arrays).
struct GgufValue {
  GgufValueType type = GgufValueType::kUint8;
  uint64_t uint_value = 0;  // kUint8 .. kUint64; kBool as 0/1
  int64_t int_value = 0;    // kInt8 .. kInt64
  double float_value = 0;   // kFloat32, kFloat64
  std::string string_value;
  GgufValueType element_type = GgufValueType::kUint8;  // kArray only
  uint64_t count = 0;
  std::vector<uint8_t> raw;
  std::vector<std::string> strings;
  std::vector<GgufValue> arrays;

  bool IsInteger() const;  // any signed or unsigned integer type
  bool IsNumber() const;   // an integer or a float
  // An integer value as int64; nullopt for other types and for a uint64 above INT64_MAX.
  std::optional<int64_t> AsInt64() const;
  // A number as double (0 for other types).
  double AsDouble() const;
};

struct GgufTensorInfo {
  std::string name;            // as in the file: "blk.0.attn_q.weight"
  uint32_t type = 0;           // ggml type id (ggml_quants.h)
  std::vector<int64_t> shape;  // row-major (torch) order: the file's dimensions reversed
  uint64_t offset = 0;         // from the start of the data section, a multiple of the alignment
  uint64_t nbytes = 0;
};

class MappedFile;  // mapped_file.h

class GgufReader {
 public:
  // Maps `path` and validates everything but the tensor data. UserError on a bad magic, an
  // unsupported version, a truncated header, a length or count beyond the file, an unknown
  // value or tensor type, a row that is not whole blocks, a bad alignment, tensor data that is
  // misaligned, overlapping or beyond the file, and duplicate keys or tensor names.
  static GgufReader Open(const std::string& path);

  const std::string& Source() const { return source_; }
  uint32_t Version() const { return version_; }
  uint64_t Alignment() const { return alignment_; }
  uint64_t DataOffset() const { return data_offset_; }  // the data section's byte offset
  // Metadata in file order, and a lookup by key (nullptr when absent).
  const std::vector<std::pair<std::string, GgufValue>>& Metadata() const { return metadata_; }
  const GgufValue* Find(const std::string& key) const;
  // Tensor infos in file order, and a lookup by GGUF name (nullptr when absent).
  const std::vector<GgufTensorInfo>& Tensors() const { return tensors_; }
  const GgufTensorInfo* FindTensor(const std::string& gguf_name) const;
  // A tensor as stored (no renaming, no permutation), dequantized to float32 and then converted
  // to `dtype`; an owned contiguous CPU tensor. UserError for a type mentallam cannot decode.
  torch::Tensor LoadGguf(const std::string& gguf_name, torch::Dtype dtype) const;

  // The Hugging Face view, with SafetensorsReader's shape of API: names such as
  // "model.layers.0.self_attn.q_proj.weight"; "lm_head.weight" is token_embd when the file has
  // no output.weight (tied embeddings). Tensors with no Hugging Face name are left out.
  std::vector<std::string> Names() const;  // sorted
  bool Has(const std::string& hf_name) const;
  // The GGUF tensor behind a Hugging Face name; UserError "<file>: tensor '<name>' is missing".
  const GgufTensorInfo& Entry(const std::string& hf_name) const;
  // Load by Hugging Face name: q_proj/k_proj rows un-permuted with the head counts of the
  // metadata (<arch>.attention.head_count, head_count_kv), as transformers does.
  torch::Tensor Load(const std::string& hf_name, torch::Dtype dtype) const;

 private:
  std::string source_;
  std::shared_ptr<const MappedFile> mapping_;
  uint32_t version_ = 0;
  uint64_t alignment_ = 32;
  uint64_t data_offset_ = 0;
  std::vector<std::pair<std::string, GgufValue>> metadata_;
  std::map<std::string, size_t> metadata_index_;
  std::vector<GgufTensorInfo> tensors_;
  std::map<std::string, size_t> tensor_index_;
  std::map<std::string, std::string> hf_to_gguf_;
};

// The Hugging Face name of a GGUF tensor of a Llama ("blk.3.ffn_up.weight" ->
// "model.layers.3.mlp.up_proj.weight"), or nullopt for names with none (rope_freqs, ...).
std::optional<std::string> GgufToHfName(const std::string& gguf_name);

// The LlamaConfig of a GGUF Llama, mapped from its metadata as transformers' GGUF loader maps it:
// llama.block_count, embedding_length, feed_forward_length, attention.head_count(_kv),
// attention.layer_norm_rms_epsilon, rope.freq_base, rope.dimension_count, context_length,
// rope.scaling.*, vocab_size (else the length of tokenizer.ggml.tokens), bos/eos/pad ids from
// tokenizer.ggml.*; tie_word_embeddings when output.weight is absent. UserError naming the file
// and the key. (The weights' shapes are checked against it by CheckLlamaWeights.)
LlamaConfig GgufLlamaConfig(const GgufReader& reader);

// The GGUF file a model path names, or nullopt when the path is a Hugging Face directory (or
// missing). A file is GGUF when its name ends in .gguf or it starts with the GGUF magic; a
// directory when it holds exactly one .gguf file and no config.json or safetensors weights
// (several .gguf files there -> UserError listing them).
std::optional<std::string> FindGgufModel(const std::string& path);

}  // namespace mentallam
