// DataLoader: batch shapes and counts, every sample once per epoch, bit-identical batches for any
// worker count and on resume, prefetching up to its bound, waiting time, skipped-image counts,
// worker exceptions reaching the consumer with the file name, shutdown mid-epoch, bad options.
#include <chrono>
#include <set>
#include <thread>

#include "data/test_images.hpp"

using namespace cudagrad;
using namespace cudagrad::data;
using namespace data_test;

namespace {
// Example i: a (3, 4, 5) image whose values encode i plus noise drawn from the generator (so the
// per-sample seeding is visible in the batch), label i % 5. Optionally slow, failing at one
// index, or reporting skipped files.
class SyntheticDataset final : public Dataset {
public:
    explicit SyntheticDataset(std::int64_t size) : size_(size) {}
    std::int64_t size() const override { return size_; }
    Example get(std::int64_t index, Generator& generator) const override {
        if (delay_ms > 0) std::this_thread::sleep_for(std::chrono::milliseconds(delay_ms));
        if (index == fail_at) fail("decode_image", "cannot decode '/fake/path/sample_", index, ".png'");
        Tensor image = Tensor::empty({3, 4, odd_width_at == index ? 6 : 5});
        float* values = image.data<float>();
        for (std::int64_t i = 0; i < image.numel(); ++i) values[i] = static_cast<float>(index) + static_cast<float>(generator.uniform());
        return {image, label_override_at == index ? 7 : index % 5, skip_every > 0 && index % skip_every == 0 ? 1 : 0};
    }
    std::int64_t num_classes() const override { return 5; }

    std::int64_t size_;
    int delay_ms = 0;
    std::int64_t fail_at = -1, odd_width_at = -1, label_override_at = -1, skip_every = 0;
};

std::vector<Batch> run_epoch(DataLoader& loader, std::int64_t epoch, std::int64_t first_batch = 0) {
    loader.start_epoch(epoch, first_batch);
    std::vector<Batch> batches;
    Batch batch;
    while (loader.next(batch)) batches.push_back(batch);
    return batches;
}

void check_identical(const std::vector<Batch>& a, const std::vector<Batch>& b) {
    REQUIRE(a.size() == b.size());
    for (std::size_t i = 0; i < a.size(); ++i) {
        INFO("batch " << i);
        CHECK(a[i].index == b[i].index);
        CHECK(a[i].sample_indices == b[i].sample_indices);
        CHECK(a[i].labels.to_int64_vector() == b[i].labels.to_int64_vector());
        CHECK(a[i].images.to_float_vector() == b[i].images.to_float_vector());  // bit-identical
    }
}

double seconds_since(std::chrono::steady_clock::time_point start) {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}
}  // namespace

TEST_CASE("DataLoader batches: shapes, counts, drop_last, each sample once", "[data][loader]") {
    auto dataset = std::make_shared<SyntheticDataset>(23);
    DataLoader loader(dataset, {.batch_size = 5, .seed = 1, .num_workers = 2});
    CHECK(loader.batches_per_epoch() == 5);
    const std::vector<Batch> batches = run_epoch(loader, 0);
    REQUIRE(batches.size() == 5);
    std::multiset<std::int64_t> seen;
    for (const Batch& batch : batches) {
        const std::int64_t rows = batch.index == 4 ? 3 : 5;
        CHECK(batch.images.shape() == Shape{rows, 3, 4, 5});
        CHECK(batch.labels.dtype() == DType::Int64);
        CHECK(batch.labels.shape() == Shape{rows});
        const std::vector<std::int64_t> labels = batch.labels.to_int64_vector();
        for (std::int64_t r = 0; r < rows; ++r) {
            const std::int64_t index = batch.sample_indices[static_cast<std::size_t>(r)];
            CHECK(labels[static_cast<std::size_t>(r)] == index % 5);
            // The row holds exactly what get() gives with the sample's own seed.
            Generator generator(sample_seed(1, 0, index));
            const Tensor expected = dataset->get(index, generator).image;
            const Tensor row = batch.images.slice(0, r, r + 1).reshape({3, 4, 5});
            CHECK(row.to_float_vector() == expected.to_float_vector());
            seen.insert(index);
        }
    }
    CHECK(seen.size() == 23);
    CHECK(std::set<std::int64_t>(seen.begin(), seen.end()).size() == 23);
    // The shuffle differs between epochs, and not shuffling keeps dataset order.
    CHECK(run_epoch(loader, 1)[0].sample_indices != batches[0].sample_indices);
    DataLoader ordered(dataset, {.batch_size = 5, .shuffle = false, .drop_last = true});
    CHECK(ordered.batches_per_epoch() == 4);
    const std::vector<Batch> in_order = run_epoch(ordered, 3);
    REQUIRE(in_order.size() == 4);
    CHECK(in_order[1].sample_indices == std::vector<std::int64_t>{5, 6, 7, 8, 9});
    CHECK(in_order[3].images.size(0) == 5);
}

