#include "json.h"

#include <cctype>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <system_error>

#include "errors.h"

namespace mentallam {

bool JsonValue::IsInteger() const { return type_ == Type::kNumber && is_integer_; }

const JsonValue* JsonValue::Find(std::string_view key) const {
  if (type_ != Type::kObject) return nullptr;
  for (auto it = members_.rbegin(); it != members_.rend(); ++it) {
    if (it->first == key) return &it->second;
  }
  return nullptr;
}

std::string JsonValue::Describe() const {
  switch (type_) {
    case Type::kNull:
      return "null";
    case Type::kBool:
      return bool_ ? "true" : "false";
    case Type::kNumber:
      return "a number";
    case Type::kString:
      return "a string";
    case Type::kArray:
      return "an array";
    case Type::kObject:
      return "an object";
  }
  return "a value";
}

JsonValue JsonValue::Bool(bool value) {
  JsonValue out;
  out.type_ = Type::kBool;
  out.bool_ = value;
  return out;
}

JsonValue JsonValue::Number(double value, bool is_integer, int64_t integer) {
  JsonValue out;
  out.type_ = Type::kNumber;
  out.number_ = value;
  out.is_integer_ = is_integer;
  out.integer_ = integer;
  return out;
}

JsonValue JsonValue::String(std::string value) {
  JsonValue out;
  out.type_ = Type::kString;
  out.string_ = std::move(value);
  return out;
}

JsonValue JsonValue::Array(std::vector<JsonValue> items) {
  JsonValue out;
  out.type_ = Type::kArray;
  out.items_ = std::move(items);
  return out;
}

JsonValue JsonValue::Object(std::vector<std::pair<std::string, JsonValue>> members) {
  JsonValue out;
  out.type_ = Type::kObject;
  out.members_ = std::move(members);
  return out;
}

namespace {

// Deep enough for any real config or header; shallow enough that a hostile "[[[[..." header
// cannot overflow a worker thread's stack (recursion uses a few hundred bytes per level).
constexpr int kMaxDepth = 512;

class Parser {
 public:
  Parser(std::string_view text, const std::string& source) : text_(text), source_(source) {}

  JsonValue ParseDocument() {
    SkipWhitespace();
    JsonValue value = ParseValue(0);
    SkipWhitespace();
    if (pos_ != text_.size()) Fail("unexpected text after the JSON value");
    return value;
  }

 private:
  [[noreturn]] void Fail(const std::string& what) const { FailAt(pos_, what); }

  [[noreturn]] void FailAt(size_t pos, const std::string& what) const {
    size_t line = 1, column = 1;
    for (size_t i = 0; i < pos && i < text_.size(); ++i) {
      if (text_[i] == '\n') {
        ++line;
        column = 1;
      } else {
        ++column;
      }
    }
    throw UserError(source_ + ": invalid JSON at line " + std::to_string(line) + ", column " +
                    std::to_string(column) + " (byte " + std::to_string(pos) + "): " + what);
  }

  bool AtEnd() const { return pos_ >= text_.size(); }
  char Peek() const { return text_[pos_]; }

  void SkipWhitespace() {
    while (!AtEnd() && (Peek() == ' ' || Peek() == '\t' || Peek() == '\n' || Peek() == '\r')) {
      ++pos_;
    }
  }

  static std::string Shown(char c) {
    unsigned char u = static_cast<unsigned char>(c);
    if (u >= 0x20 && u < 0x7f) return std::string("'") + c + "'";
    char buffer[8];
    std::snprintf(buffer, sizeof buffer, "0x%02x", u);
    return buffer;
  }

  JsonValue ParseValue(int depth) {
    if (depth > kMaxDepth) Fail("nesting deeper than " + std::to_string(kMaxDepth) + " levels");
    if (AtEnd()) Fail("unexpected end of input, expected a value");
    char c = Peek();
    switch (c) {
      case '{':
        return ParseObject(depth);
      case '[':
        return ParseArray(depth);
      case '"':
        return JsonValue::String(ParseString());
      case 't':
        ExpectWord("true");
        return JsonValue::Bool(true);
      case 'f':
        ExpectWord("false");
        return JsonValue::Bool(false);
      case 'n':
        ExpectWord("null");
        return JsonValue::Null();
      default:
        if (c == '-' || (c >= '0' && c <= '9')) return ParseNumber();
        Fail("unexpected " + Shown(c) + ", expected a value");
    }
  }

  void ExpectWord(std::string_view word) {
    if (text_.substr(pos_, word.size()) != word)
      Fail("invalid literal, expected " + std::string(word));
    pos_ += word.size();
  }

