// 8-bit image operations: decoding (stb_image), crop with zero fill, PIL-style bilinear resize,
// horizontal flip, and the uint8 HWC -> float32 (C, H, W) conversion.
//
// Reference: PIL / torchvision on PIL images. Our resize is PIL's BILINEAR filter (triangle
// kernel, support widened by the shrink factor) but keeps the intermediate row pass in float
// where PIL rounds it to 8 bits, so values may differ from PIL by one grey level.
//
// What limits the speed: decoding. A 500x375 JPEG takes a few milliseconds to decode; resizing it
// to 224x224 touches each source pixel about twice (row pass, then column pass) and costs a
// fraction of that. Every loop here runs inside one loader worker thread, so none of them use
// parallel_for: the parallelism is across images.
#include "cudagrad/data/image.hpp"

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>

// stb_image is a single-header library: this is the one translation unit that compiles it.
// STB_IMAGE_STATIC keeps its symbols out of libcudagrad's exports.
#define STB_IMAGE_IMPLEMENTATION
#define STB_IMAGE_STATIC
#define STBI_NO_STDIO
#define STBI_ONLY_PNG
#define STBI_ONLY_JPEG
#define STBI_ONLY_BMP
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-function"
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"
#pragma GCC diagnostic ignored "-Wsign-compare"
#pragma GCC diagnostic ignored "-Wunused-parameter"
#pragma GCC diagnostic ignored "-Wpedantic"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#if __has_include(<stb_image.h>)
#include <stb_image.h>
#else
#include <stb/stb_image.h>
#endif
#pragma GCC diagnostic pop

