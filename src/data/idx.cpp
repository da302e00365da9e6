// The IDX file format of MNIST and Fashion-MNIST (http://yann.lecun.com/exdb/mnist/), and the
// in-memory dataset built from an images file and a labels file.
//
// Layout: bytes 0-1 zero, byte 2 the element type (0x08 = unsigned byte, the only one these
// datasets use), byte 3 the number of dimensions d, then d big-endian uint32 sizes, then the
// elements in row-major order. Images are (N, 28, 28), labels (N). The files ship gzip-compressed;
// zlib's gzread reads both compressed and plain files ("transparent" mode), so either works.
//
// Reference: torchvision.datasets.FashionMNIST (same files, same class names, same order).
//
// What limits the speed: inflating the gzip stream, about 0.2 s for the 26 MB of the training
// images, once at construction. get() is then a 784-byte copy plus the transforms.
#include <zlib.h>

#include <algorithm>
#include <filesystem>
#include <limits>

#include "cudagrad/data/dataset.hpp"

namespace cudagrad::data {
namespace {

// A gzFile that closes itself. read() returns how many bytes it got: fewer than asked means the
// data ended (truncation is the caller's to report, with the counts it knows); corrupt compressed
// data is an error here.
class GzipFile {
public:
    explicit GzipFile(const std::string& path) : path_(path) {
        namespace fs = std::filesystem;
        std::error_code error;
        check(fs::exists(path, error), "read_idx", "'", path, "' does not exist");
        check(!fs::is_directory(path, error), "read_idx", "'", path, "' is a directory, not an IDX file");
        file_ = gzopen(path.c_str(), "rb");
        check(file_ != nullptr, "read_idx", "cannot open '", path, "' for reading");
        gzbuffer(file_, 1 << 20);
    }
    ~GzipFile() { gzclose(file_); }
    GzipFile(const GzipFile&) = delete;
    GzipFile& operator=(const GzipFile&) = delete;

    std::size_t read(void* destination, std::size_t bytes) {
        auto* out = static_cast<unsigned char*>(destination);
        std::size_t total = 0;
        while (total < bytes) {
            const unsigned chunk = static_cast<unsigned>(std::min<std::size_t>(bytes - total, 1u << 30));
            const int got = gzread(file_, out + total, chunk);
            if (got <= 0) {
                int code = Z_OK;
                const char* message = gzerror(file_, &code);
                // Z_BUF_ERROR is "unexpected end of file": a truncated gzip stream.
                check(code == Z_OK || code == Z_BUF_ERROR, "read_idx", "corrupt gzip data in '", path_,
                      "' after ", total, " bytes (zlib: ", message, ")");
                break;
            }
            total += static_cast<std::size_t>(got);
        }
        return total;
    }

