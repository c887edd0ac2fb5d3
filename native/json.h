// A small, strict JSON reader (RFC 8259) for config.json, safetensors headers and shard indexes.
// libtorch 2.13's include tree ships no JSON library (no nlohmann/json), so the addon has its own.
// Errors are UserErrors naming the source (usually a file) and the byte/line/column of the fault.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace mentallam {

class JsonValue {
 public:
  enum class Type { kNull, kBool, kNumber, kString, kArray, kObject };

  Type type() const { return type_; }
  bool IsNull() const { return type_ == Type::kNull; }
  bool IsBool() const { return type_ == Type::kBool; }
  bool IsNumber() const { return type_ == Type::kNumber; }
  bool IsString() const { return type_ == Type::kString; }
  bool IsArray() const { return type_ == Type::kArray; }
  bool IsObject() const { return type_ == Type::kObject; }
  // A number written without fraction or exponent that fits in int64 (offsets, shapes, ids).
  bool IsInteger() const;

  bool AsBool() const { return bool_; }
  double AsDouble() const { return number_; }
  // Only valid when IsInteger(); exact (no trip through double, so 2^53+1 stays itself).
  int64_t AsInt64() const { return integer_; }
  const std::string& AsString() const { return string_; }
  const std::vector<JsonValue>& Items() const { return items_; }
  // Object members in file order; duplicates are kept so callers that must reject them can.
  const std::vector<std::pair<std::string, JsonValue>>& Members() const { return members_; }
  // The last member with this key (JSON.parse semantics), or nullptr.
  const JsonValue* Find(std::string_view key) const;

  // "null", "true", "a number", "a string", "an array", "an object": for error messages.
  std::string Describe() const;

  static JsonValue Null() { return JsonValue(); }
  static JsonValue Bool(bool value);
  static JsonValue Number(double value, bool is_integer, int64_t integer);
  static JsonValue String(std::string value);
  static JsonValue Array(std::vector<JsonValue> items);
  static JsonValue Object(std::vector<std::pair<std::string, JsonValue>> members);

 private:
  Type type_ = Type::kNull;
  bool bool_ = false;
  double number_ = 0;
  bool is_integer_ = false;
  int64_t integer_ = 0;
  std::string string_;
  std::vector<JsonValue> items_;
  std::vector<std::pair<std::string, JsonValue>> members_;
};

// Parses exactly one JSON value (surrounding whitespace allowed). `source` names the input in
// errors: "<source>: invalid JSON at line L, column C (byte B): <what>". Nesting deeper than 512
// levels is an error rather than a stack overflow.
JsonValue ParseJson(std::string_view text, const std::string& source);

// A JSON string literal for `value` (quotes included; control characters escaped).
std::string JsonQuote(std::string_view value);

// Shortest text that reads back as the same double: plain decimals for magnitudes in
// [1e-5, 1e16) ("500000", "0.00001"), exponent form otherwise ("1e-06"). Integral values print
// without a fraction. Non-finite values throw UserError.
std::string JsonNumber(double value);

}  // namespace mentallam