  JsonValue ParseObject(int depth) {
    ++pos_;  // '{'
    std::vector<std::pair<std::string, JsonValue>> members;
    SkipWhitespace();
    if (!AtEnd() && Peek() == '}') {
      ++pos_;
      return JsonValue::Object(std::move(members));
    }
    while (true) {
      SkipWhitespace();
      if (AtEnd()) Fail("unexpected end of input inside an object");
      if (Peek() != '"') Fail("unexpected " + Shown(Peek()) + ", expected a string key");
      std::string key = ParseString();
      SkipWhitespace();
      if (AtEnd() || Peek() != ':') Fail("expected ':' after an object key");
      ++pos_;
      SkipWhitespace();
      JsonValue value = ParseValue(depth + 1);
      members.emplace_back(std::move(key), std::move(value));
      SkipWhitespace();
      if (AtEnd()) Fail("unexpected end of input inside an object");
      if (Peek() == ',') {
        ++pos_;
        continue;
      }
      if (Peek() == '}') {
        ++pos_;
        return JsonValue::Object(std::move(members));
      }
      Fail("unexpected " + Shown(Peek()) + ", expected ',' or '}'");
    }
  }

  JsonValue ParseArray(int depth) {
    ++pos_;  // '['
    std::vector<JsonValue> items;
    SkipWhitespace();
    if (!AtEnd() && Peek() == ']') {
      ++pos_;
      return JsonValue::Array(std::move(items));
    }
    while (true) {
      SkipWhitespace();
      items.push_back(ParseValue(depth + 1));
      SkipWhitespace();
      if (AtEnd()) Fail("unexpected end of input inside an array");
      if (Peek() == ',') {
        ++pos_;
        continue;
      }
      if (Peek() == ']') {
        ++pos_;
        return JsonValue::Array(std::move(items));
      }
      Fail("unexpected " + Shown(Peek()) + ", expected ',' or ']'");
    }
  }

  static void AppendUtf8(std::string& out, uint32_t code) {
    if (code < 0x80) {
      out += static_cast<char>(code);
    } else if (code < 0x800) {
      out += static_cast<char>(0xc0 | (code >> 6));
      out += static_cast<char>(0x80 | (code & 0x3f));
    } else if (code < 0x10000) {
      out += static_cast<char>(0xe0 | (code >> 12));
      out += static_cast<char>(0x80 | ((code >> 6) & 0x3f));
      out += static_cast<char>(0x80 | (code & 0x3f));
    } else {
      out += static_cast<char>(0xf0 | (code >> 18));
      out += static_cast<char>(0x80 | ((code >> 12) & 0x3f));
      out += static_cast<char>(0x80 | ((code >> 6) & 0x3f));
      out += static_cast<char>(0x80 | (code & 0x3f));
    }
  }

  uint32_t ParseHex4() {
    if (pos_ + 4 > text_.size()) Fail("unexpected end of input in a \\u escape");
    uint32_t code = 0;
    for (int i = 0; i < 4; ++i) {
      char c = text_[pos_ + i];
      code <<= 4;
      if (c >= '0' && c <= '9') {
        code |= c - '0';
      } else if (c >= 'a' && c <= 'f') {
        code |= c - 'a' + 10;
      } else if (c >= 'A' && c <= 'F') {
        code |= c - 'A' + 10;
      } else {
        FailAt(pos_ + i, "invalid hex digit " + Shown(c) + " in a \\u escape");
      }
    }
    pos_ += 4;
    return code;
  }

  // Validates one UTF-8 sequence starting at pos_ (the lead byte is >= 0x80) and copies it.
  void CopyUtf8Sequence(std::string& out) {
    size_t start = pos_;
    unsigned char lead = static_cast<unsigned char>(text_[pos_]);
    int extra;
    uint32_t code;
    if (lead >= 0xc2 && lead <= 0xdf) {
      extra = 1;
      code = lead & 0x1f;
    } else if (lead >= 0xe0 && lead <= 0xef) {
      extra = 2;
      code = lead & 0x0f;
    } else if (lead >= 0xf0 && lead <= 0xf4) {
      extra = 3;
      code = lead & 0x07;
    } else {
      Fail("invalid UTF-8 byte " + Shown(static_cast<char>(lead)));
    }
    if (pos_ + extra >= text_.size()) Fail("truncated UTF-8 sequence");
    for (int i = 1; i <= extra; ++i) {
      unsigned char c = static_cast<unsigned char>(text_[pos_ + i]);
      if ((c & 0xc0) != 0x80) FailAt(pos_ + i, "invalid UTF-8 continuation byte");
      code = (code << 6) | (c & 0x3f);
    }
    // Overlong forms, surrogates and values past U+10FFFF are not valid UTF-8.
    if ((extra == 2 && (code < 0x800 || (code >= 0xd800 && code <= 0xdfff))) ||
        (extra == 3 && (code < 0x10000 || code > 0x10ffff))) {
      Fail("invalid UTF-8 sequence");
    }
    out.append(text_.substr(start, extra + 1));
    pos_ += extra + 1;
  }

