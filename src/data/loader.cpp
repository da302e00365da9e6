// DataLoader: seeded epoch order, per-sample seeded augmentation, worker threads with a bounded
// queue of finished batches handed to the consumer strictly in batch order (see loader.hpp).
//
// Reference: torch.utils.data.DataLoader (batch_size, shuffle, drop_last, num_workers,
// prefetch_factor), except that PyTorch's augmentations draw from per-worker generators, so its
// batches depend on the worker count; ours depend only on (seed, epoch, index).
//
// What limits the speed: the dataset's get() (decoding, resampling), spread over num_workers
// threads; a worker owns a whole batch, so a batch costs batch_size get() calls plus one memcpy
// per sample into the batch tensor. Locking happens once per batch, not per sample.
#include "cudagrad/data/loader.hpp"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <exception>
#include <map>
#include <mutex>
#include <numeric>
#include <thread>

namespace cudagrad::data {
namespace {

std::uint64_t mix(std::uint64_t value) {  // splitmix64's finalizer: every input bit affects every output bit
    value += 0x9e3779b97f4a7c15ULL;
    value = (value ^ (value >> 30)) * 0xbf58476d1ce4e5b9ULL;
    value = (value ^ (value >> 27)) * 0x94d049bb133111ebULL;
    return value ^ (value >> 31);
}

// Builds batch `batch_index` of the epoch whose order is `order`. Returns an undefined batch when
// `stop` is raised midway (the loader is shutting down).
Batch build_batch(const Dataset& dataset, const LoaderOptions& options, const std::vector<std::int64_t>& order,
                  std::int64_t epoch, std::int64_t batch_index, const std::atomic<bool>* stop) {
    const std::int64_t begin = batch_index * options.batch_size;
    const std::int64_t end = std::min(begin + options.batch_size, static_cast<std::int64_t>(order.size()));
    const std::int64_t class_count = dataset.num_classes();
    Batch batch;
    batch.epoch = epoch;
    batch.index = batch_index;
    std::vector<std::int64_t> labels;
    Shape image_shape;
    for (std::int64_t position = begin; position < end; ++position) {
        if (stop != nullptr && stop->load(std::memory_order_relaxed)) return Batch();
        const std::int64_t index = order[static_cast<std::size_t>(position)];
        const auto where = [&] {
            return "sample " + std::to_string(index) + " (batch " + std::to_string(batch_index) + " of epoch " +
                   std::to_string(epoch) + ")";
        };
        Example example;
        try {
            Generator generator(sample_seed(options.seed, epoch, index));
            example = dataset.get(index, generator);
        } catch (const std::exception& error) {
            fail("DataLoader", where(), ": ", error.what());
        }
        const Tensor& image = example.image;
        // if/fail rather than check(): where() builds a string, which only a failure should pay for.
        if (!image.defined() || image.dtype() != DType::Float32 || image.dim() != 3) {
            fail("DataLoader", where(), ": the dataset returned ",
                 image.defined() ? image.description() : "an undefined tensor", ", expected a float32 (C, H, W) image");
        }
        if (class_count > 0 && (example.label < 0 || example.label >= class_count)) {
            fail("DataLoader", where(), ": label ", example.label, " is outside [0, ", class_count, ")");
        }
        if (position == begin) {
            image_shape = image.shape();
            const Shape batch_shape = {end - begin, image_shape[0], image_shape[1], image_shape[2]};
            batch.images = options.pin_memory && cuda_available()
                               ? Tensor::empty_in(batch_shape, DType::Float32, pinned_allocator())
                               : Tensor::empty(batch_shape);
        }
        if (image.shape() != image_shape) {
            fail("DataLoader", where(), ": image shape ", shape_string(image.shape()), " differs from the batch's ",
                 "first image ", shape_string(image_shape), "; add a Resize/CenterCrop so every image has one size");
        }
        const Tensor contiguous = image.contiguous();
        const std::int64_t numel = contiguous.numel();
        std::memcpy(batch.images.data<float>() + (position - begin) * numel, contiguous.data<float>(),
                    static_cast<std::size_t>(numel) * sizeof(float));
        labels.push_back(example.label);
        batch.sample_indices.push_back(index);
        batch.skipped += example.skipped;
    }
    batch.labels = Tensor::from_vector(labels, {static_cast<std::int64_t>(labels.size())});
    if (options.pin_memory && cuda_available()) {
        Tensor pinned = Tensor::empty_in(batch.labels.shape(), DType::Int64, pinned_allocator());
        batch.labels = pinned.copy_(batch.labels);
    }
    return batch;
}

}  // namespace

std::uint64_t sample_seed(std::uint64_t seed, std::int64_t epoch, std::int64_t index) {
    return mix(mix(mix(seed) ^ static_cast<std::uint64_t>(epoch)) ^ static_cast<std::uint64_t>(index));
}

std::vector<std::int64_t> epoch_order(std::int64_t size, bool shuffle, std::uint64_t seed, std::int64_t epoch) {
    std::vector<std::int64_t> order(static_cast<std::size_t>(size));
    std::iota(order.begin(), order.end(), std::int64_t{0});
    if (!shuffle) return order;
    Generator generator(sample_seed(seed, epoch, -1));
    for (std::int64_t i = size - 1; i > 0; --i) {
        const auto j = static_cast<std::int64_t>(generator.below(static_cast<std::uint64_t>(i + 1)));
        std::swap(order[static_cast<std::size_t>(i)], order[static_cast<std::size_t>(j)]);
    }
    return order;
}

struct DataLoader::State {
    // A finished batch, or the exception that building it raised.
    struct Slot {
        Batch batch;
        std::exception_ptr error;
    };

