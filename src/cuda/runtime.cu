// Device discovery. Any error from the device query means "no GPU": on a machine without a
// driver cudaGetDeviceCount returns cudaErrorInsufficientDriver (35) and leaves the count
// untouched, so the count starts at 0.
#include <cuda_runtime.h>
#include <cudnn.h>
#include <cublas_v2.h>

#include <sstream>

#include "cuda/check.hpp"
#include "cuda/runtime.hpp"

static_assert(CUDNN_MAJOR >= 9, "cudagrad needs cuDNN 9 or newer");

namespace cudagrad::cuda {

int query_device_count(std::string* reason) {
    int count = 0;
    cudaError_t status = cudaGetDeviceCount(&count);
    if (status != cudaSuccess) {
        if (reason) *reason = std::string(cudaGetErrorName(status)) + ": " + cudaGetErrorString(status);
        cudaGetLastError();  // clear the sticky error so later queries start clean
        return 0;
    }
    if (count == 0 && reason) *reason = "the driver reports no CUDA devices";
    return count;
}

std::string describe_device(int index) {
    cudaDeviceProp properties{};
    check_cuda(cudaGetDeviceProperties(&properties, index), "cudaGetDeviceProperties(&properties, index)",
               __FILE__, __LINE__);
    int driver = 0;
    int runtime = 0;
    check_cuda(cudaDriverGetVersion(&driver), "cudaDriverGetVersion(&driver)", __FILE__, __LINE__);
    check_cuda(cudaRuntimeGetVersion(&runtime), "cudaRuntimeGetVersion(&runtime)", __FILE__, __LINE__);
    std::ostringstream text;
    text << properties.name << " (sm_" << properties.major << properties.minor << ", "
         << properties.totalGlobalMem / (1024 * 1024) << " MiB), driver " << driver / 1000 << '.'
         << (driver % 1000) / 10 << ", runtime " << runtime / 1000 << '.' << (runtime % 1000) / 10
         << ", cuDNN " << cudnnGetVersion() << " (built with " << CUDNN_MAJOR << '.' << CUDNN_MINOR << ')';
    return text.str();
}

}  // namespace cudagrad::cuda
