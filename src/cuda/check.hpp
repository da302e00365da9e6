// Checking every CUDA runtime, cuDNN and cuBLAS call: the error names the call, the file and the
// line. The macros exist only because a function cannot see the text of its argument expression.
//
// cuDNN's CUDNN_STATUS_NOT_SUPPORTED is special: it means "this library will not run this
// configuration", not "something broke", so it throws detail::VendorDeclined, which the op
// dispatch catches to run the hand-written kernel instead (registry_internal.hpp).
#pragma once

#include <cublas_v2.h>
#include <cuda_runtime.h>
#include <cudnn.h>

#include <string>

#include "cudagrad/error.hpp"
#include "registry_internal.hpp"

namespace cudagrad::cuda {

inline std::string call_site(const char* call, const char* file, int line) {
    return std::string(" in ") + call + " at " + file + ":" + std::to_string(line);
}

inline void check_cuda(cudaError_t status, const char* call, const char* file, int line) {
    if (status != cudaSuccess) {
        throw Error(std::string("CUDA error ") + cudaGetErrorName(status) + " (" + cudaGetErrorString(status) + ")" +
                    call_site(call, file, line));
    }
}

inline void check_cudnn(cudnnStatus_t status, const char* call, const char* file, int line) {
    if (status == CUDNN_STATUS_SUCCESS) return;
    std::string message = std::string("cuDNN error ") + cudnnGetErrorString(status) + call_site(call, file, line);
    // cuDNN 9 numbers "not supported" and its refinements (shape, data type, layout, ...) 3000-3999.
    const int code = static_cast<int>(status);
    if (code >= 3000 && code < 4000) throw detail::VendorDeclined(message);
    throw Error(message);
}

inline const char* cublas_status_name(cublasStatus_t status) {
    switch (status) {
        case CUBLAS_STATUS_SUCCESS: return "CUBLAS_STATUS_SUCCESS";
        case CUBLAS_STATUS_NOT_INITIALIZED: return "CUBLAS_STATUS_NOT_INITIALIZED";
        case CUBLAS_STATUS_ALLOC_FAILED: return "CUBLAS_STATUS_ALLOC_FAILED";
        case CUBLAS_STATUS_INVALID_VALUE: return "CUBLAS_STATUS_INVALID_VALUE";
        case CUBLAS_STATUS_ARCH_MISMATCH: return "CUBLAS_STATUS_ARCH_MISMATCH";
        case CUBLAS_STATUS_MAPPING_ERROR: return "CUBLAS_STATUS_MAPPING_ERROR";
        case CUBLAS_STATUS_EXECUTION_FAILED: return "CUBLAS_STATUS_EXECUTION_FAILED";
        case CUBLAS_STATUS_INTERNAL_ERROR: return "CUBLAS_STATUS_INTERNAL_ERROR";
        case CUBLAS_STATUS_NOT_SUPPORTED: return "CUBLAS_STATUS_NOT_SUPPORTED";
        case CUBLAS_STATUS_LICENSE_ERROR: return "CUBLAS_STATUS_LICENSE_ERROR";
    }
    return "unknown cuBLAS status";
}

inline void check_cublas(cublasStatus_t status, const char* call, const char* file, int line) {
    if (status != CUBLAS_STATUS_SUCCESS) {
        throw Error(std::string("cuBLAS error ") + cublas_status_name(status) + call_site(call, file, line));
    }
}

// Kernel launches return nothing: this reads the launch error (bad configuration, no kernel
// image for this GPU) right after the launch, so it is reported at the launch site.
inline void check_launch(const char* kernel, const char* file, int line) {
    check_cuda(cudaGetLastError(), kernel, file, line);
}

}  // namespace cudagrad::cuda

#define CUDAGRAD_CUDA_CHECK(call) ::cudagrad::cuda::check_cuda((call), #call, __FILE__, __LINE__)
#define CUDAGRAD_CUDNN_CHECK(call) ::cudagrad::cuda::check_cudnn((call), #call, __FILE__, __LINE__)
#define CUDAGRAD_CUBLAS_CHECK(call) ::cudagrad::cuda::check_cublas((call), #call, __FILE__, __LINE__)
#define CUDAGRAD_LAUNCH_CHECK(kernel) ::cudagrad::cuda::check_launch(kernel, __FILE__, __LINE__)
