// Images before they become tensors: 8-bit pixels in height x width x channels order (HWC, the
// order decoders produce), and the geometric operations the transforms are built from.
//
// Why uint8 and not float: crops, flips and resizes are cheapest on the decoder's own bytes (a
// quarter of the memory traffic of float32), and it is what torchvision's PIL path does. The one
// conversion to float32 (C, H, W) in [0, 1] happens last, in image_to_tensor (ToTensor).
//
// Decoding is stb_image (PNG, JPEG, BMP); the header keeps stb out of sight.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "cudagrad/tensor.hpp"

namespace cudagrad::data {

struct Image {
    int height = 0;
    int width = 0;
    int channels = 0;
    std::vector<std::uint8_t> pixels;  // height * width * channels bytes, row-major HWC

    Image() = default;
    Image(int height, int width, int channels);  // zero-filled (black)

    bool empty() const { return pixels.empty(); }
    std::uint8_t& at(int y, int x, int channel) {
        return pixels[(static_cast<std::size_t>(y) * width + x) * channels + channel];
    }
    const std::uint8_t& at(int y, int x, int channel) const {
        return pixels[(static_cast<std::size_t>(y) * width + x) * channels + channel];
    }
    std::string description() const;  // "Image(28x28x1)"
};

// Decodes an encoded image held in memory into `channels` channels (1: grayscale, 3: RGB; stb
// converts as PIL's convert("L") / convert("RGB") would). `name` (usually the file path) goes
// into the error raised for data that is corrupt, truncated or in an unsupported format.
Image decode_image(const std::vector<std::uint8_t>& encoded, int channels, const std::string& name);

// Reads the whole file; errors name the path and say whether it is missing or unreadable.
std::vector<std::uint8_t> read_file_bytes(const std::string& path);
Image load_image(const std::string& path, int channels);

// The rectangle [top, top + height) x [left, left + width) of the image. Parts outside the image
// come out zero, which is how RandomCrop's padding and CenterCrop of a small image are done.
Image crop(const Image& image, int top, int left, int height, int width);

// Resamples to height x width with a triangle (bilinear) filter whose support widens by the
// shrink factor when downscaling, so it averages rather than aliases: PIL's BILINEAR, which
// torchvision uses for PIL images. Pixel centers are at half-integers (align_corners=False).
Image resize(const Image& image, int height, int width);

Image horizontal_flip(const Image& image);

// uint8 HWC -> float32 (C, H, W) with values / 255, as torchvision's ToTensor.
Tensor image_to_tensor(const Image& image);

}  // namespace cudagrad::data
