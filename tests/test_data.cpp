// Datasets: IDX reading (raw and gzip, every validation error), IdxDataset, the installed
// Fashion-MNIST (skipped when absent), ImageFolderDataset (classes, order, decoding, bad files,
// skip mode) and SubsetDataset.
#include <algorithm>
#include <iostream>
#include <set>

#include "data/test_images.hpp"

using namespace cudagrad;
using namespace cudagrad::data;
using namespace data_test;

namespace {
std::vector<std::uint8_t> iota_bytes(std::size_t count, int start = 0) {
    std::vector<std::uint8_t> values(count);
    for (std::size_t i = 0; i < count; ++i) values[i] = static_cast<std::uint8_t>((start + i * 7) % 256);
    return values;
}
}  // namespace

TEST_CASE("read_idx reads raw and gzip-compressed files identically", "[data][idx]") {
    TempDir dir;
    const std::vector<std::uint8_t> values = iota_bytes(3 * 2 * 5);
    const std::vector<std::uint8_t> file = idx_bytes({3, 2, 5}, values);
    write_bytes(dir / "raw-idx3-ubyte", file);
    write_bytes(dir / "packed-idx3-ubyte.gz", gzip_stored(file));
    write_bytes(dir / "misnamed.gz", file);  // detection is by content, not by name
    for (const std::string name : {"raw-idx3-ubyte", "packed-idx3-ubyte.gz", "misnamed.gz"}) {
        INFO(name);
        const IdxArray array = read_idx(dir / name);
        CHECK(array.dims == std::vector<std::int64_t>{3, 2, 5});
        CHECK(array.values == values);
    }
    // A large array spans several gzip stored blocks.
    const std::vector<std::uint8_t> big = iota_bytes(200000, 3);
    write_bytes(dir / "big.gz", gzip_stored(idx_bytes({200000}, big)));
    CHECK(read_idx(dir / "big.gz").values == big);
}

TEST_CASE("read_idx rejects malformed files and names them", "[data][idx]") {
    TempDir dir;
    const std::vector<std::uint8_t> good = idx_bytes({4, 3}, iota_bytes(12));  // 4 + 8 + 12 = 24 bytes

    SECTION("truncated raw file: expected and found byte counts") {
        const std::string path = dir / "short-idx2-ubyte";
        write_bytes(path, std::vector<std::uint8_t>(good.begin(), good.begin() + 15));
        const std::string message = error_message([&] { read_idx(path); });
        CHECK(contains(message, "read_idx"));
        CHECK(contains(message, path));
        CHECK(contains(message, "truncated"));
        CHECK(contains(message, "need 24 bytes"));  // 4 magic + 2 * 4 dims + 12 values
        CHECK(contains(message, "found 15"));
    }
    SECTION("truncated gzip stream") {
        const std::string path = dir / "short.gz";
        std::vector<std::uint8_t> packed = gzip_stored(good);
        packed.resize(packed.size() - 12);  // cuts the 8-byte trailer and the last 4 data bytes
        write_bytes(path, packed);
        const std::string message = error_message([&] { read_idx(path); });
        CHECK(contains(message, path));
        CHECK(contains(message, "truncated"));
        CHECK(contains(message, "need 24 bytes after decompression"));
        CHECK(contains(message, "found 20"));
    }
    SECTION("truncated header") {
        const std::string path = dir / "header-only";
        write_bytes(path, {0, 0, 8});
        CHECK(contains(error_message([&] { read_idx(path); }), "header needs at least 4 bytes, found 3"));
        write_bytes(path, {0, 0, 8, 3, 0, 0});
        CHECK(contains(error_message([&] { read_idx(path); }), "header needs 16 bytes, found 6"));
    }
    SECTION("bytes beyond the declared end") {
        const std::string path = dir / "long";
        std::vector<std::uint8_t> longer = good;
        longer.push_back(1);
        write_bytes(path, longer);
        const std::string message = error_message([&] { read_idx(path); });
        CHECK(contains(message, path));
        CHECK(contains(message, "longer than its header declares"));
    }
    SECTION("bad magic, element type and dimension count") {
        const std::string path = dir / "bad";
        std::vector<std::uint8_t> bytes = good;
        bytes[0] = 0x1f;
        write_bytes(path, bytes);
        CHECK(contains(error_message([&] { read_idx(path); }), "is not an IDX file"));
        bytes = good;
        bytes[2] = 0x0d;  // float32
        write_bytes(path, bytes);
        const std::string message = error_message([&] { read_idx(path); });
        CHECK(contains(message, path));
        CHECK(contains(message, "element type 0xd"));
        bytes = good;
        bytes[3] = 0;
        write_bytes(path, bytes);
        CHECK(contains(error_message([&] { read_idx(path); }), "declares 0 dimensions"));
        write_bytes(path, idx_bytes({4, 0}, {}));
        CHECK(contains(error_message([&] { read_idx(path); }), "zero-sized dimension"));
    }
    SECTION("corrupt gzip data, missing file, directory, empty file") {
        const std::string path = dir / "corrupt.gz";
        std::vector<std::uint8_t> packed = gzip_stored(good);
        packed[packed.size() - 6] ^= 0xff;  // the CRC no longer matches
        write_bytes(path, packed);
        const std::string message = error_message([&] { read_idx(path); });
        CHECK(contains(message, path));
        CHECK(contains(message, "corrupt gzip data"));
        CHECK(contains(error_message([&] { read_idx(dir / "absent.gz"); }), "does not exist"));
        CHECK(contains(error_message([&] { read_idx(dir.path().string()); }), "is a directory"));
        write_bytes(dir / "empty", {});
        CHECK(contains(error_message([&] { read_idx(dir / "empty"); }), "found 0"));
    }
}