TEST_CASE("DataLoader is bit-reproducible for any worker count and on resume", "[data][loader]") {
    auto dataset = std::make_shared<SyntheticDataset>(37);
    auto options = [](int workers, std::uint64_t seed) {
        return LoaderOptions{.batch_size = 4, .seed = seed, .num_workers = workers, .prefetch_batches = 3};
    };
    DataLoader inline_loader(dataset, options(0, 42)), one(dataset, options(1, 42)), three(dataset, options(3, 42));
    for (std::int64_t epoch : {0, 1}) {
        INFO("epoch " << epoch);
        const std::vector<Batch> reference = run_epoch(inline_loader, epoch);
        check_identical(run_epoch(one, epoch), reference);
        check_identical(run_epoch(three, epoch), reference);
        DataLoader again(dataset, options(3, 42));  // a fresh loader, as after a restart
        check_identical(run_epoch(again, epoch), reference);
        // Resuming at batch 6 gives batches 6.. of the uninterrupted epoch.
        const std::vector<Batch> resumed = run_epoch(three, epoch, 6);
        check_identical(resumed, std::vector<Batch>(reference.begin() + 6, reference.end()));
        check_identical({three.load_batch(epoch, 2)}, {reference[2]});
        CHECK(run_epoch(three, epoch, three.batches_per_epoch()).empty());
    }
    DataLoader other_seed(dataset, options(3, 43));
    CHECK(run_epoch(other_seed, 0)[0].images.to_float_vector() != run_epoch(one, 0)[0].images.to_float_vector());
}

TEST_CASE("DataLoader prefetches up to its bound and reports waiting time", "[data][loader]") {
    auto dataset = std::make_shared<SyntheticDataset>(40);
    dataset->delay_ms = 3;  // 12 ms per batch of 4
    DataLoader loader(dataset, {.batch_size = 4, .seed = 0, .num_workers = 2, .prefetch_batches = 3});
    loader.start_epoch(0);
    // Without a consumer, the workers fill the queue to the bound and stop there.
    const auto start = std::chrono::steady_clock::now();
    while (loader.batches_ready() < 3 && seconds_since(start) < 10) std::this_thread::sleep_for(std::chrono::milliseconds(5));
    std::this_thread::sleep_for(std::chrono::milliseconds(60));  // time for more, were the bound broken
    CHECK(loader.batches_ready() == 3);
    // Taking prefetched batches costs no waiting.
    Batch batch;
    for (int i = 0; i < 3; ++i) REQUIRE(loader.next(batch));
    CHECK(loader.wait_seconds() == 0.0);
    // The workers were held back, so the next batch is not ready: next() waits for it.
    while (loader.next(batch)) {
    }
    CHECK(loader.wait_seconds() > 0.005);
    CHECK(batch.index == 9);

    DataLoader inline_loader(dataset, {.batch_size = 4, .seed = 0, .num_workers = 0});
    inline_loader.start_epoch(0);
    REQUIRE(inline_loader.next(batch));
    CHECK(inline_loader.wait_seconds() >= 0.012);  // four 3 ms samples built by the consumer
}

TEST_CASE("DataLoader counts skipped images", "[data][loader]") {
    auto synthetic = std::make_shared<SyntheticDataset>(30);
    synthetic->skip_every = 7;  // indices 0, 7, 14, 21, 28
    DataLoader loader(synthetic, {.batch_size = 8, .seed = 5, .num_workers = 2});
    std::int64_t per_batch = 0;
    for (const Batch& batch : run_epoch(loader, 0)) per_batch += batch.skipped;
    CHECK(per_batch == 5);
    CHECK(loader.skipped() == 5);
    run_epoch(loader, 1, 3);  // the last batch only: positions 24-29 of epoch 1's order
    const std::vector<std::int64_t> order = epoch_order(30, true, 5, 1);
    std::int64_t in_last_batch = 0;
    for (std::size_t position = 24; position < 30; ++position) in_last_batch += order[position] % 7 == 0;
    CHECK(loader.skipped() == 5 + in_last_batch);

    // End to end with a real folder: one corrupt PNG of six, skip mode.
    TempDir dir;
    for (int i = 0; i < 6; ++i) {
        const std::string name = dir / ("root/" + std::string(i < 3 ? "a" : "b") + "/" + std::to_string(i) + ".png");
        write_bytes(name, encode_png(pattern_image(5, 5, 3, i)));
    }
    write_bytes(dir / "root/a/1.png", {0x89, 'P', 'N', 'G'});
    auto folder = std::make_shared<ImageFolderDataset>(dir / "root", Pipeline(),
                                                       ImageFolderOptions{.skip_bad_images = true, .warn_on_skip = false});
    DataLoader folder_loader(folder, {.batch_size = 4, .shuffle = false, .num_workers = 2});
    const std::vector<Batch> batches = run_epoch(folder_loader, 0);
    CHECK(folder_loader.skipped() == 1);
    REQUIRE(batches.size() == 2);
    // Row 1 (the bad a/1.png) became a/2.png, the next file.
    const std::vector<float> images = batches[0].images.to_float_vector();
    const std::size_t plane = 3 * 5 * 5;
    CHECK(std::vector<float>(images.begin() + plane, images.begin() + 2 * plane) ==
          std::vector<float>(images.begin() + 2 * plane, images.begin() + 3 * plane));
    CHECK(batches[0].labels.to_int64_vector() == std::vector<std::int64_t>{0, 0, 0, 1});
}

