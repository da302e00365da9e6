// conv2d v2: implicit GEMM in fp32 (SIMT), all three passes. No im2col buffer: the GEMM's
// operand tiles are gathered from x / dy / w straight into shared memory.
//
//   x: (N, C, H, W), w: (K, C, R, S), y and dy: (N, K, P, Q)   (groups == 1, dilation 1)
//   A convolution pass is a GEMM  out[m][n] = sum over j of A[m][j] * B[j][n]:
//   pass             M        N        reduction j      A[m][j]                 B[j][n]
//   forward          N*P*Q    K        C*R*S (c,r,s)    x[n', c, h, w] (im2col)   w[k, c, r, s]
//   backward data    N*H*W    C        K*R*S (k,r,s)    dy[n', k, p, q] or 0      w[k, c, r, s]
//   backward weight  K        C*R*S    N*P*Q (n',p,q)   dy[n', k, p, q]           x[n', c, h, w]
// with h = p*stride - pad + r (and w likewise). Backward data uses the simple correct mapping:
// pixel (h, w) and tap (r, s) meet output (p, q) = ((h + pad - r) / stride, ...) when that
// divides exactly and lands inside; other taps contribute a 0 to the tile (for stride 2 that is
// 3 of 4 taps wasted; the sub-pixel decomposition that skips them is future work).
// Backward weight has a short M and N (K x C*R*S) and a long reduction (N*P*Q), so it is split:
// gridDim.z blocks share one output tile, each sums one slice of N*P*Q into its own partial
// buffer, and a second kernel adds the partials in a fixed order. No float atomics, so the
// result is the same bits every run.
// CPU reference: src/cpu/conv2d.cpp (im2col + GEMM is the same product with the matrix built).
//
// Structure of the kernel: 64x64 output tile per block of 256 threads, each thread 4x4 outputs;
// the reduction advances 16 at a time. The index arithmetic (divisions by P*Q, Q, R*S, S) is
// done once per tile row, column and reduction step, not per element: the block first writes a
// "record" (four ints) for each of its 64 rows, 64 columns and, per step, 16 reduction indices
// into shared memory; an element's address is then a few adds of two records.
//
// Napkin math (H100 fp32: ~51 TFLOP/s FMA peak, ~3 TB/s). Per 16-deep step a thread does 16x16
// = 256 FMAs against 8 global loads (4 of A, 4 of B) and 32 float4 shared loads: arithmetic
// intensity in shared memory 64x64 tile -> 2*64*64*16 FLOP per (64+64)*16*4 bytes = 16 FLOP/B
// of tile traffic. ResNet-50 layer1 3x3 (29.6 GFLOP at batch 128) is compute bound: at a
// realistic 40-60% of the FMA peak, ~1.2 ms; cuDNN's fp32 (FMA) kernels reach 70-80%.
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>
#include <limits>

#include "conv2d_addressing.cuh"
#include "cuda/check.hpp"
#include "cuda/context.hpp"
#include "cuda/conv2d.hpp"
#include "cuda/runtime.hpp"
#include "cudagrad/tensor.hpp"
#include "registry_internal.hpp"

