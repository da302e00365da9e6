// A recursive-descent JSON reader for safetensors headers (see json.hpp for what it accepts).
//
// Grammar, as in RFC 8259 minus the parts headers never use:
//   value   = object | array | string | integer
//   object  = '{' [ string ':' value { ',' string ':' value } ] '}'
//   array   = '[' [ value { ',' value } ] ']'
//   integer = [ '-' ] ( '0' | digit1-9 { digit } )        (must fit in int64)
// Speed: one pass over the header, a few hundred bytes per tensor; nothing here is hot.
// Nesting is capped so that a hostile file cannot overflow the stack through recursion.
#include "json.hpp"

#include <cstdio>
#include <limits>

#include "cudagrad/error.hpp"

namespace cudagrad::json {

const char* kind_name(Value::Kind kind) {
    switch (kind) {
        case Value::Kind::Object: return "object";
        case Value::Kind::Array: return "array";
        case Value::Kind::String: return "string";
        case Value::Kind::Integer: return "integer";
    }
    return "unknown";
}

namespace {

constexpr int maximum_depth = 64;  // a safetensors header needs 3

class Parser {
public:
    Parser(std::string_view text, const char* op, const std::string& context)
        : text_(text), op_(op), context_(context) {}

    Value parse_document() {
        skip_whitespace();
        Value value = parse_value(0);
        skip_whitespace();
        if (position_ != text_.size()) error("unexpected ", describe_current(), " after the end of the JSON value");
        return value;
    }

private:
    std::string_view text_;
    const char* op_;
    const std::string& context_;
    std::size_t position_ = 0;

    template <typename... Parts>
    [[noreturn]] void error(Parts&&... parts) const {
        fail(op_, context_, " is malformed JSON at byte ", position_, ": ", std::forward<Parts>(parts)...);
    }

    bool at_end() const { return position_ >= text_.size(); }
    char current() const { return text_[position_]; }

    // "end of input", "'x'" or "byte 0x07", for messages about what was found instead.
    std::string describe_current() const {
        if (at_end()) return "end of input";
        unsigned char byte = static_cast<unsigned char>(current());
        if (byte >= 0x20 && byte < 0x7f) return std::string("'") + current() + "'";
        char hex[16];
        std::snprintf(hex, sizeof hex, "byte 0x%02x", byte);
        return hex;
    }

    void skip_whitespace() {
        while (!at_end() && (current() == ' ' || current() == '\t' || current() == '\n' || current() == '\r')) {
            ++position_;
        }
    }

    void expect(char wanted, const char* where) {
        if (at_end() || current() != wanted) error("expected '", wanted, "' ", where, ", found ", describe_current());
        ++position_;
    }

    Value parse_value(int depth) {
        if (depth > maximum_depth) error("nesting deeper than ", maximum_depth, " levels");
        if (at_end()) error("expected a value, found end of input");
        char c = current();
        if (c == '{') return parse_object(depth);
        if (c == '[') return parse_array(depth);
        if (c == '"') {
            Value value;
            value.kind = Value::Kind::String;
            value.position = position_;
            value.string = parse_string();
            return value;
        }
        if (c == '-' || (c >= '0' && c <= '9')) return parse_integer();
        if (c == 't' || c == 'f' || c == 'n') {
            error("true, false and null are not supported (this reader accepts objects, arrays, strings and integers)");
        }
        error("expected a value, found ", describe_current());
    }

    Value parse_object(int depth) {
        Value value;
        value.kind = Value::Kind::Object;
        value.position = position_;
        ++position_;  // '{'
        skip_whitespace();
        if (!at_end() && current() == '}') {
            ++position_;
            return value;
        }
        while (true) {
            skip_whitespace();
            if (at_end() || current() != '"') error("expected a string key in the object, found ", describe_current());
            std::size_t key_position = position_;
            std::string key = parse_string();
            for (const auto& member : value.object) {
                if (member.first == key) {
                    position_ = key_position;
                    error("duplicate key ", quote(key), " (first at byte ", member.second.position, ")");
                }
            }
            skip_whitespace();
            expect(':', ("after the key " + quote(key)).c_str());
            skip_whitespace();
            Value member = parse_value(depth + 1);
            value.object.emplace_back(std::move(key), std::move(member));
            skip_whitespace();
            if (!at_end() && current() == ',') {
                ++position_;
                continue;
            }
            expect('}', "or ',' in the object");
            return value;
        }
    }

    Value parse_array(int depth) {
        Value value;
        value.kind = Value::Kind::Array;
        value.position = position_;
        ++position_;  // '['
        skip_whitespace();
        if (!at_end() && current() == ']') {
            ++position_;
            return value;
        }
        while (true) {
            skip_whitespace();
            value.array.push_back(parse_value(depth + 1));
            skip_whitespace();
            if (!at_end() && current() == ',') {
                ++position_;
                continue;
            }
            expect(']', "or ',' in the array");
            return value;
        }
    }