    std::shared_ptr<const Dataset> dataset;
    LoaderOptions options;
    std::int64_t batches_per_epoch = 0;

    // The current epoch; written only by the consumer while no worker runs.
    bool started = false;
    std::int64_t epoch = 0;
    std::vector<std::int64_t> order;
    std::int64_t end_batch = 0;

    // Guarded by mutex.
    std::mutex mutex;
    std::condition_variable work_available;  // workers wait for room in the queue
    std::condition_variable batch_finished;  // the consumer waits for its next batch
    std::int64_t next_to_build = 0;
    std::int64_t next_to_hand_out = 0;
    std::map<std::int64_t, Slot> finished;

    std::atomic<bool> stopping{false};
    std::vector<std::thread> workers;

    // Consumer-side statistics.
    double wait_seconds = 0.0;
    std::int64_t skipped = 0;

    void worker_loop() {
        for (;;) {
            std::int64_t batch_index = 0;
            {
                std::unique_lock<std::mutex> lock(mutex);
                work_available.wait(lock, [&] {
                    return stopping.load() || next_to_build >= end_batch ||
                           next_to_build < next_to_hand_out + options.prefetch_batches;
                });
                if (stopping.load() || next_to_build >= end_batch) return;
                batch_index = next_to_build++;
            }
            Slot slot;
            try {
                slot.batch = build_batch(*dataset, options, order, epoch, batch_index, &stopping);
            } catch (...) {
                slot.error = std::current_exception();
            }
            std::lock_guard<std::mutex> lock(mutex);
            if (stopping.load()) return;
            finished.emplace(batch_index, std::move(slot));
            batch_finished.notify_all();
        }
    }

