// Page-locked ("pinned") host memory for tensors that are copied to a GPU, such as the data
// loader's batches. A copy from pinned memory is a DMA that runs while the GPU computes; a copy
// from ordinary (pageable) memory first goes through a driver staging buffer, synchronously.
//
// The catch: the copy is still running after cudaMemcpyAsync returns, so a freed block may not
// be handed out again (and overwritten by the next batch) until the copies queued before the
// free have finished. Each freed block therefore carries an event recorded on the current
// device's stream at the time of the free, and is reused only once that event has completed.
// Blocks are cached by exact size (a loader asks for the same batch size every step).
#include <cuda_runtime.h>

#include <list>
#include <mutex>

#include "allocator_stats.hpp"
#include "cuda/check.hpp"
#include "cuda/context.hpp"
#include "cuda/runtime.hpp"

namespace cudagrad::cuda {
namespace {

struct FreedBlock {
    void* pointer;
    std::size_t bytes;
    cudaEvent_t event;  // completes when the copies queued before the free are done
};

class PinnedHostAllocator final : public detail::CountingAllocator {
public:
    void* allocate(std::size_t bytes) override {
        const std::size_t size = bytes == 0 ? 1 : bytes;
        std::lock_guard<std::mutex> lock(mutex_);
        for (auto block = freed_.begin(); block != freed_.end(); ++block) {
            if (block->bytes != size) continue;
            const cudaError_t status = cudaEventQuery(block->event);
            if (status == cudaErrorNotReady) {
                cudaGetLastError();
                continue;
            }
            CUDAGRAD_CUDA_CHECK(status);
            CUDAGRAD_CUDA_CHECK(cudaEventDestroy(block->event));
            void* pointer = block->pointer;
            stats_.bytes_cached -= static_cast<std::int64_t>(size);
            freed_.erase(block);
            count_allocation(size);
            return pointer;
        }
        void* pointer = nullptr;
        CUDAGRAD_CUDA_CHECK(cudaMallocHost(&pointer, size));
        ++stats_.system_allocations;
        count_allocation(size);
        return pointer;
    }

    void deallocate(void* pointer, std::size_t bytes) override {
        const std::size_t size = bytes == 0 ? 1 : bytes;
        std::lock_guard<std::mutex> lock(mutex_);
        stats_.bytes_in_use -= static_cast<std::int64_t>(size);
        cudaEvent_t event = nullptr;
        // Deallocation runs in destructors: on a CUDA error, keep the block out of the cache
        // (leak it) rather than throw. current_stream() checks cudaGetDevice, which returns an
        // earlier kernel's sticky error: caught here, or the destructor would std::terminate.
        cudaStream_t stream = nullptr;
        try {
            stream = current_stream();
        } catch (...) {
            cudaGetLastError();
            return;
        }
        if (cudaEventCreateWithFlags(&event, cudaEventDisableTiming) != cudaSuccess ||
            cudaEventRecord(event, stream) != cudaSuccess) {
            if (event) cudaEventDestroy(event);
            cudaGetLastError();
            return;
        }
        freed_.push_back({pointer, size, event});
        stats_.bytes_cached += static_cast<std::int64_t>(size);
        // Bound the cache: a loader needs a handful of batches in flight, not hundreds.
        while (freed_.size() > 64) {
            FreedBlock oldest = freed_.front();
            freed_.pop_front();
            cudaEventSynchronize(oldest.event);
            cudaEventDestroy(oldest.event);
            cudaFreeHost(oldest.pointer);
            stats_.bytes_cached -= static_cast<std::int64_t>(oldest.bytes);
        }
    }

    Device device() const override { return Device::cpu(); }

    void empty_cache() override {
        std::lock_guard<std::mutex> lock(mutex_);
        for (FreedBlock& block : freed_) {
            CUDAGRAD_CUDA_CHECK(cudaEventSynchronize(block.event));
            CUDAGRAD_CUDA_CHECK(cudaEventDestroy(block.event));
            CUDAGRAD_CUDA_CHECK(cudaFreeHost(block.pointer));
        }
        freed_.clear();
        stats_.bytes_cached = 0;
    }

private:
    std::list<FreedBlock> freed_;
};

}  // namespace

Allocator& pinned_host_allocator() {
    static auto* allocator = new PinnedHostAllocator;  // never destroyed, as the other allocators
    return *allocator;
}

}  // namespace cudagrad::cuda
