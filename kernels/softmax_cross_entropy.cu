// Softmax, log-softmax and the fused softmax cross-entropy: the GPU side of src/ops/loss.cpp.
//
// Math (the CPU reference is src/cpu/loss.cpp; both follow PyTorch), along the softmax axis:
//   softmax:      y[r] = exp(x[r] - m) / sum_s exp(x[s] - m),   m = max_s x[s]
//   log_softmax:  y[r] = (x[r] - m) - log(sum_s exp(x[s] - m))
//   backward:     softmax dx = y * (g - sum g*y),  log_softmax dx = g - exp(y) * sum g
//   cross-entropy, logits (N, C), labels (N), smoothing e:
//     lse[n]  = m[n] + log(sum_c exp(logits[n, c] - m[n]))
//     loss[n] = (1 - e) * (lse[n] - logits[n, label]) + e * (lse[n] - mean_c logits[n, c])
//     loss    = mean_n loss[n]
//     dlogits[n, c] = g / N * (exp(logits[n, c] - lse[n]) - e / C - (1 - e) * [c == label[n]])
// Shapes: the (outer, extent, inner) view of a contiguous tensor (softmax_cross_entropy.hpp);
// "rows" means inner == 1, the (N, classes) case.
// Subtracting the maximum keeps every exp() in (0, 1]; sums accumulate in double as on the CPU,
// so a row of 1000 logits of size 1e4 gives the same probabilities on both devices.
//
// Napkin math (H100, ~3.0 TB/s): a (128, 1000) softmax reads 512 KB and writes 512 KB: 0.34 us
// of memory traffic, against ~3 us to launch a kernel. The cross-entropy step (forward: rows
// kernel + one-block mean; backward: one elementwise kernel) is three launches, ~10 us, where
// PyTorch takes 0.026 ms. So at ResNet's batch sizes these kernels are launch-bound: what matters
// is few launches and enough parallel warps that each row's three passes do not serialise. exp()
// is cheap by comparison: 128k expf at 16 per SM per clock is well under a microsecond.
// Only for long rows (a 32k vocabulary) or huge batches does bandwidth matter; then each pass
// re-reads the row, which stays in L1/L2 for rows of a few thousand floats.
//
// The ladder (rows): who cooperates on one row.
//   v1 ThreadPerRow: one thread runs the three passes over its row. Simple, but at each load the
//      32 threads of a warp touch 32 different rows: 32 memory transactions instead of one.
//   v2 WarpPerRow: the 32 lanes stride through the row together (coalesced), and combine their
//      partial max and sum with __shfl_xor_sync: no shared memory, no __syncthreads. Best when
//      there are many rows: at least one warp per row resident on every SM.
//   v3 BlockPerRow: 256 threads per row, warp shuffles then shared memory across the 8 warps.
//      Eight times the parallelism per row: for a batch of 128 rows, v2 fills 16 SMs of 132
//      with 32 serial loads per lane and pass; v3 fills 128 SMs with 4.
// The same kernel template serves all three: only Group (how a row's threads are found and how
// they reduce) changes. Columns (inner > 1): one thread per (o, i), striding by `inner` through
// the softmax axis; neighbouring threads read neighbouring i, so loads stay coalesced.
//
// Bad labels: see softmax_cross_entropy.hpp (NaN loss and NaN gradient row, no host check here).
#include <cuda_runtime.h>
#include <math_constants.h>

#include <cstdint>

#include "cuda/check.hpp"
#include "cuda/context.hpp"
#include "cuda/softmax_cross_entropy.hpp"

