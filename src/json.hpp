// A deliberately small JSON reader and string quoter, enough for safetensors headers.
//
// It reads objects, arrays, strings (with every JSON escape, \uXXXX surrogate pairs included)
// and integers. Anything else a header has no business containing (fractions, exponents, true,
// false, null) is rejected with a message rather than half-supported. Object keys keep their
// file order and a repeated key is an error, because in a safetensors header a repeated tensor
// name would silently drop one of the tensors.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace cudagrad::json {

struct Value {
    enum class Kind { Object, Array, String, Integer };

    Kind kind = Kind::Integer;
    std::size_t position = 0;  // byte offset of the value's first character in the parsed text
    std::int64_t integer = 0;
    std::string string;
    std::vector<Value> array;
    std::vector<std::pair<std::string, Value>> object;  // in file order, keys unique

    bool is_object() const { return kind == Kind::Object; }
    bool is_array() const { return kind == Kind::Array; }
    bool is_string() const { return kind == Kind::String; }
    bool is_integer() const { return kind == Kind::Integer; }
};

// "object", "array", "string" or "integer", for error messages.
const char* kind_name(Value::Kind kind);

// Parses one JSON value followed only by whitespace. On malformed input throws cudagrad::Error:
//   "<op>: <context> is malformed JSON at byte 17: expected ':' after the key \"weight\", found ','"
// Byte positions count from the start of `text`.
Value parse(std::string_view text, const char* op, const std::string& context);

// `text` as a JSON string literal, quotes included, escaping '"', '\\' and control characters.
std::string quote(std::string_view text);

}  // namespace cudagrad::json