namespace cudagrad::cuda {
namespace {

constexpr int tile_m = 64, tile_n = 64, tile_k = 16, threads_per_block = 256;
constexpr int max_splits = 64;
static_assert(tile_m == tile_n && tile_m * tile_k % threads_per_block == 0, "each thread loads as many A as B values");
static_assert(tile_m + tile_n <= threads_per_block, "one thread per row and column record of a tile");

using namespace conv2d_detail;  // Geometry, geometry_of and the three passes (conv2d_addressing.cuh)

// One block computes out[m0 .. m0+63][n0 .. n0+63] over the reduction slice of blockIdx.z.
// RowsFastestA: consecutive threads load consecutive m of A (A is contiguous along m);
// otherwise consecutive j (contiguous along the reduction). Likewise ColsFastestB for B.
template <typename Pass, bool RowsFastestA, bool ColsFastestB>
__global__ void __launch_bounds__(threads_per_block)
    implicit_gemm_kernel(Pass pass, int M, int N, int reduction, int per_split) {
    __shared__ __align__(16) float a_tile[tile_k][tile_m + 4];  // +4: fewer bank conflicts, keeps float4 alignment
    __shared__ __align__(16) float b_tile[tile_k][tile_n + 4];
    __shared__ int4 rows[tile_m], cols[tile_n], steps[tile_k];

    const int tid = threadIdx.x, m0 = blockIdx.x * tile_m, n0 = blockIdx.y * tile_n, split = blockIdx.z;
    const int j_begin = split * per_split, j_end = min(reduction, j_begin + per_split);
    write_row_and_col_records(pass, tid, m0, M, n0, N, rows, cols);
    __syncthreads();

    const int tx = tid % 16, ty = tid / 16;  // this thread: rows tx*4 .. +3, columns ty*4 .. +3
    float acc[4][4] = {};
    constexpr int per_thread = tile_m * tile_k / threads_per_block;  // 4 (tile_n == tile_m)
    for (int j0 = j_begin; j0 < j_end; j0 += tile_k) {
        write_step_records(pass, tid, j0, j_end, steps);
        __syncthreads();  // steps ready; every thread has finished the previous step's products
        float a_values[per_thread], b_values[per_thread];
#pragma unroll
        for (int i = 0; i < per_thread; ++i) {
            const int e = tid + i * threads_per_block;
            const int m = RowsFastestA ? e % tile_m : e / tile_k, j = RowsFastestA ? e / tile_m : e % tile_k;
            a_values[i] = m0 + m < M && j0 + j < j_end ? pass.a(rows[m], steps[j]) : 0.0f;
            const int n = ColsFastestB ? e % tile_n : e / tile_k, jb = ColsFastestB ? e / tile_n : e % tile_k;
            b_values[i] = n0 + n < N && j0 + jb < j_end ? pass.b(steps[jb], cols[n]) : 0.0f;
        }
#pragma unroll
        for (int i = 0; i < per_thread; ++i) {
            const int e = tid + i * threads_per_block;
            a_tile[RowsFastestA ? e / tile_m : e % tile_k][RowsFastestA ? e % tile_m : e / tile_k] = a_values[i];
            b_tile[ColsFastestB ? e / tile_n : e % tile_k][ColsFastestB ? e % tile_n : e / tile_k] = b_values[i];
        }
        __syncthreads();  // tiles ready
#pragma unroll
        for (int j = 0; j < tile_k; ++j) {
            const float4 a4 = *reinterpret_cast<const float4*>(&a_tile[j][tx * 4]);
            const float4 b4 = *reinterpret_cast<const float4*>(&b_tile[j][ty * 4]);
            const float a_col[4] = {a4.x, a4.y, a4.z, a4.w}, b_row[4] = {b4.x, b4.y, b4.z, b4.w};
#pragma unroll
            for (int r = 0; r < 4; ++r)
#pragma unroll
                for (int c = 0; c < 4; ++c) acc[r][c] += a_col[r] * b_row[c];
        }
    }
#pragma unroll
    for (int r = 0; r < 4; ++r) {
        const int m = tx * 4 + r;
        if (m0 + m >= M) continue;
#pragma unroll
        for (int c = 0; c < 4; ++c) {
            const int n = ty * 4 + c;
            if (n0 + n < N) pass.store(rows[m], cols[n], acc[r][c], split);
        }
    }
}

__global__ void sum_partials_kernel(const float* __restrict__ partials, std::int64_t splits, std::int64_t count,
                                    float* __restrict__ out) {
    for (std::int64_t i = blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x; i < count;
         i += static_cast<std::int64_t>(gridDim.x) * blockDim.x) {
        float sum = 0.0f;
        for (std::int64_t s = 0; s < splits; ++s) sum += partials[s * count + i];
        out[i] = sum;
    }
}

template <bool RowsFastestA, bool ColsFastestB, typename Pass>
void launch(const Pass& pass, int M, int N, int reduction, int splits, int per_split, const char* name) {
    const dim3 grid(static_cast<unsigned int>((static_cast<std::int64_t>(M) + tile_m - 1) / tile_m),
                    static_cast<unsigned int>((static_cast<std::int64_t>(N) + tile_n - 1) / tile_n),
                    static_cast<unsigned int>(splits));
    implicit_gemm_kernel<Pass, RowsFastestA, ColsFastestB>
        <<<grid, threads_per_block, 0, current_stream()>>>(pass, M, N, reduction, per_split);
    CUDAGRAD_LAUNCH_CHECK(name);
}

bool fall_back_if_unsupported(const ConvProblem& problem, const char* pass) {
    if (implicit_gemm_supports(problem)) return false;
    detail::notice_once("conv2d implicit_gemm fallback",
                        std::string("conv2d: the implicit-GEMM kernels need groups == 1, dilation 1 and "
                                    "32-bit offsets (first seen in ") +
                            pass + ": " + problem.description() + "); running the direct kernel instead");
    return true;
}

}  // namespace

bool implicit_gemm_supports(const ConvProblem& p) {
    // Half the int range, so that indices one tile past the end (m0 + 63, j0 + 15) cannot overflow.
    constexpr std::int64_t limit = std::numeric_limits<int>::max() / 2;
    constexpr std::int64_t max_columns = 65535LL * 64;  // gridDim.y <= 65535 tiles of 64 columns
    return p.groups == 1 && p.dilation_h == 1 && p.dilation_w == 1 && p.x_count() <= limit &&
           p.y_count() <= limit && p.w_count() * max_splits <= limit && p.K <= max_columns &&
           p.C <= max_columns && p.C * p.R * p.S <= max_columns;
}

void conv2d_sum_partials(const float* partials, std::int64_t splits, std::int64_t count, float* out) {
    if (count == 0) return;
    sum_partials_kernel<<<grid_for(count, threads_per_block), threads_per_block, 0, current_stream()>>>(
        partials, splits, count, out);
    CUDAGRAD_LAUNCH_CHECK("sum_partials_kernel");
}

void conv2d_forward_v2_implicit_gemm(const ConvProblem& problem, const float* x, const float* w, float* y) {
    if (fall_back_if_unsupported(problem, "forward")) return conv2d_forward_v1_direct(problem, x, w, y);
    const Geometry g = geometry_of(problem);
    const int M = g.N * g.P * g.Q, reduction = g.C * g.R * g.S;
    launch<true, false>(ForwardPass{g, x, w, y}, M, g.K, reduction, 1, reduction, "implicit_gemm_kernel<forward>");
}

void conv2d_backward_data_v2_implicit_gemm(const ConvProblem& problem, const float* dy, const float* w, float* dx) {
    if (fall_back_if_unsupported(problem, "backward data")) return conv2d_backward_data_v1_direct(problem, dy, w, dx);
    const Geometry g = geometry_of(problem);
    const int M = g.N * g.H * g.W, reduction = g.K * g.R * g.S;
    launch<true, true>(BackwardDataPass{g, dy, w, dx}, M, g.C, reduction, 1, reduction,
                       "implicit_gemm_kernel<backward data>");
}

void conv2d_backward_weight_v2_implicit_gemm(const ConvProblem& problem, const float* x, const float* dy,
                                             float* dw) {
    if (fall_back_if_unsupported(problem, "backward weight")) {
        return conv2d_backward_weight_v1_direct(problem, x, dy, dw);
    }
    const Geometry g = geometry_of(problem);
    const int M = g.K, N = g.C * g.R * g.S, reduction = g.N * g.P * g.Q;
    // Enough blocks for a few waves (4 resident per SM x 2), but at least 8 reduction steps per
    // split so the partial sums stay cheap next to the products.
    const std::int64_t tiles = ((M + tile_m - 1LL) / tile_m) * ((N + tile_n - 1LL) / tile_n);
    const std::int64_t steps = (reduction + tile_k - 1) / tile_k;
    const std::int64_t wanted = (current_context().properties.multiProcessorCount * 8LL + tiles - 1) / tiles;
    std::int64_t splits = std::min<std::int64_t>({wanted, std::max<std::int64_t>(1, steps / 8), max_splits});
    const int per_split = static_cast<int>((steps + splits - 1) / splits) * tile_k;
    splits = (reduction + per_split - 1) / per_split;  // every split non-empty
    if (splits == 1) {
        return launch<false, false>(BackwardWeightPass{g, x, dy, dw}, M, N, reduction, 1, reduction,
                                    "implicit_gemm_kernel<backward weight>");
    }
    const std::int64_t count = problem.w_count();
    Tensor partials = Tensor::empty({splits * count}, DType::Float32, Device::cuda(current_device()));
    launch<false, false>(BackwardWeightPass{g, x, dy, partials.data<float>()}, M, N, reduction,
                         static_cast<int>(splits), per_split, "implicit_gemm_kernel<backward weight, split>");
    // The partials tensor is released when this function returns, but the allocator hands its
    // memory out again only to work queued later on the same stream: the sum below reads it first.
    conv2d_sum_partials(partials.data<float>(), splits, count, dw);
}

}  // namespace cudagrad::cuda