TEST_CASE("IdxDataset pairs images with labels and validates them", "[data][idx]") {
    TempDir dir;
    const std::vector<std::uint8_t> pixels = iota_bytes(3 * 4 * 5, 11);
    write_bytes(dir / "images.gz", gzip_stored(idx_bytes({3, 4, 5}, pixels)));
    write_bytes(dir / "labels", idx_bytes({3}, {9, 0, 4}));

    IdxDataset dataset(dir / "images.gz", dir / "labels");
    CHECK(dataset.size() == 3);
    CHECK(dataset.num_classes() == 10);
    CHECK(dataset.channels() == 1);
    CHECK(dataset.class_names()[4] == "4");
    Generator generator(1);
    const Example example = dataset.get(1, generator);
    CHECK(example.label == 0);
    REQUIRE(example.image.shape() == Shape{1, 4, 5});
    const std::vector<float> values = example.image.to_float_vector();
    for (int i = 0; i < 20; ++i) CHECK(values[i] == static_cast<float>(pixels[20 + i]) / 255.0f);
    CHECK(contains(error_message([&] { dataset.get(3, generator); }), "index 3 is out of range for 3 examples"));

    // The pipeline runs on every example.
    IdxDataset resized(dir / "images.gz", dir / "labels", Pipeline().then(ResizeTo(8, 6)));
    CHECK(resized.get(0, generator).image.shape() == Shape{1, 8, 6});

    write_bytes(dir / "two-labels", idx_bytes({2}, {1, 2}));
    std::string message = error_message([&] { IdxDataset(dir / "images.gz", dir / "two-labels"); });
    CHECK(contains(message, "IdxDataset"));
    CHECK(contains(message, "holds 3 images"));
    CHECK(contains(message, "holds 2 labels"));

    write_bytes(dir / "bad-labels", idx_bytes({3}, {1, 10, 2}));
    message = error_message([&] { IdxDataset(dir / "images.gz", dir / "bad-labels"); });
    CHECK(contains(message, "label 10 of example 1"));
    CHECK(contains(message, dir / "bad-labels"));
    // Three named classes make label 4 out of range.
    message = error_message([&] { IdxDataset(dir / "images.gz", dir / "labels", Pipeline(), {"a", "b", "c"}); });
    CHECK(contains(message, "outside [0, 3)"));

    message = error_message([&] { IdxDataset(dir / "labels", dir / "labels"); });
    CHECK(contains(message, "expected (N, height, width)"));
}

