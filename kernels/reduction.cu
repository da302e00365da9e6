// Reductions over contiguous float32 arrays: sum of everything (sum, mean), sum over one
// dimension and its gradient, argmax over one dimension, and the top-k hit count of accuracy.
//
//   sum_all:            result = float(sum_i x[i] / divisor)
//   sum_over_dimension: y[o, i] = sum_r x[o, r, i]          x: (outer, extent, inner)
//   broadcast:          dx[o, r, i] = dy[o, i]
//   argmax:             index[o, i] = first r with the largest x[o, r, i] (NaN largest)
//   count_top_k_hits:   #rows n with |{c : c ranks before labels[n]}| < k   logits: (rows, classes)
// CPU reference: src/cpu/reduction.cpp (sums accumulated in double, first maximum on ties, a
// NaN beats any number) and examples/resnet50/common.cpp top_k (ties: the lower class first).
//
// Determinism: no float atomics anywhere. Each thread owns a fixed set of elements, and partial
// sums are combined in a fixed tree (warp shuffles, then one value per warp in shared memory),
// so a sum is the same bits on every run of the same GPU. Sums are kept in double, as the CPU:
// H100 adds doubles at ~30 TFLOP/s, far above the ~0.75 T float loads per second that the
// memory can deliver, so double costs nothing here (it would on a consumer GPU, 1/64 rate).
//
// Napkin math (H100, ~3.0 TB/s): every kernel reads each input element once and does one add or
// compare on it, so all are memory bound. sum_all of a 128x256x56x56 activation reads 411 MB:
// 0.14 ms. The second pass reads at most 1024 doubles, a few microseconds of launch latency.
// argmax / top-k over (256, 1000) logits read 1 MB: launch-latency bound (~5 us).
#include <cuda_runtime.h>

#include <cmath>
#include <cstdint>

#include "cuda/check.hpp"
#include "cuda/context.hpp"
#include "cuda/reduction.hpp"

