// The host allocator: aligned blocks from the C++ runtime, a size-keyed cache of large freed
// blocks, and usage counters. See allocator.hpp for why the cache exists.
#include "cudagrad/allocator.hpp"

#include <atomic>
#include <cstdlib>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "allocator_stats.hpp"
#include "cudagrad/error.hpp"

#ifdef CUDAGRAD_WITH_CUDA
#include "cuda/runtime.hpp"
#endif

namespace cudagrad {
namespace {

constexpr std::size_t alignment = 64;
constexpr std::size_t cached_minimum = 64 * 1024;  // smaller blocks: malloc's own free lists do well

// Requests are rounded so that nearby sizes share cache entries: to the alignment for small
// blocks, to 4 KiB pages for large ones.
std::size_t rounded_size(std::size_t bytes) {
    std::size_t unit = bytes >= cached_minimum ? 4096 : alignment;
    std::size_t rounded = (bytes + unit - 1) / unit * unit;
    return rounded == 0 ? alignment : rounded;
}

std::int64_t cache_limit_bytes() {
    const char* text = std::getenv("CUDAGRAD_CPU_CACHE_MB");
    if (text == nullptr || *text == '\0') return std::int64_t{4096} << 20;
    char* end = nullptr;
    long long megabytes = std::strtoll(text, &end, 10);
    check(end != text && *end == '\0' && megabytes >= 0, "cpu_allocator", "CUDAGRAD_CPU_CACHE_MB='", text,
          "' is not a non-negative integer");
    return static_cast<std::int64_t>(megabytes) << 20;
}

// bytes_in_use counts the bytes asked for, before rounding (so bytes_reserved does too).
class CpuAllocator final : public detail::CountingAllocator {
public:
    void* allocate(std::size_t bytes) override {
        const std::size_t size = rounded_size(bytes);
        void* pointer = nullptr;
        {
            std::lock_guard<std::mutex> lock(mutex_);
            if (size >= cached_minimum) pointer = take_cached(size);
            count_allocation(bytes);
        }
        if (pointer) return pointer;
        pointer = std::aligned_alloc(alignment, size);
        if (pointer == nullptr) {
            empty_cache();  // give the cache back and try once more before failing
            pointer = std::aligned_alloc(alignment, size);
        }
        std::lock_guard<std::mutex> lock(mutex_);
        if (pointer == nullptr) {
            stats_.bytes_in_use -= static_cast<std::int64_t>(bytes);
            fail("cpu_allocator", "out of memory allocating ", bytes, " bytes (", stats_.bytes_in_use,
                 " bytes in use, ", stats_.bytes_cached, " cached)");
        }
        ++stats_.system_allocations;
        return pointer;
    }

    void deallocate(void* pointer, std::size_t bytes) override {
        const std::size_t size = rounded_size(bytes);
        std::lock_guard<std::mutex> lock(mutex_);
        stats_.bytes_in_use -= static_cast<std::int64_t>(bytes);
        if (size >= cached_minimum && stats_.bytes_cached + static_cast<std::int64_t>(size) <= limit_) {
            free_blocks_[size].push_back(pointer);
            stats_.bytes_cached += static_cast<std::int64_t>(size);
            return;
        }
        std::free(pointer);
    }

    Device device() const override { return Device::cpu(); }

    void empty_cache() override {
        std::lock_guard<std::mutex> lock(mutex_);
        for (auto& [size, blocks] : free_blocks_) {
            for (void* block : blocks) std::free(block);
        }
        free_blocks_.clear();
        stats_.bytes_cached = 0;
    }

    ~CpuAllocator() override { empty_cache(); }

private:
    void* take_cached(std::size_t size) {
        auto found = free_blocks_.find(size);
        if (found == free_blocks_.end() || found->second.empty()) return nullptr;
        void* pointer = found->second.back();
        found->second.pop_back();
        stats_.bytes_cached -= static_cast<std::int64_t>(size);
        return pointer;
    }

    std::map<std::size_t, std::vector<void*>> free_blocks_;
    const std::int64_t limit_ = cache_limit_bytes();
};

}  // namespace

Allocator& cpu_allocator() {
    // Never destroyed: tensors in static storage may outlive any function-local static.
    static CpuAllocator* allocator = new CpuAllocator;
    return *allocator;
}

Allocator& pinned_allocator() {
    check(cuda_device_count() > 0, "pinned_allocator", "pinned host memory needs a usable GPU");
#ifdef CUDAGRAD_WITH_CUDA
    return cuda::pinned_host_allocator();
#else
    fail("pinned_allocator", "cudagrad was built without CUDA");
#endif
}

Allocator& allocator_for(Device device) {
    if (device.is_cpu()) return cpu_allocator();
    check(device.index >= 0 && device.index < cuda_device_count(), "allocator_for", "device ", device.str(),
          " is not available (", cuda_device_count(), " CUDA devices)");
#ifdef CUDAGRAD_WITH_CUDA
    return cuda::device_allocator(device.index);
#else
    fail("allocator_for", "cudagrad was built without CUDA");
#endif
}

}  // namespace cudagrad
