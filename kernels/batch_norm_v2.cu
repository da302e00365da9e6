// Batch normalisation v2 (split channels) and the eval forward: see kernels/batch_norm.cu for
// the math, the CPU reference and the napkin math.
//
// Three launches per direction: (1) block (c, split) sums one range of channel c into a pair of
// doubles; (2) one warp per channel adds its pairs in a fixed order (deterministic, no atomics)
// and computes the statistics, the running update, and the elementwise constants; (3) one
// elementwise pass over x (and dy) with float4 loads when plane % 4 == 0 and the pointers are
// 16-byte aligned. Pass (1) needs enough blocks to fill the GPU: 64 channels of the stem get 17
// blocks each on 132 SMs. The elementwise pass reads one 16-byte ChannelCoefficients per element
// group instead of four separate per-channel values.
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>

#include "batch_norm_common.cuh"
#include "cuda/batch_norm.hpp"
#include "cuda/check.hpp"
#include "cuda/context.hpp"

namespace cudagrad::cuda {
namespace {

using namespace batch_norm_detail;

constexpr int max_splits = 64;  // blocks per channel
constexpr std::int64_t min_units_per_split = threads_per_block * 8;

// ================================================================ v2: split channels

// Width consecutive floats: one float4 load when Width == 4 (the address is 16-byte aligned).
template <int Width>
struct Pack {
    float v[Width];
};
template <int Width>
__device__ Pack<Width> load_pack(const float* address) {
    if constexpr (Width == 4) {
        const float4 value = *reinterpret_cast<const float4*>(address);
        return {{value.x, value.y, value.z, value.w}};
    } else {
        return {{*address}};
    }
}
template <int Width>
__device__ void store_pack(float* address, const Pack<Width>& pack) {
    if constexpr (Width == 4) {
        *reinterpret_cast<float4*>(address) = make_float4(pack.v[0], pack.v[1], pack.v[2], pack.v[3]);
    } else {
        *address = pack.v[0];
    }
}

// How v2 cuts the work: `units` of Width floats, row_units per (n, c) row; each channel's
// batch * row_units units are split into `splits` ranges of units_per_split, one block each.
struct SplitPlan {
    int width = 1;
    std::int64_t row_units = 0;
    std::int64_t channel_units = 0;
    int splits = 1;
    std::int64_t units_per_split = 0;
};

// Blocks per channel for `channel_units` units: enough blocks in total to fill every SM (8
// blocks of 256 threads each), but at least min_units_per_split units per block, at most max_splits.
int split_count(std::int64_t channel_units, std::int64_t channels) {
    const std::int64_t resident_blocks =
        static_cast<std::int64_t>(current_context().properties.multiProcessorCount) * 8;
    std::int64_t splits = (resident_blocks + channels - 1) / channels;
    splits = std::min(splits, (channel_units + min_units_per_split - 1) / min_units_per_split);
    return static_cast<int>(std::clamp<std::int64_t>(splits, 1, max_splits));
}

bool aligned16(const void* pointer) { return pointer == nullptr || reinterpret_cast<std::uintptr_t>(pointer) % 16 == 0; }

SplitPlan plan_split(std::int64_t batch, std::int64_t channels, std::int64_t plane, bool vector_ok) {
    SplitPlan plan;
    plan.width = vector_ok && plane % 4 == 0 ? 4 : 1;
    plan.row_units = plane / plan.width;
    plan.channel_units = batch * plan.row_units;
    plan.splits = split_count(plan.channel_units, channels);
    // At least 1 unit and 1 split: an empty batch (eval backward, N = 0) must not divide by zero.
    plan.units_per_split = std::max<std::int64_t>(1, (plan.channel_units + plan.splits - 1) / plan.splits);
    plan.splits = static_cast<int>(
        std::max<std::int64_t>(1, (plan.channel_units + plan.units_per_split - 1) / plan.units_per_split));
    return plan;
}

// Where a thread is in a strided walk over (n, column) without dividing in the loop: one
// division at the start, then each step of `step` units adds (step / row_units) to n and
// (step % row_units) to the column, with a carry.
struct RowWalk {
    std::int64_t n, column, step_n, step_column, row_units;
    __device__ RowWalk(std::int64_t start, std::int64_t step, std::int64_t row_units_)
        : n(start / row_units_), column(start % row_units_), step_n(step / row_units_),
          step_column(step % row_units_), row_units(row_units_) {}
    __device__ void advance() {
        n += step_n;
        column += step_column;
        if (column >= row_units) {
            column -= row_units;
            ++n;
        }
    }
};

// Pass 1 of v2: block (c, split) sums its range of channel c. Forward: sum (x - K) and
// sum (x - K)^2, K = x[0, c, 0]; backward: sum dy and sum dy * (x - mean_c).
template <int Width, bool Backward>
__global__ void partial_sums_kernel(const float* __restrict__ x, const float* __restrict__ dy,
                                    const float* __restrict__ mean, SplitPlan plan, std::int64_t channels,
                                    double* __restrict__ partials) {
    const std::int64_t c = blockIdx.x / plan.splits;
    const std::int64_t split = blockIdx.x % plan.splits;
    const std::int64_t first = split * plan.units_per_split;
    const std::int64_t last = std::min(first + plan.units_per_split, plan.channel_units);
    const double center = Backward ? static_cast<double>(mean[c]) : static_cast<double>(x[c * plan.row_units * Width]);
    DoublePair sums{0.0, 0.0};
    RowWalk walk(first + threadIdx.x, blockDim.x, plan.row_units);
    for (std::int64_t j = first + threadIdx.x; j < last; j += blockDim.x, walk.advance()) {
        const std::int64_t offset = ((walk.n * channels + c) * plan.row_units + walk.column) * Width;
        const Pack<Width> values = load_pack<Width>(x + offset);
        if constexpr (Backward) {
            const Pack<Width> gradients = load_pack<Width>(dy + offset);
            for (int k = 0; k < Width; ++k) {
                const double gradient = static_cast<double>(gradients.v[k]);
                sums.first += gradient;
                sums.second += gradient * (static_cast<double>(values.v[k]) - center);
            }
        } else {
            for (int k = 0; k < Width; ++k) {
                const double deviation = static_cast<double>(values.v[k]) - center;
                sums.first += deviation;
                sums.second += deviation * deviation;
            }
        }
    }
    sums = block_sum(sums);
    if (threadIdx.x == 0) {
        partials[(c * plan.splits + split) * 2] = sums.first;
        partials[(c * plan.splits + split) * 2 + 1] = sums.second;
    }
}

// Pass 2: one warp per channel adds the channel's partial sums (fixed order) and finishes.
__device__ DoublePair channel_total(const double* partials, std::int64_t c, int splits) {
    DoublePair total{0.0, 0.0};
    if (partials) {
        for (int s = threadIdx.x % 32; s < splits; s += 32) {
            total.first += partials[(c * splits + s) * 2];
            total.second += partials[(c * splits + s) * 2 + 1];
        }
    }
    return warp_sum(total);
}

__global__ void forward_finish_kernel(BatchNormForward a, const double* partials, int splits,
                                      ChannelCoefficients* coefficients) {
    const std::int64_t c = static_cast<std::int64_t>(blockIdx.x) * warps_per_block + threadIdx.x / 32;
    if (c >= a.channels) return;  // the whole warp leaves together, so the shuffles stay full
    const DoublePair total = channel_total(partials, c, splits);
    if (threadIdx.x % 32 != 0) return;
    const double count = static_cast<double>(a.batch * a.plane);
    const double shifted_mean = total.first / count;
    const double variance = fmax(total.second / count - shifted_mean * shifted_mean, 0.0);
    finish_statistics(a, c, static_cast<double>(a.x[c * a.plane]) + shifted_mean, variance, coefficients);
}

__global__ void backward_finish_kernel(BatchNormBackward a, const double* partials, int splits,
                                       ChannelCoefficients* coefficients) {
    const std::int64_t c = static_cast<std::int64_t>(blockIdx.x) * warps_per_block + threadIdx.x / 32;
    if (c >= a.channels) return;
    const DoublePair total = channel_total(partials, c, splits);
    if (threadIdx.x % 32 == 0) coefficients[c] = finish_gradients(a, c, total.first, total.second);
}

// Eval: the saved statistics are a snapshot of the running ones (thread per channel); with
// coefficients, also the constants of the elementwise pass.
__global__ void inference_statistics_kernel(BatchNormForward a, ChannelCoefficients* coefficients) {
    const std::int64_t c = static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
    if (c >= a.channels) return;
    const float mean = a.running_mean[c * a.running_mean_stride];
    const float inverse_std =
        static_cast<float>(1.0 / sqrt(static_cast<double>(a.running_var[c * a.running_var_stride]) + a.eps));
    a.saved_mean[c] = mean;
    a.saved_inverse_std[c] = inverse_std;
    if (!coefficients) return;
    const double weight = a.weight ? static_cast<double>(a.weight[c]) : 1.0;
    coefficients[c] = {mean, static_cast<float>(static_cast<double>(inverse_std) * weight), 0.0f,
                       a.bias ? a.bias[c] : 0.0f};
}

// Pass 3: elementwise over all N * C * row_units units, grid-stride. The channel of a unit is
// (unit / row_units) % C; it is tracked like RowWalk (n wraps at C) instead of divided each step.
struct ChannelWalk {
    std::int64_t channel, column, step_channel, step_column, row_units, channels;
    __device__ ChannelWalk(std::int64_t start, std::int64_t step, std::int64_t row_units_, std::int64_t channels_)
        : channel((start / row_units_) % channels_), column(start % row_units_),
          step_channel((step / row_units_) % channels_), step_column(step % row_units_), row_units(row_units_),
          channels(channels_) {}
    __device__ void advance() {
        channel += step_channel;
        column += step_column;
        if (column >= row_units) {
            column -= row_units;
            ++channel;
        }
        if (channel >= channels) channel -= channels;  // channel < 2C here: one subtraction is enough
    }
};

template <int Width, bool Backward>
__global__ void elementwise_kernel(const float* __restrict__ x, const float* __restrict__ dy,
                                   const ChannelCoefficients* __restrict__ coefficients, float* __restrict__ out,
                                   std::int64_t row_units, std::int64_t channels, std::int64_t total_units) {
    const std::int64_t start = static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
    const std::int64_t step = static_cast<std::int64_t>(gridDim.x) * blockDim.x;
    ChannelWalk walk(start, step, row_units, channels);
    for (std::int64_t unit = start; unit < total_units; unit += step, walk.advance()) {
        const ChannelCoefficients k = coefficients[walk.channel];
        const Pack<Width> values = load_pack<Width>(x + unit * Width);
        Pack<Width> result;
        if constexpr (Backward) {
            const Pack<Width> gradients = load_pack<Width>(dy + unit * Width);
            for (int i = 0; i < Width; ++i) {
                result.v[i] = k.factor * gradients.v[i] + k.scale_a * (values.v[i] - k.center) + k.shift;
            }
        } else {
            for (int i = 0; i < Width; ++i) result.v[i] = (values.v[i] - k.center) * k.factor + k.shift;
        }
        store_pack<Width>(out + unit * Width, result);
    }
}

// Scratch layout: C coefficients (16 bytes each), then C * splits pairs of doubles.
struct ScratchLayout {
    ChannelCoefficients* coefficients;
    double* partials;
};

ScratchLayout carve_scratch(void* scratch, std::int64_t scratch_bytes, std::int64_t channels, int splits,
                            const char* op) {
    const std::int64_t needed = channels * static_cast<std::int64_t>(sizeof(ChannelCoefficients)) +
                                channels * splits * 2 * static_cast<std::int64_t>(sizeof(double));
    check(scratch != nullptr && scratch_bytes >= needed && aligned16(scratch), op, "scratch of ", scratch_bytes,
          " bytes at ", scratch, " is too small or not 16-byte aligned (need ", needed, ")");
    auto* coefficients = static_cast<ChannelCoefficients*>(scratch);
    return {coefficients, reinterpret_cast<double*>(coefficients + channels)};
}

template <bool Backward>
void launch_elementwise(int width, const float* x, const float* dy, const ChannelCoefficients* coefficients,
                        float* out, std::int64_t batch, std::int64_t channels, std::int64_t plane) {
    const std::int64_t row_units = plane / width, total_units = batch * channels * row_units;
    const unsigned int blocks = grid_for(total_units, threads_per_block);
    if (width == 4) {
        elementwise_kernel<4, Backward><<<blocks, threads_per_block, 0, current_stream()>>>(
            x, dy, coefficients, out, row_units, channels, total_units);
    } else {
        elementwise_kernel<1, Backward><<<blocks, threads_per_block, 0, current_stream()>>>(
            x, dy, coefficients, out, row_units, channels, total_units);
    }
    CUDAGRAD_LAUNCH_CHECK("batch_norm elementwise_kernel");
}

template <bool Backward>
void launch_partial_sums(const SplitPlan& plan, const float* x, const float* dy, const float* mean,
                         std::int64_t channels, double* partials) {
    const auto blocks = static_cast<unsigned int>(channels * plan.splits);
    if (plan.width == 4) {
        partial_sums_kernel<4, Backward>
            <<<blocks, threads_per_block, 0, current_stream()>>>(x, dy, mean, plan, channels, partials);
    } else {
        partial_sums_kernel<1, Backward>
            <<<blocks, threads_per_block, 0, current_stream()>>>(x, dy, mean, plan, channels, partials);
    }
    CUDAGRAD_LAUNCH_CHECK("batch_norm partial_sums_kernel");
}

unsigned int warp_per_channel_blocks(std::int64_t channels) {
    return static_cast<unsigned int>((channels + warps_per_block - 1) / warps_per_block);
}

}  // namespace

std::int64_t batch_norm_scratch_bytes(std::int64_t batch, std::int64_t channels, std::int64_t plane) {
    // The scalar plan has the most units, so the most splits any plan for this shape can have.
    const int splits = split_count(batch * plane, channels);
    return channels * static_cast<std::int64_t>(sizeof(ChannelCoefficients)) +
           channels * splits * 2 * static_cast<std::int64_t>(sizeof(double));
}

void batch_norm_forward_training_v2_split_channels(const BatchNormForward& args, void* scratch,
                                                   std::int64_t scratch_bytes) {
    const bool vector_ok = aligned16(args.x) && aligned16(args.y);
    const SplitPlan plan = plan_split(args.batch, args.channels, args.plane, vector_ok);
    const ScratchLayout layout = carve_scratch(scratch, scratch_bytes, args.channels, plan.splits, "batch_norm2d");
    launch_partial_sums<false>(plan, args.x, nullptr, nullptr, args.channels, layout.partials);
    forward_finish_kernel<<<warp_per_channel_blocks(args.channels), threads_per_block, 0, current_stream()>>>(
        args, layout.partials, plan.splits, layout.coefficients);
    CUDAGRAD_LAUNCH_CHECK("forward_finish_kernel");
    launch_elementwise<false>(plan.width, args.x, nullptr, layout.coefficients, args.y, args.batch, args.channels,
                              args.plane);
}

void batch_norm_forward_inference(const BatchNormForward& args, void* scratch, std::int64_t scratch_bytes) {
    check(args.running_mean && args.running_var, "batch_norm2d", "eval mode needs running_mean and running_var");
    const ScratchLayout layout = carve_scratch(scratch, scratch_bytes, args.channels, 0, "batch_norm2d");
    const auto blocks = static_cast<unsigned int>((args.channels + threads_per_block - 1) / threads_per_block);
    inference_statistics_kernel<<<blocks, threads_per_block, 0, current_stream()>>>(args, layout.coefficients);
    CUDAGRAD_LAUNCH_CHECK("inference_statistics_kernel");
    const int width = aligned16(args.x) && aligned16(args.y) && args.plane % 4 == 0 ? 4 : 1;
    launch_elementwise<false>(width, args.x, nullptr, layout.coefficients, args.y, args.batch, args.channels,
                              args.plane);
}

void batch_norm_save_running_statistics(const BatchNormForward& args) {
    check(args.running_mean && args.running_var, "batch_norm2d", "eval mode needs running_mean and running_var");
    const auto blocks = static_cast<unsigned int>((args.channels + threads_per_block - 1) / threads_per_block);
    inference_statistics_kernel<<<blocks, threads_per_block, 0, current_stream()>>>(args, nullptr);
    CUDAGRAD_LAUNCH_CHECK("inference_statistics_kernel");
}

void batch_norm_backward_v2_split_channels(const BatchNormBackward& args, void* scratch, std::int64_t scratch_bytes) {
    const bool vector_ok = aligned16(args.x) && aligned16(args.dy) && aligned16(args.dx);
    const SplitPlan plan = plan_split(args.batch, args.channels, args.plane, vector_ok);
    const ScratchLayout layout = carve_scratch(scratch, scratch_bytes, args.channels, plan.splits, "batch_norm2d");
    const bool need_sums = backward_needs_sums(args);
    if (need_sums) launch_partial_sums<true>(plan, args.x, args.dy, args.saved_mean, args.channels, layout.partials);
    backward_finish_kernel<<<warp_per_channel_blocks(args.channels), threads_per_block, 0, current_stream()>>>(
        args, need_sums ? layout.partials : nullptr, plan.splits, layout.coefficients);
    CUDAGRAD_LAUNCH_CHECK("backward_finish_kernel");
    if (args.dx) {
        launch_elementwise<true>(plan.width, args.x, args.dy, layout.coefficients, args.dx, args.batch,
                                 args.channels, args.plane);
    }
}

}  // namespace cudagrad::cuda
