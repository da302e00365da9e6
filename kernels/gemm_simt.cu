// GEMM on the CUDA cores, part 1 of the ladder: v1 naive, v2 shared-memory tiles, v3 register
// blocking. (v4 vectorized: gemm_vectorized.cu; v5 warp tiles: gemm_warp_tiled.cu; tensor
// cores: gemm_tensor_core.cu; the shared helpers: gemm_tiles.cuh.)
//
//   C = alpha * op(A) * op(B) + beta * C    row-major float32; op(A): m x k, op(B): k x n, C: m x n
//
// CPU reference: cpu::gemm_reference (src/cpu/gemm_reference.cpp), same arguments and the same
// BLAS conventions (beta == 0: C is not read). Every version here handles any m, n, k, both
// transposes and any leading dimensions: edge tiles are zero-padded when loaded and guarded
// when stored. The tests compare each one with a float64 loop (tests/test_cuda_gemm.cpp).
//
// Napkin math for the benchmark size 4096^3 on an H100 SXM (132 SMs, 1.98 GHz boost):
//   work:    2 * 4096^3 = 137 GFLOP. FP32 peak 132 SMs * 128 FMA/clk * 2 * 1.98 GHz = 67 TFLOP/s;
//            cuBLAS's SIMT SGEMM reaches ~51 TFLOP/s, 2.7 ms.
//   traffic: A, B and C once = 3 * 64 MiB = 201 MB, 0.07 ms at ~3 TB/s. So the GEMM is compute
//            bound by a factor of 40 *if* each element fetched from memory is reused ~k times
//            from on-chip storage. The ladder is the story of that reuse:
//   v1: each multiply-add reads its two operands from L1/L2: 8 bytes per 2 FLOP.
//   v2: each element of A and B is fetched once per 32 x 32 tile and reused 32 times from shared
//       memory; now shared-memory bandwidth binds (two shared loads per FMA).
//   v3: each thread keeps an 8 x 8 block of C in registers: 16 shared loads feed 64 FMAs.
// The TFLOP/s each reaches on an H100: docs/kernels-gemm-cuda.md (not yet measured on a GPU).
#include <cuda_runtime.h>

#include "cuda/check.hpp"
#include "cuda/context.hpp"
#include "cuda/gemm.hpp"
#include "gemm_tiles.cuh"

