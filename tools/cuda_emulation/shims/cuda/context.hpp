// CPU stand-in for src/cuda/context.hpp (tools/cuda_emulation): one context whose device
// properties a harness may change (e.g. the SM count, which sets grid_for's cap and the
// split-K / split-channel decisions of some kernels).
#pragma once
#include <cuda_runtime.h>

#include <cstdint>

#include "cuda/check.hpp"

namespace cudagrad::cuda {

struct Context {
    cudaDeviceProp properties;
};
inline Context& current_context() {
    static Context context;
    return context;
}
inline cudaStream_t current_stream() { return 0; }

// Same formula as the real grid_for: enough blocks for `count`, capped at 32 per SM.
inline unsigned int grid_for(std::int64_t count, int threads_per_block) {
    const std::int64_t needed = (count + threads_per_block - 1) / threads_per_block;
    const std::int64_t cap = static_cast<std::int64_t>(current_context().properties.multiProcessorCount) * 32;
    const std::int64_t blocks = needed < cap ? needed : cap;
    return static_cast<unsigned int>(blocks > 0 ? blocks : 1);
}

}  // namespace cudagrad::cuda
