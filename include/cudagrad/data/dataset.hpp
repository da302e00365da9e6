// Datasets: indexable collections of (image, label) examples, after torch.utils.data.Dataset.
//
//   IdxDataset          MNIST / Fashion-MNIST files in the IDX format, gzip-compressed or raw,
//                       held in memory as bytes (47 MB for Fashion-MNIST's training set).
//   ImageFolderDataset  root/<class>/**/*.{jpg,jpeg,png}, decoded on demand (torchvision's
//                       ImageFolder: classes are the sorted folder names).
//   SubsetDataset       a chosen list of another dataset's indices (seeded random or every k-th).
//
// get() runs the dataset's Pipeline with the Generator it is given and must be thread-safe: the
// DataLoader calls it from several worker threads at once. Every dataset here only reads its
// members in get(), apart from ImageFolderDataset's atomic "known bad file" flags.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "cudagrad/data/transforms.hpp"
#include "cudagrad/random.hpp"
#include "cudagrad/tensor.hpp"

namespace cudagrad::data {

struct Example {
    Tensor image;            // float32 (C, H, W)
    std::int64_t label = 0;  // class index in [0, num_classes)
    std::int64_t skipped = 0;  // bad files passed over to produce this example (skip mode)
};

class Dataset {
public:
    virtual ~Dataset() = default;
    virtual std::int64_t size() const = 0;
    // The example at index in [0, size()); `generator` drives the random transforms.
    virtual Example get(std::int64_t index, Generator& generator) const = 0;
    virtual std::int64_t num_classes() const { return static_cast<std::int64_t>(class_names().size()); }
    virtual std::vector<std::string> class_names() const { return {}; }
    virtual int channels() const { return 3; }  // channels of the images get() returns
};

// ------------------------------------------------------------------------------------ IDX files
// An IDX file's contents: dims (big-endian uint32 in the file) and the unsigned bytes.
struct IdxArray {
    std::vector<std::int64_t> dims;
    std::vector<std::uint8_t> values;
};

// Reads an IDX file of unsigned bytes (element type 0x08), gzip-compressed or not (detected from
// the content, not the name). Errors name the file: missing, bad magic number, another element
// type, zero or too many dimensions, truncated (expected vs found byte counts, counted after
// decompression), bytes beyond the end, corrupt gzip data.
IdxArray read_idx(const std::string& path);

class IdxDataset : public Dataset {
public:
    // images: (N, H, W) bytes; labels: (N) bytes, each below class_names.size(). An empty
    // class_names means ten classes named "0" to "9" (MNIST).
    IdxDataset(const std::string& images_path, const std::string& labels_path, Pipeline pipeline = Pipeline(),
               std::vector<std::string> class_names = {});

    std::int64_t size() const override { return count_; }
    Example get(std::int64_t index, Generator& generator) const override;
    std::vector<std::string> class_names() const override { return class_names_; }
    int channels() const override { return 1; }

    int image_height() const { return height_; }
    int image_width() const { return width_; }
    Image image(std::int64_t index) const;  // the raw 8-bit image, before any transform
    std::int64_t label(std::int64_t index) const;

private:
    std::int64_t count_ = 0;
    int height_ = 0, width_ = 0;
    std::vector<std::uint8_t> pixels_;
    std::vector<std::uint8_t> labels_;
    std::vector<std::string> class_names_;
    Pipeline pipeline_;
};

std::vector<std::string> fashion_mnist_class_names();  // "T-shirt/top", "Trouser", ... "Ankle boot"

// Debian's dataset-fashion-mnist location.
inline const char* default_fashion_mnist_root() { return "/usr/share/datasets/fashion-mnist"; }

// root/{train,t10k}-images-idx3-ubyte[.gz] and the matching labels file.
std::shared_ptr<IdxDataset> fashion_mnist(const std::string& root, bool train, Pipeline pipeline = Pipeline());

// ------------------------------------------------------------------------------ image folders
struct ImageFolderOptions {
    int channels = 3;  // 3: RGB (grayscale files are replicated), 1: grayscale
    // When true, a file that cannot be read or decoded does not stop training: get() moves on to
    // the next index (wrapping around) until an image decodes, returns that one with its own
    // label, and counts the bad files in Example::skipped. The replacement depends only on the
    // index, so it is as reproducible as the rest. Each bad file is reported once on stderr
    // (when warn_on_skip) and remembered, so it is not decoded again.
    bool skip_bad_images = false;
    bool warn_on_skip = true;
};

class ImageFolderDataset : public Dataset {
public:
    // Scans root/<class>/ recursively for .jpg/.jpeg/.png files (any letter case), in sorted path
    // order. Errors: root missing or not a folder, no class folders, a class folder with no
    // images. Files are not opened until get().
    explicit ImageFolderDataset(const std::string& root, Pipeline pipeline = Pipeline(),
                                ImageFolderOptions options = ImageFolderOptions());

    std::int64_t size() const override { return static_cast<std::int64_t>(samples_.size()); }
    Example get(std::int64_t index, Generator& generator) const override;
    std::vector<std::string> class_names() const override { return class_names_; }
    int channels() const override { return options_.channels; }

    const std::string& path(std::int64_t index) const;
    std::int64_t label(std::int64_t index) const;
    std::int64_t bad_files_found() const;  // distinct bad files met so far (skip mode)

private:
    struct Sample {
        std::string path;
        std::int64_t label;
    };
    std::string root_;
    std::vector<std::string> class_names_;
    std::vector<Sample> samples_;
    Pipeline pipeline_;
    ImageFolderOptions options_;
    std::unique_ptr<std::atomic<bool>[]> known_bad_;  // one flag per sample
};

// ------------------------------------------------------------------------------------ subsets
class SubsetDataset : public Dataset {
public:
    // Example i of the subset is example indices[i] of base.
    SubsetDataset(std::shared_ptr<const Dataset> base, std::vector<std::int64_t> indices);
    // `count` indices drawn without replacement by a seeded shuffle (the first `count` of a
    // permutation), kept in increasing order so files are read in their on-disk order.
    static std::shared_ptr<SubsetDataset> random(std::shared_ptr<const Dataset> base, std::int64_t count,
                                                 std::uint64_t seed);
    // Indices start, start + step, start + 2 * step, ...
    static std::shared_ptr<SubsetDataset> strided(std::shared_ptr<const Dataset> base, std::int64_t step,
                                                  std::int64_t start = 0);

    std::int64_t size() const override { return static_cast<std::int64_t>(indices_.size()); }
    Example get(std::int64_t index, Generator& generator) const override;
    std::int64_t num_classes() const override { return base_->num_classes(); }
    std::vector<std::string> class_names() const override { return base_->class_names(); }
    int channels() const override { return base_->channels(); }
    const std::vector<std::int64_t>& indices() const { return indices_; }

private:
    std::shared_ptr<const Dataset> base_;
    std::vector<std::int64_t> indices_;
};

}  // namespace cudagrad::data