TEST_CASE("Fashion-MNIST as installed by Debian's dataset-fashion-mnist", "[data][idx][fashion]") {
    const std::string root = default_fashion_mnist_root();
    if (!fs::exists(fs::path(root) / "train-images-idx3-ubyte.gz")) {
        WARN("Fashion-MNIST not found in " << root << ": skipping (apt install dataset-fashion-mnist)");
        return;
    }
    for (bool train : {true, false}) {
        auto dataset = fashion_mnist(root, train);
        const std::int64_t expected = train ? 60000 : 10000;
        REQUIRE(dataset->size() == expected);
        CHECK(dataset->image_height() == 28);
        CHECK(dataset->image_width() == 28);
        CHECK(dataset->num_classes() == 10);
        CHECK(dataset->class_names()[9] == "Ankle boot");
        // Both splits are balanced: every class has exactly a tenth of the examples.
        std::vector<std::int64_t> per_class(10, 0);
        for (std::int64_t i = 0; i < dataset->size(); ++i) ++per_class[static_cast<std::size_t>(dataset->label(i))];
        for (std::int64_t count : per_class) CHECK(count == expected / 10);
        Generator generator(0);
        const Example example = dataset->get(0, generator);
        CHECK(example.image.shape() == Shape{1, 28, 28});
        const std::vector<float> pixels = example.image.to_float_vector();
        CHECK(*std::max_element(pixels.begin(), pixels.end()) <= 1.0f);
        CHECK(*std::max_element(pixels.begin(), pixels.end()) > 0.5f);  // not an empty image
    }
    // Known first labels of the official files (torchvision shows the same): 9 (Ankle boot), 0, 0.
    auto train = fashion_mnist(root, true);
    CHECK(train->label(0) == 9);
    CHECK(train->label(1) == 0);
    CHECK(train->label(2) == 0);
    CHECK(contains(error_message([&] { fashion_mnist(root + "/nowhere", true); }), "does not exist"));
}

namespace {
// bird/e.PNG, cat/a.png, cat/b.JPG, dog/c.jpeg, dog/sub/d.png (+ non-image files)
struct Folder {
    TempDir dir;
    std::string root = dir / "root";
    Image a = pattern_image(6, 5, 3, 1), d = pattern_image(4, 7, 3, 2), e = pattern_image(5, 5, 3, 3);
    Image b = smooth_image(16, 16, 3), c = smooth_image(8, 24, 3);
    Folder() {
        write_bytes(root + "/cat/a.png", encode_png(a));
        write_bytes(root + "/cat/b.JPG", encode_jpeg(b));
        write_bytes(root + "/dog/c.jpeg", encode_jpeg(c));
        write_bytes(root + "/dog/sub/d.png", encode_png(d));
        write_bytes(root + "/dog/notes.txt", {'h', 'i'});
        write_bytes(root + "/bird/e.PNG", encode_png(e));
        write_bytes(root + "/readme.md", {'x'});  // a file in root is not a class
    }
};

void check_exact(const Tensor& tensor, const Image& image) {
    REQUIRE(tensor.shape() == Shape{image.channels, image.height, image.width});
    const std::vector<float> values = tensor.to_float_vector();
    std::int64_t mismatches = 0;
    for (int c = 0; c < image.channels; ++c)
        for (int y = 0; y < image.height; ++y)
            for (int x = 0; x < image.width; ++x)
                mismatches += values[static_cast<std::size_t>((c * image.height + y) * image.width + x)] !=
                              static_cast<float>(image.at(y, x, c)) / 255.0f;
    CHECK(mismatches == 0);
}
}  // namespace

