// Data augmentation and preprocessing, after torchvision.transforms, composed into a Pipeline.
//
// A sample goes through two stages: ImageTransforms on the 8-bit image (resize, crops, flips),
// then ToTensor (uint8 HWC -> float32 (C, H, W) in [0, 1]), then TensorTransforms (Normalize).
//
//     Pipeline train;
//     train.then(RandomResizedCrop(224)).then(RandomHorizontalFlip()).then(ToTensor())
//          .then(Normalize({0.485, 0.456, 0.406}, {0.229, 0.224, 0.225}));
//
// Randomness comes only from the Generator passed to apply(): the loader seeds one per sample
// from (seed, epoch, index), so an augmentation never depends on thread timing. Transforms are
// immutable after construction, so one pipeline is safely shared by all loader threads.
#pragma once

#include <memory>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "cudagrad/data/image.hpp"
#include "cudagrad/random.hpp"

namespace cudagrad::data {

class ImageTransform {
public:
    virtual ~ImageTransform() = default;
    virtual Image apply(const Image& image, Generator& generator) const = 0;
    virtual std::string name() const = 0;  // "RandomCrop(32x32, padding 4)", for descriptions
};

class TensorTransform {
public:
    virtual ~TensorTransform() = default;
    // image: float32 (C, H, W), contiguous. Returns a new tensor.
    virtual Tensor apply(const Tensor& image, Generator& generator) const = 0;
    virtual std::string name() const = 0;
};

// Scales the shorter side to `size`, keeping the aspect ratio (torchvision Resize(int): the
// longer side becomes floor(size * long / short)).
class Resize final : public ImageTransform {
public:
    explicit Resize(int size);
    Image apply(const Image& image, Generator& generator) const override;
    std::string name() const override;

private:
    int size_;
};

// Resamples to exactly height x width, ignoring the aspect ratio (torchvision Resize((h, w))),
// e.g. 28x28 Fashion-MNIST up to the 224x224 a ResNet-50 expects.
class ResizeTo final : public ImageTransform {
public:
    ResizeTo(int height, int width);
    Image apply(const Image& image, Generator& generator) const override;
    std::string name() const override;

private:
    int height_, width_;
};

// The central height x width window; an image smaller than that is padded with zeros, as
// torchvision does.
class CenterCrop final : public ImageTransform {
public:
    explicit CenterCrop(int size) : CenterCrop(size, size) {}
    CenterCrop(int height, int width);
    Image apply(const Image& image, Generator& generator) const override;
    std::string name() const override;

private:
    int height_, width_;
};

// Pads every side with `padding` zero pixels, then takes a height x width window at a uniformly
// random position (torchvision RandomCrop(size, padding), fill 0). Draws the row, then the column.
class RandomCrop final : public ImageTransform {
public:
    RandomCrop(int size, int padding) : RandomCrop(size, size, padding) {}
    RandomCrop(int height, int width, int padding);
    Image apply(const Image& image, Generator& generator) const override;
    std::string name() const override;

private:
    int height_, width_, padding_;
};

// A crop box: rows [top, top + height), columns [left, left + width).
struct CropBox {
    int top = 0, left = 0, height = 0, width = 0;
};

// torchvision's RandomResizedCrop: up to 10 tries to draw a box with area fraction in
// [scale_min, scale_max] and aspect ratio (width / height) log-uniform in [ratio_min, ratio_max]
// that fits the image; otherwise the central box with the ratio clamped into range. The box is
// then resized to height x width.
class RandomResizedCrop final : public ImageTransform {
public:
    explicit RandomResizedCrop(int size) : RandomResizedCrop(size, size) {}
    RandomResizedCrop(int height, int width, double scale_min = 0.08, double scale_max = 1.0,
                      double ratio_min = 3.0 / 4.0, double ratio_max = 4.0 / 3.0);
    Image apply(const Image& image, Generator& generator) const override;
    std::string name() const override;
    // The box for an image_height x image_width image (exposed so tests can check the algorithm).
    CropBox sample_box(int image_height, int image_width, Generator& generator) const;

private:
    int height_, width_;
    double scale_min_, scale_max_, ratio_min_, ratio_max_;
};

// Mirrors left-right with probability p. Always draws one number, so the random stream does not
// depend on the outcome.
class RandomHorizontalFlip final : public ImageTransform {
public:
    explicit RandomHorizontalFlip(double probability = 0.5);
    Image apply(const Image& image, Generator& generator) const override;
    std::string name() const override;

private:
    double probability_;
};

// The stage boundary: uint8 HWC -> float32 (C, H, W) / 255. A pipeline without it still converts
// after its image transforms; writing it out only makes the order explicit.
struct ToTensor {};

// (x - mean[c]) / std[c] for each channel c (torchvision Normalize).
class Normalize final : public TensorTransform {
public:
    Normalize(std::vector<double> mean, std::vector<double> standard_deviation);
    Tensor apply(const Tensor& image, Generator& generator) const override;
    std::string name() const override;

private:
    std::vector<float> mean_, standard_deviation_;  // float32, as torchvision converts them
};

class Pipeline {
public:
    // Appends a transform. Image transforms must come before ToTensor and tensor transforms
    // (then() throws otherwise): this is checked once here, not for every sample.
    template <typename Transform>
    Pipeline& then(Transform transform) {
        if constexpr (std::is_same_v<Transform, ToTensor>) {
            add_to_tensor();
        } else if constexpr (std::is_base_of_v<ImageTransform, Transform>) {
            add_image_transform(std::make_shared<const Transform>(std::move(transform)));
        } else {
            static_assert(std::is_base_of_v<TensorTransform, Transform>,
                          "Pipeline::then takes an ImageTransform, ToTensor or a TensorTransform");
            add_tensor_transform(std::make_shared<const Transform>(std::move(transform)));
        }
        return *this;
    }
    void add_image_transform(std::shared_ptr<const ImageTransform> transform);
    void add_to_tensor();
    void add_tensor_transform(std::shared_ptr<const TensorTransform> transform);

    Image apply_image_stage(const Image& image, Generator& generator) const;
    Tensor operator()(const Image& image, Generator& generator) const;  // both stages
    std::string description() const;  // "RandomCrop(28x28, padding 2) -> ToTensor -> Normalize(...)"

private:
    std::vector<std::shared_ptr<const ImageTransform>> image_transforms_;
    bool has_to_tensor_ = false;
    std::vector<std::shared_ptr<const TensorTransform>> tensor_transforms_;
};

}  // namespace cudagrad::data
