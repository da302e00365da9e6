// What the GPU tests share. Every test_cuda_*.cpp binary is linked with a main that exits 77
// (ctest: Skipped) when no GPU is usable, or fails when CUDAGRAD_REQUIRE_GPU=1 says one must
// be there; it also turns on CUDAGRAD_POISON_DEVICE_MEMORY, so every device block an op
// allocates starts as NaN and an output element a kernel forgets to write fails the comparison.
//
// The pattern of a GPU test: build inputs on the CPU with a fixed seed, run the op on the CPU
// (the reference) and on the GPU with the same inputs, compare with require_close.
#pragma once

#include <cudagrad/cudagrad.hpp>

#include "compare.hpp"

namespace cudagrad::testing {

inline Device gpu() { return Device::cuda(0); }

// Uniform values in [low, high), float32 on the CPU, from a fixed seed.
inline Tensor random_cpu(const Shape& shape, std::uint64_t seed, double low = -1.0, double high = 1.0) {
    Generator generator(seed);
    Tensor tensor = Tensor::empty(shape, DType::Float32);
    uniform_(tensor, low, high, generator);
    return tensor;
}

// Restores the default implementations and math mode (reset_implementations) when a test ends,
// also when a failed REQUIRE throws out of it. Declare one at the top of any test that calls
// set_implementation or set_math_mode.
struct ImplementationGuard {
    ImplementationGuard() = default;
    ImplementationGuard(const ImplementationGuard&) = delete;
    ImplementationGuard& operator=(const ImplementationGuard&) = delete;
    ~ImplementationGuard() { reset_implementations(); }
};

// A GPU copy of a CPU tensor that requires a gradient if the original does (a new leaf).
inline Tensor to_gpu_leaf(const Tensor& cpu_tensor) {
    Tensor copy = cpu_tensor.detach().to(gpu());
    if (cpu_tensor.requires_grad()) copy.set_requires_grad(true);
    return copy;
}

}  // namespace cudagrad::testing
