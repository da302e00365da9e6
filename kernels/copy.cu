// Strided copy with dtype conversion, and fill: the device side of Tensor::copy_, contiguous(),
// to(dtype) and fill_().
//
//   destination[i] = convert(source[i])  for every multi-index i of shape (up to 8 dimensions)
//
// Each thread turns its linear (row-major) index into a multi-index by repeated division, then
// into an element offset in each layout. The divisions cost more than the memory traffic only
// for tiny elements; a copy of contiguous same-dtype tensors never comes here (tensor.cpp
// uses cudaMemcpyAsync), so this kernel serves transposes and conversions, which are rare in a
// training step.
//
// Speed: memory bound. A float32 -> float32 transpose reads 4 and writes 4 bytes per element;
// one side is uncoalesced, so expect a fraction of the ~3 TB/s copy bandwidth.
#include <cuda_runtime.h>

#include <cstdint>

#include "cuda/check.hpp"
#include "cuda/context.hpp"
#include "cuda/copy.hpp"

namespace cudagrad::cuda {
namespace {

constexpr int threads_per_block = 256;

// Kernel arguments are passed by value (up to 4 KiB), so the layout travels with the launch.
struct Layout {
    int dims;
    std::int64_t shape[max_copy_dims];
    std::int64_t destination_strides[max_copy_dims];
    std::int64_t source_strides[max_copy_dims];
};

template <typename Destination, typename Source>
__global__ void strided_copy_kernel(Destination* destination, const Source* source, Layout layout,
                                    std::int64_t count) {
    for (std::int64_t linear = blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x; linear < count;
         linear += static_cast<std::int64_t>(gridDim.x) * blockDim.x) {
        std::int64_t remaining = linear, destination_offset = 0, source_offset = 0;
        for (int d = layout.dims - 1; d >= 0; --d) {
            const std::int64_t index = remaining % layout.shape[d];
            remaining /= layout.shape[d];
            destination_offset += index * layout.destination_strides[d];
            source_offset += index * layout.source_strides[d];
        }
        destination[destination_offset] = static_cast<Destination>(source[source_offset]);
    }
}

template <typename T>
__global__ void strided_fill_kernel(T* destination, T value, Layout layout, std::int64_t count) {
    for (std::int64_t linear = blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x; linear < count;
         linear += static_cast<std::int64_t>(gridDim.x) * blockDim.x) {
        std::int64_t remaining = linear, offset = 0;
        for (int d = layout.dims - 1; d >= 0; --d) {
            offset += (remaining % layout.shape[d]) * layout.destination_strides[d];
            remaining /= layout.shape[d];
        }
        destination[offset] = value;
    }
}

// Calls body(T{}) with the C++ type of a dtype.
template <typename Body>
void with_type(DType dtype, Body&& body) {
    switch (dtype) {
        case DType::Float32: body(float{}); return;
        case DType::Float64: body(double{}); return;
        case DType::Int64: body(std::int64_t{}); return;
    }
}

Layout make_layout(const StridedView& destination, const StridedView& source, std::int64_t* count) {
    check(destination.dims <= max_copy_dims, "strided_copy", "tensors of more than ", max_copy_dims,
          " dimensions are not supported on the GPU (got ", destination.dims, ")");
    Layout layout{};
    layout.dims = destination.dims;
    *count = 1;
    for (int d = 0; d < destination.dims; ++d) {
        layout.shape[d] = destination.shape[d];
        layout.destination_strides[d] = destination.strides[d];
        layout.source_strides[d] = source.strides[d];
        *count *= destination.shape[d];
    }
    return layout;
}

}  // namespace

void strided_copy(const StridedView& destination, const StridedView& source) {
    std::int64_t count = 0;
    const Layout layout = make_layout(destination, source, &count);
    if (count == 0) return;
    const unsigned int blocks = grid_for(count, threads_per_block);
    with_type(destination.dtype, [&](auto destination_zero) {
        using Destination = decltype(destination_zero);
        with_type(source.dtype, [&](auto source_zero) {
            using Source = decltype(source_zero);
            strided_copy_kernel<<<blocks, threads_per_block, 0, current_stream()>>>(
                static_cast<Destination*>(destination.data), static_cast<const Source*>(source.data), layout, count);
            CUDAGRAD_LAUNCH_CHECK("strided_copy_kernel");
        });
    });
}

void strided_fill(const StridedView& destination, double value) {
    std::int64_t count = 0;
    const Layout layout = make_layout(destination, destination, &count);
    if (count == 0) return;
    const unsigned int blocks = grid_for(count, threads_per_block);
    with_type(destination.dtype, [&](auto zero) {
        using T = decltype(zero);
        strided_fill_kernel<<<blocks, threads_per_block, 0, current_stream()>>>(
            static_cast<T*>(destination.data), static_cast<T>(value), layout, count);
        CUDAGRAD_LAUNCH_CHECK("strided_fill_kernel");
    });
}

}  // namespace cudagrad::cuda