TEST_CASE("ImageFolderDataset: classes, order and decoding", "[data][folder]") {
    Folder folder;
    ImageFolderDataset dataset(folder.root);
    CHECK(dataset.class_names() == std::vector<std::string>{"bird", "cat", "dog"});
    CHECK(dataset.num_classes() == 3);
    REQUIRE(dataset.size() == 5);
    const std::vector<std::string> names = {"bird/e.PNG", "cat/a.png", "cat/b.JPG", "dog/c.jpeg", "dog/sub/d.png"};
    const std::vector<std::int64_t> labels = {0, 1, 1, 2, 2};
    for (std::int64_t i = 0; i < 5; ++i) {
        CHECK(dataset.path(i) == folder.root + "/" + names[static_cast<std::size_t>(i)]);
        CHECK(dataset.label(i) == labels[static_cast<std::size_t>(i)]);
    }
    Generator generator(0);
    // PNG is lossless: exact values, channel-major.
    check_exact(dataset.get(0, generator).image, folder.e);
    check_exact(dataset.get(1, generator).image, folder.a);
    check_exact(dataset.get(4, generator).image, folder.d);
    CHECK(dataset.get(4, generator).label == 2);
    // JPEG is lossy but close on a smooth picture.
    const Example jpeg = dataset.get(3, generator);
    REQUIRE(jpeg.image.shape() == Shape{3, 8, 24});
    const std::vector<float> values = jpeg.image.to_float_vector();
    float worst = 0;
    for (int c = 0; c < 3; ++c)
        for (int y = 0; y < 8; ++y)
            for (int x = 0; x < 24; ++x)
                worst = std::max(worst, std::abs(values[static_cast<std::size_t>((c * 8 + y) * 24 + x)] -
                                                 folder.c.at(y, x, c) / 255.0f));
    CHECK(worst < 12.0f / 255.0f);

    // Grayscale loading: one channel, the luminance of the RGB file.
    ImageFolderDataset gray(folder.root, Pipeline(), {.channels = 1});
    CHECK(gray.channels() == 1);
    CHECK(gray.get(1, generator).image.shape() == Shape{1, 6, 5});
    // A grayscale PNG loaded as RGB is replicated into three equal channels.
    write_bytes(folder.root + "/cat/gray.png", encode_png(pattern_image(3, 4, 1)));
    ImageFolderDataset rgb(folder.root);
    const std::vector<float> replicated = rgb.get(3, generator).image.to_float_vector();  // cat/gray.png
    REQUIRE(replicated.size() == 3 * 12);
    for (int i = 0; i < 12; ++i) {
        CHECK(replicated[i] == replicated[12 + i]);
        CHECK(replicated[i] == replicated[24 + i]);
    }
    CHECK(contains(error_message([&] { dataset.get(5, generator); }), "index 5 is out of range for 5 images"));
}

TEST_CASE("ImageFolderDataset: bad files and folders are errors naming them", "[data][folder]") {
    Folder folder;
    Generator generator(0);
    SECTION("random bytes") {
        const std::string path = folder.root + "/cat/a.png";
        std::vector<std::uint8_t> junk(300);
        Generator noise(5);
        for (auto& byte : junk) byte = static_cast<std::uint8_t>(noise.below(256));
        write_bytes(path, junk);
        ImageFolderDataset dataset(folder.root);
        const std::string message = error_message([&] { dataset.get(1, generator); });
        CHECK(contains(message, path));
        CHECK(contains(message, "cannot decode"));
    }
    SECTION("truncated PNG and JPEG") {
        for (const std::string name : {"/cat/a.png", "/dog/c.jpeg"}) {
            const std::string path = folder.root + name;
            std::vector<std::uint8_t> bytes = read_bytes(path);
            bytes.resize(bytes.size() * 2 / 3);
            write_bytes(path, bytes);
        }
        ImageFolderDataset dataset(folder.root);
        CHECK(contains(error_message([&] { dataset.get(1, generator); }), folder.root + "/cat/a.png"));
        CHECK(contains(error_message([&] { dataset.get(3, generator); }), folder.root + "/dog/c.jpeg"));
    }
    SECTION("a file that vanished after the scan, an empty file") {
        ImageFolderDataset dataset(folder.root);
        fs::remove(folder.root + "/cat/b.JPG");
        std::string message = error_message([&] { dataset.get(2, generator); });
        CHECK(contains(message, folder.root + "/cat/b.JPG"));
        CHECK(contains(message, "does not exist"));
        write_bytes(folder.root + "/cat/a.png", {});
        message = error_message([&] { dataset.get(1, generator); });
        CHECK(contains(message, folder.root + "/cat/a.png"));
        CHECK(contains(message, "empty"));
    }
    SECTION("empty class folder, missing root, no classes, bad channels") {
        fs::create_directories(folder.root + "/fish/deeper");
        write_bytes(folder.root + "/fish/deeper/list.txt", {'x'});
        std::string message = error_message([&] { ImageFolderDataset dataset(folder.root); });
        CHECK(contains(message, "ImageFolderDataset"));
        CHECK(contains(message, folder.root + "/fish"));
        CHECK(contains(message, "no .jpg, .jpeg or .png images"));
        message = error_message([&] { ImageFolderDataset dataset(folder.dir / "missing"); });
        CHECK(contains(message, folder.dir / "missing"));
        CHECK(contains(message, "does not exist"));
        fs::create_directories(folder.dir / "flat");
        write_bytes(folder.dir / "flat/x.png", encode_png(folder.a));
        CHECK(contains(error_message([&] { ImageFolderDataset dataset(folder.dir / "flat"); }), "no class folders"));
        CHECK(contains(error_message([&] { ImageFolderDataset dataset(folder.dir / "flat/x.png"); }), "is not a folder"));
        CHECK(contains(error_message([&] { ImageFolderDataset dataset(folder.root, Pipeline(), {.channels = 2}); }),
                       "channels must be 1 or 3"));
    }
}

