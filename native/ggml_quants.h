// ggml's tensor types (the `type` of a GGUF tensor): block sizes of every type ggml defines, and
// decoders to float32 for the ones mentallam loads. Each decoder computes what ggml's reference
// dequantize_row_* (ggml-quants.c) and gguf-py's quants.py compute, in the same float32
// operations in the same order, so the results are bit-identical to gguf.quants.dequantize.
#pragma once

#include <cstdint>
#include <string>

namespace mentallam {

// Decodes `n_blocks` consecutive blocks at `blocks` into n_blocks * block_size floats.
using GgmlDecodeFn = void (*)(const uint8_t* blocks, int64_t n_blocks, float* out);

struct GgmlType {
  uint32_t id;          // GGMLQuantizationType
  const char* name;     // "Q4_K"
  int64_t block_size;   // elements per block (1 for plain types)
  int64_t type_size;    // bytes per block
  GgmlDecodeFn decode;  // nullptr: a valid type mentallam cannot decode
};

// The type with this id, or nullptr when ggml defines none.
const GgmlType* FindGgmlType(uint32_t id);

// "Q4_K", or "type <id>" for an id ggml does not define.
std::string GgmlTypeName(uint32_t id);

// The decodable types, for error messages: "F32, F16, BF16, ...".
std::string DecodableGgmlTypes();

}  // namespace mentallam