  std::string ParseString() {
    ++pos_;  // opening quote
    std::string out;
    while (true) {
      if (AtEnd()) Fail("unterminated string");
      char c = Peek();
      unsigned char u = static_cast<unsigned char>(c);
      if (c == '"') {
        ++pos_;
        return out;
      }
      if (u < 0x20) Fail("unescaped control character " + Shown(c) + " in a string");
      if (u >= 0x80) {
        CopyUtf8Sequence(out);
        continue;
      }
      if (c != '\\') {
        out += c;
        ++pos_;
        continue;
      }
      ++pos_;
      if (AtEnd()) Fail("unterminated escape in a string");
      char e = Peek();
      ++pos_;
      switch (e) {
        case '"':
          out += '"';
          break;
        case '\\':
          out += '\\';
          break;
        case '/':
          out += '/';
          break;
        case 'b':
          out += '\b';
          break;
        case 'f':
          out += '\f';
          break;
        case 'n':
          out += '\n';
          break;
        case 'r':
          out += '\r';
          break;
        case 't':
          out += '\t';
          break;
        case 'u': {
          uint32_t code = ParseHex4();
          if (code >= 0xdc00 && code <= 0xdfff) Fail("lone low surrogate in a \\u escape");
          if (code >= 0xd800 && code <= 0xdbff) {
            if (text_.substr(pos_, 2) != "\\u") Fail("high surrogate not followed by \\u");
            pos_ += 2;
            uint32_t low = ParseHex4();
            if (low < 0xdc00 || low > 0xdfff) Fail("high surrogate not followed by a low one");
            code = 0x10000 + ((code - 0xd800) << 10) + (low - 0xdc00);
          }
          AppendUtf8(out, code);
          break;
        }
        default:
          FailAt(pos_ - 1, "invalid escape \\" + std::string(1, e));
      }
    }
  }

  JsonValue ParseNumber() {
    size_t start = pos_;
    bool integral = true;
    if (Peek() == '-') ++pos_;
    if (AtEnd() || !std::isdigit(static_cast<unsigned char>(Peek()))) {
      Fail("expected a digit in a number");
    }
    if (Peek() == '0') {
      ++pos_;
      if (!AtEnd() && std::isdigit(static_cast<unsigned char>(Peek()))) {
        Fail("leading zeros are not allowed in a number");
      }
    } else {
      while (!AtEnd() && std::isdigit(static_cast<unsigned char>(Peek()))) ++pos_;
    }
    if (!AtEnd() && Peek() == '.') {
      integral = false;
      ++pos_;
      if (AtEnd() || !std::isdigit(static_cast<unsigned char>(Peek()))) {
        Fail("expected a digit after the decimal point");
      }
      while (!AtEnd() && std::isdigit(static_cast<unsigned char>(Peek()))) ++pos_;
    }
    if (!AtEnd() && (Peek() == 'e' || Peek() == 'E')) {
      integral = false;
      ++pos_;
      if (!AtEnd() && (Peek() == '+' || Peek() == '-')) ++pos_;
      if (AtEnd() || !std::isdigit(static_cast<unsigned char>(Peek()))) {
        Fail("expected a digit in the exponent");
      }
      while (!AtEnd() && std::isdigit(static_cast<unsigned char>(Peek()))) ++pos_;
    }
    const char* first = text_.data() + start;
    const char* last = text_.data() + pos_;
    double value = 0;
    // from_chars is locale-independent (strtod would follow LC_NUMERIC). Out-of-range values
    // saturate to +-inf / 0 like JSON.parse and Python's json.
    auto parsed = std::from_chars(first, last, value);
    if (parsed.ec == std::errc::result_out_of_range) {
      value = (*first == '-' ? -1.0 : 1.0) * HUGE_VAL;
      bool tiny = false;
      for (const char* p = first; p < last; ++p) {
        if (*p == 'e' || *p == 'E') {
          tiny = p[1] == '-';
          break;
        }
      }
      if (tiny) value = 0;
    } else if (parsed.ec != std::errc() || parsed.ptr != last) {
      FailAt(start, "invalid number");
    }
    int64_t integer = 0;
    bool is_integer = false;
    if (integral) {
      auto exact = std::from_chars(first, last, integer);
      is_integer = exact.ec == std::errc() && exact.ptr == last;
    }
    return JsonValue::Number(value, is_integer, integer);
  }

  std::string_view text_;
  const std::string& source_;
  size_t pos_ = 0;
};

}  // namespace

JsonValue ParseJson(std::string_view text, const std::string& source) {
  return Parser(text, source).ParseDocument();
}

std::string JsonQuote(std::string_view value) {
  std::string out = "\"";
  for (char c : value) {
    unsigned char u = static_cast<unsigned char>(c);
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        if (u < 0x20) {
          char buffer[8];
          std::snprintf(buffer, sizeof buffer, "\\u%04x", u);
          out += buffer;
        } else {
          out += c;
        }
    }
  }
  out += '"';
  return out;
}

std::string JsonNumber(double value) {
  if (!std::isfinite(value)) throw UserError("cannot write a non-finite number to JSON");
  char buffer[400];
  // Plain decimals for ordinary magnitudes (500000.0 reads better than 5e+05); exponent form
  // only for very large or very small values. Both are the shortest round-trip text.
  double magnitude = std::fabs(value);
  auto format = magnitude == 0 || (magnitude >= 1e-5 && magnitude < 1e16)
                    ? std::chars_format::fixed
                    : std::chars_format::general;
  auto result = std::to_chars(buffer, buffer + sizeof buffer, value, format);
  return std::string(buffer, result.ptr);
}

}  // namespace mentallam