TEST_CASE("ImageFolderDataset skip mode replaces bad images deterministically and counts them", "[data][folder]") {
    Folder folder;
    write_bytes(folder.root + "/cat/a.png", {1, 2, 3, 4});            // index 1: corrupt
    write_bytes(folder.root + "/cat/b.JPG", encode_jpeg(folder.b, 90));  // index 2: fine
    ImageFolderDataset dataset(folder.root, Pipeline(), {.skip_bad_images = true, .warn_on_skip = false});
    Generator generator(0);
    const Example replaced = dataset.get(1, generator);
    CHECK(replaced.skipped == 1);
    CHECK(replaced.label == 1);  // b.JPG's label (cat), its own image
    CHECK(replaced.image.shape() == Shape{3, 16, 16});
    CHECK(dataset.bad_files_found() == 1);
    const Example again = dataset.get(1, generator);  // the known-bad file is passed over again
    CHECK(again.skipped == 1);
    CHECK(again.image.to_float_vector() == replaced.image.to_float_vector());
    const Example good = dataset.get(0, generator);
    CHECK(good.skipped == 0);
    check_exact(good.image, folder.e);

    // The last index wraps around to the first.
    write_bytes(folder.root + "/dog/sub/d.png", {9});
    ImageFolderDataset wrapping(folder.root, Pipeline(), {.skip_bad_images = true, .warn_on_skip = false});
    const Example wrapped = wrapping.get(4, generator);
    CHECK(wrapped.skipped == 1);
    CHECK(wrapped.label == 0);  // bird/e.PNG
    check_exact(wrapped.image, folder.e);

    for (const std::string name : {"/bird/e.PNG", "/cat/b.JPG", "/dog/c.jpeg"}) write_bytes(folder.root + name, {0});
    ImageFolderDataset all_bad(folder.root, Pipeline(), {.skip_bad_images = true, .warn_on_skip = false});
    CHECK(contains(error_message([&] { all_bad.get(0, generator); }), "none of the 5 images"));
}

TEST_CASE("SubsetDataset: seeded random and strided subsets", "[data][subset]") {
    TempDir dir;
    write_bytes(dir / "images", idx_bytes({50, 2, 2}, iota_bytes(200)));
    std::vector<std::uint8_t> labels(50);
    for (int i = 0; i < 50; ++i) labels[i] = static_cast<std::uint8_t>(i % 10);
    write_bytes(dir / "labels", idx_bytes({50}, labels));
    auto base = std::make_shared<IdxDataset>(dir / "images", dir / "labels");

    auto random = SubsetDataset::random(base, 20, 7);
    CHECK(random->size() == 20);
    const std::vector<std::int64_t>& chosen = random->indices();
    CHECK(std::is_sorted(chosen.begin(), chosen.end()));
    CHECK(std::set<std::int64_t>(chosen.begin(), chosen.end()).size() == 20);
    CHECK(SubsetDataset::random(base, 20, 7)->indices() == chosen);
    CHECK(SubsetDataset::random(base, 20, 8)->indices() != chosen);
    CHECK(SubsetDataset::random(base, 50, 3)->size() == 50);
    Generator generator(0);
    CHECK(random->get(3, generator).label == chosen[3] % 10);
    CHECK(random->num_classes() == 10);

    auto strided = SubsetDataset::strided(base, 7, 2);
    CHECK(strided->indices() == std::vector<std::int64_t>{2, 9, 16, 23, 30, 37, 44});
    CHECK(strided->get(1, generator).label == 9);

    CHECK(contains(error_message([&] { SubsetDataset::random(base, 51, 0); }), "count must be in [1, 50]"));
    CHECK(contains(error_message([&] { SubsetDataset::strided(base, 0); }), "step must be at least 1"));
    CHECK(contains(error_message([&] { SubsetDataset(base, {0, 50}); }), "index 50 is out of range"));
    CHECK(contains(error_message([&] { strided->get(7, generator); }), "out of range for a subset of 7"));
}
