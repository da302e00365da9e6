// The torchvision-style transforms and the Pipeline that chains them (see transforms.hpp).
//
// Reference: torchvision.transforms (v0.15+) on PIL images: Resize(int) / Resize((h, w)),
// CenterCrop, RandomCrop(size, padding, fill 0), RandomResizedCrop (scale (0.08, 1), ratio
// (3/4, 4/3), 10 attempts then the central fallback), RandomHorizontalFlip(0.5), ToTensor,
// Normalize. Rounding follows Python's round() (half to even) via std::nearbyint. The random
// numbers differ from torch's (our Generator is not torch's), the algorithms do not.
//
// What limits the speed: the resampling in image.cpp; the crop and flip are memcpy-sized, and
// Normalize is one pass over C*H*W floats.
#include "cudagrad/data/transforms.hpp"

#include <cmath>
#include <sstream>

namespace cudagrad::data {

Resize::Resize(int size) : size_(size) {
    check(size > 0, "Resize", "size must be positive, got ", size);
}

Image Resize::apply(const Image& image, Generator&) const {
    check(!image.empty(), "Resize", "cannot resize an empty ", image.description());
    const bool portrait = image.width <= image.height;
    const int short_side = portrait ? image.width : image.height;
    const int long_side = portrait ? image.height : image.width;
    const int new_long = static_cast<int>(static_cast<double>(size_) * long_side / short_side);
    return portrait ? resize(image, new_long, size_) : resize(image, size_, new_long);
}

std::string Resize::name() const { return "Resize(shorter side " + std::to_string(size_) + ")"; }

ResizeTo::ResizeTo(int height, int width) : height_(height), width_(width) {
    check(height > 0 && width > 0, "ResizeTo", "size must be positive, got ", height, "x", width);
}

Image ResizeTo::apply(const Image& image, Generator&) const { return resize(image, height_, width_); }

std::string ResizeTo::name() const { return "ResizeTo(" + std::to_string(height_) + "x" + std::to_string(width_) + ")"; }

CenterCrop::CenterCrop(int height, int width) : height_(height), width_(width) {
    check(height > 0 && width > 0, "CenterCrop", "size must be positive, got ", height, "x", width);
}

namespace {
// torchvision: an image at least as large as the crop starts at round((size - crop) / 2); a
// smaller one is first padded by (crop - size) // 2 before and the rest after.
int center_offset(int size, int crop_size) {
    if (size >= crop_size) return static_cast<int>(std::nearbyint((size - crop_size) / 2.0));
    return -((crop_size - size) / 2);
}
}  // namespace

Image CenterCrop::apply(const Image& image, Generator&) const {
    check(!image.empty(), "CenterCrop", "cannot crop an empty ", image.description());
    return crop(image, center_offset(image.height, height_), center_offset(image.width, width_), height_, width_);
}

std::string CenterCrop::name() const {
    return "CenterCrop(" + std::to_string(height_) + "x" + std::to_string(width_) + ")";
}

RandomCrop::RandomCrop(int height, int width, int padding) : height_(height), width_(width), padding_(padding) {
    check(height > 0 && width > 0, "RandomCrop", "size must be positive, got ", height, "x", width);
    check(padding >= 0, "RandomCrop", "padding must be non-negative, got ", padding);
}

Image RandomCrop::apply(const Image& image, Generator& generator) const {
    const int padded_height = image.height + 2 * padding_;
    const int padded_width = image.width + 2 * padding_;
    check(!image.empty() && padded_height >= height_ && padded_width >= width_, "RandomCrop", "crop ", height_, "x",
          width_, " is larger than the padded image (", image.description(), " with padding ", padding_, ")");
    if (padded_height == height_ && padded_width == width_) {  // torchvision draws nothing here
        return crop(image, -padding_, -padding_, height_, width_);
    }
    const int top = static_cast<int>(generator.below(static_cast<std::uint64_t>(padded_height - height_ + 1)));
    const int left = static_cast<int>(generator.below(static_cast<std::uint64_t>(padded_width - width_ + 1)));
    return crop(image, top - padding_, left - padding_, height_, width_);
}

std::string RandomCrop::name() const {
    return "RandomCrop(" + std::to_string(height_) + "x" + std::to_string(width_) + ", padding " +
           std::to_string(padding_) + ")";
}

RandomResizedCrop::RandomResizedCrop(int height, int width, double scale_min, double scale_max, double ratio_min,
                                     double ratio_max)
    : height_(height), width_(width), scale_min_(scale_min), scale_max_(scale_max), ratio_min_(ratio_min),
      ratio_max_(ratio_max) {
    check(height > 0 && width > 0, "RandomResizedCrop", "size must be positive, got ", height, "x", width);
    check(scale_min > 0 && scale_min <= scale_max, "RandomResizedCrop", "scale range (", scale_min, ", ", scale_max,
          ") must satisfy 0 < min <= max");
    check(ratio_min > 0 && ratio_min <= ratio_max, "RandomResizedCrop", "ratio range (", ratio_min, ", ", ratio_max,
          ") must satisfy 0 < min <= max");
}

CropBox RandomResizedCrop::sample_box(int image_height, int image_width, Generator& generator) const {
    const double area = static_cast<double>(image_height) * image_width;
    const double log_ratio_min = std::log(ratio_min_), log_ratio_max = std::log(ratio_max_);
    for (int attempt = 0; attempt < 10; ++attempt) {
        const double target_area = area * (scale_min_ + (scale_max_ - scale_min_) * generator.uniform());
        const double aspect_ratio = std::exp(log_ratio_min + (log_ratio_max - log_ratio_min) * generator.uniform());
        const int width = static_cast<int>(std::nearbyint(std::sqrt(target_area * aspect_ratio)));
        const int height = static_cast<int>(std::nearbyint(std::sqrt(target_area / aspect_ratio)));
        if (0 < width && width <= image_width && 0 < height && height <= image_height) {
            const int top = static_cast<int>(generator.below(static_cast<std::uint64_t>(image_height - height + 1)));
            const int left = static_cast<int>(generator.below(static_cast<std::uint64_t>(image_width - width + 1)));
            return {top, left, height, width};
        }
    }
    // Fallback: the whole image, trimmed to the nearest allowed aspect ratio, centered.
    const double image_ratio = static_cast<double>(image_width) / image_height;
    int width = image_width, height = image_height;
    if (image_ratio < ratio_min_) {
        height = static_cast<int>(std::nearbyint(width / ratio_min_));
    } else if (image_ratio > ratio_max_) {
        width = static_cast<int>(std::nearbyint(height * ratio_max_));
    }
    return {(image_height - height) / 2, (image_width - width) / 2, height, width};
}

Image RandomResizedCrop::apply(const Image& image, Generator& generator) const {
    check(!image.empty(), "RandomResizedCrop", "cannot crop an empty ", image.description());
    const CropBox box = sample_box(image.height, image.width, generator);
    return resize(crop(image, box.top, box.left, box.height, box.width), height_, width_);
}

std::string RandomResizedCrop::name() const {
    std::ostringstream text;
    text << "RandomResizedCrop(" << height_ << "x" << width_ << ", scale " << scale_min_ << "-" << scale_max_
         << ", ratio " << ratio_min_ << "-" << ratio_max_ << ")";
    return text.str();
}

RandomHorizontalFlip::RandomHorizontalFlip(double probability) : probability_(probability) {
    check(probability >= 0 && probability <= 1, "RandomHorizontalFlip", "probability must be in [0, 1], got ",
          probability);
}

Image RandomHorizontalFlip::apply(const Image& image, Generator& generator) const {
    return generator.uniform() < probability_ ? horizontal_flip(image) : image;
}

std::string RandomHorizontalFlip::name() const {
    std::ostringstream text;
    text << "RandomHorizontalFlip(" << probability_ << ")";
    return text.str();
}

Normalize::Normalize(std::vector<double> mean, std::vector<double> standard_deviation) {
    check(!mean.empty() && mean.size() == standard_deviation.size(), "Normalize", "needs one mean and one standard ",
          "deviation per channel, got ", mean.size(), " means and ", standard_deviation.size(), " deviations");
    for (std::size_t c = 0; c < mean.size(); ++c) {
        check(standard_deviation[c] > 0, "Normalize", "standard deviation of channel ", c, " must be positive, got ",
              standard_deviation[c]);
        mean_.push_back(static_cast<float>(mean[c]));
        standard_deviation_.push_back(static_cast<float>(standard_deviation[c]));
    }
}

Tensor Normalize::apply(const Tensor& image, Generator&) const {
    check(image.defined() && image.dtype() == DType::Float32 && image.dim() == 3, "Normalize",
          "expects a float32 (C, H, W) image, got ", image.defined() ? image.description() : "an undefined tensor");
    const std::int64_t channels = image.size(0);
    check(channels == static_cast<std::int64_t>(mean_.size()), "Normalize", "image has ", channels,
          " channels but ", mean_.size(), " means were given (", image.description(), ")");
    const Tensor input = image.contiguous();
    Tensor output = Tensor::empty(image.shape(), DType::Float32);
    const std::int64_t plane = image.size(1) * image.size(2);
    const float* in = input.data<float>();
    float* out = output.data<float>();
    for (std::int64_t c = 0; c < channels; ++c) {
        const float mean = mean_[c], deviation = standard_deviation_[c];
        for (std::int64_t i = 0; i < plane; ++i) out[c * plane + i] = (in[c * plane + i] - mean) / deviation;
    }
    return output;
}

std::string Normalize::name() const {
    std::ostringstream text;
    text << "Normalize(mean";
    for (float value : mean_) text << " " << value;
    text << ", std";
    for (float value : standard_deviation_) text << " " << value;
    text << ")";
    return text.str();
}

void Pipeline::add_image_transform(std::shared_ptr<const ImageTransform> transform) {
    check(transform != nullptr, "Pipeline", "image transform is null");
    check(!has_to_tensor_, "Pipeline", transform->name(), " works on 8-bit images, so it must come before ToTensor ",
          "and tensor transforms (pipeline so far: ", description(), ")");
    image_transforms_.push_back(std::move(transform));
}

void Pipeline::add_to_tensor() {
    check(!has_to_tensor_, "Pipeline", "ToTensor appears twice (pipeline so far: ", description(), ")");
    has_to_tensor_ = true;
}

void Pipeline::add_tensor_transform(std::shared_ptr<const TensorTransform> transform) {
    check(transform != nullptr, "Pipeline", "tensor transform is null");
    has_to_tensor_ = true;  // the conversion is implied before the first tensor transform
    tensor_transforms_.push_back(std::move(transform));
}

Image Pipeline::apply_image_stage(const Image& image, Generator& generator) const {
    if (image_transforms_.empty()) return image;
    Image current = image_transforms_.front()->apply(image, generator);
    for (std::size_t i = 1; i < image_transforms_.size(); ++i) current = image_transforms_[i]->apply(current, generator);
    return current;
}

Tensor Pipeline::operator()(const Image& image, Generator& generator) const {
    Tensor tensor = image_to_tensor(apply_image_stage(image, generator));
    for (const auto& transform : tensor_transforms_) tensor = transform->apply(tensor, generator);
    return tensor;
}

std::string Pipeline::description() const {
    std::string text;
    for (const auto& transform : image_transforms_) text += transform->name() + " -> ";
    text += "ToTensor";
    for (const auto& transform : tensor_transforms_) text += " -> " + transform->name();
    return text;
}

}  // namespace cudagrad::data
