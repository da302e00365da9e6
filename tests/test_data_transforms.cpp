// Image operations and transforms: crop with zero fill, flips, the resampler against a plain
// two-dimensional reference and a hand-computed case, ToTensor layout, Normalize values,
// torchvision's size and offset rules, RandomCrop / RandomResizedCrop ranges and determinism,
// Pipeline ordering, and bad parameters.
#include <cmath>
#include <set>

#include "data/test_images.hpp"

using namespace cudagrad;
using namespace cudagrad::data;
using namespace data_test;

namespace {
// Plain reference for resize(): each output pixel summed directly over the 2-d product of the two
// triangle filters, in double, from the formula (no precomputed taps, no separable passes).
double triangle_weight(double distance, double filter_scale) {
    return std::max(0.0, 1.0 - std::abs(distance / filter_scale));
}

Image reference_resize(const Image& image, int height, int width) {
    Image output(height, width, image.channels);
    const double scale_y = static_cast<double>(image.height) / height, scale_x = static_cast<double>(image.width) / width;
    const double filter_y = std::max(1.0, scale_y), filter_x = std::max(1.0, scale_x);
    for (int oy = 0; oy < height; ++oy)
        for (int ox = 0; ox < width; ++ox)
            for (int c = 0; c < image.channels; ++c) {
                const double center_y = (oy + 0.5) * scale_y, center_x = (ox + 0.5) * scale_x;
                double sum = 0, total_y = 0, total_x = 0;
                for (int y = 0; y < image.height; ++y) total_y += triangle_weight(y + 0.5 - center_y, filter_y);
                for (int x = 0; x < image.width; ++x) total_x += triangle_weight(x + 0.5 - center_x, filter_x);
                for (int y = 0; y < image.height; ++y)
                    for (int x = 0; x < image.width; ++x)
                        sum += triangle_weight(y + 0.5 - center_y, filter_y) *
                               triangle_weight(x + 0.5 - center_x, filter_x) * image.at(y, x, c);
                output.at(oy, ox, c) = static_cast<std::uint8_t>(std::lround(sum / (total_y * total_x)));
            }
    return output;
}

int max_difference(const Image& a, const Image& b) {
    REQUIRE(a.height == b.height);
    REQUIRE(a.width == b.width);
    REQUIRE(a.channels == b.channels);
    int worst = 0;
    for (std::size_t i = 0; i < a.pixels.size(); ++i) worst = std::max(worst, std::abs(a.pixels[i] - b.pixels[i]));
    return worst;
}

Image gray(int height, int width, std::vector<int> values) {
    Image image(height, width, 1);
    for (std::size_t i = 0; i < values.size(); ++i) image.pixels[i] = static_cast<std::uint8_t>(values[i]);
    return image;
}
}  // namespace

TEST_CASE("crop copies the window and zero-fills outside the image", "[data][image]") {
    const Image image = pattern_image(4, 5, 2);
    const Image inside = crop(image, 1, 2, 2, 3);
    for (int y = 0; y < 2; ++y)
        for (int x = 0; x < 3; ++x)
            for (int c = 0; c < 2; ++c) CHECK(inside.at(y, x, c) == image.at(y + 1, x + 2, c));
    const Image outside = crop(image, -1, 3, 3, 4);  // one row above, two columns past the right edge
    for (int y = 0; y < 3; ++y)
        for (int x = 0; x < 4; ++x) {
            const bool in_image = y >= 1 && x < 2;
            CHECK(outside.at(y, x, 1) == (in_image ? image.at(y - 1, x + 3, 1) : 0));
        }
    CHECK(crop(image, 10, 10, 2, 2).pixels == std::vector<std::uint8_t>(8, 0));
    CHECK(contains(error_message([&] { crop(image, 0, 0, 0, 2); }), "crop size must be positive"));
}

TEST_CASE("horizontal flip mirrors columns", "[data][image]") {
    const Image image = pattern_image(3, 4, 3);
    const Image flipped = horizontal_flip(image);
    for (int y = 0; y < 3; ++y)
        for (int x = 0; x < 4; ++x)
            for (int c = 0; c < 3; ++c) CHECK(flipped.at(y, x, c) == image.at(y, 3 - x, c));
    CHECK(horizontal_flip(flipped).pixels == image.pixels);

    Generator generator(3);
    CHECK(RandomHorizontalFlip(1.0).apply(image, generator).pixels == flipped.pixels);
    CHECK(RandomHorizontalFlip(0.0).apply(image, generator).pixels == image.pixels);
    int flips = 0;
    for (std::uint64_t seed = 0; seed < 1000; ++seed) {
        Generator sample(seed);
        flips += RandomHorizontalFlip().apply(image, sample).pixels == flipped.pixels;
    }
    CHECK(flips > 430);
    CHECK(flips < 570);
}