    void stop_workers() {
        {
            std::lock_guard<std::mutex> lock(mutex);
            stopping = true;
        }
        work_available.notify_all();
        for (std::thread& worker : workers) worker.join();
        workers.clear();
        finished.clear();
        stopping = false;
    }
};

DataLoader::DataLoader(std::shared_ptr<const Dataset> dataset, LoaderOptions options)
    : state_(std::make_unique<State>()) {
    check(dataset != nullptr, "DataLoader", "dataset is null");
    const std::int64_t size = dataset->size();
    check(size > 0, "DataLoader", "dataset is empty");
    check(options.batch_size > 0, "DataLoader", "batch_size must be positive, got ", options.batch_size);
    check(options.num_workers >= 0, "DataLoader", "num_workers must be non-negative, got ", options.num_workers);
    check(options.prefetch_batches >= 1, "DataLoader", "prefetch_batches must be at least 1, got ",
          options.prefetch_batches);
    check(!options.drop_last || size >= options.batch_size, "DataLoader", "drop_last with batch_size ",
          options.batch_size, " leaves no batch from ", size, " examples");
    state_->batches_per_epoch =
        options.drop_last ? size / options.batch_size : (size + options.batch_size - 1) / options.batch_size;
    state_->dataset = std::move(dataset);
    state_->options = options;
}

DataLoader::~DataLoader() { state_->stop_workers(); }

std::int64_t DataLoader::batches_per_epoch() const { return state_->batches_per_epoch; }
double DataLoader::wait_seconds() const { return state_->wait_seconds; }
std::int64_t DataLoader::skipped() const { return state_->skipped; }
const LoaderOptions& DataLoader::options() const { return state_->options; }
const Dataset& DataLoader::dataset() const { return *state_->dataset; }

std::int64_t DataLoader::batches_ready() const {
    std::lock_guard<std::mutex> lock(state_->mutex);
    return static_cast<std::int64_t>(state_->finished.size());
}

void DataLoader::start_epoch(std::int64_t epoch, std::int64_t first_batch) {
    State& state = *state_;
    check(epoch >= 0, "DataLoader", "epoch must be non-negative, got ", epoch);
    check(first_batch >= 0 && first_batch <= state.batches_per_epoch, "DataLoader", "first_batch ", first_batch,
          " is outside [0, ", state.batches_per_epoch, "]");
    state.stop_workers();
    state.started = true;
    state.epoch = epoch;
    state.order = epoch_order(state.dataset->size(), state.options.shuffle, state.options.seed, epoch);
    state.end_batch = state.batches_per_epoch;
    state.next_to_build = first_batch;
    state.next_to_hand_out = first_batch;
    const std::int64_t remaining = state.end_batch - first_batch;
    const int worker_count = static_cast<int>(std::min<std::int64_t>(state.options.num_workers, remaining));
    for (int i = 0; i < worker_count; ++i) state.workers.emplace_back([&state] { state.worker_loop(); });
}

bool DataLoader::next(Batch& batch) {
    State& state = *state_;
    check(state.started, "DataLoader", "call start_epoch() before next()");
    if (state.next_to_hand_out >= state.end_batch) return false;
    const auto started_waiting = std::chrono::steady_clock::now();
    const auto add_wait = [&] {
        state.wait_seconds +=
            std::chrono::duration<double>(std::chrono::steady_clock::now() - started_waiting).count();
    };
    State::Slot slot;
    if (state.options.num_workers == 0) {
        // No workers: the consumer builds the batch itself, and all of that time is waiting.
        try {
            slot.batch = build_batch(*state.dataset, state.options, state.order, state.epoch, state.next_to_hand_out,
                                     nullptr);
        } catch (...) {
            slot.error = std::current_exception();
        }
        ++state.next_to_hand_out;
        add_wait();
    } else {
        std::unique_lock<std::mutex> lock(state.mutex);
        auto found = state.finished.find(state.next_to_hand_out);
        if (found == state.finished.end()) {
            state.batch_finished.wait(lock, [&] { return state.finished.count(state.next_to_hand_out) > 0; });
            add_wait();
            found = state.finished.find(state.next_to_hand_out);
        }
        slot = std::move(found->second);
        state.finished.erase(found);
        ++state.next_to_hand_out;
        lock.unlock();
        state.work_available.notify_all();  // a queue place is free
    }
    if (slot.error) {
        // The epoch ends at the first failed batch; later batches are abandoned.
        state.stop_workers();
        state.next_to_hand_out = state.end_batch;
        std::rethrow_exception(slot.error);
    }
    state.skipped += slot.batch.skipped;
    batch = std::move(slot.batch);
    return true;
}

Batch DataLoader::load_batch(std::int64_t epoch, std::int64_t batch_index) const {
    const State& state = *state_;
    check(epoch >= 0, "DataLoader", "epoch must be non-negative, got ", epoch);
    check(batch_index >= 0 && batch_index < state.batches_per_epoch, "DataLoader", "batch ", batch_index,
          " is outside [0, ", state.batches_per_epoch, ")");
    const std::vector<std::int64_t> order =
        epoch_order(state.dataset->size(), state.options.shuffle, state.options.seed, epoch);
    return build_batch(*state.dataset, state.options, order, epoch, batch_index, nullptr);
}

}  // namespace cudagrad::data
