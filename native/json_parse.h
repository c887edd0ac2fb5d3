// Reading JSON (config.json, adapter_config.json, safetensors headers and shard indexes) with
// nlohmann/json, and the few helpers every reader needs. Errors are UserErrors naming the source
// (usually a file) and where in it the fault is.
#pragma once

#include <cstdint>
#include <functional>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>

namespace mentallam {

using Json = nlohmann::json;

struct JsonParseOptions {
  // Called when a key repeats within one object (depth 1 = the top-level object); it throws the
  // error the format calls for. Unset: the last value wins, as JSON.parse and Python's json do.
  std::function<void(const std::string& key, int depth)> on_duplicate_key;
};

// Parses exactly one JSON value (surrounding whitespace allowed). Errors:
// "<source>: invalid JSON at line L, column C: <what>". Nesting deeper than 512 levels is an
// error, so no later recursive walk over the value can exhaust the stack.
Json ParseJson(std::string_view text, const std::string& source,
               const JsonParseOptions& options = {});

// The whole file; "<path>: no such file" / "is a directory, expected a file" / "cannot open".
std::string ReadTextFile(const std::string& path);

// ParseJson(ReadTextFile(path), path).
Json ReadJsonFile(const std::string& path, const JsonParseOptions& options = {});

// "null", "true", "false", "a number", "a string", "an array", "an object": for error messages.
std::string DescribeJson(const Json& value);

// The value as int64 when it is a JSON integer (written without fraction or exponent) that
// fits; nullopt otherwise (a float, 2^63 and above, not a number).
std::optional<int64_t> JsonInt64(const Json& value);

}  // namespace mentallam
