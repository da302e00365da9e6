// What the GEMM kernels share (gemm_simt.cu, gemm_vectorized.cu, gemm_warp_tiled.cu,
// gemm_tensor_core.cu): the kernel arguments, element access with the transposes and bounds,
// the loader that moves one tile of an operand from global memory into registers (float4 where
// the layout allows), the epilogue that writes C, and the order in which blocks walk the tiles.
//
// The operands as the kernels see them. Both A and B are read as "outer x k" matrices:
//   A: outer = the m rows of op(A);    element (i, p) of op(A)
//   B: outer = the n columns of op(B); element (p, j) of op(B)
// In memory each is either k-contiguous (consecutive k next to each other: A not transposed,
// B transposed) or outer-contiguous (A transposed, B not transposed). The loader reads along
// whichever dimension is contiguous, so global loads are coalesced in all four transpose cases.
#pragma once

#include <cuda_runtime.h>

#include <climits>
#include <cstdint>

#include "cuda/gemm.hpp"
#include "cudagrad/error.hpp"

namespace cudagrad::cuda::gemm_detail {

// Sizes are int on the device (gemm() checks they are below 2^30, so a tile origin plus a tile
// size never overflows); every element offset is computed in int64 (row * ld may pass 2^31).
struct Operand {
    const float* data;
    std::int64_t ld;
    int outer_size;     // m for A, n for B
    int k_size;         // k
    bool k_contiguous;  // element (outer, kk) at data[outer * ld + kk], else data[kk * ld + outer]
    bool vector_ok;     // data 16-byte aligned and ld % 4 == 0: float4 loads along the contiguous dimension
};

struct Output {
    float* data;
    std::int64_t ld;
    int m, n;
    float alpha, beta;
    bool vector_ok;  // data 16-byte aligned and ld % 4 == 0: float4 stores along a row
};

inline bool aligned_16(const void* pointer) { return reinterpret_cast<std::uintptr_t>(pointer) % 16 == 0; }

inline Operand operand_a(const GemmProblem& problem) {
    return {problem.a, problem.lda, static_cast<int>(problem.m), static_cast<int>(problem.k), !problem.transpose_a,
            aligned_16(problem.a) && problem.lda % 4 == 0};
}

inline Operand operand_b(const GemmProblem& problem) {
    return {problem.b, problem.ldb, static_cast<int>(problem.n), static_cast<int>(problem.k), problem.transpose_b,
            aligned_16(problem.b) && problem.ldb % 4 == 0};
}

inline Output output_c(const GemmProblem& problem) {
    return {problem.c, problem.ldc, static_cast<int>(problem.m), static_cast<int>(problem.n), problem.alpha,
            problem.beta, aligned_16(problem.c) && problem.ldc % 4 == 0};
}

// Number of tiles of `tile` covering `size`.
inline int tiles(std::int64_t size, int tile) { return static_cast<int>((size + tile - 1) / tile); }

// A 1-D grid of row_tiles x col_tiles blocks (gridDim.x allows 2^31 - 1; y and z only 65535).
inline unsigned int grid_blocks(int row_tiles, int col_tiles, const char* kernel) {
    const std::int64_t blocks = static_cast<std::int64_t>(row_tiles) * col_tiles;
    check(blocks <= INT_MAX, kernel, "the problem needs ", blocks, " blocks, more than one launch allows");
    return static_cast<unsigned int>(blocks);
}

// Element (outer, kk) of an operand, 0 outside the matrix (the zero padding of edge tiles).
__device__ __forceinline__ float operand_element(const Operand& x, int outer, int kk) {
    if (outer >= x.outer_size || kk >= x.k_size) return 0.0f;
    return x.k_contiguous ? x.data[outer * x.ld + kk] : x.data[kk * x.ld + outer];
}

// C[row, col] = alpha * value + beta * C[row, col], inside the matrix only; beta == 0 never
// reads C (it may hold NaN).
__device__ __forceinline__ void store_element(const Output& c, int row, int col, float value) {
    if (row >= c.m || col >= c.n) return;
    float* target = c.data + row * c.ld + col;
    *target = c.beta == 0.0f ? c.alpha * value : c.alpha * value + c.beta * *target;
}

// Four consecutive elements of one row of C: one float4 store where aligned and inside the
// matrix, else element by element.
__device__ __forceinline__ void store_four(const Output& c, int row, int col, float4 value) {
    if (row >= c.m) return;
    if (c.vector_ok && col + 3 < c.n) {
        float4* target = reinterpret_cast<float4*>(c.data + row * c.ld + col);
        float4 result = make_float4(c.alpha * value.x, c.alpha * value.y, c.alpha * value.z, c.alpha * value.w);
        if (c.beta != 0.0f) {
            const float4 old = *target;
            result.x += c.beta * old.x;
            result.y += c.beta * old.y;
            result.z += c.beta * old.z;
            result.w += c.beta * old.w;
        }
        *target = result;
        return;
    }
    store_element(c, row, col + 0, value.x);
    store_element(c, row, col + 1, value.y);
    store_element(c, row, col + 2, value.z);
    store_element(c, row, col + 3, value.w);
}

// Which tile a block computes. Blocks run roughly in index order, so walking C in groups of
// `group` tile rows, column by column inside a group, keeps the A panels of the group and the
// B panel of the current column in L2 together ("grouped" or "swizzled" order). Bijective:
// every tile is computed by exactly one block.
__device__ __forceinline__ void tile_of_block(int block, int row_tiles, int col_tiles, int group, int* tile_row,
                                              int* tile_col) {
    const int tiles_per_group = group * col_tiles;
    const int first_row = (block / tiles_per_group) * group;
    const int rows_in_group = min(row_tiles - first_row, group);
    const int in_group = block % tiles_per_group;
    *tile_row = first_row + in_group % rows_in_group;
    *tile_col = in_group / rows_in_group;
}

// Moves an OUTER x BK tile of an operand (origin outer0, k0; both multiples of 4) from global
// memory into registers, four elements per float4, THREADS threads each holding PER_THREAD.
// Where a float4 would leave the matrix or the layout is not aligned, its four elements are
// read one by one (zero outside the matrix): the vector path is an optimisation, never a
// condition. Splitting "load" from "store to shared memory" lets a kernel issue the loads of
// the next tile before computing on the current one (register-staged double buffering).
//
// Which float4 each thread takes (vector index e = thread + r * THREADS):
//   k-contiguous operand: vectors run along k: outer = e / (BK/4), kk = 4 * (e % (BK/4)).
//   outer-contiguous operand, kOuterRuns: vectors run along outer, one k row after another:
//       kk = e / (OUTER/4), outer = 4 * (e % (OUTER/4))  -- a warp reads 512 contiguous bytes.
//   outer-contiguous operand, !kOuterRuns: a warp takes 4 vectors along outer x 8 rows of k
//       (8 segments of 64 bytes), so its transposing stores into an outer-major shared tile
//       hit 16 banks instead of 2 (gemm_tensor_core.cu).
template <int OUTER, int BK, int THREADS, bool kOuterRuns>
struct TileLoader {
    static constexpr int VECTORS = OUTER * BK / 4;
    static constexpr int PER_THREAD = VECTORS / THREADS;
    static_assert(VECTORS % THREADS == 0, "the tile must split evenly over the threads");
    static_assert(OUTER % 16 == 0 && BK % 8 == 0, "tile sizes the vector mapping assumes");