namespace cudagrad::cuda {
namespace {

using gemm_detail::grid_blocks;
using gemm_detail::Operand;
using gemm_detail::operand_element;
using gemm_detail::Output;
using gemm_detail::store_element;
using gemm_detail::tiles;

// ------------------------------------------------------------------------------------------
// v1 naive: one thread per element of C, a k-long dot product straight from global memory.
//
// A block is 8 rows x 32 columns of C: the 32 threads of a warp share one row of C, so their
// reads of A hit one address (a broadcast) and, for B stored k x n, their reads of B one
// contiguous 128-byte row segment (coalesced; with B transposed they are 32 rows apart, one of
// the things v2 fixes). Still, every FMA needs 4 fresh bytes of B from L1/L2: at the ~20-30 TB/s
// the L1s deliver together that caps v1 near 10 TFLOP/s, and in practice it reaches a few.
// What it fixes: nothing yet; it is the oracle the faster versions are read against.
constexpr int naive_rows = 8, naive_columns = 32;

__global__ void __launch_bounds__(naive_rows* naive_columns)
    gemm_v1_naive_kernel(Operand a, Operand b, Output c, int col_tiles) {
    const int tile_row = blockIdx.x / col_tiles, tile_col = blockIdx.x % col_tiles;
    const int row = tile_row * naive_rows + threadIdx.x / naive_columns;
    const int col = tile_col * naive_columns + threadIdx.x % naive_columns;
    if (row >= c.m || col >= c.n) return;
    // op(A)[row, p] and op(B)[p, col] as base + p * step, whatever the transposes.
    const float* a_row = a.k_contiguous ? a.data + row * a.ld : a.data + row;
    const std::int64_t a_step = a.k_contiguous ? 1 : a.ld;
    const float* b_col = b.k_contiguous ? b.data + col * b.ld : b.data + col;
    const std::int64_t b_step = b.k_contiguous ? 1 : b.ld;
    float sum = 0.0f;
    for (int p = 0; p < a.k_size; ++p) sum += a_row[p * a_step] * b_col[p * b_step];
    store_element(c, row, col, sum);
}

// ------------------------------------------------------------------------------------------
// v2 tiled: 32 x 32 tiles of op(A) and op(B) in shared memory, one thread per element of C.
//
// The block (1024 threads) loads a 32 x 32 tile of each operand, one element per thread,
// waits, and runs 32 multiply-adds from shared memory. Each global element now serves 32 FMAs:
// 0.125 bytes per FLOP from L2. The new limit is shared memory: every FMA reads As (a
// broadcast: the warp shares the row) and Bs (32 consecutive words), 2 shared loads per
// warp-FMA where the SM can issue 4 warp-FMAs but only 1 shared load per clock: 1/8 of peak,
// ~8 TFLOP/s at best.
// Loads follow the memory layout: for a k-contiguous operand thread x reads element k0 + x of
// its row; for an outer-contiguous one it reads outer index x of row k0 + ty, so consecutive
// threads read consecutive addresses in all four transpose cases. The transposing stores land
// in a 33-word row, which spreads a column over all 32 banks.
constexpr int tile = 32;

__global__ void __launch_bounds__(tile* tile) gemm_v2_tiled_kernel(Operand a, Operand b, Output c, int col_tiles) {
    __shared__ float a_tile[tile][tile + 1];  // [row of C][k]
    __shared__ float b_tile[tile][tile + 1];  // [k][column of C]
    const int tile_row = blockIdx.x / col_tiles, tile_col = blockIdx.x % col_tiles;
    const int tx = threadIdx.x % tile, ty = threadIdx.x / tile;
    const int row0 = tile_row * tile, col0 = tile_col * tile;
    float sum = 0.0f;
    for (int k0 = 0; k0 < a.k_size; k0 += tile) {
        if (a.k_contiguous) a_tile[ty][tx] = operand_element(a, row0 + ty, k0 + tx);
        else a_tile[tx][ty] = operand_element(a, row0 + tx, k0 + ty);
        if (b.k_contiguous) b_tile[tx][ty] = operand_element(b, col0 + ty, k0 + tx);
        else b_tile[ty][tx] = operand_element(b, col0 + tx, k0 + ty);
        __syncthreads();  // the tiles are complete
#pragma unroll
        for (int p = 0; p < tile; ++p) sum += a_tile[ty][p] * b_tile[p][tx];
        __syncthreads();  // everyone is done reading before the next tile overwrites them
    }
    store_element(c, row0 + ty, col0 + tx, sum);
}

// ------------------------------------------------------------------------------------------
// v3 register blocked: a 128 x 128 tile of C per block of 256 threads, 8 x 8 per thread.
//
// Per step of BK = 8 along k, the block stages a 128 x 8 slice of op(A) and an 8 x 128 slice
// of op(B) (scalar loads, 4 + 4 per thread), then each thread, for each of the 8 k values,
// reads 8 values of A and 8 of B into registers and does the 64 FMAs of their outer product.
// 16 shared loads per 64 FMAs: shared memory stops being the limit, registers carry the reuse.
// Global traffic: (128 + 128) * 8 floats per 2 * 128 * 128 * 8 FLOP = 0.03 bytes per FLOP.
// What v4 fixes: all shared loads here are 32-bit, and the reads of b_tile conflict (threads
// 0, 4, 8, 12 of a half-warp read the same bank); A is kept row-major, so a thread's 8 values
// of A are 8 separate loads.
constexpr int block_tile = 128, block_k = 8, thread_tile = 8, blocked_threads = 256;

__global__ void __launch_bounds__(blocked_threads)
    gemm_v3_register_blocked_kernel(Operand a, Operand b, Output c, int col_tiles) {
    __shared__ float a_tile[block_tile][block_k];  // [row of C][k]
    __shared__ float b_tile[block_k][block_tile];  // [k][column of C]
    const int tile_row = blockIdx.x / col_tiles, tile_col = blockIdx.x % col_tiles;
    const int row0 = tile_row * block_tile, col0 = tile_col * block_tile;
    const int thread = threadIdx.x;
    const int thread_row = thread / (block_tile / thread_tile), thread_col = thread % (block_tile / thread_tile);

    float sum[thread_tile][thread_tile] = {};
    float a_values[thread_tile], b_values[thread_tile];
    constexpr int per_thread = block_tile * block_k / blocked_threads;  // 4 elements of each operand
    for (int k0 = 0; k0 < a.k_size; k0 += block_k) {
        // Consecutive threads take consecutive addresses of whichever dimension is contiguous.
#pragma unroll
        for (int r = 0; r < per_thread; ++r) {
            const int e = thread + r * blocked_threads;
            if (a.k_contiguous) a_tile[e / block_k][e % block_k] = operand_element(a, row0 + e / block_k, k0 + e % block_k);
            else a_tile[e % block_tile][e / block_tile] = operand_element(a, row0 + e % block_tile, k0 + e / block_tile);
            if (b.k_contiguous) b_tile[e % block_k][e / block_k] = operand_element(b, col0 + e / block_k, k0 + e % block_k);
            else b_tile[e / block_tile][e % block_tile] = operand_element(b, col0 + e % block_tile, k0 + e / block_tile);
        }
        __syncthreads();
#pragma unroll
        for (int p = 0; p < block_k; ++p) {
#pragma unroll
            for (int i = 0; i < thread_tile; ++i) a_values[i] = a_tile[thread_row * thread_tile + i][p];
#pragma unroll
            for (int j = 0; j < thread_tile; ++j) b_values[j] = b_tile[p][thread_col * thread_tile + j];
#pragma unroll
            for (int i = 0; i < thread_tile; ++i)
#pragma unroll
                for (int j = 0; j < thread_tile; ++j) sum[i][j] += a_values[i] * b_values[j];
        }
        __syncthreads();
    }
#pragma unroll
    for (int i = 0; i < thread_tile; ++i)
#pragma unroll
        for (int j = 0; j < thread_tile; ++j)
            store_element(c, row0 + thread_row * thread_tile + i, col0 + thread_col * thread_tile + j, sum[i][j]);
}

}  // namespace

void gemm_v1_naive(const GemmProblem& problem) {
    const int col_tiles = tiles(problem.n, naive_columns);
    const unsigned int blocks = grid_blocks(tiles(problem.m, naive_rows), col_tiles, "gemm_v1_naive");
    gemm_v1_naive_kernel<<<blocks, naive_rows * naive_columns, 0, current_stream()>>>(
        gemm_detail::operand_a(problem), gemm_detail::operand_b(problem), gemm_detail::output_c(problem), col_tiles);
    CUDAGRAD_LAUNCH_CHECK("gemm_v1_naive_kernel");
}

void gemm_v2_tiled(const GemmProblem& problem) {
    const int col_tiles = tiles(problem.n, tile);
    const unsigned int blocks = grid_blocks(tiles(problem.m, tile), col_tiles, "gemm_v2_tiled");
    gemm_v2_tiled_kernel<<<blocks, tile * tile, 0, current_stream()>>>(
        gemm_detail::operand_a(problem), gemm_detail::operand_b(problem), gemm_detail::output_c(problem), col_tiles);
    CUDAGRAD_LAUNCH_CHECK("gemm_v2_tiled_kernel");
}

void gemm_v3_register_blocked(const GemmProblem& problem) {
    const int col_tiles = tiles(problem.n, block_tile);
    const unsigned int blocks = grid_blocks(tiles(problem.m, block_tile), col_tiles, "gemm_v3_register_blocked");
    gemm_v3_register_blocked_kernel<<<blocks, blocked_threads, 0, current_stream()>>>(
        gemm_detail::operand_a(problem), gemm_detail::operand_b(problem), gemm_detail::output_c(problem), col_tiles);
    CUDAGRAD_LAUNCH_CHECK("gemm_v3_register_blocked_kernel");
}

}  // namespace cudagrad::cuda