namespace cudagrad::data {

Image::Image(int height_, int width_, int channels_) : height(height_), width(width_), channels(channels_) {
    check(height >= 0 && width >= 0 && channels >= 1 && channels <= 4, "Image", "invalid size ", height, "x",
          width, "x", channels, " (height x width x channels, 1 to 4 channels)");
    pixels.assign(static_cast<std::size_t>(height) * width * channels, 0);
}

std::string Image::description() const {
    return "Image(" + std::to_string(height) + "x" + std::to_string(width) + "x" + std::to_string(channels) + ")";
}

std::vector<std::uint8_t> read_file_bytes(const std::string& path) {
    namespace fs = std::filesystem;
    std::error_code error;
    const fs::file_status status = fs::status(path, error);
    check(fs::exists(status), "read_file", "'", path, "' does not exist");
    check(!fs::is_directory(status), "read_file", "'", path, "' is a directory, not a file");
    std::ifstream stream(path, std::ios::binary | std::ios::ate);
    check(stream.is_open(), "read_file", "cannot open '", path, "' for reading (", std::strerror(errno), ")");
    const std::streamoff size = stream.tellg();
    check(size >= 0, "read_file", "cannot determine the size of '", path, "'");
    std::vector<std::uint8_t> bytes(static_cast<std::size_t>(size));
    stream.seekg(0);
    stream.read(reinterpret_cast<char*>(bytes.data()), size);
    check(stream.gcount() == size, "read_file", "reading '", path, "' stopped after ", stream.gcount(), " of ",
          size, " bytes");
    return bytes;
}

Image decode_image(const std::vector<std::uint8_t>& encoded, int channels, const std::string& name) {
    check(channels >= 1 && channels <= 4, "decode_image", "channels must be 1 to 4, got ", channels, " for '", name,
          "'");
    check(!encoded.empty(), "decode_image", "'", name, "' is empty (0 bytes)");
    check(encoded.size() < static_cast<std::size_t>(INT_MAX), "decode_image", "'", name, "' is too large (",
          encoded.size(), " bytes)");
    int width = 0, height = 0, channels_in_file = 0;
    unsigned char* pixels = stbi_load_from_memory(encoded.data(), static_cast<int>(encoded.size()), &width,
                                                  &height, &channels_in_file, channels);
    if (pixels == nullptr) {
        // stb's reasons are terse ("outofdata" for a truncated PNG, "expected marker" for a
        // truncated JPEG); they are quoted and explained in general terms.
        fail("decode_image", "cannot decode '", name, "' (", encoded.size(), " bytes; stb_image says \"",
             stbi_failure_reason(), "\"): the file is corrupt, truncated, or not a PNG/JPEG/BMP image");
    }
    Image image;
    image.height = height;
    image.width = width;
    image.channels = channels;
    image.pixels.assign(pixels, pixels + static_cast<std::size_t>(width) * height * channels);
    stbi_image_free(pixels);
    return image;
}

Image load_image(const std::string& path, int channels) { return decode_image(read_file_bytes(path), channels, path); }

Image crop(const Image& image, int top, int left, int height, int width) {
    check(height > 0 && width > 0, "crop", "crop size must be positive, got ", height, "x", width, " of ",
          image.description());
    Image output(height, width, image.channels);
    // Only the overlap of the crop window with the image is copied; the rest stays zero.
    const int first_row = std::max(0, -top), last_row = std::min(height, image.height - top);
    const int first_column = std::max(0, -left), last_column = std::min(width, image.width - left);
    if (first_column >= last_column) return output;
    const std::size_t row_bytes = static_cast<std::size_t>(last_column - first_column) * image.channels;
    for (int y = first_row; y < last_row; ++y) {
        std::memcpy(&output.at(y, first_column, 0), &image.at(y + top, first_column + left, 0), row_bytes);
    }
    return output;
}

namespace {

// For each output position along one axis: which input positions it reads and with what weight.
struct FilterTaps {
    int taps_per_output = 0;
    std::vector<int> first;       // first input index read by each output
    std::vector<int> count;       // how many consecutive inputs it reads
    std::vector<float> weights;   // output_size x taps_per_output, normalized to sum 1
};

FilterTaps triangle_filter(int input_size, int output_size) {
    const double scale = static_cast<double>(input_size) / output_size;
    // The triangle spans one input pixel each side; when shrinking it spans one *output* pixel,
    // i.e. `scale` input pixels, so every input pixel contributes (antialiasing).
    const double filter_scale = std::max(scale, 1.0);
    const double support = filter_scale;
    FilterTaps taps;
    taps.taps_per_output = static_cast<int>(std::ceil(support)) * 2 + 1;
    taps.first.resize(output_size);
    taps.count.resize(output_size);
    taps.weights.assign(static_cast<std::size_t>(output_size) * taps.taps_per_output, 0.0f);
    for (int i = 0; i < output_size; ++i) {
        const double center = (i + 0.5) * scale;
        const int low = std::max(0, static_cast<int>(center - support + 0.5));
        const int high = std::min(input_size, static_cast<int>(center + support + 0.5));
        float* weights = &taps.weights[static_cast<std::size_t>(i) * taps.taps_per_output];
        double total = 0.0;
        for (int x = low; x < high; ++x) {
            const double weight = std::max(0.0, 1.0 - std::abs((x - center + 0.5) / filter_scale));
            weights[x - low] = static_cast<float>(weight);
            total += weight;
        }
        for (int k = 0; k < high - low && total > 0; ++k) weights[k] = static_cast<float>(weights[k] / total);
        taps.first[i] = low;
        taps.count[i] = high - low;
    }
    return taps;
}

std::uint8_t to_byte(float value) {
    return static_cast<std::uint8_t>(std::min(255.0f, std::max(0.0f, value)) + 0.5f);
}

}  // namespace

Image resize(const Image& image, int height, int width) {
    check(height > 0 && width > 0, "resize", "output size must be positive, got ", height, "x", width, " for ",
          image.description());
    check(!image.empty(), "resize", "cannot resize an empty ", image.description());
    if (height == image.height && width == image.width) return image;
    const int channels = image.channels;
    const FilterTaps columns = triangle_filter(image.width, width);
    const FilterTaps rows = triangle_filter(image.height, height);

    // Row pass: every input row resampled to the output width, kept in float.
    const std::size_t row_stride = static_cast<std::size_t>(width) * channels;
    std::vector<float> horizontal(static_cast<std::size_t>(image.height) * row_stride);
    for (int y = 0; y < image.height; ++y) {
        float* out = &horizontal[y * row_stride];
        for (int x = 0; x < width; ++x) {
            const float* weights = &columns.weights[static_cast<std::size_t>(x) * columns.taps_per_output];
            const std::uint8_t* in = &image.at(y, columns.first[x], 0);
            for (int c = 0; c < channels; ++c) {
                float sum = 0.0f;
                for (int k = 0; k < columns.count[x]; ++k) sum += weights[k] * in[k * channels + c];
                out[x * channels + c] = sum;
            }
        }
    }

    // Column pass: each output row is a weighted sum of whole float rows, a contiguous loop.
    Image output(height, width, channels);
    std::vector<float> accumulator(row_stride);
    for (int y = 0; y < height; ++y) {
        std::fill(accumulator.begin(), accumulator.end(), 0.0f);
        const float* weights = &rows.weights[static_cast<std::size_t>(y) * rows.taps_per_output];
        for (int k = 0; k < rows.count[y]; ++k) {
            const float weight = weights[k];
            const float* in = &horizontal[(rows.first[y] + k) * row_stride];
            for (std::size_t j = 0; j < row_stride; ++j) accumulator[j] += weight * in[j];
        }
        std::uint8_t* out = &output.at(y, 0, 0);
        for (std::size_t j = 0; j < row_stride; ++j) out[j] = to_byte(accumulator[j]);
    }
    return output;
}

Image horizontal_flip(const Image& image) {
    Image output(image.height, image.width, image.channels);
    for (int y = 0; y < image.height; ++y) {
        for (int x = 0; x < image.width; ++x) {
            std::memcpy(&output.at(y, image.width - 1 - x, 0), &image.at(y, x, 0), image.channels);
        }
    }
    return output;
}

Tensor image_to_tensor(const Image& image) {
    check(!image.empty(), "image_to_tensor", "cannot convert an empty ", image.description());
    const std::int64_t plane = static_cast<std::int64_t>(image.height) * image.width;
    Tensor tensor = Tensor::empty({image.channels, image.height, image.width}, DType::Float32);
    float* out = tensor.data<float>();
    const std::uint8_t* in = image.pixels.data();
    const int channels = image.channels;
    for (int c = 0; c < channels; ++c) {
        float* out_plane = out + c * plane;
        // Division, not multiplication by 1/255: bit-identical to torchvision's img.float().div(255).
        for (std::int64_t i = 0; i < plane; ++i) out_plane[i] = static_cast<float>(in[i * channels + c]) / 255.0f;
    }
    return tensor;
}

}  // namespace cudagrad::data