TEST_CASE("DataLoader hands worker errors to the consumer with the file name", "[data][loader]") {
    auto dataset = std::make_shared<SyntheticDataset>(20);
    dataset->fail_at = 7;
    for (int workers : {0, 1, 3}) {
        INFO(workers << " workers");
        DataLoader loader(dataset, {.batch_size = 4, .shuffle = false, .num_workers = workers});
        loader.start_epoch(2);
        Batch batch;
        REQUIRE(loader.next(batch));  // batch 0 (samples 0-3) is fine
        const std::string message = error_message([&] { loader.next(batch); });
        CHECK(contains(message, "DataLoader"));
        CHECK(contains(message, "sample 7 (batch 1 of epoch 2)"));
        CHECK(contains(message, "/fake/path/sample_7.png"));
        CHECK_FALSE(loader.next(batch));  // the epoch ended at the error
        loader.start_epoch(0, 2);  // a later epoch start works again
        REQUIRE(loader.next(batch));
        CHECK(batch.index == 2);
    }
    auto mismatched = std::make_shared<SyntheticDataset>(8);
    mismatched->odd_width_at = 2;
    DataLoader shapes(mismatched, {.batch_size = 4, .shuffle = false});
    shapes.start_epoch(0);
    Batch batch;
    std::string message = error_message([&] { shapes.next(batch); });
    CHECK(contains(message, "sample 2"));
    CHECK(contains(message, "[3, 4, 6] differs from the batch's first image [3, 4, 5]"));
    auto bad_label = std::make_shared<SyntheticDataset>(8);
    bad_label->label_override_at = 5;
    DataLoader labels(bad_label, {.batch_size = 4, .shuffle = false, .num_workers = 0});
    CHECK(contains(error_message([&] { labels.load_batch(0, 1); }), "label 7 is outside [0, 5)"));
}

TEST_CASE("DataLoader shuts down cleanly mid-epoch", "[data][loader]") {
    auto dataset = std::make_shared<SyntheticDataset>(400);
    dataset->delay_ms = 10;
    auto start = std::chrono::steady_clock::now();
    {
        DataLoader loader(dataset, {.batch_size = 16, .num_workers = 3, .prefetch_batches = 4});
        loader.start_epoch(0);
        Batch batch;
        REQUIRE(loader.next(batch));
        start = std::chrono::steady_clock::now();
    }  // workers are mid-batch here; each stops after its current sample
    CHECK(seconds_since(start) < 1.0);
    // Restarting epochs while workers run, and destroying a loader that never started.
    DataLoader loader(dataset, {.batch_size = 16, .num_workers = 2});
    loader.start_epoch(0);
    loader.start_epoch(1, 20);
    Batch batch;
    REQUIRE(loader.next(batch));
    CHECK(batch.index == 20);
    DataLoader unused(dataset);
}

TEST_CASE("DataLoader rejects bad options and calls", "[data][loader]") {
    auto dataset = std::make_shared<SyntheticDataset>(10);
    CHECK(contains(error_message([&] { DataLoader(nullptr); }), "dataset is null"));
    CHECK(contains(error_message([&] { DataLoader(std::make_shared<SyntheticDataset>(0)); }), "dataset is empty"));
    CHECK(contains(error_message([&] { DataLoader(dataset, {.batch_size = 0}); }), "batch_size must be positive, got 0"));
    CHECK(contains(error_message([&] { DataLoader(dataset, {.num_workers = -1}); }), "num_workers"));
    CHECK(contains(error_message([&] { DataLoader(dataset, {.prefetch_batches = 0}); }), "prefetch_batches"));
    CHECK(contains(error_message([&] { DataLoader(dataset, {.batch_size = 11, .drop_last = true}); }),
                   "leaves no batch from 10 examples"));
    DataLoader loader(dataset, {.batch_size = 3});
    Batch batch;
    CHECK(contains(error_message([&] { loader.next(batch); }), "call start_epoch() before next()"));
    CHECK(contains(error_message([&] { loader.start_epoch(0, 5); }), "first_batch 5 is outside [0, 4]"));
    CHECK(contains(error_message([&] { loader.start_epoch(-1); }), "epoch must be non-negative"));
    CHECK(contains(error_message([&] { loader.load_batch(0, 4); }), "batch 4 is outside [0, 4)"));
}
