// GEMM on the CUDA cores, v5 warp tiled: the fastest SIMT version, what implementation
// "warp_tiled" runs.
//
//   C = alpha * op(A) * op(B) + beta * C    row-major float32 (src/cuda/gemm.hpp), CPU reference
//   cpu::gemm_reference; tested in tests/test_cuda_gemm.cpp.
//
// Block tile 128 x 128, BK = 16, 256 threads = 8 warps in a 2 x 4 grid; each warp owns a
// 64 x 32 warp tile of C; each thread 8 x 8 elements of it, as 2 x 2 pieces of 4 x 4:
//   rows    warp_row * 64 + {0, 32} + lane_row * 4 + {0..3}     lane_row = lane / 4 (0..7)
//   columns warp_col * 32 + {0, 16} + lane_col * 4 + {0..3}     lane_col = lane % 4 (0..3)
// What it fixes over v4 (gemm_vectorized.cu):
//   1. Bank conflicts. A quarter-warp (8 lanes) reading its float4s of B now covers 4
//      consecutive float4s (64 contiguous bytes, duplicates broadcast) instead of v4's 32-byte
//      stride, and A reads are 2 distinct float4s: conflict-free. The transposing stores of a
//      k-contiguous operand land in 132-float rows, 2-way instead of 4-way.
//   2. Latency. Two shared-memory buffers: while the block computes on tile t, the global
//      loads of tile t + 1 are already in flight into registers (issued before the math,
//      written to the other buffer after it). One __syncthreads per tile instead of two.
//   3. L2 locality. Blocks walk C in groups of 8 tile rows (gemm_tiles.cuh, tile_of_block), so
//      the A and B panels a wave of blocks needs stay in the 50 MB L2.
//   4. A warp tile shape: the warp is the unit that shares operands (like a tensor-core MMA
//      fragment, gemm_tensor_core.cu), and a 64 x 32 warp tile reads 96 values of shared
//      memory per k step for 2048 FMAs.
// Napkin math at 4096^3: 137 GFLOP; per block per k step 2 * 16 * 128 floats = 16 KiB from L2
// for 2 * 128 * 128 * 16 = 524 kFLOP (32 FLOP per byte: at ~7 TB/s of L2 bandwidth that would
// allow 200+ TFLOP/s, far above the 67 TFLOP/s FP32 peak), so the FMA pipes bind.
// Target: >= 90% of cuBLAS's SIMT SGEMM at 4096^3 (~46 of ~51 TFLOP/s). That is a target, not
// yet measured on a GPU (docs/kernels-gemm-cuda.md holds the numbers once measured).
//
// Shared memory: 2 buffers x (16 x 132 + 16 x 132) floats = 33 KiB, static (< 48 KiB).
#include <cuda_runtime.h>

#include "cuda/check.hpp"
#include "cuda/context.hpp"
#include "cuda/gemm.hpp"
#include "gemm_tiles.cuh"

