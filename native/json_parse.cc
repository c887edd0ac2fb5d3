#include "json_parse.h"

#include <cstdio>
#include <filesystem>
#include <limits>
#include <set>
#include <vector>

#include "errors.h"

namespace mentallam {
namespace {

constexpr int kMaxDepth = 512;

// nlohmann's what() is "[json.exception.parse_error.101] parse error at line 1, column 20:
// syntax error while parsing ..."; the bracketed id means nothing to a user.
std::string WithoutExceptionId(const std::string& what) {
  if (what.rfind("[json.exception.", 0) != 0) return what;
  std::size_t end = what.find("] ");
  return end == std::string::npos ? what : what.substr(end + 2);
}

}  // namespace

Json ParseJson(std::string_view text, const std::string& source, const JsonParseOptions& options) {
  std::vector<std::set<std::string>> keys;  // the keys seen in each open object
  auto callback = [&](int depth, Json::parse_event_t event, Json& parsed) {
    switch (event) {
      case Json::parse_event_t::object_start:
      case Json::parse_event_t::array_start:
        if (depth >= kMaxDepth) {
          throw UserError(source + ": invalid JSON: nesting deeper than " +
                          std::to_string(kMaxDepth) + " levels");
        }
        if (event == Json::parse_event_t::object_start && options.on_duplicate_key) {
          keys.emplace_back();
        }
        break;
      case Json::parse_event_t::object_end:
        if (options.on_duplicate_key) keys.pop_back();
        break;
      case Json::parse_event_t::key:
        if (options.on_duplicate_key) {
          const auto& key = parsed.get_ref<const std::string&>();
          if (!keys.back().insert(key).second) options.on_duplicate_key(key, depth);
        }
        break;
      default:
        break;
    }
    return true;
  };
  try {
    return Json::parse(text.begin(), text.end(), callback);
  } catch (const Json::parse_error& error) {
    // "parse error at line L, column C: <what>" -> "invalid JSON at line L, column C: <what>"
    std::string what = WithoutExceptionId(error.what());
    if (what.rfind("parse error ", 0) == 0) what = what.substr(12);
    throw UserError(source + ": invalid JSON " + what);
  } catch (const Json::exception& error) {
    // out_of_range.406: a number too large for a double ("1e400").
    throw UserError(source + ": invalid JSON: " + WithoutExceptionId(error.what()));
  }
}

std::string ReadTextFile(const std::string& path) {
  namespace fs = std::filesystem;
  std::error_code error;
  if (!fs::exists(path, error)) throw UserError(path + ": no such file");
  if (fs::is_directory(path, error)) throw UserError(path + ": is a directory, expected a file");
  FILE* file = std::fopen(path.c_str(), "rb");
  if (!file) throw UserError(path + ": cannot open");
  std::string text;
  char buffer[65536];
  std::size_t got;
  while ((got = std::fread(buffer, 1, sizeof buffer, file)) > 0) text.append(buffer, got);
  bool failed = std::ferror(file);
  std::fclose(file);
  if (failed) throw UserError(path + ": read failed");
  return text;
}

Json ReadJsonFile(const std::string& path, const JsonParseOptions& options) {
  return ParseJson(ReadTextFile(path), path, options);
}

std::string DescribeJson(const Json& value) {
  switch (value.type()) {
    case Json::value_t::null:
      return "null";
    case Json::value_t::boolean:
      return value.get<bool>() ? "true" : "false";
    case Json::value_t::number_integer:
    case Json::value_t::number_unsigned:
    case Json::value_t::number_float:
      return "a number";
    case Json::value_t::string:
      return "a string";
    case Json::value_t::array:
      return "an array";
    case Json::value_t::object:
      return "an object";
    default:
      return "a value";
  }
}

std::optional<int64_t> JsonInt64(const Json& value) {
  if (value.is_number_unsigned()) {
    auto number = value.get<uint64_t>();
    if (number > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) return std::nullopt;
    return static_cast<int64_t>(number);
  }
  if (value.is_number_integer()) return value.get<int64_t>();
  return std::nullopt;
}

}  // namespace mentallam
