// 2-d pooling over every (n, c) plane: x, dx: (planes, H, W), y, dy: (planes, P, Q), planes = N * C.
//
//   max_pool2d          y[p, q] = max of x over the window (padding is -infinity; NaN wins)
//   avg_pool2d          y[p, q] = sum of x over the window / divisor (kernel area with
//                       count_include_pad, else the part of the window inside the input)
//   adaptive_avg_pool2d y[p, q] = mean over rows [floor(p*H/P), ceil((p+1)*H/P)), likewise columns
//   global_avg_pool2d   y[plane] = mean of the plane
// Windows of max/avg: rows [p*stride - padding, ... + kernel) clipped to the input, P = (H + 2*padding
// - kernel) / stride + 1. Backward: max sends dy to the FIRST maximum of its window in row-major
// order (the forward saves that position, int32, per output); the average pools spread dy/divisor.
// CPU reference: src/cpu/pooling.cpp. The window sums are accumulated in double and the backward
// shares computed as (float)((double)dy / divisor) and added in the same (p, q) order as the CPU,
// so the results agree with it to the last bit except for the global mean's summation order.
//
// Every backward here is a GATHER: one thread per input element visits the outputs whose windows
// cover it (at most ceil(kernel/stride)^2 of them: 4 for ResNet's 3x3/2 max pool) in a fixed
// order. No atomics, so the result is the same on every run, and every dx element is written, so
// dx needs no zeroing pass. (max_pool2d_backward_v1 shows the scatter with atomics it replaces.)
//
// Napkin math (H100, ~3.0 TB/s), ResNet's stem max pool 3x3/2 pad 1 on 128x64x112x112 (x: 411 MB):
//   forward:  reads x (each element by ~2.25 windows, the repeats hit L1/L2), writes y (103 MB) and
//             the int32 argmax (103 MB): 617 MB -> 0.21 ms.
//   backward: reads dy and argmax (206 MB), writes dx (411 MB): 617 MB -> 0.21 ms.
//   (int64 indices, as the CPU keeps, would add 206 MB over the two passes: +0.07 ms.)
// Global average pool on 128x2048x7x7 (51 MB): forward reads it once (17 us), backward writes it.
// Index math: int32 when every count fits (faster division and multiplies), else int64.
#include <cuda_runtime.h>

#include <cmath>
#include <cstdint>

#include "cuda/check.hpp"
#include "cuda/context.hpp"
#include "cuda/pooling.hpp"

