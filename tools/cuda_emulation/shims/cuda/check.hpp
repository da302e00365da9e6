// CPU stand-in for src/cuda/check.hpp (tools/cuda_emulation): launches are checked by
// emu_launch itself, and the runtime calls the kernels make cannot fail on the CPU.
#pragma once
#include <cuda_runtime.h>

#include "cudagrad/error.hpp"
#include "registry_internal.hpp"

#define CUDAGRAD_LAUNCH_CHECK(kernel) ((void)0)
#define CUDAGRAD_CUDA_CHECK(call) ((void)(call))
