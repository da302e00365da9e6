// The per-device state every CUDA op needs: the stream it launches on, the cuDNN and cuBLAS
// handles bound to that stream, the device's properties, and a scratch workspace for the
// vendor libraries. For .cu files only (it includes the CUDA headers); plain C++ files use the
// CUDA-free declarations in runtime.hpp.
//
// One stream per device. Every kernel, copy and library call of cudagrad is queued on it, so
// they run in order without host synchronisation, and the caching allocator can hand a freed
// block to the next request at once: any kernel that still reads the old tensor was queued
// before any kernel that writes the new one.
#pragma once

#include <cublas_v2.h>
#include <cuda_runtime.h>
#include <cudnn.h>

#include <cstddef>
#include <cstdint>

#include "cuda/check.hpp"

namespace cudagrad::cuda {

struct Context {
    int device = 0;
    cudaStream_t stream = nullptr;
    cudnnHandle_t cudnn = nullptr;
    cublasHandle_t cublas = nullptr;
    cudaDeviceProp properties{};
    void* workspace = nullptr;  // from the caching allocator; grows, never shrinks
    std::size_t workspace_bytes = 0;
};

// The context of a device, created on first use (this makes the device current on the calling
// thread). Contexts live until the process ends.
Context& context(int device);

// The context of the calling thread's current device (cudaGetDevice).
Context& current_context();
inline cudaStream_t current_stream() { return current_context().stream; }

// At least `bytes` of device scratch memory on the current device, valid until the next call
// (stream order keeps earlier users safe).
void* workspace(std::size_t bytes);

// Launch geometry for a grid-stride loop over `count` elements: enough blocks to fill the GPU a
// few times over, never more than the count needs.
inline unsigned int grid_for(std::int64_t count, int threads_per_block) {
    const std::int64_t needed = (count + threads_per_block - 1) / threads_per_block;
    const std::int64_t cap = static_cast<std::int64_t>(current_context().properties.multiProcessorCount) * 32;
    const std::int64_t blocks = needed < cap ? needed : cap;
    return static_cast<unsigned int>(blocks > 0 ? blocks : 1);
}

}  // namespace cudagrad::cuda