namespace cudagrad::cuda {
namespace {

constexpr int threads_per_block = 256;
constexpr int warps_per_block = threads_per_block / 32;
// Counts below this use int32 index math: a grid-stride index (count + one grid of threads) then
// still fits in int32.
constexpr std::int64_t int32_index_limit = std::int64_t{1} << 30;

template <typename Index>
struct Geometry {
    Index planes, input_h, input_w, output_h, output_w, kernel_h, kernel_w, stride_h, stride_w, padding_h, padding_w;
};

template <typename Index>
Geometry<Index> narrow(const PoolGeometry& g) {
    return {static_cast<Index>(g.planes()), static_cast<Index>(g.input_h),   static_cast<Index>(g.input_w),
            static_cast<Index>(g.output_h), static_cast<Index>(g.output_w),  static_cast<Index>(g.kernel_h),
            static_cast<Index>(g.kernel_w), static_cast<Index>(g.stride_h),  static_cast<Index>(g.stride_w),
            static_cast<Index>(g.padding_h), static_cast<Index>(g.padding_w)};
}

// One window along one axis: [start, end) clipped to the input, and the unclipped length up to
// input + padding (the count_include_pad divisor), as pool_window in src/cpu/pooling.cpp.
template <typename Index>
struct Span {
    Index start, end, padded_length;
};

template <typename Index>
__device__ Span<Index> pool_span(Index output_index, Index stride, Index padding, Index kernel, Index input_size) {
    const Index start = output_index * stride - padding;
    const Index end = min(start + kernel, input_size + padding);
    return {max(start, Index(0)), min(end, input_size), end - start};
}

// The outputs whose windows cover input index i along one axis: [first, last).
template <typename Index>
__device__ Span<Index> covering_outputs(Index i, Index stride, Index padding, Index kernel, Index output_size) {
    const Index first = i + padding < kernel ? Index(0) : (i + padding - kernel) / stride + 1;
    const Index last = min((i + padding) / stride + 1, output_size);
    return {first, last, last - first};
}

template <typename Index>
__device__ Index divisor_of(const Span<Index>& row, const Span<Index>& column, bool count_include_pad) {
    return count_include_pad ? row.padded_length * column.padded_length
                             : (row.end - row.start) * (column.end - column.start);
}

// PyTorch's adaptive window along one axis (64-bit: i * input_size can exceed int32).
__device__ Span<std::int64_t> adaptive_span(std::int64_t i, std::int64_t input_size, std::int64_t output_size) {
    const std::int64_t start = i * input_size / output_size;
    const std::int64_t end = ((i + 1) * input_size + output_size - 1) / output_size;
    return {start, end, end - start};
}

template <typename Index>
__global__ void max_pool_forward_kernel(const float* __restrict__ x, float* __restrict__ y,
                                        std::int32_t* __restrict__ argmax, Geometry<Index> g, Index count) {
    const Index step = static_cast<Index>(gridDim.x) * blockDim.x;
    for (Index o = static_cast<Index>(blockIdx.x) * blockDim.x + threadIdx.x; o < count; o += step) {
        const Index q = o % g.output_w, rest = o / g.output_w;
        const Index p = rest % g.output_h, plane = rest / g.output_h;
        const Span<Index> row = pool_span(p, g.stride_h, g.padding_h, g.kernel_h, g.input_h);
        const Span<Index> column = pool_span(q, g.stride_w, g.padding_w, g.kernel_w, g.input_w);
        const float* input = x + static_cast<std::int64_t>(plane) * g.input_h * g.input_w;
        float best = -INFINITY;
        Index best_index = row.start * g.input_w + column.start;  // all -inf: the first real position
        for (Index h = row.start; h < row.end; ++h) {
            for (Index w = column.start; w < column.end; ++w) {
                const float value = input[h * g.input_w + w];
                // Strictly greater: a tie keeps the first maximum. NaN always takes over (the CPU
                // rule, so with several NaNs the last one wins there and here).
                if (value > best || isnan(value)) {
                    best = value;
                    best_index = h * g.input_w + w;
                }
            }
        }
        y[o] = best;
        if (argmax) argmax[o] = static_cast<std::int32_t>(best_index);
    }
}

template <typename Index>
__global__ void max_pool_backward_scatter_kernel(const float* __restrict__ dy, const std::int32_t* __restrict__ argmax,
                                                 float* __restrict__ dx, Geometry<Index> g, Index count) {
    const Index step = static_cast<Index>(gridDim.x) * blockDim.x;
    const Index output_plane = g.output_h * g.output_w, input_plane = g.input_h * g.input_w;
    for (Index o = static_cast<Index>(blockIdx.x) * blockDim.x + threadIdx.x; o < count; o += step) {
        atomicAdd(dx + static_cast<std::int64_t>(o / output_plane) * input_plane + argmax[o], dy[o]);
    }
}

template <typename Index>
__global__ void max_pool_backward_gather_kernel(const float* __restrict__ dy, const std::int32_t* __restrict__ argmax,
                                                float* __restrict__ dx, Geometry<Index> g, Index count) {
    const Index step = static_cast<Index>(gridDim.x) * blockDim.x;
    for (Index i = static_cast<Index>(blockIdx.x) * blockDim.x + threadIdx.x; i < count; i += step) {
        const Index w = i % g.input_w, rest = i / g.input_w;
        const Index h = rest % g.input_h, plane = rest / g.input_h;
        const Span<Index> rows = covering_outputs(h, g.stride_h, g.padding_h, g.kernel_h, g.output_h);
        const Span<Index> columns = covering_outputs(w, g.stride_w, g.padding_w, g.kernel_w, g.output_w);
        const std::int32_t target = static_cast<std::int32_t>(h * g.input_w + w);
        const Index plane_start = plane * g.output_h * g.output_w;
        float sum = 0.0f;
        for (Index p = rows.start; p < rows.end; ++p) {
            for (Index q = columns.start; q < columns.end; ++q) {
                const Index o = plane_start + p * g.output_w + q;
                if (argmax[o] == target) sum += dy[o];
            }
        }
        dx[i] = sum;
    }
}

template <typename Index>
__global__ void avg_pool_forward_kernel(const float* __restrict__ x, float* __restrict__ y, Geometry<Index> g,
                                        bool count_include_pad, Index count) {
    const Index step = static_cast<Index>(gridDim.x) * blockDim.x;
    for (Index o = static_cast<Index>(blockIdx.x) * blockDim.x + threadIdx.x; o < count; o += step) {
        const Index q = o % g.output_w, rest = o / g.output_w;
        const Index p = rest % g.output_h, plane = rest / g.output_h;
        const Span<Index> row = pool_span(p, g.stride_h, g.padding_h, g.kernel_h, g.input_h);
        const Span<Index> column = pool_span(q, g.stride_w, g.padding_w, g.kernel_w, g.input_w);
        const float* input = x + static_cast<std::int64_t>(plane) * g.input_h * g.input_w;
        double sum = 0.0;
        for (Index h = row.start; h < row.end; ++h) {
            for (Index w = column.start; w < column.end; ++w) sum += static_cast<double>(input[h * g.input_w + w]);
        }
        y[o] = static_cast<float>(sum / static_cast<double>(divisor_of(row, column, count_include_pad)));
    }
}

template <typename Index>
__global__ void avg_pool_backward_gather_kernel(const float* __restrict__ dy, float* __restrict__ dx,
                                                Geometry<Index> g, bool count_include_pad, Index count) {
    const Index step = static_cast<Index>(gridDim.x) * blockDim.x;
    for (Index i = static_cast<Index>(blockIdx.x) * blockDim.x + threadIdx.x; i < count; i += step) {
        const Index w = i % g.input_w, rest = i / g.input_w;
        const Index h = rest % g.input_h, plane = rest / g.input_h;
        const Span<Index> rows = covering_outputs(h, g.stride_h, g.padding_h, g.kernel_h, g.output_h);
        const Span<Index> columns = covering_outputs(w, g.stride_w, g.padding_w, g.kernel_w, g.output_w);
        const Index plane_start = plane * g.output_h * g.output_w;
        float sum = 0.0f;
        for (Index p = rows.start; p < rows.end; ++p) {
            const Span<Index> row = pool_span(p, g.stride_h, g.padding_h, g.kernel_h, g.input_h);
            for (Index q = columns.start; q < columns.end; ++q) {
                const Span<Index> column = pool_span(q, g.stride_w, g.padding_w, g.kernel_w, g.input_w);
                const double divisor = static_cast<double>(divisor_of(row, column, count_include_pad));
                sum += static_cast<float>(static_cast<double>(dy[plane_start + p * g.output_w + q]) / divisor);
            }
        }
        dx[i] = sum;
    }
}

template <typename Index>
__global__ void adaptive_forward_kernel(const float* __restrict__ x, float* __restrict__ y, Geometry<Index> g,
                                        Index count) {
    const Index step = static_cast<Index>(gridDim.x) * blockDim.x;
    for (Index o = static_cast<Index>(blockIdx.x) * blockDim.x + threadIdx.x; o < count; o += step) {
        const Index q = o % g.output_w, rest = o / g.output_w;
        const Index p = rest % g.output_h, plane = rest / g.output_h;
        const Span<std::int64_t> row = adaptive_span(p, g.input_h, g.output_h);
        const Span<std::int64_t> column = adaptive_span(q, g.input_w, g.output_w);
        const float* input = x + static_cast<std::int64_t>(plane) * g.input_h * g.input_w;
        double sum = 0.0;
        for (std::int64_t h = row.start; h < row.end; ++h) {
            for (std::int64_t w = column.start; w < column.end; ++w) sum += static_cast<double>(input[h * g.input_w + w]);
        }
        y[o] = static_cast<float>(sum / static_cast<double>(row.padded_length * column.padded_length));
    }
}

template <typename Index>
__global__ void adaptive_backward_gather_kernel(const float* __restrict__ dy, float* __restrict__ dx,
                                                Geometry<Index> g, Index count) {
    const Index step = static_cast<Index>(gridDim.x) * blockDim.x;
    for (Index i = static_cast<Index>(blockIdx.x) * blockDim.x + threadIdx.x; i < count; i += step) {
        const Index w = i % g.input_w, rest = i / g.input_w;
        const Index h = rest % g.input_h, plane = rest / g.input_h;
        // Candidates p in [floor(h*P/H), ceil((h+1)*P/H)); each is checked against its window.
        const std::int64_t p_first = static_cast<std::int64_t>(h) * g.output_h / g.input_h;
        const std::int64_t p_last = min(static_cast<std::int64_t>(g.output_h),
                                        ((h + std::int64_t{1}) * g.output_h + g.input_h - 1) / g.input_h);
        const std::int64_t q_first = static_cast<std::int64_t>(w) * g.output_w / g.input_w;
        const std::int64_t q_last = min(static_cast<std::int64_t>(g.output_w),
                                        ((w + std::int64_t{1}) * g.output_w + g.input_w - 1) / g.input_w);
        const float* gradients = dy + static_cast<std::int64_t>(plane) * g.output_h * g.output_w;
        float sum = 0.0f;
        for (std::int64_t p = p_first; p < p_last; ++p) {
            const Span<std::int64_t> row = adaptive_span(p, g.input_h, g.output_h);
            if (h < row.start || h >= row.end) continue;
            for (std::int64_t q = q_first; q < q_last; ++q) {
                const Span<std::int64_t> column = adaptive_span(q, g.input_w, g.output_w);
                if (w < column.start || w >= column.end) continue;
                const double area = static_cast<double>(row.padded_length * column.padded_length);
                sum += static_cast<float>(static_cast<double>(gradients[p * g.output_w + q]) / area);
            }
        }
        dx[i] = sum;
    }
}

// One warp per plane: lanes stride over the plane, then a shuffle reduction.
__global__ void global_avg_forward_kernel(const float* __restrict__ x, float* __restrict__ y, std::int64_t planes,
                                          std::int64_t plane_size) {
    const std::int64_t plane = static_cast<std::int64_t>(blockIdx.x) * warps_per_block + threadIdx.x / 32;
    if (plane >= planes) return;  // the whole warp leaves together
    const int lane = threadIdx.x % 32;
    const float* input = x + plane * plane_size;
    double sum = 0.0;
    for (std::int64_t i = lane; i < plane_size; i += 32) sum += static_cast<double>(input[i]);
    for (int offset = 16; offset > 0; offset /= 2) sum += __shfl_down_sync(0xffffffffu, sum, offset);
    if (lane == 0) y[plane] = static_cast<float>(sum / static_cast<double>(plane_size));
}

__global__ void global_avg_backward_kernel(const float* __restrict__ dy, float* __restrict__ dx, std::int64_t planes,
                                           std::int64_t plane_size) {
    const std::int64_t plane = static_cast<std::int64_t>(blockIdx.x) * warps_per_block + threadIdx.x / 32;
    if (plane >= planes) return;
    const float share = static_cast<float>(static_cast<double>(dy[plane]) / static_cast<double>(plane_size));
    float* output = dx + plane * plane_size;
    for (std::int64_t i = threadIdx.x % 32; i < plane_size; i += 32) output[i] = share;
}

bool fits_int32(const PoolGeometry& g) {
    return g.planes() * g.input_h * g.input_w < int32_index_limit &&
           g.planes() * g.output_h * g.output_w < int32_index_limit;
}

// Launches kernel<Index> over `count` items with Index = int32 when the geometry allows.
template <typename Launch>
void launch_indexed(const PoolGeometry& g, std::int64_t count, const char* name, Launch&& launch) {
    if (count == 0) return;
    const unsigned int blocks = grid_for(count, threads_per_block);
    if (fits_int32(g)) {
        launch(std::int32_t{}, blocks);
    } else {
        launch(std::int64_t{}, blocks);
    }
    CUDAGRAD_LAUNCH_CHECK(name);
}

PoolGeometry adaptive_geometry(std::int64_t planes, std::int64_t input_h, std::int64_t input_w, std::int64_t output_h,
                               std::int64_t output_w) {
    PoolGeometry g;
    g.batch = planes;
    g.channels = 1;
    g.input_h = input_h;
    g.input_w = input_w;
    g.output_h = output_h;
    g.output_w = output_w;
    return g;
}

unsigned int warp_per_plane_blocks(std::int64_t planes) {
    return static_cast<unsigned int>((planes + warps_per_block - 1) / warps_per_block);
}

}  // namespace

void max_pool2d_forward(const float* x, float* y, std::int32_t* argmax, const PoolGeometry& g) {
    const std::int64_t count = g.planes() * g.output_h * g.output_w;
    launch_indexed(g, count, "max_pool_forward_kernel", [&](auto zero, unsigned int blocks) {
        using Index = decltype(zero);
        max_pool_forward_kernel<Index><<<blocks, threads_per_block, 0, current_stream()>>>(
            x, y, argmax, narrow<Index>(g), static_cast<Index>(count));
    });
}

void max_pool2d_backward_v1_atomic_scatter(const float* dy, const std::int32_t* argmax, float* dx,
                                           const PoolGeometry& g) {
    const std::int64_t input_count = g.planes() * g.input_h * g.input_w;
    CUDAGRAD_CUDA_CHECK(cudaMemsetAsync(dx, 0, static_cast<std::size_t>(input_count) * sizeof(float), current_stream()));
    const std::int64_t count = g.planes() * g.output_h * g.output_w;
    launch_indexed(g, count, "max_pool_backward_scatter_kernel", [&](auto zero, unsigned int blocks) {
        using Index = decltype(zero);
        max_pool_backward_scatter_kernel<Index><<<blocks, threads_per_block, 0, current_stream()>>>(
            dy, argmax, dx, narrow<Index>(g), static_cast<Index>(count));
    });
}

void max_pool2d_backward_v2_gather(const float* dy, const std::int32_t* argmax, float* dx, const PoolGeometry& g) {
    const std::int64_t count = g.planes() * g.input_h * g.input_w;
    launch_indexed(g, count, "max_pool_backward_gather_kernel", [&](auto zero, unsigned int blocks) {
        using Index = decltype(zero);
        max_pool_backward_gather_kernel<Index><<<blocks, threads_per_block, 0, current_stream()>>>(
            dy, argmax, dx, narrow<Index>(g), static_cast<Index>(count));
    });
}

void max_pool2d_backward(const float* dy, const std::int32_t* argmax, float* dx, const PoolGeometry& g) {
    max_pool2d_backward_v2_gather(dy, argmax, dx, g);
}

void avg_pool2d_forward(const float* x, float* y, const PoolGeometry& g, bool count_include_pad) {
    const std::int64_t count = g.planes() * g.output_h * g.output_w;
    launch_indexed(g, count, "avg_pool_forward_kernel", [&](auto zero, unsigned int blocks) {
        using Index = decltype(zero);
        avg_pool_forward_kernel<Index><<<blocks, threads_per_block, 0, current_stream()>>>(
            x, y, narrow<Index>(g), count_include_pad, static_cast<Index>(count));
    });
}

void avg_pool2d_backward(const float* dy, float* dx, const PoolGeometry& g, bool count_include_pad) {
    const std::int64_t count = g.planes() * g.input_h * g.input_w;
    launch_indexed(g, count, "avg_pool_backward_gather_kernel", [&](auto zero, unsigned int blocks) {
        using Index = decltype(zero);
        avg_pool_backward_gather_kernel<Index><<<blocks, threads_per_block, 0, current_stream()>>>(
            dy, dx, narrow<Index>(g), count_include_pad, static_cast<Index>(count));
    });
}

void adaptive_avg_pool2d_forward(const float* x, float* y, std::int64_t planes, std::int64_t input_h,
                                 std::int64_t input_w, std::int64_t output_h, std::int64_t output_w) {
    const PoolGeometry g = adaptive_geometry(planes, input_h, input_w, output_h, output_w);
    const std::int64_t count = planes * output_h * output_w;
    launch_indexed(g, count, "adaptive_forward_kernel", [&](auto zero, unsigned int blocks) {
        using Index = decltype(zero);
        adaptive_forward_kernel<Index><<<blocks, threads_per_block, 0, current_stream()>>>(
            x, y, narrow<Index>(g), static_cast<Index>(count));
    });
}

void adaptive_avg_pool2d_backward(const float* dy, float* dx, std::int64_t planes, std::int64_t input_h,
                                  std::int64_t input_w, std::int64_t output_h, std::int64_t output_w) {
    const PoolGeometry g = adaptive_geometry(planes, input_h, input_w, output_h, output_w);
    const std::int64_t count = planes * input_h * input_w;
    launch_indexed(g, count, "adaptive_backward_gather_kernel", [&](auto zero, unsigned int blocks) {
        using Index = decltype(zero);
        adaptive_backward_gather_kernel<Index><<<blocks, threads_per_block, 0, current_stream()>>>(
            dy, dx, narrow<Index>(g), static_cast<Index>(count));
    });
}

void global_avg_pool2d_forward(const float* x, float* y, std::int64_t planes, std::int64_t plane_size) {
    if (planes == 0) return;
    global_avg_forward_kernel<<<warp_per_plane_blocks(planes), threads_per_block, 0, current_stream()>>>(
        x, y, planes, plane_size);
    CUDAGRAD_LAUNCH_CHECK("global_avg_forward_kernel");
}

void global_avg_pool2d_backward(const float* dy, float* dx, std::int64_t planes, std::int64_t plane_size) {
    if (planes == 0) return;
    global_avg_backward_kernel<<<warp_per_plane_blocks(planes), threads_per_block, 0, current_stream()>>>(
        dy, dx, planes, plane_size);
    CUDAGRAD_LAUNCH_CHECK("global_avg_backward_kernel");
}

}  // namespace cudagrad::cuda
