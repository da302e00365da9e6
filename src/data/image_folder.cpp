// ImageFolderDataset: root/<class>/**/*.{jpg,jpeg,png} with class index = position of the folder
// name in sorted order, decoded with stb_image when an example is requested.
//
// Reference: torchvision.datasets.ImageFolder: classes are the sorted sub-folder names of root
// (byte order, hidden folders included), files are found recursively and ordered as
// sorted(os.walk(...)) then sorted file names, i.e. by (folder path, file name); a class with no
// image files is an error. Differences: only PNG/JPEG extensions are accepted (not .bmp, .webp,
// ...), and the optional skip mode (see ImageFolderOptions) has no torchvision counterpart.
//
// What limits the speed: JPEG decoding in get(), a few milliseconds per ImageNet-sized photo;
// several loader workers decode in parallel. The constructor only lists folders.
#include <algorithm>
#include <cctype>
#include <filesystem>
#include <iostream>
#include <utility>

#include "cudagrad/data/dataset.hpp"

namespace cudagrad::data {
namespace {

bool has_image_extension(const std::filesystem::path& path) {
    std::string extension = path.extension().string();
    std::transform(extension.begin(), extension.end(), extension.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    return extension == ".jpg" || extension == ".jpeg" || extension == ".png";
}

// The image files under one class folder, in torchvision's order.
std::vector<std::string> list_images(const std::filesystem::path& folder) {
    namespace fs = std::filesystem;
    std::vector<std::pair<std::string, std::string>> found;  // (parent folder, file name)
    std::error_code error;
    const auto options = fs::directory_options::follow_directory_symlink | fs::directory_options::skip_permission_denied;
    for (fs::recursive_directory_iterator it(folder, options, error), end; !error && it != end; it.increment(error)) {
        if (it->is_regular_file(error) && has_image_extension(it->path())) {
            found.emplace_back(it->path().parent_path().string(), it->path().filename().string());
        }
    }
    check(!error, "ImageFolderDataset", "cannot list '", folder.string(), "': ", error.message());
    std::sort(found.begin(), found.end());
    std::vector<std::string> paths;
    paths.reserve(found.size());
    for (const auto& [parent, name] : found) paths.push_back((fs::path(parent) / name).string());
    return paths;
}

}  // namespace

ImageFolderDataset::ImageFolderDataset(const std::string& root, Pipeline pipeline, ImageFolderOptions options)
    : root_(root), pipeline_(std::move(pipeline)), options_(options) {
    namespace fs = std::filesystem;
    check(options.channels == 1 || options.channels == 3, "ImageFolderDataset", "channels must be 1 or 3, got ",
          options.channels);
    std::error_code error;
    check(fs::exists(root, error), "ImageFolderDataset", "root folder '", root, "' does not exist");
    check(fs::is_directory(root, error), "ImageFolderDataset", "root '", root, "' is not a folder");
    for (fs::directory_iterator it(root, error), end; !error && it != end; it.increment(error)) {
        if (it->is_directory(error)) class_names_.push_back(it->path().filename().string());
    }
    check(!error, "ImageFolderDataset", "cannot list root folder '", root, "': ", error.message());
    check(!class_names_.empty(), "ImageFolderDataset", "root folder '", root,
          "' has no class folders (expected root/<class name>/<image>.jpg)");
    std::sort(class_names_.begin(), class_names_.end());
    for (std::size_t label = 0; label < class_names_.size(); ++label) {
        const fs::path folder = fs::path(root) / class_names_[label];
        const std::vector<std::string> paths = list_images(folder);
        check(!paths.empty(), "ImageFolderDataset", "class folder '", folder.string(),
              "' has no .jpg, .jpeg or .png images");
        for (const std::string& path : paths) samples_.push_back({path, static_cast<std::int64_t>(label)});
    }
    known_bad_ = std::make_unique<std::atomic<bool>[]>(samples_.size());
    for (std::size_t i = 0; i < samples_.size(); ++i) known_bad_[i].store(false);
}

const std::string& ImageFolderDataset::path(std::int64_t index) const {
    check(index >= 0 && index < size(), "ImageFolderDataset", "index ", index, " is out of range for ", size(),
          " images under '", root_, "'");
    return samples_[static_cast<std::size_t>(index)].path;
}

std::int64_t ImageFolderDataset::label(std::int64_t index) const {
    path(index);  // range check
    return samples_[static_cast<std::size_t>(index)].label;
}

std::int64_t ImageFolderDataset::bad_files_found() const {
    std::int64_t count = 0;
    for (std::size_t i = 0; i < samples_.size(); ++i) count += known_bad_[i].load(std::memory_order_relaxed);
    return count;
}

Example ImageFolderDataset::get(std::int64_t index, Generator& generator) const {
    path(index);  // range check, with a message naming the root folder
    const Sample& requested = samples_[static_cast<std::size_t>(index)];
    if (!options_.skip_bad_images) {
        return {pipeline_(load_image(requested.path, options_.channels), generator), requested.label, 0};
    }
    // Skip mode: walk forward from `index` to the first file that decodes. Only reading and
    // decoding failures are skipped; a transform error (say, a crop larger than the image) is a
    // configuration mistake and still propagates.
    const std::int64_t count = size();
    std::int64_t skipped = 0;
    for (std::int64_t attempt = 0; attempt < count; ++attempt) {
        const std::size_t candidate = static_cast<std::size_t>((index + attempt) % count);
        if (known_bad_[candidate].load(std::memory_order_relaxed)) {
            ++skipped;
            continue;
        }
        Image image;
        try {
            image = load_image(samples_[candidate].path, options_.channels);
        } catch (const Error& error) {
            // exchange() makes exactly one thread report a given file.
            if (!known_bad_[candidate].exchange(true) && options_.warn_on_skip) {
                std::cerr << (std::string("ImageFolderDataset: skipping a bad image: ") + error.what() + "\n");
            }
            ++skipped;
            continue;
        }
        return {pipeline_(image, generator), samples_[candidate].label, skipped};
    }
    fail("ImageFolderDataset", "none of the ", count, " images under '", root_, "' could be read and decoded");
}

}  // namespace cudagrad::data
