// The host-side face of the CUDA runtime, free of CUDA headers so plain C++ files can call it.
// Compiled only when the library is built with CUDA (CUDAGRAD_WITH_CUDA).
#pragma once

#include <string>

namespace cudagrad::cuda {

// Number of CUDA devices; 0 when the query fails, with the reason in *reason.
int query_device_count(std::string* reason);

// "NVIDIA H100 80GB HBM3 (sm_90), driver 13.0, runtime 13.0, cuDNN 9.14, cuBLAS 13.0" etc.
std::string describe_device(int index);

}  // namespace cudagrad::cuda
