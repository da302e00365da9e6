// Memory for tensor storage comes from an Allocator, one per device. Every allocator keeps
// counters (bytes in use, peak, number of allocations) so tests and benchmarks can state how
// much memory a model needs. The CUDA caching allocator (src/cuda/cuda_allocator.cu)
// implements the same interface.
#pragma once

#include <cstddef>
#include <cstdint>

#include "cudagrad/device.hpp"

namespace cudagrad {

struct AllocatorStats {
    std::int64_t bytes_in_use = 0;
    std::int64_t peak_bytes_in_use = 0;
    std::int64_t allocation_count = 0;  // allocate() calls since start (or reset_peak)
    std::int64_t bytes_cached = 0;      // freed blocks kept for reuse (not in use, still reserved)
    std::int64_t system_allocations = 0;  // blocks obtained from the system (malloc / cudaMalloc)
    std::int64_t bytes_reserved = 0;      // held from the system: blocks in use (rounded) + cached
};

class Allocator {
public:
    virtual ~Allocator() = default;
    virtual void* allocate(std::size_t bytes) = 0;
    virtual void deallocate(void* pointer, std::size_t bytes) = 0;
    virtual Device device() const = 0;
    virtual AllocatorStats stats() const = 0;
    virtual void reset_peak() = 0;
    // Returns cached, unused blocks to the system.
    virtual void empty_cache() {}
};

// The allocator for host memory: 64-byte aligned (a cache line, and enough for AVX-512 loads).
// Large blocks (>= 64 KiB) are cached by size when freed and reused by the next request of the
// same size: a training step allocates the same activation sizes every step, and fresh memory
// from the system costs a page fault per 4 KiB on first touch. The cache holds at most
// CUDAGRAD_CPU_CACHE_MB megabytes (default 4096).
Allocator& cpu_allocator();

// Page-locked host memory (a CPU-device allocator) for tensors that will be copied to a GPU:
// such copies run asynchronously (Tensor::to returns before the bytes have moved) and overlap
// computation. Freed blocks are reused only after the copies queued before the free have
// finished. Throws without a usable GPU.
Allocator& pinned_allocator();

// The allocator tensors on `device` use; throws if the device is not available.
//
// On a GPU this is a caching allocator: freed blocks go to free lists binned by size and the
// next request of that size class takes one, so a training loop stops calling cudaMalloc after
// its first step (stats().system_allocations stops growing). When cudaMalloc fails the cache
// is released and the request retried once; after that the error states the bytes requested,
// in use, reserved and free on the device.
Allocator& allocator_for(Device device);

}  // namespace cudagrad