TEST_CASE("resize matches the hand-computed PIL bilinear case and a plain reference", "[data][image]") {
    // 1x2 [0, 255] upscaled to 1x4: centers at 0.25, 0.75, 1.25, 1.75 input pixels give
    // 0, 0.25 * 255, 0.75 * 255, 255.
    const Image row = resize(gray(1, 2, {0, 255}), 1, 4);
    CHECK(row.pixels == std::vector<std::uint8_t>{0, 64, 191, 255});
    // 4 -> 2 averages with weights 1/4, 3/4, 3/4, 1/4 (normalized; clipped at the borders).
    const Image shrunk = resize(gray(1, 4, {0, 100, 200, 40}), 1, 2);
    CHECK(shrunk.pixels[0] == std::lround((0.75 * 0 + 0.75 * 100 + 0.25 * 200) / 1.75));
    CHECK(shrunk.pixels[1] == std::lround((0.25 * 100 + 0.75 * 200 + 0.75 * 40) / 1.75));

    const Image constant = resize(Image(3, 3, 1), 7, 5);
    CHECK(constant.pixels == std::vector<std::uint8_t>(35, 0));
    const Image image = pattern_image(13, 17, 3);
    CHECK(resize(image, 13, 17).pixels == image.pixels);
    // Upscale, downscale, mixed, extreme ratios, single pixels: within one grey level (our row
    // pass keeps floats; the reference rounds once at the end too, so mostly exact).
    for (auto [height, width] : {std::pair{26, 34}, {5, 6}, {13, 4}, {40, 9}, {1, 1}, {3, 50}, {7, 17}}) {
        INFO(height << "x" << width);
        CHECK(max_difference(resize(image, height, width), reference_resize(image, height, width)) <= 1);
    }
    CHECK(max_difference(resize(pattern_image(1, 1, 1), 4, 3), reference_resize(pattern_image(1, 1, 1), 4, 3)) == 0);
    CHECK(contains(error_message([&] { resize(image, 0, 3); }), "resize"));
}

TEST_CASE("image_to_tensor gives float32 (C, H, W) values / 255", "[data][image]") {
    const Image image = pattern_image(2, 3, 3);
    const Tensor tensor = image_to_tensor(image);
    CHECK(tensor.dtype() == DType::Float32);
    REQUIRE(tensor.shape() == Shape{3, 2, 3});
    for (int c = 0; c < 3; ++c)
        for (int y = 0; y < 2; ++y)
            for (int x = 0; x < 3; ++x) CHECK(tensor.at({c, y, x}) == static_cast<float>(image.at(y, x, c)) / 255.0f);
    CHECK(image_to_tensor(gray(1, 2, {255, 0})).to_float_vector() == std::vector<float>{1.0f, 0.0f});
}

TEST_CASE("Normalize subtracts the mean and divides by the deviation per channel", "[data][transforms]") {
    const Tensor image = Tensor::from_vector(std::vector<float>{0.0f, 0.5f, 1.0f, 0.25f}, {2, 1, 2});
    Generator generator(0);
    const Tensor normalized = Normalize({0.5, 0.25}, {0.5, 2.0}).apply(image, generator);
    CHECK(normalized.to_float_vector() == std::vector<float>{-1.0f, 0.0f, 0.375f, 0.0f});
    CHECK(contains(error_message([&] { Normalize({0.5}, {0.5}).apply(image, generator); }),
                   "image has 2 channels but 1 means"));
    CHECK(contains(error_message([&] { Normalize({0.5, 0.5}, {0.5, 0.0}); }), "channel 1 must be positive"));
    CHECK(contains(error_message([&] { Normalize({0.5, 0.5}, {0.5}); }), "2 means and 1 deviations"));
    const Tensor wrong = Tensor::zeros({2, 2}, DType::Float32);
    CHECK(contains(error_message([&] { Normalize({0.5}, {0.5}).apply(wrong, generator); }), "Normalize"));
}

