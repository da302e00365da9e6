// DataLoader: turns a Dataset into batches (images float32 (N, C, H, W), labels int64 (N)),
// decoding and augmenting on worker threads while the trainer computes.
//
//     DataLoader loader(dataset, {.batch_size = 128, .seed = 42, .num_workers = 2});
//     for (std::int64_t epoch = 0; epoch < epochs; ++epoch) {
//         loader.start_epoch(epoch);
//         Batch batch;
//         while (loader.next(batch)) train_step(batch.images, batch.labels);
//     }
//
// Reproducibility: what a batch contains depends only on (seed, epoch, batch index), never on
// how many workers there are or which finishes first. The epoch's sample order is a Fisher-Yates
// shuffle seeded from (seed, epoch); each sample's augmentation uses a fresh Generator seeded
// from (seed, epoch, dataset index) (sample_seed). Workers claim batch indices and the consumer
// takes them strictly in order. So start_epoch(epoch, k) resumes mid-epoch with exactly the
// batches an uninterrupted run would have produced from batch k on.
//
// Prefetching: workers run at most prefetch_batches batches ahead of the consumer (in progress
// plus finished), which bounds the memory held. wait_seconds() totals the time next() spent
// blocked: if it grows, the loader is the bottleneck (add workers or cheapen the transforms).
//
// Errors: an exception in a worker (a corrupt file, a transform error) is rethrown by next() when
// the consumer reaches that batch, as a cudagrad::Error naming the batch, the sample and, through
// the dataset's message, the file; the epoch then ends. Destroying the loader mid-epoch stops and
// joins the workers (each finishes at most the sample it is decoding).
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "cudagrad/data/dataset.hpp"

namespace cudagrad::data {

struct LoaderOptions {
    std::int64_t batch_size = 32;
    bool shuffle = true;
    bool drop_last = false;  // drop the final partial batch
    std::uint64_t seed = 0;
    int num_workers = 2;       // 0: batches are built in the thread that calls next()
    int prefetch_batches = 4;  // how far workers may run ahead of the consumer
    // Build batches in page-locked memory (pinned_allocator()), so that copying them to a GPU
    // runs asynchronously, overlapping the previous step's computation. Ignored without a GPU.
    bool pin_memory = false;
};

struct Batch {
    Tensor images;  // float32 (N, C, H, W)
    Tensor labels;  // int64 (N)
    std::int64_t epoch = 0;
    std::int64_t index = 0;    // batch index within the epoch
    std::int64_t skipped = 0;  // bad files passed over while building this batch
    std::vector<std::int64_t> sample_indices;  // dataset index of each row
};

// The seed of sample `index`'s augmentation Generator in `epoch` (a splitmix64 hash chain).
// index -1 is reserved for the epoch's shuffle.
std::uint64_t sample_seed(std::uint64_t seed, std::int64_t epoch, std::int64_t index);

// The order in which an epoch visits a dataset of `size` examples: 0..size-1, or a seeded shuffle.
std::vector<std::int64_t> epoch_order(std::int64_t size, bool shuffle, std::uint64_t seed, std::int64_t epoch);

class DataLoader {
public:
    explicit DataLoader(std::shared_ptr<const Dataset> dataset, LoaderOptions options = LoaderOptions());
    ~DataLoader();
    DataLoader(const DataLoader&) = delete;
    DataLoader& operator=(const DataLoader&) = delete;

    std::int64_t batches_per_epoch() const;

    // Starts (or restarts) an epoch at batch first_batch in [0, batches_per_epoch()]; any batches
    // of the previous epoch still queued are discarded.
    void start_epoch(std::int64_t epoch, std::int64_t first_batch = 0);

    // The next batch of the epoch in `batch`; false once the epoch is exhausted. Call next(),
    // start_epoch() and the statistics from one thread (the trainer's).
    bool next(Batch& batch);

    // Builds one batch synchronously in the calling thread: the same batch next() would give.
    Batch load_batch(std::int64_t epoch, std::int64_t batch_index) const;

    double wait_seconds() const;          // time next() spent waiting for data, since construction
    std::int64_t skipped() const;         // bad files skipped in the batches next() returned
    std::int64_t batches_ready() const;   // finished batches waiting for the consumer right now
    const LoaderOptions& options() const;
    const Dataset& dataset() const;

private:
    struct State;
    std::unique_ptr<State> state_;
};

}  // namespace cudagrad::data