namespace cudagrad::cuda {
namespace {

using gemm_detail::Operand;
using gemm_detail::Output;

constexpr int block_tile = 128, block_k = 16, threads = 256;
constexpr int tile_ld = block_tile + 4;  // padded row: see the bank note above
constexpr int tile_floats = block_k * tile_ld;
constexpr int warp_rows = 64, warp_cols = 32;       // a warp's tile of C
constexpr int warps_across = block_tile / warp_cols;  // 4 warps side by side, 2 down
constexpr int group_rows = 8;                         // tile rows per group of the block order
using Loader = gemm_detail::TileLoader<block_tile, block_k, threads, true>;

__global__ void __launch_bounds__(threads)
    gemm_v5_warp_tiled_kernel(Operand a, Operand b, Output c, int row_tiles, int col_tiles) {
    __shared__ __align__(16) float a_tiles[2][tile_floats];  // [buffer][k][row of C]
    __shared__ __align__(16) float b_tiles[2][tile_floats];  // [buffer][k][column of C]
    int tile_row, tile_col;
    gemm_detail::tile_of_block(blockIdx.x, row_tiles, col_tiles, group_rows, &tile_row, &tile_col);
    const int row0 = tile_row * block_tile, col0 = tile_col * block_tile;
    const int thread = threadIdx.x, warp = thread / 32, lane = thread % 32;
    const int warp_row0 = (warp / warps_across) * warp_rows, warp_col0 = (warp % warps_across) * warp_cols;
    const int lane_row = lane / 4, lane_col = lane % 4;

    float sum[8][8] = {};  // [2 x 4 rows][2 x 4 columns]
    Loader a_loader, b_loader;
    a_loader.load(a, row0, 0, thread);
    b_loader.load(b, col0, 0, thread);
    a_loader.store_k_major<tile_ld>(a_tiles[0], a.k_contiguous, thread);
    b_loader.store_k_major<tile_ld>(b_tiles[0], b.k_contiguous, thread);
    __syncthreads();

    const int k_tiles = (a.k_size + block_k - 1) / block_k;
    for (int t = 0; t < k_tiles; ++t) {
        const int current = t & 1;
        const bool more = t + 1 < k_tiles;
        if (more) {  // start the next tile's global loads; they complete while we compute
            a_loader.load(a, row0, (t + 1) * block_k, thread);
            b_loader.load(b, col0, (t + 1) * block_k, thread);
        }
        const float* a_tile = a_tiles[current];
        const float* b_tile = b_tiles[current];
#pragma unroll
        for (int p = 0; p < block_k; ++p) {
            float a_values[8], b_values[8];
#pragma unroll
            for (int piece = 0; piece < 2; ++piece) {
                const float4 a4 = *reinterpret_cast<const float4*>(a_tile + p * tile_ld + warp_row0 + piece * 32 +
                                                                    lane_row * 4);
                const float4 b4 = *reinterpret_cast<const float4*>(b_tile + p * tile_ld + warp_col0 + piece * 16 +
                                                                    lane_col * 4);
                a_values[4 * piece + 0] = a4.x;
                a_values[4 * piece + 1] = a4.y;
                a_values[4 * piece + 2] = a4.z;
                a_values[4 * piece + 3] = a4.w;
                b_values[4 * piece + 0] = b4.x;
                b_values[4 * piece + 1] = b4.y;
                b_values[4 * piece + 2] = b4.z;
                b_values[4 * piece + 3] = b4.w;
            }
#pragma unroll
            for (int i = 0; i < 8; ++i)
#pragma unroll
                for (int j = 0; j < 8; ++j) sum[i][j] += a_values[i] * b_values[j];
        }
        if (more) {
            // The other buffer was last read in iteration t - 1, and every thread has passed
            // the barrier at the end of t - 1 since: safe to overwrite.
            a_loader.store_k_major<tile_ld>(a_tiles[current ^ 1], a.k_contiguous, thread);
            b_loader.store_k_major<tile_ld>(b_tiles[current ^ 1], b.k_contiguous, thread);
        }
        // Tile t + 1 is complete for everyone, and nobody reads tile t any more (it is
        // overwritten in iteration t + 1).
        __syncthreads();
    }

#pragma unroll
    for (int i = 0; i < 8; ++i) {
        const int row = row0 + warp_row0 + (i / 4) * 32 + lane_row * 4 + i % 4;
#pragma unroll
        for (int piece = 0; piece < 2; ++piece) {
            const int col = col0 + warp_col0 + piece * 16 + lane_col * 4;
            gemm_detail::store_four(c, row, col,
                                    make_float4(sum[i][4 * piece + 0], sum[i][4 * piece + 1], sum[i][4 * piece + 2],
                                                sum[i][4 * piece + 3]));
        }
    }
}

}  // namespace

void gemm_v5_warp_tiled(const GemmProblem& problem) {
    const int row_tiles = gemm_detail::tiles(problem.m, block_tile);
    const int col_tiles = gemm_detail::tiles(problem.n, block_tile);
    const unsigned int blocks = gemm_detail::grid_blocks(row_tiles, col_tiles, "gemm_v5_warp_tiled");
    gemm_v5_warp_tiled_kernel<<<blocks, threads, 0, current_stream()>>>(
        gemm_detail::operand_a(problem), gemm_detail::operand_b(problem), gemm_detail::output_c(problem), row_tiles,
        col_tiles);
    CUDAGRAD_LAUNCH_CHECK("gemm_v5_warp_tiled_kernel");
}

}  // namespace cudagrad::cuda