    Value parse_integer() {
        Value value;
        value.kind = Value::Kind::Integer;
        value.position = position_;
        bool negative = current() == '-';
        if (negative) ++position_;
        if (at_end() || current() < '0' || current() > '9') error("expected a digit, found ", describe_current());
        if (current() == '0' && position_ + 1 < text_.size() && text_[position_ + 1] >= '0' &&
            text_[position_ + 1] <= '9') {
            error("numbers may not have leading zeros");
        }
        // Accumulate the magnitude as unsigned so that the most negative int64 still parses.
        const std::uint64_t limit = negative ? std::uint64_t{1} << 63 : std::numeric_limits<std::int64_t>::max();
        std::uint64_t magnitude = 0;
        while (!at_end() && current() >= '0' && current() <= '9') {
            std::uint64_t digit = static_cast<std::uint64_t>(current() - '0');
            if (magnitude > (limit - digit) / 10) {
                position_ = value.position;
                error("integer does not fit in 64 bits");
            }
            magnitude = magnitude * 10 + digit;
            ++position_;
        }
        if (!at_end() && (current() == '.' || current() == 'e' || current() == 'E')) {
            error("numbers with a fraction or an exponent are not supported (integers only)");
        }
        value.integer = negative ? static_cast<std::int64_t>(0 - magnitude) : static_cast<std::int64_t>(magnitude);
        return value;
    }

    unsigned read_hex4() {
        unsigned code = 0;
        for (int i = 0; i < 4; ++i, ++position_) {
            if (at_end()) error("unfinished \\u escape");
            char c = current();
            unsigned digit;
            if (c >= '0' && c <= '9') digit = static_cast<unsigned>(c - '0');
            else if (c >= 'a' && c <= 'f') digit = static_cast<unsigned>(c - 'a' + 10);
            else if (c >= 'A' && c <= 'F') digit = static_cast<unsigned>(c - 'A' + 10);
            else error("expected a hexadecimal digit in a \\u escape, found ", describe_current());
            code = code * 16 + digit;
        }
        return code;
    }

    static void append_utf8(std::string& out, unsigned code) {
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

    // A \uXXXX escape (the "\u" already consumed), joining a UTF-16 surrogate pair into one code point.
    unsigned parse_unicode_escape() {
        std::size_t start = position_ - 2;
        unsigned code = read_hex4();
        if (code >= 0xdc00 && code <= 0xdfff) {
            position_ = start;
            error("unpaired low surrogate in a \\u escape");
        }
        if (code >= 0xd800 && code <= 0xdbff) {
            if (position_ + 1 >= text_.size() || text_[position_] != '\\' || text_[position_ + 1] != 'u') {
                position_ = start;
                error("high surrogate in a \\u escape is not followed by a low surrogate");
            }
            position_ += 2;
            unsigned low = read_hex4();
            if (low < 0xdc00 || low > 0xdfff) {
                position_ = start;
                error("high surrogate in a \\u escape is not followed by a low surrogate");
            }
            code = 0x10000 + ((code - 0xd800) << 10) + (low - 0xdc00);
        }
        return code;
    }

    std::string parse_string() {
        std::size_t start = position_;
        ++position_;  // opening quote
        std::string out;
        while (true) {
            if (at_end()) {
                position_ = start;
                error("string is not terminated");
            }
            char c = current();
            if (c == '"') {
                ++position_;
                return out;
            }
            if (static_cast<unsigned char>(c) < 0x20) error("control character ", describe_current(), " inside a string");
            if (c != '\\') {
                out += c;
                ++position_;
                continue;
            }
            ++position_;
            if (at_end()) error("unfinished escape at the end of input");
            char escape = current();
            ++position_;
            switch (escape) {
                case '"': out += '"'; break;
                case '\\': out += '\\'; break;
                case '/': out += '/'; break;
                case 'b': out += '\b'; break;
                case 'f': out += '\f'; break;
                case 'n': out += '\n'; break;
                case 'r': out += '\r'; break;
                case 't': out += '\t'; break;
                case 'u': append_utf8(out, parse_unicode_escape()); break;
                default: --position_; error("unknown escape '\\", escape, "' in a string");
            }
        }
    }
};

}  // namespace

Value parse(std::string_view text, const char* op, const std::string& context) {
    return Parser(text, op, context).parse_document();
}

std::string quote(std::string_view text) {
    std::string out = "\"";
    for (char c : text) {
        if (c == '"') out += "\\\"";
        else if (c == '\\') out += "\\\\";
        else if (c == '\n') out += "\\n";
        else if (c == '\t') out += "\\t";
        else if (c == '\r') out += "\\r";
        else if (static_cast<unsigned char>(c) < 0x20) {
            char escape[8];
            std::snprintf(escape, sizeof escape, "\\u%04x", static_cast<unsigned>(static_cast<unsigned char>(c)));
            out += escape;
        } else {
            out += c;
        }
    }
    return out + "\"";
}

}  // namespace cudagrad::json