TEST_CASE("Resize, ResizeTo and CenterCrop follow torchvision's size rules", "[data][transforms]") {
    Generator generator(0);
    const Image landscape = pattern_image(40, 60, 3), portrait = pattern_image(60, 41, 3);
    Image out = Resize(20).apply(landscape, generator);
    CHECK((out.height == 20 && out.width == 30));
    out = Resize(20).apply(portrait, generator);
    CHECK((out.height == 29 && out.width == 20));  // floor(20 * 60 / 41) = 29
    out = ResizeTo(224, 224).apply(pattern_image(28, 28, 1), generator);
    CHECK((out.height == 224 && out.width == 224 && out.channels == 1));

    const Image image = pattern_image(5, 7, 1);
    out = CenterCrop(3).apply(image, generator);  // top = round(1.0), left = round(2.0)
    CHECK(out.pixels == crop(image, 1, 2, 3, 3).pixels);
    out = CenterCrop(2, 4).apply(image, generator);  // round(1.5) = 2 (half to even), round(1.5) = 2
    CHECK(out.pixels == crop(image, 2, 2, 2, 4).pixels);
    out = CenterCrop(4, 6).apply(image, generator);  // round(0.5) = 0 (half to even)
    CHECK(out.pixels == crop(image, 0, 0, 4, 6).pixels);
    out = CenterCrop(8, 10).apply(image, generator);  // padded: 3 // 2 = 1 row above, 3 // 2 = 1 column left
    CHECK(out.pixels == crop(image, -1, -1, 8, 10).pixels);
    CHECK(out.at(0, 0, 0) == 0);
}

TEST_CASE("RandomCrop pads with zeros, reaches every offset, and is seeded", "[data][transforms]") {
    Image image(6, 6, 1);
    for (int i = 0; i < 36; ++i) image.pixels[i] = static_cast<std::uint8_t>(i + 1);  // no zero inside
    const RandomCrop transform(6, 2);
    std::set<std::pair<int, int>> offsets;
    for (std::uint64_t seed = 0; seed < 400; ++seed) {
        Generator generator(seed);
        const Image out = transform.apply(image, generator);
        REQUIRE((out.height == 6 && out.width == 6));
        // Recover the offset from the first non-zero pixel and check the whole window against crop().
        int top = 0, left = 0;
        bool found = false;
        for (int y = 0; y < 6 && !found; ++y)
            for (int x = 0; x < 6 && !found; ++x)
                if (out.at(y, x, 0) != 0) {
                    const int value = out.at(y, x, 0) - 1;
                    top = value / 6 - y;
                    left = value % 6 - x;
                    found = true;
                }
        REQUIRE(found);
        CHECK(out.pixels == crop(image, top, left, 6, 6).pixels);
        offsets.insert({top, left});
        Generator same(seed);
        CHECK(transform.apply(image, same).pixels == out.pixels);
    }
    CHECK(offsets.size() == 25);  // rows and columns -2..2
    CHECK(offsets.begin()->first == -2);
    CHECK(offsets.rbegin()->first == 2);

    Generator generator(0);
    const Image shaped = RandomCrop(30, 28, 4).apply(pattern_image(28, 28, 1), generator);
    CHECK((shaped.height == 30 && shaped.width == 28));
    const std::string message = error_message([&] { RandomCrop(40, 2).apply(image, generator); });
    CHECK(contains(message, "RandomCrop"));
    CHECK(contains(message, "Image(6x6x1)"));
    CHECK(contains(error_message([&] { RandomCrop(4, -1); }), "padding must be non-negative"));
}

