// CPU stand-in for src/cuda/runtime.hpp (tools/cuda_emulation): only what the kernels use.
#pragma once
namespace cudagrad::cuda {
inline int current_device() { return 0; }
}  // namespace cudagrad::cuda
