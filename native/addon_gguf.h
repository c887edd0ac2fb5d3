// Node-API bindings for GGUF files (gguf.h): the header, metadata and tensor infos of a file, and
// single tensors read as float32. The tokenizers built from GGUF metadata and the tests use them.
#pragma once

#include <napi.h>

namespace mentallam {

// Adds inspectGguf and readGgufTensor to the module's exports.
void InitGguf(Napi::Env env, Napi::Object exports);

}  // namespace mentallam