TEST_CASE("RandomResizedCrop: box ranges, fallback, output size, determinism", "[data][transforms]") {
    const RandomResizedCrop transform(16, 12);
    for (auto [height, width] : {std::pair{100, 80}, {37, 91}, {3, 3}, {1, 200}, {64, 64}}) {
        INFO(height << "x" << width);
        for (std::uint64_t seed = 0; seed < 200; ++seed) {
            Generator generator(seed);
            const CropBox box = transform.sample_box(height, width, generator);
            REQUIRE(box.height > 0);
            REQUIRE(box.width > 0);
            REQUIRE(box.top >= 0);
            REQUIRE(box.left >= 0);
            REQUIRE(box.top + box.height <= height);
            REQUIRE(box.left + box.width <= width);
        }
        Generator generator(1);
        const Image out = transform.apply(pattern_image(height, width, 3), generator);
        CHECK((out.height == 16 && out.width == 12 && out.channels == 3));
    }
    // On a large image the tries almost always succeed: area fraction and ratio within range
    // (up to the rounding of the sides).
    for (std::uint64_t seed = 0; seed < 200; ++seed) {
        Generator generator(seed);
        const CropBox box = transform.sample_box(400, 400, generator);
        const double fraction = box.height * box.width / 160000.0, ratio = static_cast<double>(box.width) / box.height;
        CHECK(fraction >= 0.075);
        CHECK(fraction <= 1.0);
        CHECK(ratio >= 0.74);
        CHECK(ratio <= 1.35);
    }
    // A 10x40 strip cannot hold a full-area box of ratio <= 4/3: every try fails and the fallback
    // takes the full height, width round(10 * 4/3) = 13, centered.
    const RandomResizedCrop full_area(8, 8, 1.0, 1.0);
    Generator generator(0);
    const CropBox box = full_area.sample_box(10, 40, generator);
    CHECK(box.top == 0);
    CHECK(box.height == 10);
    CHECK(box.width == 13);
    CHECK(box.left == 13);
    const CropBox tall = full_area.sample_box(40, 10, generator);  // width 10, height round(10 / 0.75) = 13
    CHECK((tall.width == 10 && tall.height == 13 && tall.top == 13 && tall.left == 0));

    const Image image = pattern_image(50, 70, 3);
    Generator first(42), second(42), other(43);
    const Image a = transform.apply(image, first);
    CHECK(transform.apply(image, second).pixels == a.pixels);
    CHECK(transform.apply(image, other).pixels != a.pixels);
    CHECK(contains(error_message([&] { RandomResizedCrop(8, 8, 0.5, 0.2); }), "scale range"));
    CHECK(contains(error_message([&] { RandomResizedCrop(8, 8, 0.1, 1.0, 2.0, 1.0); }), "ratio range"));
    CHECK(contains(error_message([&] { RandomResizedCrop(0); }), "RandomResizedCrop"));
}

TEST_CASE("Pipeline runs image transforms, converts, then tensor transforms", "[data][transforms]") {
    Pipeline pipeline;
    pipeline.then(RandomCrop(6, 1)).then(RandomHorizontalFlip(1.0)).then(ToTensor()).then(Normalize({0.5}, {0.5}));
    CHECK(pipeline.description() ==
          "RandomCrop(6x6, padding 1) -> RandomHorizontalFlip(1) -> ToTensor -> Normalize(mean 0.5, std 0.5)");
    const Image image = pattern_image(6, 6, 1);
    Generator generator(9), replay(9);
    const Tensor out = pipeline(image, generator);
    const Image expected_image = horizontal_flip(RandomCrop(6, 1).apply(image, replay));
    const Tensor expected = Normalize({0.5}, {0.5}).apply(image_to_tensor(expected_image), replay);
    CHECK(out.shape() == Shape{1, 6, 6});
    CHECK(out.to_float_vector() == expected.to_float_vector());

    // An empty pipeline is ToTensor alone.
    CHECK(Pipeline()(image, generator).to_float_vector() == image_to_tensor(image).to_float_vector());

    Pipeline ordered;
    ordered.then(ToTensor());
    std::string message = error_message([&] { ordered.then(Resize(4)); });
    CHECK(contains(message, "Pipeline"));
    CHECK(contains(message, "Resize(shorter side 4)"));
    CHECK(contains(message, "before ToTensor"));
    CHECK(contains(error_message([&] { ordered.then(ToTensor()); }), "ToTensor appears twice"));
    Pipeline implicit;
    implicit.then(Normalize({0.0}, {1.0}));  // implies ToTensor
    CHECK(contains(error_message([&] { implicit.then(CenterCrop(2)); }), "CenterCrop(2x2)"));
    CHECK(contains(error_message([&] { RandomHorizontalFlip(1.5); }), "probability must be in [0, 1]"));
    CHECK(contains(error_message([&] { Resize(0); }), "Resize"));
    CHECK(contains(error_message([&] { ResizeTo(3, -1); }), "ResizeTo"));
    CHECK(contains(error_message([&] { CenterCrop(0); }), "CenterCrop"));
}
