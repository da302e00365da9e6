// Memory for tensor storage comes from an Allocator, one per device. Every allocator keeps
// counters (bytes in use, peak, number of allocations) so tests and benchmarks can state how
// much memory a model needs. The CUDA caching allocator will implement the same interface.
#pragma once

#include <cstddef>
#include <cstdint>

#include "cudagrad/device.hpp"

namespace cudagrad {

struct AllocatorStats {
    std::int64_t bytes_in_use = 0;
    std::int64_t peak_bytes_in_use = 0;
    std::int64_t allocation_count = 0;  // allocate() calls since start (or reset_peak)
};

class Allocator {
public:
    virtual ~Allocator() = default;
    virtual void* allocate(std::size_t bytes) = 0;
    virtual void deallocate(void* pointer, std::size_t bytes) = 0;
    virtual Device device() const = 0;
    virtual AllocatorStats stats() const = 0;
    virtual void reset_peak() = 0;
};

// The allocator for host memory: 64-byte aligned (a cache line, and enough for AVX-512 loads).
Allocator& cpu_allocator();

// The allocator tensors on `device` use; throws if the device is not available.
Allocator& allocator_for(Device device);

}  // namespace cudagrad
