// Tests for safetensors I/O (src/serialize.cpp) and the header's JSON reader (src/json.cpp).
//
// What is checked: round trips of every dtype and of awkward shapes (0-d, empty, non-contiguous)
// with metadata; the exact bytes of a small file against the format's layout, so files are
// readable by other safetensors implementations; reading a hand-written file with the formatting
// liberties other writers take; the atomic write (nothing left behind on failure, an existing
// file untouched); and one corrupt file per validation rule, each error naming the file.
#include <algorithm>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <initializer_list>
#include <iterator>
#include <map>
#include <string>
#include <unistd.h>
#include <vector>

#include <cudagrad/cudagrad.hpp>
#include <cudagrad/serialize.hpp>

#include "catch.hpp"

namespace {

using cudagrad::Tensor;
namespace fs = std::filesystem;

// A scratch directory, removed with everything in it when the test ends.
struct TemporaryDirectory {
    fs::path path;
    TemporaryDirectory() {
        static int counter = 0;
        path = fs::temp_directory_path() /
               ("cudagrad_test_serialize_" + std::to_string(::getpid()) + "_" + std::to_string(counter++));
        fs::remove_all(path);
        fs::create_directories(path);
    }
    ~TemporaryDirectory() {
        std::error_code ignored;
        fs::remove_all(path, ignored);
    }
    std::string file(const std::string& name) const { return (path / name).string(); }
    std::vector<std::string> entries() const {
        std::vector<std::string> names;
        for (const auto& entry : fs::directory_iterator(path)) names.push_back(entry.path().filename().string());
        return names;
    }
};

std::string read_bytes(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

void write_bytes(const std::string& path, const std::string& bytes) {
    std::ofstream out(path, std::ios::binary);
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

std::string little_endian_u64(std::uint64_t value) {
    std::string bytes(8, '\0');
    for (int i = 0; i < 8; ++i) bytes[static_cast<std::size_t>(i)] = static_cast<char>(value >> (8 * i));
    return bytes;
}

// A safetensors file built by hand: the length field (the header's true length unless given),
// the header text, then `data`.
void write_safetensors_by_hand(const std::string& path, const std::string& header, const std::string& data,
                               std::uint64_t declared_length = UINT64_MAX) {
    std::uint64_t length = declared_length == UINT64_MAX ? header.size() : declared_length;
    write_bytes(path, little_endian_u64(length) + header + data);
}

std::string float_bytes(const std::vector<float>& values) {
    return std::string(reinterpret_cast<const char*>(values.data()), values.size() * sizeof(float));
}

// Runs `action`, requires it to throw cudagrad::Error, and returns the message.
template <typename Action> std::string error_message(Action&& action) {
    try {
        action();
    } catch (const cudagrad::Error& error) {
        return error.what();
    }
    FAIL("expected a cudagrad::Error, but nothing was thrown");
    return "";
}

void require_contains(const std::string& message, std::initializer_list<std::string> pieces) {
    INFO("message: " << message);
    for (const std::string& piece : pieces) {
        INFO("missing: " << piece);
        CHECK(message.find(piece) != std::string::npos);
    }
}

// Loading `path` fails with a message naming the op, the file, and every piece of `pieces`.
void require_load_error(const std::string& path, std::initializer_list<std::string> pieces) {
    std::string message = error_message([&] { cudagrad::load_safetensors(path); });
    require_contains(message, {"load_safetensors", "'" + path + "'"});
    require_contains(message, pieces);
}

void require_same_tensor(const Tensor& actual, const Tensor& expected) {
    INFO(actual.description() << " vs " << expected.description());
    REQUIRE(actual.dtype() == expected.dtype());
    REQUIRE(actual.shape() == expected.shape());
    CHECK(actual.is_contiguous());
    CHECK_FALSE(actual.requires_grad());
    if (expected.dtype() == cudagrad::DType::Int64) {
        CHECK(actual.to_int64_vector() == expected.to_int64_vector());
    } else {
        CHECK(actual.to_double_vector() == expected.to_double_vector());  // bit-exact: no conversion anywhere
    }
}

}  // namespace

TEST_CASE("safetensors round trip keeps dtype, shape, values and metadata", "[serialize]") {
    TemporaryDirectory directory;
    cudagrad::Generator generator(7);
    Tensor wide = cudagrad::randn({3, 5}, cudagrad::DType::Float32, generator);
    std::map<std::string, Tensor> tensors = {
        {"conv1.weight", cudagrad::randn({4, 3, 3, 3}, cudagrad::DType::Float32, generator)},
        {"fc.bias", cudagrad::randn({7}, cudagrad::DType::Float64, generator)},
        {"labels", Tensor::from_vector(std::vector<std::int64_t>{0, -1, 9'000'000'000'000'000'000, 42}, {2, 2})},
        {"scalar", Tensor::scalar(3.25, cudagrad::DType::Float64)},
        {"steps", Tensor::scalar(12, cudagrad::DType::Int64)},
        {"empty", Tensor::zeros({0, 3}, cudagrad::DType::Float32)},
        {"transposed", wide.transpose(0, 1)},  // not contiguous: saved in logical order
        {"odd \"name\"\twith/escapes \xc3\xa9", Tensor::ones({1, 1, 1}, cudagrad::DType::Float64)},
    };
    std::map<std::string, std::string> metadata = {
        {"format", "pt"}, {"note", "line one\nline \"two\" \\ \xe2\x82\xac"}, {"empty", ""}};
    const std::string path = directory.file("model.safetensors");
    cudagrad::save_safetensors(path, tensors, metadata);
    cudagrad::TensorFile loaded = cudagrad::load_safetensors(path);

    CHECK(loaded.metadata == metadata);
    REQUIRE(loaded.tensors.size() == tensors.size());
    for (const auto& [name, tensor] : tensors) {
        INFO("tensor " << name);
        REQUIRE(loaded.tensors.count(name) == 1);
        require_same_tensor(loaded.tensors.at(name), tensor.contiguous());
    }
    CHECK(loaded.tensors.at("scalar").dim() == 0);
    CHECK(loaded.tensors.at("transposed").shape() == cudagrad::Shape{5, 3});
    CHECK(loaded.tensors.at("transposed").at({4, 2}) == wide.at({2, 4}));
    CHECK(directory.entries() == std::vector<std::string>{"model.safetensors"});  // no temporary left

    SECTION("saving over an existing file replaces it") {
        cudagrad::save_safetensors(path, {{"only", Tensor::full({2}, 5.0)}});
        cudagrad::TensorFile replaced = cudagrad::load_safetensors(path);
        CHECK(replaced.tensors.size() == 1);
        CHECK(replaced.metadata.empty());
        CHECK(replaced.tensors.at("only").to_double_vector() == std::vector<double>{5.0, 5.0});
    }
}

TEST_CASE("safetensors files have the documented byte layout", "[serialize]") {
    TemporaryDirectory directory;
    const std::string path = directory.file("tiny.safetensors");
    cudagrad::save_safetensors(path,
                               {{"x", Tensor::from_vector(std::vector<float>{1.0f, 2.0f}, {2})},
                                {"y", Tensor::from_vector(std::vector<std::int64_t>{-2}, {1, 1})}},
                               {{"k", "v"}});
    std::string header = R"({"__metadata__":{"k":"v"},"x":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                         R"("y":{"dtype":"I64","shape":[1,1],"data_offsets":[8,16]}})";
    header.append((8 - header.size() % 8) % 8, ' ');
    std::int64_t minus_two = -2;
    std::string expected = little_endian_u64(header.size()) + header + float_bytes({1.0f, 2.0f}) +
                           std::string(reinterpret_cast<const char*>(&minus_two), 8);
    CHECK(header.size() % 8 == 0);
    CHECK(read_bytes(path) == expected);
}

TEST_CASE("safetensors reads files formatted the way other writers format them", "[serialize]") {
    TemporaryDirectory directory;
    const std::string path = directory.file("other_writer.safetensors");
    // Whitespace everywhere, fields in another order, metadata last, \u escapes (a surrogate
    // pair among them), a zero-size tensor, and tensors stored out of name order.
    std::string header =
        "{ \"b\" : { \"data_offsets\" : [ 0 , 8 ] , \"shape\" : [ 2 ] , \"dtype\" : \"F32\" } ,\n"
        "  \"a\\u00e9\" : {\"dtype\":\"F64\",\"shape\":[],\"data_offsets\":[8,16]},\r\n"
        "  \"z\":{\"dtype\":\"F32\",\"shape\":[0,4],\"data_offsets\":[16,16]},\t"
        "  \"__metadata__\" : { \"emoji\" : \"\\ud83d\\ude00\", \"slash\": \"a\\/b\\\\c\" } }   ";
    double three = 3.0;
    write_safetensors_by_hand(path, header, float_bytes({0.5f, -1.5f}) + std::string(reinterpret_cast<const char*>(&three), 8));
    cudagrad::TensorFile file = cudagrad::load_safetensors(path);
    REQUIRE(file.tensors.size() == 3);
    CHECK(file.tensors.at("b").to_double_vector() == std::vector<double>{0.5, -1.5});
    CHECK(file.tensors.at("a\xc3\xa9").dim() == 0);
    CHECK(file.tensors.at("a\xc3\xa9").item() == 3.0);
    CHECK(file.tensors.at("z").shape() == cudagrad::Shape{0, 4});
    CHECK(file.metadata.at("emoji") == "\xf0\x9f\x98\x80");
    CHECK(file.metadata.at("slash") == "a/b\\c");
}

TEST_CASE("save_safetensors is atomic", "[serialize]") {
    TemporaryDirectory directory;

    SECTION("a path in a missing directory fails and creates nothing") {
        const std::string path = directory.file("missing/sub/model.safetensors");
        std::string message = error_message([&] { cudagrad::save_safetensors(path, {{"x", Tensor::ones({2})}}); });
        require_contains(message, {"save_safetensors", "'" + path + "'", "No such file or directory"});
        CHECK_FALSE(fs::exists(directory.path / "missing"));
        CHECK(directory.entries().empty());
    }

    const std::string path = directory.file("model.safetensors");
    cudagrad::save_safetensors(path, {{"x", Tensor::full({3}, 2.0)}}, {{"version", "1"}});
    const std::string original = read_bytes(path);

    SECTION("invalid arguments leave the previous file untouched") {
        std::string undefined = error_message([&] {
            cudagrad::save_safetensors(path, {{"good", Tensor::ones({2})}, {"bad", Tensor()}});
        });
        require_contains(undefined, {"save_safetensors", "'" + path + "'", "tensor 'bad' is undefined"});
        std::string reserved = error_message([&] { cudagrad::save_safetensors(path, {{"__metadata__", Tensor::ones({2})}}); });
        require_contains(reserved, {"save_safetensors", "'" + path + "'", "reserved"});
        CHECK(read_bytes(path) == original);
        CHECK(directory.entries() == std::vector<std::string>{"model.safetensors"});
    }

    SECTION("a failed rename removes the temporary file and keeps the target") {
        // The data is written completely, then the rename onto a non-empty directory fails.
        fs::create_directories(directory.path / "occupied");
        write_bytes(directory.file("occupied/keep.txt"), "keep");
        const std::string target = directory.file("occupied");
        std::string message = error_message([&] { cudagrad::save_safetensors(target, {{"x", Tensor::ones({4})}}); });
        require_contains(message, {"save_safetensors", "cannot rename", "'" + target + "'"});
        CHECK(read_bytes(directory.file("occupied/keep.txt")) == "keep");
        std::vector<std::string> entries = directory.entries();
        std::sort(entries.begin(), entries.end());
        CHECK(entries == std::vector<std::string>{"model.safetensors", "occupied"});
        CHECK(read_bytes(path) == original);
    }
}

TEST_CASE("load_safetensors rejects unreadable and truncated files, naming them", "[serialize]") {
    TemporaryDirectory directory;
    require_load_error(directory.file("absent.safetensors"), {"cannot open", "No such file or directory"});
    require_load_error(directory.path.string(), {"not a regular file"});

    const std::string path = directory.file("corrupt.safetensors");
    write_bytes(path, "");
    require_load_error(path, {"is 0 bytes long", "too short"});
    write_bytes(path, std::string("\x10\0\0\0\0", 5));
    require_load_error(path, {"is 5 bytes long", "too short"});

    write_safetensors_by_hand(path, "{}", "", 1000);
    require_load_error(path, {"declares a header of 1000 bytes", "only 2 bytes follow"});
    write_safetensors_by_hand(path, "{}", "", UINT64_MAX - 1);
    require_load_error(path, {"declares a header of 18446744073709551614 bytes"});
}

TEST_CASE("load_safetensors reports malformed JSON with its byte position", "[serialize]") {
    TemporaryDirectory directory;
    const std::string path = directory.file("corrupt.safetensors");
    struct Case {
        std::string header;
        std::string expected;  // "at byte N: <what>"
    };
    const std::vector<Case> cases = {
        {R"({"x" {"dtype":"F32"}})", "at byte 5: expected ':' after the key \"x\", found '{'"},
        {R"({"x":{"dtype":"F32","shape":[1],"data_offsets":[0,4]})", "at byte 53: expected '}' or ',' in the object, found end of input"},
        {R"({"x":[1,2,]})", "at byte 10: expected a value, found ']'"},
        {R"({"x":1.5})", "at byte 6: numbers with a fraction or an exponent are not supported"},
        {R"({"x":01})", "at byte 5: numbers may not have leading zeros"},
        {R"({"x":99999999999999999999})", "at byte 5: integer does not fit in 64 bits"},
        {R"({"x":true})", "at byte 5: true, false and null are not supported"},
        {R"({"x":"abc)", "at byte 5: string is not terminated"},
        {R"({"x":"a\qb"})", "at byte 8: unknown escape '\\q'"},
        {R"({"x":"\ud800x"})", "at byte 6: high surrogate in a \\u escape is not followed by a low surrogate"},
        {"{\"x\":\"a\nb\"}", "at byte 7: control character byte 0x0a inside a string"},
        {R"({} {})", "at byte 3: unexpected '{' after the end of the JSON value"},
        {R"({"x":1,"x":2})", "at byte 7: duplicate key \"x\" (first at byte 5)"},
        {std::string(100, '[') + std::string(100, ']'), "nesting deeper than 64 levels"},
    };
    for (const Case& test : cases) {
        INFO("header: " << test.header);
        write_safetensors_by_hand(path, test.header, "");
        require_load_error(path, {"the header of '" + path + "' is malformed JSON", test.expected});
    }
}

TEST_CASE("load_safetensors validates every tensor entry", "[serialize]") {
    TemporaryDirectory directory;
    const std::string path = directory.file("corrupt.safetensors");
    const std::string eight = float_bytes({1.0f, 2.0f});
    auto entry = [](const std::string& name, const std::string& dtype, const std::string& shape, const std::string& offsets) {
        return "\"" + name + "\":{\"dtype\":\"" + dtype + "\",\"shape\":" + shape + ",\"data_offsets\":" + offsets + "}";
    };
    struct Case {
        std::string header;
        std::string data;
        std::vector<std::string> expected;
    };
    const std::vector<Case> cases = {
        {"[]", "", {"the header must be a JSON object, found array"}},
        {"{" + entry("w", "F16", "[2]", "[0,4]") + "}", "abcd", {"tensor 'w' has dtype \"F16\"", "does not support"}},
        {"{" + entry("w", "BOOL", "[1]", "[0,1]") + "}", "a", {"tensor 'w' has dtype \"BOOL\""}},
        {"{" + entry("w", "F32", "[2]", "[0,16]") + "}", eight, {"tensor 'w'", "[0, 16] past the end of the data section (8 bytes)"}},
        {"{" + entry("w", "F32", "[2]", "[4,0]") + "}", eight, {"tensor 'w'", "[4, 0] that end before they begin"}},
        {"{" + entry("w", "F32", "[3]", "[0,8]") + "}", eight, {"tensor 'w' has dtype F32 and shape [3], which need 12 bytes", "span 8"}},
        {"{" + entry("w", "F64", "[2]", "[0,8]") + "}", eight, {"tensor 'w' has dtype F64 and shape [2], which need 16 bytes"}},
        {"{" + entry("a", "F32", "[2]", "[0,8]") + "," + entry("b", "F32", "[1]", "[4,8]") + "}", eight,
         {"tensor 'b' (bytes 4 to 8) overlaps tensor 'a' (bytes 0 to 8)"}},
        {"{" + entry("a", "F32", "[1]", "[4,8]") + "}", eight, {"bytes 0 to 4 of the data section belong to no tensor"}},
        {"{" + entry("a", "F32", "[1]", "[0,4]") + "}", eight, {"the data section holds 8 bytes but the tensors cover only 4"}},
        {"{" + entry("w", "F32", "[-2]", "[0,8]") + "}", eight, {"tensor 'w'", "non-negative integers, found -2"}},
        {"{" + entry("w", "F32", "[4294967296,4294967296]", "[0,8]") + "}", eight, {"tensor 'w' of shape [4294967296, 4294967296]", "more than 2^64 bytes"}},
        {"{" + entry("w", "F32", "[\"2\"]", "[0,8]") + "}", eight, {"tensor 'w'", "found string"}},
        {"{" + entry("w", "F32", "[2]", "[0]") + "}", eight, {"tensor 'w'", "\"data_offsets\" must be two non-negative integers"}},
        {"{" + entry("w", "F32", "[2]", "[-8,0]") + "}", eight, {"tensor 'w'", "\"data_offsets\" must be two non-negative integers"}},
        {R"({"w":{"dtype":"F32","shape":[2]}})", eight, {"tensor 'w' needs the fields"}},
        {R"({"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8],"extra":1}})", eight, {"tensor 'w' has an unexpected field \"extra\""}},
        {R"({"w":[1]})", eight, {"tensor 'w' must be described by a JSON object, found array"}},
        {R"({"w":{"dtype":32,"shape":[2],"data_offsets":[0,8]}})", eight, {"tensor 'w'", "\"dtype\" must be a string"}},
        {"{\"__metadata__\":{\"epoch\":3}," + entry("w", "F32", "[2]", "[0,8]") + "}", eight,
         {"metadata \"epoch\" must be a string, found integer"}},
        {"{\"__metadata__\":[]}", "", {"\"__metadata__\" must be an object of strings"}},
        {"{" + entry("w", "F32", "[2]", "[0,8]") + "," + entry("w", "F32", "[2]", "[0,8]") + "}", eight,
         {"malformed JSON", "duplicate key \"w\""}},
    };
    for (const Case& test : cases) {
        INFO("header: " << test.header);
        write_safetensors_by_hand(path, test.header, test.data);
        std::string message = error_message([&] { cudagrad::load_safetensors(path); });
        require_contains(message, {"load_safetensors", "'" + path + "'"});
        for (const std::string& piece : test.expected) require_contains(message, {piece});
    }
}
