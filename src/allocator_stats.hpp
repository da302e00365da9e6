// What the three allocators share (the host one, src/allocator.cpp; the CUDA caching one,
// src/cuda/cuda_allocator.cu; the pinned host one, src/cuda/pinned_allocator.cu): the usage
// counters of AllocatorStats, and the two Allocator methods that report and reset them.
//
// The counters are guarded by the allocator's own mutex, the one that also guards its free
// lists, so one lock per allocate / deallocate keeps the two consistent. The derived allocator
// updates stats_ while it holds mutex_; bytes_reserved is derived when stats() is read.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <mutex>

#include "cudagrad/allocator.hpp"

namespace cudagrad::detail {

class CountingAllocator : public Allocator {
public:
    AllocatorStats stats() const override {
        std::lock_guard<std::mutex> lock(mutex_);
        AllocatorStats result = stats_;
        result.bytes_reserved = result.bytes_in_use + result.bytes_cached;
        return result;
    }

    void reset_peak() override {
        std::lock_guard<std::mutex> lock(mutex_);
        stats_.peak_bytes_in_use = stats_.bytes_in_use;
        stats_.allocation_count = 0;
    }

protected:
    // One allocate() of `bytes` (as the allocator counts them); the caller holds mutex_.
    void count_allocation(std::size_t bytes) {
        stats_.bytes_in_use += static_cast<std::int64_t>(bytes);
        stats_.peak_bytes_in_use = std::max(stats_.peak_bytes_in_use, stats_.bytes_in_use);
        ++stats_.allocation_count;
    }

    mutable std::mutex mutex_;  // guards stats_ and the derived allocator's free lists
    AllocatorStats stats_;
};

}  // namespace cudagrad::detail
