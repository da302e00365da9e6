// Checking every CUDA runtime call: the error names the call, the file and the line.
// The macro exists only because a function cannot see the text of its argument expression.
#pragma once

#include <cuda_runtime.h>

#include <string>

#include "cudagrad/error.hpp"

namespace cudagrad::cuda {

inline void check_cuda(cudaError_t status, const char* call, const char* file, int line) {
    if (status != cudaSuccess) {
        throw Error(std::string("CUDA error ") + cudaGetErrorName(status) + " (" + cudaGetErrorString(status) +
                    ") in " + call + " at " + file + ":" + std::to_string(line));
    }
}

}  // namespace cudagrad::cuda

#define CUDAGRAD_CUDA_CHECK(call) ::cudagrad::cuda::check_cuda((call), #call, __FILE__, __LINE__)
