// Every file the addon writes (config.json, adapter_config.json, .safetensors) is written
// atomically: readers see the old file or the whole new one, never a torn one, and a failed
// write leaves nothing behind.
#pragma once

#include <cstddef>
#include <functional>
#include <string>
#include <string_view>

namespace mentallam {

// Appends bytes to the file being written; throws UserError naming the file when it cannot.
using FileSink = std::function<void(const void* data, std::size_t size)>;

// Writes `path` through a temp file in the same directory (a name unique per write: process,
// counter and a random number, so concurrent writers never collide), fsyncs it, renames it over
// `path` and fsyncs the directory. `write` produces the content through the sink. On any failure
// (including an exception from `write`) the temp file is removed and `path` is left as it was.
void WriteFileAtomically(const std::string& path,
                         const std::function<void(const FileSink&)>& write);

// The same for content already in memory.
void WriteFileAtomically(const std::string& path, std::string_view content);

}  // namespace mentallam
