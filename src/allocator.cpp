// The host allocator: aligned blocks from the C++ runtime, with usage counters.
#include <atomic>
#include <cstdlib>
#include <new>

#include "cudagrad/allocator.hpp"
#include "cudagrad/error.hpp"

namespace cudagrad {
namespace {

class CpuAllocator final : public Allocator {
public:
    void* allocate(std::size_t bytes) override {
        constexpr std::size_t alignment = 64;
        // aligned_alloc needs a size that is a multiple of the alignment; size 0 is legal
        // for tensors with no elements, so round up to one line.
        std::size_t rounded = (bytes + alignment - 1) / alignment * alignment;
        if (rounded == 0) rounded = alignment;
        void* pointer = std::aligned_alloc(alignment, rounded);
        if (pointer == nullptr) {
            fail("cpu_allocator", "out of memory allocating ", bytes, " bytes (", bytes_in_use_.load(),
                 " bytes in use)");
        }
        std::int64_t now = bytes_in_use_ += static_cast<std::int64_t>(bytes);
        std::int64_t peak = peak_.load();
        while (now > peak && !peak_.compare_exchange_weak(peak, now)) {
        }
        ++allocation_count_;
        return pointer;
    }

    void deallocate(void* pointer, std::size_t bytes) override {
        std::free(pointer);
        bytes_in_use_ -= static_cast<std::int64_t>(bytes);
    }

    Device device() const override { return Device::cpu(); }

    AllocatorStats stats() const override {
        return {bytes_in_use_.load(), peak_.load(), allocation_count_.load()};
    }

    void reset_peak() override {
        peak_ = bytes_in_use_.load();
        allocation_count_ = 0;
    }

private:
    std::atomic<std::int64_t> bytes_in_use_{0};
    std::atomic<std::int64_t> peak_{0};
    std::atomic<std::int64_t> allocation_count_{0};
};

}  // namespace

Allocator& cpu_allocator() {
    static CpuAllocator allocator;
    return allocator;
}

Allocator& allocator_for(Device device) {
    if (device.is_cpu()) return cpu_allocator();
    fail("allocator_for", "no allocator for device ", device.str(),
         ": CUDA tensors arrive with the CUDA backend");
}

}  // namespace cudagrad