namespace cudagrad::cuda {
namespace {

constexpr int threads_per_block = 256;  // a multiple of 32: the reductions below rely on it
constexpr int warps_per_block = threads_per_block / 32;
constexpr int final_threads = 1024;     // the second pass: one block, one partial per thread
constexpr std::int64_t max_partials = final_threads;
constexpr unsigned int full_mask = 0xffffffffu;

// ---------------------------------------------------------------- block-level building blocks

template <typename T>
__device__ T warp_sum(T value) {
    for (int offset = 16; offset > 0; offset /= 2) value += __shfl_down_sync(full_mask, value, offset);
    return value;  // the total is in lane 0
}

// The sum of `value` over the block, valid in thread 0. Every thread of the block must call it
// (it synchronises). `warp_totals` is a __shared__ array of one entry per warp. The barrier at
// the start makes repeated calls in a loop safe: nobody overwrites warp_totals before everyone
// has read the previous round.
template <typename T>
__device__ T block_sum(T value, T* warp_totals) {
    const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
    value = warp_sum(value);
    __syncthreads();
    if (lane == 0) warp_totals[warp] = value;
    __syncthreads();
    const int warps = static_cast<int>(blockDim.x) / 32;
    value = static_cast<int>(threadIdx.x) < warps ? warp_totals[threadIdx.x] : T(0);
    if (warp == 0) value = warp_sum(value);
    return value;
}

// ---------------------------------------------------------------- sum of all elements

// Pass 1: block b sums a grid-strided share of x (float4 loads when x is 16-byte aligned).
template <bool vectorized>
__global__ void sum_partials_kernel(const float* x, std::int64_t count, double* partials) {
    __shared__ double warp_totals[warps_per_block];
    const std::int64_t stride = static_cast<std::int64_t>(gridDim.x) * blockDim.x;
    const std::int64_t first = blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x;
    double total = 0.0;
    std::int64_t scalar_begin = 0;
    if constexpr (vectorized) {
        const float4* x4 = reinterpret_cast<const float4*>(x);
        const std::int64_t vectors = count / 4;
        for (std::int64_t v = first; v < vectors; v += stride) {
            const float4 values = x4[v];
            total += static_cast<double>(values.x) + static_cast<double>(values.y) + static_cast<double>(values.z) +
                     static_cast<double>(values.w);
        }
        scalar_begin = vectors * 4;
    }
    for (std::int64_t i = scalar_begin + first; i < count; i += stride) total += static_cast<double>(x[i]);
    total = block_sum(total, warp_totals);
    if (threadIdx.x == 0) partials[blockIdx.x] = total;
}

// Pass 2: one block adds the partials up in a fixed order and scales.
__global__ void sum_finish_kernel(const double* partials, std::int64_t partial_count, double divisor, float* result) {
    __shared__ double warp_totals[final_threads / 32];
    double total = 0.0;
    for (std::int64_t i = threadIdx.x; i < partial_count; i += blockDim.x) total += partials[i];
    total = block_sum(total, warp_totals);
    if (threadIdx.x == 0) result[0] = static_cast<float>(total / divisor);
}

__global__ void fill_with_scalar_kernel(const float* value, double divisor, float* y, std::int64_t count) {
    const float constant = static_cast<float>(static_cast<double>(value[0]) / divisor);
    const std::int64_t stride = static_cast<std::int64_t>(gridDim.x) * blockDim.x;
    for (std::int64_t i = blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x; i < count; i += stride) {
        y[i] = constant;
    }
}

// ---------------------------------------------------------------- sum over one dimension

// inner == 1, short rows: one warp per row; lanes stride along the row (coalesced).
__global__ void sum_rows_warp_kernel(const float* x, float* y, std::int64_t rows, std::int64_t extent) {
    const int lane = threadIdx.x % 32;
    const std::int64_t warp = (blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x) / 32;
    const std::int64_t warp_stride = static_cast<std::int64_t>(gridDim.x) * blockDim.x / 32;
    for (std::int64_t row = warp; row < rows; row += warp_stride) {  // uniform across the warp
        const float* values = x + row * extent;
        double total = 0.0;
        for (std::int64_t r = lane; r < extent; r += 32) total += static_cast<double>(values[r]);
        total = warp_sum(total);
        if (lane == 0) y[row] = static_cast<float>(total);
    }
}

// inner == 1, long rows: one block per row (the loop over rows is uniform across the block).
__global__ void sum_rows_block_kernel(const float* x, float* y, std::int64_t rows, std::int64_t extent) {
    __shared__ double warp_totals[warps_per_block];
    for (std::int64_t row = blockIdx.x; row < rows; row += gridDim.x) {
        const float* values = x + row * extent;
        double total = 0.0;
        for (std::int64_t r = threadIdx.x; r < extent; r += blockDim.x) total += static_cast<double>(values[r]);
        total = block_sum(total, warp_totals);
        if (threadIdx.x == 0) y[row] = static_cast<float>(total);
    }
}

// inner > 1: a block handles 32 adjacent columns of one outer index; its 8 warps split the
// extent (warp w takes rows w, w + 8, ...), each lane one column, so every warp load is 32
// consecutive floats. The 8 partial sums of a column are then added in warp order.
__global__ void sum_columns_kernel(const float* x, float* y, std::int64_t outer, std::int64_t extent,
                                   std::int64_t inner) {
    __shared__ double partial[warps_per_block][32];
    const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
    const std::int64_t tiles = (inner + 31) / 32;
    for (std::int64_t task = blockIdx.x; task < outer * tiles; task += gridDim.x) {  // uniform per block
        const std::int64_t o = task / tiles;
        const std::int64_t column = (task % tiles) * 32 + lane;
        double total = 0.0;
        if (column < inner) {
            for (std::int64_t r = warp; r < extent; r += warps_per_block) {
                total += static_cast<double>(x[(o * extent + r) * inner + column]);
            }
        }
        partial[warp][lane] = total;
        __syncthreads();
        if (warp == 0 && column < inner) {
            double sum = 0.0;
            for (int w = 0; w < warps_per_block; ++w) sum += partial[w][lane];
            y[o * inner + column] = static_cast<float>(sum);
        }
        __syncthreads();  // partial is rewritten by the next task
    }
}

__global__ void broadcast_kernel(const float* y_gradient, float* x_gradient, std::int64_t count, std::int64_t extent,
                                 std::int64_t inner) {
    const std::int64_t stride = static_cast<std::int64_t>(gridDim.x) * blockDim.x;
    for (std::int64_t i = blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x; i < count; i += stride) {
        const std::int64_t o = i / (extent * inner);
        x_gradient[i] = y_gradient[o * inner + i % inner];
    }
}

// ---------------------------------------------------------------- argmax and top-k

__device__ bool is_nan(float value) { return isnan(value); }
__device__ bool is_nan(std::int64_t) { return false; }

// Whether `candidate` is strictly ahead of `best`: larger, or a NaN against a number.
template <typename T>
__device__ bool beats(T candidate, T best) {
    return candidate > best || (is_nan(candidate) && !is_nan(best));
}

// inner == 1: one warp per row. Each lane keeps the first maximum of its strided share (indices
// grow, so a strict `beats` keeps the earliest), then the lanes merge: the one that beats wins,
// and on a tie (equal values, or two NaNs) the lower index wins. index -1: a lane with no
// element (rows shorter than 32).
template <typename T>
__global__ void argmax_rows_kernel(const T* x, std::int64_t* index, std::int64_t rows, std::int64_t extent) {
    const int lane = threadIdx.x % 32;
    const std::int64_t warp = (blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x) / 32;
    const std::int64_t warp_stride = static_cast<std::int64_t>(gridDim.x) * blockDim.x / 32;
    for (std::int64_t row = warp; row < rows; row += warp_stride) {
        const T* values = x + row * extent;
        T best = T(0);
        std::int64_t best_index = -1;
        for (std::int64_t r = lane; r < extent; r += 32) {
            const T value = values[r];
            if (best_index < 0 || beats(value, best)) {
                best = value;
                best_index = r;
            }
        }
        for (int offset = 16; offset > 0; offset /= 2) {
            const T other = __shfl_down_sync(full_mask, best, offset);
            const std::int64_t other_index = __shfl_down_sync(full_mask, best_index, offset);
            if (other_index < 0) continue;
            const bool take = best_index < 0 || beats(other, best) || (!beats(best, other) && other_index < best_index);
            if (take) {
                best = other;
                best_index = other_index;
            }
        }
        if (lane == 0) index[row] = best_index;  // lane 0 always holds element 0, so never -1
    }
}

// inner > 1: one thread per output, walking its column (adjacent threads, adjacent columns).
template <typename T>
__global__ void argmax_columns_kernel(const T* x, std::int64_t* index, std::int64_t outer, std::int64_t extent,
                                      std::int64_t inner) {
    const std::int64_t stride = static_cast<std::int64_t>(gridDim.x) * blockDim.x;
    for (std::int64_t output = blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x;
         output < outer * inner; output += stride) {
        const T* values = x + (output / inner) * extent * inner + output % inner;
        T best = values[0];
        std::int64_t best_index = 0;
        for (std::int64_t r = 1; r < extent; ++r) {
            if (beats(values[r * inner], best)) {
                best = values[r * inner];
                best_index = r;
            }
        }
        index[output] = best_index;
    }
}

// One warp per row counts the classes ranked before the label; each block writes its hit count.
__global__ void top_k_partials_kernel(const float* logits, const std::int64_t* labels, std::int64_t rows,
                                      std::int64_t classes, std::int64_t k, std::int64_t* partials) {
    __shared__ std::int64_t warp_totals[warps_per_block];
    const int lane = threadIdx.x % 32;
    const std::int64_t warp = (blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x) / 32;
    const std::int64_t warp_stride = static_cast<std::int64_t>(gridDim.x) * blockDim.x / 32;
    std::int64_t hits = 0;  // counted in lane 0 of each warp
    for (std::int64_t row = warp; row < rows; row += warp_stride) {
        const std::int64_t label = labels[row];
        if (label < 0 || label >= classes) continue;  // uniform across the warp: a miss
        const float* values = logits + row * classes;
        const float target = values[label];
        std::int64_t ahead = 0;
        for (std::int64_t c = lane; c < classes; c += 32) {
            const float value = values[c];
            ahead += (beats(value, target) || (!beats(target, value) && c < label)) ? 1 : 0;
        }
        ahead = warp_sum(ahead);
        if (lane == 0 && ahead < k) ++hits;
    }
    hits = block_sum(hits, warp_totals);
    if (threadIdx.x == 0) partials[blockIdx.x] = hits;
}

__global__ void top_k_finish_kernel(const std::int64_t* partials, std::int64_t partial_count, std::int64_t* count) {
    __shared__ std::int64_t warp_totals[final_threads / 32];
    std::int64_t total = 0;
    for (std::int64_t i = threadIdx.x; i < partial_count; i += blockDim.x) total += partials[i];
    total = block_sum(total, warp_totals);
    if (threadIdx.x == 0) count[0] = total;
}

// Blocks for a kernel with one warp per row.
unsigned int warp_per_row_blocks(std::int64_t rows) { return grid_for(rows * 32, threads_per_block); }

unsigned int capped_blocks(unsigned int blocks) {
    return blocks < max_partials ? blocks : static_cast<unsigned int>(max_partials);
}

bool aligned_16(const void* pointer) { return reinterpret_cast<std::uintptr_t>(pointer) % 16 == 0; }

unsigned int sum_all_blocks(std::int64_t count) {
    return capped_blocks(grid_for(count / 4 > 0 ? count / 4 : count, threads_per_block));
}

template <typename T>
void launch_argmax(const T* x, std::int64_t* index, std::int64_t outer, std::int64_t extent, std::int64_t inner) {
    if (outer * inner == 0) return;
    check(extent >= 1, "argmax", "the reduced dimension is empty");
    if (inner == 1) {
        argmax_rows_kernel<<<warp_per_row_blocks(outer), threads_per_block, 0, current_stream()>>>(x, index, outer,
                                                                                                   extent);
        CUDAGRAD_LAUNCH_CHECK("argmax_rows_kernel");
    } else {
        argmax_columns_kernel<<<grid_for(outer * inner, threads_per_block), threads_per_block, 0, current_stream()>>>(
            x, index, outer, extent, inner);
        CUDAGRAD_LAUNCH_CHECK("argmax_columns_kernel");
    }
}

}  // namespace

std::int64_t sum_all_partial_count(std::int64_t count) { return sum_all_blocks(count); }

void sum_all(const float* x, std::int64_t count, double divisor, double* partials, float* result) {
    // count 0 is allowed (sum 0, mean 0/0 = NaN, as the CPU): one block writes a zero partial.
    check(count >= 0, "sum", "negative element count ", count);
    const unsigned int blocks = sum_all_blocks(count);
    if (aligned_16(x)) {
        sum_partials_kernel<true><<<blocks, threads_per_block, 0, current_stream()>>>(x, count, partials);
        CUDAGRAD_LAUNCH_CHECK("sum_partials_kernel<vectorized>");
    } else {
        sum_partials_kernel<false><<<blocks, threads_per_block, 0, current_stream()>>>(x, count, partials);
        CUDAGRAD_LAUNCH_CHECK("sum_partials_kernel<scalar>");
    }
    sum_finish_kernel<<<1, final_threads, 0, current_stream()>>>(partials, blocks, divisor, result);
    CUDAGRAD_LAUNCH_CHECK("sum_finish_kernel");
}

void fill_with_scalar(const float* value, double divisor, float* y, std::int64_t count) {
    if (count <= 0) return;
    fill_with_scalar_kernel<<<grid_for(count, threads_per_block), threads_per_block, 0, current_stream()>>>(
        value, divisor, y, count);
    CUDAGRAD_LAUNCH_CHECK("fill_with_scalar_kernel");
}

void sum_over_dimension(const float* x, float* y, std::int64_t outer, std::int64_t extent, std::int64_t inner) {
    if (outer * inner == 0) return;
    if (inner == 1) {
        // A warp per row up to 2048 elements (64 per lane); beyond, a block per row keeps 8x
        // more loads in flight for each row.
        if (extent <= 2048) {
            sum_rows_warp_kernel<<<warp_per_row_blocks(outer), threads_per_block, 0, current_stream()>>>(x, y, outer,
                                                                                                         extent);
            CUDAGRAD_LAUNCH_CHECK("sum_rows_warp_kernel");
        } else {
            const unsigned int blocks = grid_for(outer * threads_per_block, threads_per_block);
            sum_rows_block_kernel<<<blocks, threads_per_block, 0, current_stream()>>>(x, y, outer, extent);
            CUDAGRAD_LAUNCH_CHECK("sum_rows_block_kernel");
        }
        return;
    }
    const std::int64_t tasks = outer * ((inner + 31) / 32);
    sum_columns_kernel<<<grid_for(tasks * threads_per_block, threads_per_block), threads_per_block, 0,
                         current_stream()>>>(x, y, outer, extent, inner);
    CUDAGRAD_LAUNCH_CHECK("sum_columns_kernel");
}

void broadcast_over_dimension(const float* y_gradient, float* x_gradient, std::int64_t outer, std::int64_t extent,
                              std::int64_t inner) {
    const std::int64_t count = outer * extent * inner;
    if (count == 0) return;
    broadcast_kernel<<<grid_for(count, threads_per_block), threads_per_block, 0, current_stream()>>>(
        y_gradient, x_gradient, count, extent, inner);
    CUDAGRAD_LAUNCH_CHECK("broadcast_kernel");
}

void argmax_over_dimension(const float* x, std::int64_t* index, std::int64_t outer, std::int64_t extent,
                           std::int64_t inner) {
    launch_argmax(x, index, outer, extent, inner);
}

void argmax_over_dimension(const std::int64_t* x, std::int64_t* index, std::int64_t outer, std::int64_t extent,
                           std::int64_t inner) {
    launch_argmax(x, index, outer, extent, inner);
}

std::int64_t top_k_partial_count(std::int64_t rows) { return capped_blocks(warp_per_row_blocks(rows)); }

void count_top_k_hits(const float* logits, const std::int64_t* labels, std::int64_t rows, std::int64_t classes,
                      std::int64_t k, std::int64_t* partials, std::int64_t* count) {
    check(rows >= 0 && classes > 0 && k >= 1, "count_top_k_hits", "needs rows >= 0, classes > 0 and k >= 1 (got ", rows,
          ", ", classes, ", ", k, ")");
    const unsigned int blocks = capped_blocks(warp_per_row_blocks(rows));
    top_k_partials_kernel<<<blocks, threads_per_block, 0, current_stream()>>>(logits, labels, rows, classes, k,
                                                                               partials);
    CUDAGRAD_LAUNCH_CHECK("top_k_partials_kernel");
    top_k_finish_kernel<<<1, final_threads, 0, current_stream()>>>(partials, blocks, count);
    CUDAGRAD_LAUNCH_CHECK("top_k_finish_kernel");
}

}  // namespace cudagrad::cuda