    const char* kind() { return gzdirect(file_) ? "" : " after decompression"; }

private:
    std::string path_;
    gzFile file_ = nullptr;
};

std::string dims_string(const std::vector<std::int64_t>& dims) { return shape_string(dims); }

}  // namespace

IdxArray read_idx(const std::string& path) {
    GzipFile file(path);
    unsigned char header[4] = {0, 0, 0, 0};
    const std::size_t header_found = file.read(header, 4);
    check(header_found == 4, "read_idx", "'", path, "' is truncated: an IDX header needs at least 4 bytes, found ",
          header_found, file.kind());
    check(header[0] == 0 && header[1] == 0, "read_idx", "'", path, "' is not an IDX file: it starts with bytes ",
          static_cast<int>(header[0]), " ", static_cast<int>(header[1]), ", expected 0 0");
    check(header[2] == 0x08, "read_idx", "'", path, "' has element type 0x", std::hex, static_cast<int>(header[2]),
          std::dec, "; only 0x8 (unsigned byte, as in MNIST and Fashion-MNIST) is supported");
    const int dimension_count = header[3];
    check(dimension_count >= 1 && dimension_count <= 4, "read_idx", "'", path, "' declares ", dimension_count,
          " dimensions; expected 1 (labels) to 4");

    IdxArray array;
    std::vector<unsigned char> size_bytes(4 * static_cast<std::size_t>(dimension_count));
    const std::size_t sizes_found = file.read(size_bytes.data(), size_bytes.size());
    check(sizes_found == size_bytes.size(), "read_idx", "'", path, "' is truncated: its header needs ",
          4 + size_bytes.size(), " bytes, found ", 4 + sizes_found, file.kind());
    std::int64_t element_count = 1;
    for (int d = 0; d < dimension_count; ++d) {
        const unsigned char* b = &size_bytes[4 * static_cast<std::size_t>(d)];
        const std::int64_t size = (std::int64_t{b[0]} << 24) | (b[1] << 16) | (b[2] << 8) | b[3];
        array.dims.push_back(size);
        check(size > 0, "read_idx", "'", path, "' has a zero-sized dimension (dims ", dims_string(array.dims), ")");
        check(element_count <= (std::int64_t{1} << 40) / size, "read_idx", "'", path,
              "' declares an implausibly large array (dims so far ", dims_string(array.dims), ")");
        element_count *= size;
    }

    const std::int64_t header_bytes = 4 + 4 * static_cast<std::int64_t>(dimension_count);
    array.values.resize(static_cast<std::size_t>(element_count));
    const std::size_t found = file.read(array.values.data(), array.values.size());
    check(found == array.values.size(), "read_idx", "'", path, "' is truncated: dims ", dims_string(array.dims),
          " need ", header_bytes + element_count, " bytes", file.kind(), ", found ",
          header_bytes + static_cast<std::int64_t>(found));
    unsigned char extra[64];
    const std::size_t extra_found = file.read(extra, sizeof(extra));
    check(extra_found == 0, "read_idx", "'", path, "' is longer than its header declares: dims ",
          dims_string(array.dims), " need ", header_bytes + element_count, " bytes", file.kind(),
          " but more follow (wrong file or corrupt header?)");
    return array;
}

IdxDataset::IdxDataset(const std::string& images_path, const std::string& labels_path, Pipeline pipeline,
                       std::vector<std::string> class_names)
    : class_names_(std::move(class_names)), pipeline_(std::move(pipeline)) {
    if (class_names_.empty()) {
        for (int digit = 0; digit < 10; ++digit) class_names_.push_back(std::to_string(digit));
    }
    IdxArray images = read_idx(images_path);
    IdxArray labels = read_idx(labels_path);
    check(images.dims.size() == 3, "IdxDataset", "images file '", images_path, "' has dims ",
          dims_string(images.dims), ", expected (N, height, width)");
    check(labels.dims.size() == 1, "IdxDataset", "labels file '", labels_path, "' has dims ",
          dims_string(labels.dims), ", expected (N)");
    check(images.dims[0] == labels.dims[0], "IdxDataset", "'", images_path, "' holds ", images.dims[0],
          " images but '", labels_path, "' holds ", labels.dims[0], " labels");
    check(images.dims[1] <= 65536 && images.dims[2] <= 65536, "IdxDataset", "images in '", images_path,
          "' are implausibly large: ", dims_string(images.dims));
    const std::int64_t class_count = static_cast<std::int64_t>(class_names_.size());
    for (std::size_t i = 0; i < labels.values.size(); ++i) {
        check(labels.values[i] < class_count, "IdxDataset", "label ", static_cast<int>(labels.values[i]),
              " of example ", i, " in '", labels_path, "' is outside [0, ", class_count, ")");
    }
    count_ = images.dims[0];
    height_ = static_cast<int>(images.dims[1]);
    width_ = static_cast<int>(images.dims[2]);
    pixels_ = std::move(images.values);
    labels_ = std::move(labels.values);
}

Image IdxDataset::image(std::int64_t index) const {
    check(index >= 0 && index < count_, "IdxDataset", "index ", index, " is out of range for ", count_, " examples");
    Image image(height_, width_, 1);
    const std::size_t plane = static_cast<std::size_t>(height_) * width_;
    std::copy_n(pixels_.begin() + static_cast<std::ptrdiff_t>(index * plane), plane, image.pixels.begin());
    return image;
}

std::int64_t IdxDataset::label(std::int64_t index) const {
    check(index >= 0 && index < count_, "IdxDataset", "index ", index, " is out of range for ", count_, " examples");
    return labels_[static_cast<std::size_t>(index)];
}

Example IdxDataset::get(std::int64_t index, Generator& generator) const {
    Example example;
    example.image = pipeline_(image(index), generator);
    example.label = labels_[static_cast<std::size_t>(index)];
    return example;
}

std::vector<std::string> fashion_mnist_class_names() {
    return {"T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"};
}

std::shared_ptr<IdxDataset> fashion_mnist(const std::string& root, bool train, Pipeline pipeline) {
    namespace fs = std::filesystem;
    std::error_code error;
    check(fs::is_directory(root, error), "fashion_mnist", "folder '", root,
          "' does not exist (install Debian's dataset-fashion-mnist, or pass the folder holding ",
          "train-images-idx3-ubyte.gz)");
    const std::string prefix = (fs::path(root) / (train ? "train" : "t10k")).string();
    // The compressed files as shipped, else the same names unpacked.
    auto find = [&](const std::string& stem) {
        for (const std::string& candidate : {stem + ".gz", stem}) {
            if (fs::exists(candidate, error)) return candidate;
        }
        fail("fashion_mnist", "neither '", stem, ".gz' nor '", stem, "' exists");
    };
    const std::string images = find(prefix + "-images-idx3-ubyte");
    const std::string labels = find(prefix + "-labels-idx1-ubyte");
    return std::make_shared<IdxDataset>(images, labels, std::move(pipeline), fashion_mnist_class_names());
}

}  // namespace cudagrad::data