    float4 staged[PER_THREAD];

    // The first element (outer, kk) of vector e, relative to the tile origin.
    __device__ __forceinline__ static void position(bool k_contiguous, int e, int* outer, int* kk) {
        if (k_contiguous) {
            *outer = e / (BK / 4);
            *kk = 4 * (e % (BK / 4));
        } else if (kOuterRuns) {
            *kk = e / (OUTER / 4);
            *outer = 4 * (e % (OUTER / 4));
        } else {
            const int group = e / 32, lane = e % 32;
            *outer = 16 * (group % (OUTER / 16)) + 4 * (lane % 4);
            *kk = 8 * (group / (OUTER / 16)) + lane / 4;
        }
    }

    __device__ __forceinline__ void load(const Operand& x, int outer0, int k0, int thread) {
#pragma unroll
        for (int r = 0; r < PER_THREAD; ++r) {
            int outer, kk;
            position(x.k_contiguous, thread + r * THREADS, &outer, &kk);
            const int o = outer0 + outer, p = k0 + kk;
            if (x.k_contiguous) {
                if (x.vector_ok && o < x.outer_size && p + 3 < x.k_size) {
                    staged[r] = *reinterpret_cast<const float4*>(x.data + o * x.ld + p);
                } else {
                    staged[r] = make_float4(operand_element(x, o, p), operand_element(x, o, p + 1),
                                            operand_element(x, o, p + 2), operand_element(x, o, p + 3));
                }
            } else {
                if (x.vector_ok && p < x.k_size && o + 3 < x.outer_size) {
                    staged[r] = *reinterpret_cast<const float4*>(x.data + p * x.ld + o);
                } else {
                    staged[r] = make_float4(operand_element(x, o, p), operand_element(x, o + 1, p),
                                            operand_element(x, o + 2, p), operand_element(x, o + 3, p));
                }
            }
        }
    }

    // Stores the staged vectors into a k-major shared tile: tile[kk * LD + outer] (the SIMT
    // kernels' layout: a thread's row or column fragment is contiguous). LD % 4 == 0 and a
    // 16-byte aligned tile make the outer-contiguous case one float4 store.
    template <int LD>
    __device__ __forceinline__ void store_k_major(float* tile, bool k_contiguous, int thread) const {
        static_assert(LD % 4 == 0 && LD >= OUTER, "k-major tile row");
#pragma unroll
        for (int r = 0; r < PER_THREAD; ++r) {
            int outer, kk;
            position(k_contiguous, thread + r * THREADS, &outer, &kk);
            if (k_contiguous) {  // four k values of one outer index: a transposing store
                tile[(kk + 0) * LD + outer] = staged[r].x;
                tile[(kk + 1) * LD + outer] = staged[r].y;
                tile[(kk + 2) * LD + outer] = staged[r].z;
                tile[(kk + 3) * LD + outer] = staged[r].w;
            } else {
                *reinterpret_cast<float4*>(tile + kk * LD + outer) = staged[r];
            }
        }
    }
};

}  // namespace cudagrad::cuda::gemm_detail
