// GEMM on the CUDA cores, v4 vectorized: v3 (gemm_simt.cu) with 128-bit loads everywhere.
//
//   C = alpha * op(A) * op(B) + beta * C    row-major float32 (src/cuda/gemm.hpp), CPU reference
//   cpu::gemm_reference; tested in tests/test_cuda_gemm.cpp.
//
// Same tiling as v3: a 128 x 128 tile of C per block of 256 threads, 8 x 8 per thread, BK = 8.
// What changes:
//   1. Global loads are float4 along whichever dimension of the operand is contiguous (the
//      loader in gemm_tiles.cuh): one 16-byte load instead of four 4-byte ones, a quarter of the
//      load instructions. A float4 needs a 16-byte aligned base, a leading dimension that is a
//      multiple of 4 and all four elements inside the matrix; where any of that fails, the same
//      thread reads the four elements one by one (zero outside the matrix). No size is refused.
//   2. A is stored *transposed* in shared memory (a_tile[k][row], like b_tile[k][column]), so
//      the 8 values of A a thread needs at step p are contiguous: two 128-bit shared loads, as
//      for B. Per k step a thread now issues 4 shared loads for 64 FMAs (v3: 16).
//   3. C is written with float4 stores where aligned.
// Napkin math at 4096^3: the FMAs are the same 137 GFLOP; the instruction mix is now ~94% FMA
// in the inner loop, so issue is no longer the limit. What remains (fixed in v5,
// gemm_warp_tiled.cu): a thread's 8 columns of B are 8 contiguous words, so at a float4 load
// threads 0 and 4 of a quarter-warp hit the same banks (2-way conflict); and the block waits
// for each tile's global loads with nothing to compute (no overlap of memory and math).
// Expectation (not yet measured on a GPU): ~25-35 TFLOP/s.
#include <cuda_runtime.h>

#include "cuda/check.hpp"
#include "cuda/context.hpp"
#include "cuda/gemm.hpp"
#include "gemm_tiles.cuh"

namespace cudagrad::cuda {
namespace {

using gemm_detail::Operand;
using gemm_detail::Output;

constexpr int block_tile = 128, block_k = 8, thread_tile = 8, threads = 256;
// The loader reads along outer in whole 512-byte rows for outer-contiguous operands.
using Loader = gemm_detail::TileLoader<block_tile, block_k, threads, true>;

__global__ void __launch_bounds__(threads) gemm_v4_vectorized_kernel(Operand a, Operand b, Output c, int col_tiles) {
    __shared__ __align__(16) float a_tile[block_k * block_tile];  // [k][row of C]
    __shared__ __align__(16) float b_tile[block_k * block_tile];  // [k][column of C]
    const int tile_row = blockIdx.x / col_tiles, tile_col = blockIdx.x % col_tiles;
    const int row0 = tile_row * block_tile, col0 = tile_col * block_tile;
    const int thread = threadIdx.x;
    const int thread_row = thread / (block_tile / thread_tile), thread_col = thread % (block_tile / thread_tile);

    float sum[thread_tile][thread_tile] = {};
    float a_values[thread_tile], b_values[thread_tile];
    Loader a_loader, b_loader;
    for (int k0 = 0; k0 < a.k_size; k0 += block_k) {
        a_loader.load(a, row0, k0, thread);
        b_loader.load(b, col0, k0, thread);
        a_loader.store_k_major<block_tile>(a_tile, a.k_contiguous, thread);
        b_loader.store_k_major<block_tile>(b_tile, b.k_contiguous, thread);
        __syncthreads();
#pragma unroll
        for (int p = 0; p < block_k; ++p) {
            const float4* a_row = reinterpret_cast<const float4*>(a_tile + p * block_tile + thread_row * thread_tile);
            const float4* b_row = reinterpret_cast<const float4*>(b_tile + p * block_tile + thread_col * thread_tile);
#pragma unroll
            for (int half = 0; half < 2; ++half) {
                const float4 a4 = a_row[half], b4 = b_row[half];
                a_values[4 * half + 0] = a4.x;
                a_values[4 * half + 1] = a4.y;
                a_values[4 * half + 2] = a4.z;
                a_values[4 * half + 3] = a4.w;
                b_values[4 * half + 0] = b4.x;
                b_values[4 * half + 1] = b4.y;
                b_values[4 * half + 2] = b4.z;
                b_values[4 * half + 3] = b4.w;
            }
#pragma unroll
            for (int i = 0; i < thread_tile; ++i)
#pragma unroll
                for (int j = 0; j < thread_tile; ++j) sum[i][j] += a_values[i] * b_values[j];
        }
        __syncthreads();  // all reads done before the next tile is stored
    }
#pragma unroll
    for (int i = 0; i < thread_tile; ++i) {
        const int row = row0 + thread_row * thread_tile + i, col = col0 + thread_col * thread_tile;
        gemm_detail::store_four(c, row, col, make_float4(sum[i][0], sum[i][1], sum[i][2], sum[i][3]));
        gemm_detail::store_four(c, row, col + 4, make_float4(sum[i][4], sum[i][5], sum[i][6], sum[i][7]));
    }
}

}  // namespace

void gemm_v4_vectorized(const GemmProblem& problem) {
    const int col_tiles = gemm_detail::tiles(problem.n, block_tile);
    const unsigned int blocks =
        gemm_detail::grid_blocks(gemm_detail::tiles(problem.m, block_tile), col_tiles, "gemm_v4_vectorized");
    gemm_v4_vectorized_kernel<<<blocks, threads, 0, current_stream()>>>(
        gemm_detail::operand_a(problem), gemm_detail::operand_b(problem), gemm_detail::output_c(problem), col_tiles);
    CUDAGRAD_LAUNCH_CHECK("gemm_v4_vectorized_kernel");
}

}  // namespace cudagrad::cuda
