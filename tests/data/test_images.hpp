// Helpers shared by the data-pipeline tests: a temporary folder that removes itself, PNG/JPEG
// writers (stb_image_write), a gzip writer, and a check that an expression throws a
// cudagrad::Error whose message we can inspect.
//
// The gzip writer emits "stored" (uncompressed) deflate blocks with a real CRC-32: a valid gzip
// file that tests zlib's reading path without linking zlib into the tests. The real, compressed
// Fashion-MNIST files cover actual inflation when they are installed.
#pragma once

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <unistd.h>

#include <cudagrad/cudagrad.hpp>
#include <cudagrad/data.hpp>

#include "catch.hpp"

#define STB_IMAGE_WRITE_IMPLEMENTATION
#define STB_IMAGE_WRITE_STATIC
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-function"
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"
#pragma GCC diagnostic ignored "-Wsign-compare"
#if __has_include(<stb_image_write.h>)
#include <stb_image_write.h>
#else
#include <stb/stb_image_write.h>
#endif
#pragma GCC diagnostic pop

namespace data_test {

namespace fs = std::filesystem;
using cudagrad::data::Image;

// A fresh folder under the system temp dir, deleted with everything in it at scope exit.
class TempDir {
public:
    TempDir() {
        static std::atomic<int> counter{0};
        path_ = fs::temp_directory_path() /
                ("cudagrad_data_test_" + std::to_string(::getpid()) + "_" + std::to_string(counter++));
        fs::remove_all(path_);
        fs::create_directories(path_);
    }
    ~TempDir() {
        std::error_code error;
        fs::remove_all(path_, error);
    }
    TempDir(const TempDir&) = delete;
    TempDir& operator=(const TempDir&) = delete;
    const fs::path& path() const { return path_; }
    std::string operator/(const std::string& name) const { return (path_ / name).string(); }

private:
    fs::path path_;
};

inline void write_bytes(const std::string& path, const std::vector<std::uint8_t>& bytes) {
    fs::create_directories(fs::path(path).parent_path());
    std::ofstream stream(path, std::ios::binary);
    stream.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
    REQUIRE(stream.good());
}

inline std::vector<std::uint8_t> read_bytes(const std::string& path) {
    std::ifstream stream(path, std::ios::binary);
    return {std::istreambuf_iterator<char>(stream), std::istreambuf_iterator<char>()};
}

// A deterministic test picture: every pixel differs from its neighbours, values depend on seed.
inline Image pattern_image(int height, int width, int channels, int seed = 0) {
    Image image(height, width, channels);
    for (int y = 0; y < height; ++y)
        for (int x = 0; x < width; ++x)
            for (int c = 0; c < channels; ++c) image.at(y, x, c) = static_cast<std::uint8_t>((y * 31 + x * 7 + c * 80 + seed * 13) % 256);
    return image;
}

// A smooth picture, which JPEG reproduces closely.
inline Image smooth_image(int height, int width, int channels) {
    Image image(height, width, channels);
    for (int y = 0; y < height; ++y)
        for (int x = 0; x < width; ++x)
            for (int c = 0; c < channels; ++c) image.at(y, x, c) = static_cast<std::uint8_t>(40 + 4 * x + 3 * y + 30 * c);
    return image;
}

inline void append_to_vector(void* context, void* data, int size) {
    auto* out = static_cast<std::vector<std::uint8_t>*>(context);
    out->insert(out->end(), static_cast<std::uint8_t*>(data), static_cast<std::uint8_t*>(data) + size);
}

inline std::vector<std::uint8_t> encode_png(const Image& image) {
    std::vector<std::uint8_t> bytes;
    REQUIRE(stbi_write_png_to_func(append_to_vector, &bytes, image.width, image.height, image.channels,
                                   image.pixels.data(), image.width * image.channels) != 0);
    return bytes;
}

inline std::vector<std::uint8_t> encode_jpeg(const Image& image, int quality = 95) {
    std::vector<std::uint8_t> bytes;
    REQUIRE(stbi_write_jpg_to_func(append_to_vector, &bytes, image.width, image.height, image.channels,
                                   image.pixels.data(), quality) != 0);
    return bytes;
}

inline std::uint32_t crc32(const std::vector<std::uint8_t>& data) {
    std::uint32_t crc = 0xffffffffu;
    for (std::uint8_t byte : data) {
        crc ^= byte;
        for (int bit = 0; bit < 8; ++bit) crc = (crc >> 1) ^ (0xedb88320u & (0u - (crc & 1u)));
    }
    return ~crc;
}

inline void put_le32(std::vector<std::uint8_t>& out, std::uint32_t value) {
    for (int i = 0; i < 4; ++i) out.push_back(static_cast<std::uint8_t>(value >> (8 * i)));
}

// RFC 1952 gzip member around RFC 1951 stored blocks (at most 65535 bytes each).
inline std::vector<std::uint8_t> gzip_stored(const std::vector<std::uint8_t>& data) {
    std::vector<std::uint8_t> out = {0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 255};
    std::size_t position = 0;
    do {
        const std::size_t length = std::min<std::size_t>(65535, data.size() - position);
        const bool final = position + length == data.size();
        out.push_back(final ? 1 : 0);
        out.push_back(static_cast<std::uint8_t>(length & 0xff));
        out.push_back(static_cast<std::uint8_t>(length >> 8));
        out.push_back(static_cast<std::uint8_t>(~length & 0xff));
        out.push_back(static_cast<std::uint8_t>((~length >> 8) & 0xff));
        out.insert(out.end(), data.begin() + static_cast<std::ptrdiff_t>(position),
                   data.begin() + static_cast<std::ptrdiff_t>(position + length));
        position += length;
    } while (position < data.size());
    put_le32(out, crc32(data));
    put_le32(out, static_cast<std::uint32_t>(data.size()));
    return out;
}

// An IDX file of unsigned bytes: magic 0 0 8 d, big-endian dims, values.
inline std::vector<std::uint8_t> idx_bytes(const std::vector<std::uint32_t>& dims, const std::vector<std::uint8_t>& values) {
    std::vector<std::uint8_t> out = {0, 0, 0x08, static_cast<std::uint8_t>(dims.size())};
    for (std::uint32_t size : dims)
        for (int shift = 24; shift >= 0; shift -= 8) out.push_back(static_cast<std::uint8_t>(size >> shift));
    out.insert(out.end(), values.begin(), values.end());
    return out;
}

// The message of the cudagrad::Error that `body` throws; fails the test if it throws none.
template <typename Body>
std::string error_message(Body&& body) {
    try {
        body();
    } catch (const cudagrad::Error& error) {
        return error.what();
    }
    FAIL("expected a cudagrad::Error, but nothing was thrown");
    return "";
}

inline bool contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

}  // namespace data_test