namespace cudagrad::cuda {
namespace {

constexpr int threads_per_block = 256;  // every launch in this file; BlockPerRow relies on it
constexpr int warp_size = 32;
constexpr int warps_per_block = threads_per_block / warp_size;
constexpr unsigned int full_mask = 0xffffffffu;

struct MaxOp {
    __device__ static float combine(float a, float b) { return fmaxf(a, b); }
    __device__ static float identity() { return -CUDART_INF_F; }
};
struct SumOp {
    __device__ static double combine(double a, double b) { return a + b; }
    __device__ static double identity() { return 0.0; }
};

// Butterfly reduction: after it every lane holds the result. Each step combines pairs a+b and
// b+a, which IEEE arithmetic makes identical, so all lanes agree bit for bit.
template <typename Op, typename T> __device__ T warp_reduce(T value) {
    for (int offset = warp_size / 2; offset > 0; offset /= 2) {
        value = Op::combine(value, __shfl_xor_sync(full_mask, value, offset));
    }
    return value;
}

// Every thread of the block must call this (it has __syncthreads). Fixed order: deterministic.
template <typename Op, typename T> __device__ T block_reduce(T value) {
    __shared__ T partial[warps_per_block];
    __shared__ T result;
    const int lane = threadIdx.x % warp_size, warp = threadIdx.x / warp_size;
    value = warp_reduce<Op>(value);
    if (lane == 0) partial[warp] = value;
    __syncthreads();
    if (warp == 0) {
        T total = lane < warps_per_block ? partial[lane] : Op::identity();
        total = warp_reduce<Op>(total);
        if (lane == 0) result = total;
    }
    __syncthreads();
    const T total = result;
    __syncthreads();  // nobody may overwrite partial/result (next row) before everyone has read
    return total;
}

// The three ways to share a row (see the ladder above). `first_row`/`row_stride` walk rows in a
// grid-stride loop, so any row count works with a capped grid; the loop condition is the same
// for all threads of a group, so the group's shuffles and barriers are reached together.
struct ThreadPerRow {
    static constexpr int width = 1;
    static constexpr int rows_per_block = threads_per_block;
    __device__ static int lane() { return 0; }
    __device__ static std::int64_t first_row() {
        return static_cast<std::int64_t>(blockIdx.x) * rows_per_block + threadIdx.x;
    }
    __device__ static std::int64_t row_stride() { return static_cast<std::int64_t>(gridDim.x) * rows_per_block; }
    __device__ static float max(float value) { return value; }
    __device__ static double sum(double value) { return value; }
};
struct WarpPerRow {
    static constexpr int width = warp_size;
    static constexpr int rows_per_block = warps_per_block;
    __device__ static int lane() { return threadIdx.x % warp_size; }
    __device__ static std::int64_t first_row() {
        return static_cast<std::int64_t>(blockIdx.x) * rows_per_block + threadIdx.x / warp_size;
    }
    __device__ static std::int64_t row_stride() { return static_cast<std::int64_t>(gridDim.x) * rows_per_block; }
    __device__ static float max(float value) { return warp_reduce<MaxOp>(value); }
    __device__ static double sum(double value) { return warp_reduce<SumOp>(value); }
};
struct BlockPerRow {
    static constexpr int width = threads_per_block;
    __device__ static int lane() { return threadIdx.x; }
    __device__ static std::int64_t first_row() { return blockIdx.x; }
    __device__ static std::int64_t row_stride() { return gridDim.x; }
    __device__ static float max(float value) { return block_reduce<MaxOp>(value); }
    __device__ static double sum(double value) { return block_reduce<SumOp>(value); }
};

// ------------------------------------------------------------------------------- rows kernels

template <typename Group, bool logarithm>
__global__ void softmax_forward_rows_kernel(const float* x, float* y, std::int64_t rows, std::int64_t extent) {
    for (std::int64_t row = Group::first_row(); row < rows; row += Group::row_stride()) {
        const float* input = x + row * extent;
        float* output = y + row * extent;
        float maximum = -CUDART_INF_F;
        for (std::int64_t r = Group::lane(); r < extent; r += Group::width) maximum = fmaxf(maximum, input[r]);
        maximum = Group::max(maximum);
        double total = 0.0;
        for (std::int64_t r = Group::lane(); r < extent; r += Group::width) {
            total += static_cast<double>(expf(input[r] - maximum));
        }
        total = Group::sum(total);
        if constexpr (logarithm) {
            const float log_total = static_cast<float>(log(total));
            for (std::int64_t r = Group::lane(); r < extent; r += Group::width) {
                output[r] = (input[r] - maximum) - log_total;
            }
        } else {
            const float inverse = static_cast<float>(1.0 / total);
            for (std::int64_t r = Group::lane(); r < extent; r += Group::width) {
                output[r] = expf(input[r] - maximum) * inverse;
            }
        }
    }
}

template <typename Group, bool logarithm>
__global__ void softmax_backward_rows_kernel(const float* y, const float* g, float* dx, std::int64_t rows,
                                             std::int64_t extent) {
    for (std::int64_t row = Group::first_row(); row < rows; row += Group::row_stride()) {
        const float* output = y + row * extent;
        const float* gradient = g + row * extent;
        float* input_gradient = dx + row * extent;
        double total = 0.0;
        for (std::int64_t r = Group::lane(); r < extent; r += Group::width) {
            total += logarithm ? static_cast<double>(gradient[r]) : static_cast<double>(gradient[r] * output[r]);
        }
        const float reduced = static_cast<float>(Group::sum(total));
        for (std::int64_t r = Group::lane(); r < extent; r += Group::width) {
            input_gradient[r] =
                logarithm ? gradient[r] - expf(output[r]) * reduced : output[r] * (gradient[r] - reduced);
        }
    }
}

// ---------------------------------------------------------------------------- column kernels

template <bool logarithm>
__global__ void softmax_forward_columns_kernel(const float* x, float* y, std::int64_t outer, std::int64_t extent,
                                               std::int64_t inner) {
    const std::int64_t columns = outer * inner;
    for (std::int64_t column = blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x; column < columns;
         column += static_cast<std::int64_t>(gridDim.x) * blockDim.x) {
        const std::int64_t o = column / inner, i = column - o * inner;
        const float* input = x + o * extent * inner + i;
        float* output = y + o * extent * inner + i;
        float maximum = -CUDART_INF_F;
        for (std::int64_t r = 0; r < extent; ++r) maximum = fmaxf(maximum, input[r * inner]);
        double total = 0.0;
        for (std::int64_t r = 0; r < extent; ++r) total += static_cast<double>(expf(input[r * inner] - maximum));
        if constexpr (logarithm) {
            const float log_total = static_cast<float>(log(total));
            for (std::int64_t r = 0; r < extent; ++r) output[r * inner] = (input[r * inner] - maximum) - log_total;
        } else {
            const float inverse = static_cast<float>(1.0 / total);
            for (std::int64_t r = 0; r < extent; ++r) output[r * inner] = expf(input[r * inner] - maximum) * inverse;
        }
    }
}

template <bool logarithm>
__global__ void softmax_backward_columns_kernel(const float* y, const float* g, float* dx, std::int64_t outer,
                                                std::int64_t extent, std::int64_t inner) {
    const std::int64_t columns = outer * inner;
    for (std::int64_t column = blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x; column < columns;
         column += static_cast<std::int64_t>(gridDim.x) * blockDim.x) {
        const std::int64_t o = column / inner, i = column - o * inner;
        const std::int64_t base = o * extent * inner + i;
        double total = 0.0;
        for (std::int64_t r = 0; r < extent; ++r) {
            const std::int64_t at = base + r * inner;
            total += logarithm ? static_cast<double>(g[at]) : static_cast<double>(g[at] * y[at]);
        }
        const float reduced = static_cast<float>(total);
        for (std::int64_t r = 0; r < extent; ++r) {
            const std::int64_t at = base + r * inner;
            dx[at] = logarithm ? g[at] - expf(y[at]) * reduced : y[at] * (g[at] - reduced);
        }
    }
}

// ----------------------------------------------------------------------------- cross-entropy

// One row per Group: max, then sum of exps and sum of logits in one pass; the group's first
// thread writes the row's saved statistics and its loss term (NaN for a label out of range).
template <typename Group>
__global__ void cross_entropy_rows_kernel(const float* logits, const std::int64_t* labels, std::int64_t batch,
                                          std::int64_t classes, double label_smoothing, float* row_max,
                                          float* row_log_sum, double* row_loss) {
    for (std::int64_t row = Group::first_row(); row < batch; row += Group::row_stride()) {
        const float* x = logits + row * classes;
        float maximum = -CUDART_INF_F;
        for (std::int64_t c = Group::lane(); c < classes; c += Group::width) maximum = fmaxf(maximum, x[c]);
        maximum = Group::max(maximum);
        double exp_total = 0.0, logit_total = 0.0;
        for (std::int64_t c = Group::lane(); c < classes; c += Group::width) {
            exp_total += static_cast<double>(expf(x[c] - maximum));
            logit_total += static_cast<double>(x[c]);
        }
        exp_total = Group::sum(exp_total);
        logit_total = Group::sum(logit_total);
        if (Group::lane() == 0) {
            const double log_sum = log(exp_total);
            const double lse = static_cast<double>(maximum) + log_sum;
            const std::int64_t label = labels[row];
            double loss = CUDART_NAN;  // a bad label poisons the mean: it cannot go unnoticed
            if (label >= 0 && label < classes) {
                const double label_term = lse - static_cast<double>(x[label]);
                const double uniform_term = lse - logit_total / static_cast<double>(classes);
                // As the CPU: the uniform term only with smoothing (0 * inf would be NaN).
                loss = label_smoothing == 0.0 ? label_term
                                              : (1.0 - label_smoothing) * label_term + label_smoothing * uniform_term;
            }
            row_max[row] = maximum;
            row_log_sum[row] = static_cast<float>(log_sum);
            row_loss[row] = loss;
        }
    }
}

// One block: the mean of the row terms, summed in a fixed order (no atomics: the same bits on
// every run). N is a few hundred at most in training, so one block is plenty.
__global__ void mean_of_rows_kernel(const double* row_loss, std::int64_t batch, float* loss) {
    double total = 0.0;
    for (std::int64_t n = threadIdx.x; n < batch; n += blockDim.x) total += row_loss[n];
    total = block_reduce<SumOp>(total);
    if (threadIdx.x == 0) *loss = static_cast<float>(total / static_cast<double>(batch));
}

// Elementwise over (batch, classes). p = exp((x - max) - log_sum) in float is as accurate as the
// CPU's double exp(x - lse) to ~1e-6 relative: x - max is exact where p is not negligible.
__global__ void cross_entropy_backward_kernel(const float* logits, const std::int64_t* labels,
                                              const float* row_max, const float* row_log_sum, std::int64_t batch,
                                              std::int64_t classes, double uniform_target, double label_target,
                                              const float* upstream, float* logits_gradient) {
    const double scale = static_cast<double>(upstream[0]) / static_cast<double>(batch);
    const std::int64_t count = batch * classes;
    for (std::int64_t index = blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x; index < count;
         index += static_cast<std::int64_t>(gridDim.x) * blockDim.x) {
        const std::int64_t row = index / classes, c = index - row * classes;
        const std::int64_t label = labels[row];
        if (label < 0 || label >= classes) {
            logits_gradient[index] = CUDART_NAN_F;
            continue;
        }
        const float p = expf((logits[index] - row_max[row]) - row_log_sum[row]);
        float gradient = static_cast<float>(scale * (static_cast<double>(p) - uniform_target));
        if (c == label) gradient -= static_cast<float>(scale * label_target);
        logits_gradient[index] = gradient;
    }
}

// ------------------------------------------------------------------------------------- launch

template <typename Group> unsigned int blocks_for_rows(std::int64_t rows) {
    return grid_for(rows * Group::width, threads_per_block);
}

// v3 when rows are long, or when there are too few rows to give every resident warp slot of the
// GPU its own row; v2 otherwise. (v1 is for teaching: never chosen.)
bool use_block_per_row(std::int64_t rows, std::int64_t extent) {
    const cudaDeviceProp& properties = current_context().properties;
    const std::int64_t warps_per_multiprocessor = properties.maxThreadsPerMultiProcessor / warp_size;
    const std::int64_t resident_warps = properties.multiProcessorCount * warps_per_multiprocessor;
    return extent > 1024 || (extent >= 128 && rows < resident_warps);
}

template <typename Group>
void launch_forward_rows(const float* x, float* y, std::int64_t rows, std::int64_t extent, bool logarithm) {
    if (rows <= 0 || extent <= 0) return;
    const unsigned int blocks = blocks_for_rows<Group>(rows);
    if (logarithm) {
        softmax_forward_rows_kernel<Group, true>
            <<<blocks, threads_per_block, 0, current_stream()>>>(x, y, rows, extent);
    } else {
        softmax_forward_rows_kernel<Group, false>
            <<<blocks, threads_per_block, 0, current_stream()>>>(x, y, rows, extent);
    }
    CUDAGRAD_LAUNCH_CHECK("softmax_forward_rows_kernel");
}

template <typename Group>
void launch_backward_rows(const float* y, const float* g, float* dx, std::int64_t rows, std::int64_t extent,
                          bool logarithm) {
    if (rows <= 0 || extent <= 0) return;
    const unsigned int blocks = blocks_for_rows<Group>(rows);
    if (logarithm) {
        softmax_backward_rows_kernel<Group, true>
            <<<blocks, threads_per_block, 0, current_stream()>>>(y, g, dx, rows, extent);
    } else {
        softmax_backward_rows_kernel<Group, false>
            <<<blocks, threads_per_block, 0, current_stream()>>>(y, g, dx, rows, extent);
    }
    CUDAGRAD_LAUNCH_CHECK("softmax_backward_rows_kernel");
}

}  // namespace

void softmax_forward_v1_thread_per_row(const float* x, float* y, std::int64_t rows, std::int64_t extent,
                                       bool logarithm) {
    launch_forward_rows<ThreadPerRow>(x, y, rows, extent, logarithm);
}
void softmax_forward_v2_warp_per_row(const float* x, float* y, std::int64_t rows, std::int64_t extent,
                                     bool logarithm) {
    launch_forward_rows<WarpPerRow>(x, y, rows, extent, logarithm);
}
void softmax_forward_v3_block_per_row(const float* x, float* y, std::int64_t rows, std::int64_t extent,
                                      bool logarithm) {
    launch_forward_rows<BlockPerRow>(x, y, rows, extent, logarithm);
}
void softmax_backward_v1_thread_per_row(const float* y, const float* y_gradient, float* x_gradient, std::int64_t rows,
                                        std::int64_t extent, bool logarithm) {
    launch_backward_rows<ThreadPerRow>(y, y_gradient, x_gradient, rows, extent, logarithm);
}
void softmax_backward_v2_warp_per_row(const float* y, const float* y_gradient, float* x_gradient, std::int64_t rows,
                                      std::int64_t extent, bool logarithm) {
    launch_backward_rows<WarpPerRow>(y, y_gradient, x_gradient, rows, extent, logarithm);
}
void softmax_backward_v3_block_per_row(const float* y, const float* y_gradient, float* x_gradient, std::int64_t rows,
                                       std::int64_t extent, bool logarithm) {
    launch_backward_rows<BlockPerRow>(y, y_gradient, x_gradient, rows, extent, logarithm);
}

void softmax_forward(const float* x, float* y, const SoftmaxShape& shape, bool logarithm) {
    const std::int64_t columns = shape.outer * shape.inner;
    if (columns <= 0 || shape.extent <= 0) return;
    if (shape.inner == 1) {
        if (use_block_per_row(shape.outer, shape.extent)) {
            softmax_forward_v3_block_per_row(x, y, shape.outer, shape.extent, logarithm);
        } else {
            softmax_forward_v2_warp_per_row(x, y, shape.outer, shape.extent, logarithm);
        }
        return;
    }
    const unsigned int blocks = grid_for(columns, threads_per_block);
    if (logarithm) {
        softmax_forward_columns_kernel<true><<<blocks, threads_per_block, 0, current_stream()>>>(
            x, y, shape.outer, shape.extent, shape.inner);
    } else {
        softmax_forward_columns_kernel<false><<<blocks, threads_per_block, 0, current_stream()>>>(
            x, y, shape.outer, shape.extent, shape.inner);
    }
    CUDAGRAD_LAUNCH_CHECK("softmax_forward_columns_kernel");
}

void softmax_backward(const float* y, const float* y_gradient, float* x_gradient, const SoftmaxShape& shape,
                      bool logarithm) {
    const std::int64_t columns = shape.outer * shape.inner;
    if (columns <= 0 || shape.extent <= 0) return;
    if (shape.inner == 1) {
        if (use_block_per_row(shape.outer, shape.extent)) {
            softmax_backward_v3_block_per_row(y, y_gradient, x_gradient, shape.outer, shape.extent, logarithm);
        } else {
            softmax_backward_v2_warp_per_row(y, y_gradient, x_gradient, shape.outer, shape.extent, logarithm);
        }
        return;
    }
    const unsigned int blocks = grid_for(columns, threads_per_block);
    if (logarithm) {
        softmax_backward_columns_kernel<true><<<blocks, threads_per_block, 0, current_stream()>>>(
            y, y_gradient, x_gradient, shape.outer, shape.extent, shape.inner);
    } else {
        softmax_backward_columns_kernel<false><<<blocks, threads_per_block, 0, current_stream()>>>(
            y, y_gradient, x_gradient, shape.outer, shape.extent, shape.inner);
    }
    CUDAGRAD_LAUNCH_CHECK("softmax_backward_columns_kernel");
}

void cross_entropy_forward(const float* logits, const std::int64_t* labels, std::int64_t batch, std::int64_t classes,
                           double label_smoothing, float* row_max, float* row_log_sum, double* row_loss, float* loss) {
    if (batch <= 0 || classes <= 0) return;
    if (use_block_per_row(batch, classes)) {
        cross_entropy_rows_kernel<BlockPerRow><<<blocks_for_rows<BlockPerRow>(batch), threads_per_block, 0,
                                                 current_stream()>>>(logits, labels, batch, classes, label_smoothing,
                                                                     row_max, row_log_sum, row_loss);
    } else {
        cross_entropy_rows_kernel<WarpPerRow><<<blocks_for_rows<WarpPerRow>(batch), threads_per_block, 0,
                                                current_stream()>>>(logits, labels, batch, classes, label_smoothing,
                                                                    row_max, row_log_sum, row_loss);
    }
    CUDAGRAD_LAUNCH_CHECK("cross_entropy_rows_kernel");
    mean_of_rows_kernel<<<1, threads_per_block, 0, current_stream()>>>(row_loss, batch, loss);
    CUDAGRAD_LAUNCH_CHECK("mean_of_rows_kernel");
}

void cross_entropy_backward(const float* logits, const std::int64_t* labels, const float* row_max,
                            const float* row_log_sum, std::int64_t batch, std::int64_t classes, double label_smoothing,
                            const float* upstream, float* logits_gradient) {
    if (batch <= 0 || classes <= 0) return;
    const double uniform_target = label_smoothing / static_cast<double>(classes);
    const double label_target = 1.0 - label_smoothing;
    const unsigned int blocks = grid_for(batch * classes, threads_per_block);
    cross_entropy_backward_kernel<<<blocks, threads_per_block, 0, current_stream()>>>(
        logits, labels, row_max, row_log_sum, batch, classes, uniform_target, label_target, upstream,
        logits_gradient);
    CUDAGRAD_LAUNCH_CHECK("cross_entropy_backward_kernel");
}

}  // namespace cudagrad::cuda
