// Per-device contexts: stream, cuDNN and cuBLAS handles, properties, workspace. See context.hpp.
#include <memory>
#include <mutex>
#include <vector>

#include "cuda/context.hpp"
#include "cuda/runtime.hpp"

namespace cudagrad::cuda {
namespace {

std::unique_ptr<Context> create_context(int device) {
    auto created = std::make_unique<Context>();
    created->device = device;
    CUDAGRAD_CUDA_CHECK(cudaSetDevice(device));
    CUDAGRAD_CUDA_CHECK(cudaGetDeviceProperties(&created->properties, device));
    // Non-blocking: the legacy default stream (which some libraries use implicitly) does not
    // serialise against ours.
    CUDAGRAD_CUDA_CHECK(cudaStreamCreateWithFlags(&created->stream, cudaStreamNonBlocking));
    CUDAGRAD_CUDNN_CHECK(cudnnCreate(&created->cudnn));
    CUDAGRAD_CUDNN_CHECK(cudnnSetStream(created->cudnn, created->stream));
    CUDAGRAD_CUBLAS_CHECK(cublasCreate(&created->cublas));
    CUDAGRAD_CUBLAS_CHECK(cublasSetStream(created->cublas, created->stream));
    // Plain fp32 unless an op asks for tensor-core math explicitly (cublas_gemm.cu sets it per call).
    CUDAGRAD_CUBLAS_CHECK(cublasSetMathMode(created->cublas, CUBLAS_DEFAULT_MATH));
    return created;
}

}  // namespace

Context& context(int device) {
    // Never destroyed: tensors in static storage may free memory on these streams at exit.
    static std::mutex* mutex = new std::mutex;
    static auto* contexts = new std::vector<std::unique_ptr<Context>>;
    std::lock_guard<std::mutex> lock(*mutex);
    if (device >= static_cast<int>(contexts->size())) contexts->resize(static_cast<std::size_t>(device) + 1);
    auto& slot = (*contexts)[static_cast<std::size_t>(device)];
    if (!slot) slot = create_context(device);
    return *slot;
}

Context& current_context() { return context(current_device()); }

void* workspace(std::size_t bytes) {
    Context& current = current_context();
    if (bytes > current.workspace_bytes) {
        Allocator& allocator = device_allocator(current.device);
        if (current.workspace) allocator.deallocate(current.workspace, current.workspace_bytes);
        current.workspace = nullptr;
        current.workspace_bytes = 0;
        current.workspace = allocator.allocate(bytes);
        current.workspace_bytes = bytes;
    }
    return current.workspace;
}

}  // namespace cudagrad::cuda
