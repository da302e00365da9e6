// The caching allocator for device memory (see allocator.hpp for the contract).
//
// Why: cudaMalloc and cudaFree are slow (tens of microseconds to milliseconds) and cudaFree
// synchronises the whole device. A training step frees and re-allocates the same activation
// sizes every step, so keeping freed blocks and handing them out again removes both costs.
//
// How: requests are rounded up to a size class: multiples of 512 bytes below 1 MiB, and above
// that four classes per power of two (1, 1.25, 1.5, 1.75 x 2^k), so a block never wastes more
// than 25%. Freed blocks go to a free list per class; a request takes a block of exactly its
// class. There is no block splitting: simpler than PyTorch's allocator, and a training loop
// asks for the same sizes every step, so exact classes are reused.
//
// Stream safety: all of cudagrad's work on a device runs on one stream (context.hpp), so a block
// freed by the host can be reused at once: whatever still reads it was queued earlier.
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>
#include <vector>

#include "allocator_stats.hpp"
#include "cuda/check.hpp"
#include "cuda/context.hpp"
#include "cuda/runtime.hpp"

namespace cudagrad::cuda {
namespace {

constexpr std::size_t small_unit = 512;
constexpr std::size_t small_limit = std::size_t{1} << 20;

std::size_t size_class(std::size_t bytes) {
    if (bytes == 0) return small_unit;
    if (bytes <= small_limit) return (bytes + small_unit - 1) / small_unit * small_unit;
    std::size_t power = small_limit;
    while (power * 2 < bytes) power *= 2;  // power < bytes <= 2 * power
    const std::size_t step = power / 4;
    return (bytes + step - 1) / step * step;
}

bool poison_from_environment() {
    const char* text = std::getenv("CUDAGRAD_POISON_DEVICE_MEMORY");
    return text != nullptr && std::strcmp(text, "1") == 0;
}

bool& poison_enabled() {
    static bool enabled = poison_from_environment();
    return enabled;
}

class CachingDeviceAllocator final : public detail::CountingAllocator {
public:
    explicit CachingDeviceAllocator(int device) : device_(device) {}

    void* allocate(std::size_t bytes) override {
        set_current_device(device_);
        const std::size_t size = size_class(bytes);
        void* pointer = nullptr;
        {
            std::lock_guard<std::mutex> lock(mutex_);
            auto found = free_blocks_.find(size);
            if (found != free_blocks_.end() && !found->second.empty()) {
                pointer = found->second.back();
                found->second.pop_back();
                stats_.bytes_cached -= static_cast<std::int64_t>(size);
            }
        }
        if (pointer == nullptr) pointer = allocate_from_device(bytes, size);
        {
            std::lock_guard<std::mutex> lock(mutex_);
            count_allocation(size);
        }
        if (poison_enabled()) {
            CUDAGRAD_CUDA_CHECK(cudaMemsetAsync(pointer, 0xFF, size, context(device_).stream));
        }
        return pointer;
    }

    void deallocate(void* pointer, std::size_t bytes) override {
        if (pointer == nullptr) return;
        const std::size_t size = size_class(bytes);
        std::lock_guard<std::mutex> lock(mutex_);
        stats_.bytes_in_use -= static_cast<std::int64_t>(size);
        stats_.bytes_cached += static_cast<std::int64_t>(size);
        free_blocks_[size].push_back(pointer);
    }

    Device device() const override { return Device::cuda(device_); }

    void empty_cache() override {
        set_current_device(device_);
        std::lock_guard<std::mutex> lock(mutex_);
        release_cached_locked();
    }

private:
    void* allocate_from_device(std::size_t bytes, std::size_t size) {
        void* pointer = nullptr;
        cudaError_t status = cudaMalloc(&pointer, size);
        if (status == cudaErrorMemoryAllocation) {
            cudaGetLastError();  // clear, give the cache back, and try once more
            {
                std::lock_guard<std::mutex> lock(mutex_);
                release_cached_locked();
            }
            status = cudaMalloc(&pointer, size);
        }
        if (status == cudaErrorMemoryAllocation) {
            cudaGetLastError();
            std::size_t free_bytes = 0, total_bytes = 0;
            cudaMemGetInfo(&free_bytes, &total_bytes);
            AllocatorStats now = stats();
            fail("cuda_allocator", "out of memory on cuda:", device_, ": requested ", bytes, " bytes (", size,
                 " rounded); ", now.bytes_in_use, " bytes allocated by cudagrad, ", now.bytes_reserved,
                 " reserved, ", free_bytes, " free of ", total_bytes, " on the device");
        }
        CUDAGRAD_CUDA_CHECK(status);
        std::lock_guard<std::mutex> lock(mutex_);
        ++stats_.system_allocations;
        return pointer;
    }

    // cudaFree waits for the device, so no queued kernel still uses a block it frees.
    void release_cached_locked() {
        for (auto& [size, blocks] : free_blocks_) {
            for (void* block : blocks) CUDAGRAD_CUDA_CHECK(cudaFree(block));
        }
        free_blocks_.clear();
        stats_.bytes_cached = 0;
    }

    int device_;
    std::map<std::size_t, std::vector<void*>> free_blocks_;
};

}  // namespace

Allocator& device_allocator(int device) {
    // Never destroyed, like the contexts: tensors in static storage may be freed after main.
    static std::mutex* mutex = new std::mutex;
    static auto* allocators = new std::vector<CachingDeviceAllocator*>;
    std::lock_guard<std::mutex> lock(*mutex);
    if (device >= static_cast<int>(allocators->size())) allocators->resize(static_cast<std::size_t>(device) + 1);
    auto& slot = (*allocators)[static_cast<std::size_t>(device)];
    if (slot == nullptr) slot = new CachingDeviceAllocator(device);
    return *slot;
}

void set_poison_new_memory(bool enabled) { poison_enabled() = enabled; }

}  // namespace cudagrad::cuda
