// GEMM on the tensor cores: warp-level mma.sync (PTX inline assembly), TF32 or BF16 inputs,
// float32 accumulation. Implementation "tensor_core"; it follows the math mode (registry.hpp)
// and refuses fp32 mode (gemm_support.cu says so before it gets here).
//
//   C = alpha * op(A) * op(B) + beta * C    row-major float32 in memory (src/cuda/gemm.hpp)
//   TF32: each input rounded to TF32 (10-bit mantissa) with cvt.rna.tf32.f32 (nearest, ties
//         away from zero), products accumulated in float32: mma.sync m16n8k8 .tf32.
//   BF16: each input rounded to bfloat16 (7-bit mantissa), nearest-even, products accumulated
//         in float32: mma.sync m16n8k16 .bf16.
// The rounding happens once, as the tile is written to shared memory. CPU reference: the
// float64 product of the rounded inputs (tests/test_cuda_gemm.cpp rounds them the same way).
//
// Tiling: block tile 128 x 128, 256 threads = 8 warps in 2 x 4, warp tile 64 x 32 = 4 x 4 MMA
// tiles of 16 x 8: 16 MMAs per k step, 64 float accumulators per thread. BK = 16 (TF32) or 32
// (BF16) elements of k per tile: both are 16 32-bit words per row, so the shared-memory layout,
// the fragment loads and the bank analysis are the same for both:
//   tile[outer][k] (outer = row of C for A, column of C for B), rows of 20 words (16 + 4 pad).
//   Fragment loads (PTX ISA, "matrix fragments for mma.m16n8k8/.m16n8k16"): with g = lane / 4
//   and t = lane % 4, in words w of a row (TF32: one k per word; BF16: two consecutive k,
//   lower k in the lower half):
//     A: a0 = (row g, w + t)  a1 = (row g + 8, w + t)  a2 = (row g, w + t + 4)  a3 = (row g + 8, w + t + 4)
//     B: b0 = (col g, w + t)  b1 = (col g, w + t + 4)
//     C: c0 = (g, 2t)  c1 = (g, 2t + 1)  c2 = (g + 8, 2t)  c3 = (g + 8, 2t + 1)
//   A warp's 32 fragment reads hit words g * 20 + t (+ const): 20g mod 32 = 0, 20, 8, 28, 16, 4,
//   24, 12 plus t in 0..3 covers all 32 banks once: conflict-free. That is what the pad buys.
// Edge tiles: the loader writes zeros for elements outside op(A) / op(B), so the MMAs need no
// bounds checks; the epilogue stores only inside C.
// Pipelining: two shared buffers, with the global loads of tile t + 1 issued into registers
// before the MMAs of tile t (register-staged double buffering, as gemm_warp_tiled.cu). cp.async
// would skip the registers, but cannot round to TF32/BF16 on the way or transpose; it is the
// next step once this version has been measured.
//
// Napkin math at 4096^3 (137 GFLOP): cuBLAS reaches ~400 TFLOP/s in TF32 and ~780 in BF16 with
// Hopper's wgmma, which mma.sync cannot issue at full rate; expect well under that. Per k tile a
// block reads (128 + 128) * 16 floats = 16 KiB (TF32) or 32 KiB (BF16: the tensors are float32
// in memory, rounded on chip) for 2 * 128 * 128 * BK FLOP: 32 FLOP per byte, so at ~7-10 TB/s
// of L2 bandwidth the 128 x 128 tile caps near 250-300 TFLOP/s. Not yet measured on a GPU.
//
// Shared memory: 2 buffers x 2 operands x 128 x 20 words = 40 KiB, static (< 48 KiB).
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cstdint>

#include "cuda/check.hpp"
#include "cuda/context.hpp"
#include "cuda/gemm.hpp"
#include "gemm_tiles.cuh"

namespace cudagrad::cuda {
namespace {

using gemm_detail::Operand;
using gemm_detail::Output;

constexpr int block_tile = 128, threads = 256;
constexpr int row_words = 16, row_stride = row_words + 4;  // words per tile row, with the pad
constexpr int tile_words = block_tile * row_stride;
constexpr int warp_rows = 64, warp_cols = 32, warps_across = block_tile / warp_cols;
constexpr int mma_tiles_m = warp_rows / 16, mma_tiles_n = warp_cols / 8;
constexpr int group_rows = 8;

__device__ __forceinline__ std::uint32_t to_tf32(float value) {
    std::uint32_t result;
    asm("cvt.rna.tf32.f32 %0, %1;" : "=r"(result) : "f"(value));
    return result;
}

__device__ __forceinline__ std::uint32_t to_bf16_bits(float value) {
    return __bfloat16_as_ushort(__float2bfloat16_rn(value));
}

// The two precisions differ in k per word, the MMA instruction and how a float becomes an
// input; everything else is shared.
struct Tf32 {
    static constexpr int block_k = 16;  // one k per 32-bit word

    // Four staged values of one operand into the tile: four consecutive k of one row (a 16-byte
    // store), or one k of four consecutive rows (four word stores).
    __device__ __forceinline__ static void store_along_k(std::uint32_t* tile, int outer, int kk, float4 v) {
        *reinterpret_cast<uint4*>(tile + outer * row_stride + kk) =
            make_uint4(to_tf32(v.x), to_tf32(v.y), to_tf32(v.z), to_tf32(v.w));
    }
    __device__ __forceinline__ static void store_along_outer(std::uint32_t* tile, int outer, int kk, float4 v) {
        tile[(outer + 0) * row_stride + kk] = to_tf32(v.x);
        tile[(outer + 1) * row_stride + kk] = to_tf32(v.y);
        tile[(outer + 2) * row_stride + kk] = to_tf32(v.z);
        tile[(outer + 3) * row_stride + kk] = to_tf32(v.w);
    }
    __device__ __forceinline__ static void mma(float (&d)[4], const std::uint32_t (&a)[4], const std::uint32_t (&b)[2]) {
        asm volatile(
            "mma.sync.aligned.m16n8k8.row.col.f32.tf32.tf32.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
            "{%0,%1,%2,%3};"
            : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
            : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
    }
};

struct Bf16 {
    static constexpr int block_k = 32;  // two k per 32-bit word

    __device__ __forceinline__ static void store_along_k(std::uint32_t* tile, int outer, int kk, float4 v) {
        // kk is a multiple of 4: words kk/2 and kk/2 + 1, an 8-byte aligned pair.
        const std::uint32_t low = to_bf16_bits(v.x) | (to_bf16_bits(v.y) << 16);
        const std::uint32_t high = to_bf16_bits(v.z) | (to_bf16_bits(v.w) << 16);
        *reinterpret_cast<uint2*>(tile + outer * row_stride + kk / 2) = make_uint2(low, high);
    }
    __device__ __forceinline__ static void store_along_outer(std::uint32_t* tile, int outer, int kk, float4 v) {
        unsigned short* halves = reinterpret_cast<unsigned short*>(tile);
        constexpr int half_stride = 2 * row_stride;
        halves[(outer + 0) * half_stride + kk] = static_cast<unsigned short>(to_bf16_bits(v.x));
        halves[(outer + 1) * half_stride + kk] = static_cast<unsigned short>(to_bf16_bits(v.y));
        halves[(outer + 2) * half_stride + kk] = static_cast<unsigned short>(to_bf16_bits(v.z));
        halves[(outer + 3) * half_stride + kk] = static_cast<unsigned short>(to_bf16_bits(v.w));
    }
    __device__ __forceinline__ static void mma(float (&d)[4], const std::uint32_t (&a)[4], const std::uint32_t (&b)[2]) {
        asm volatile(
            "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
            "{%0,%1,%2,%3};"
            : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
            : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
    }
};

// Writes a loader's staged float4s into an outer-major tile, rounding to the input format.
template <typename Precision, typename Loader>
__device__ __forceinline__ void store_tile(const Loader& loader, std::uint32_t* tile, bool k_contiguous, int thread) {
#pragma unroll
    for (int r = 0; r < Loader::PER_THREAD; ++r) {
        int outer, kk;
        Loader::position(k_contiguous, thread + r * threads, &outer, &kk);
        if (k_contiguous) Precision::store_along_k(tile, outer, kk, loader.staged[r]);
        else Precision::store_along_outer(tile, outer, kk, loader.staged[r]);
    }
}

// Registers (ptxas, sm_90): TF32 126, BF16 165 (its loader stages twice as many floats), so
// TF32 fits 2 blocks per SM and BF16 1. __launch_bounds__(threads, 2) forces BF16 to 128 with a
// small spill: a tuning question for the first GPU run.
template <typename Precision>
__global__ void __launch_bounds__(threads)
    gemm_tensor_core_kernel(Operand a, Operand b, Output c, int row_tiles, int col_tiles) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
    constexpr int block_k = Precision::block_k;
    // Outer-contiguous operands use the 4 x 8 lane grouping: transposing stores hit 16 banks.
    using Loader = gemm_detail::TileLoader<block_tile, block_k, threads, false>;
    __shared__ __align__(16) std::uint32_t a_tiles[2][tile_words];  // [buffer][row of C][k words]
    __shared__ __align__(16) std::uint32_t b_tiles[2][tile_words];  // [buffer][column of C][k words]

    int tile_row, tile_col;
    gemm_detail::tile_of_block(blockIdx.x, row_tiles, col_tiles, group_rows, &tile_row, &tile_col);
    const int row0 = tile_row * block_tile, col0 = tile_col * block_tile;
    const int thread = threadIdx.x, warp = thread / 32, lane = thread % 32;
    const int warp_row0 = (warp / warps_across) * warp_rows, warp_col0 = (warp % warps_across) * warp_cols;
    const int g = lane / 4, t = lane % 4;

    float accumulators[mma_tiles_m][mma_tiles_n][4] = {};
    Loader a_loader, b_loader;
    a_loader.load(a, row0, 0, thread);
    b_loader.load(b, col0, 0, thread);
    store_tile<Precision>(a_loader, a_tiles[0], a.k_contiguous, thread);
    store_tile<Precision>(b_loader, b_tiles[0], b.k_contiguous, thread);
    __syncthreads();

    const int k_tiles = (a.k_size + block_k - 1) / block_k;
    for (int kt = 0; kt < k_tiles; ++kt) {
        const int current = kt & 1;
        const bool more = kt + 1 < k_tiles;
        if (more) {
            a_loader.load(a, row0, (kt + 1) * block_k, thread);
            b_loader.load(b, col0, (kt + 1) * block_k, thread);
        }
        const std::uint32_t* a_tile = a_tiles[current];
        const std::uint32_t* b_tile = b_tiles[current];
#pragma unroll
        for (int w = 0; w < row_words; w += 8) {  // two MMA k steps per tile: 8 words each
            std::uint32_t a_fragments[mma_tiles_m][4], b_fragments[mma_tiles_n][2];
#pragma unroll
            for (int i = 0; i < mma_tiles_m; ++i) {
                const std::uint32_t* rows = a_tile + (warp_row0 + i * 16 + g) * row_stride + w + t;
                a_fragments[i][0] = rows[0];
                a_fragments[i][1] = rows[8 * row_stride];
                a_fragments[i][2] = rows[4];
                a_fragments[i][3] = rows[8 * row_stride + 4];
            }
#pragma unroll
            for (int j = 0; j < mma_tiles_n; ++j) {
                const std::uint32_t* column = b_tile + (warp_col0 + j * 8 + g) * row_stride + w + t;
                b_fragments[j][0] = column[0];
                b_fragments[j][1] = column[4];
            }
#pragma unroll
            for (int i = 0; i < mma_tiles_m; ++i)
#pragma unroll
                for (int j = 0; j < mma_tiles_n; ++j) Precision::mma(accumulators[i][j], a_fragments[i], b_fragments[j]);
        }
        if (more) {  // the other buffer's last readers passed the barrier of iteration kt - 1
            store_tile<Precision>(a_loader, a_tiles[current ^ 1], a.k_contiguous, thread);
            store_tile<Precision>(b_loader, b_tiles[current ^ 1], b.k_contiguous, thread);
        }
        __syncthreads();
    }

#pragma unroll
    for (int i = 0; i < mma_tiles_m; ++i)
#pragma unroll
        for (int j = 0; j < mma_tiles_n; ++j) {
            const int row = row0 + warp_row0 + i * 16 + g, col = col0 + warp_col0 + j * 8 + 2 * t;
            gemm_detail::store_element(c, row, col, accumulators[i][j][0]);
            gemm_detail::store_element(c, row, col + 1, accumulators[i][j][1]);
            gemm_detail::store_element(c, row + 8, col, accumulators[i][j][2]);
            gemm_detail::store_element(c, row + 8, col + 1, accumulators[i][j][3]);
        }
#else
    __trap();  // compiled for a GPU without TF32/BF16 mma.sync; the host refuses before launching
#endif
}

template <typename Precision>
void launch(const GemmProblem& problem, const char* name) {
    const int row_tiles = gemm_detail::tiles(problem.m, block_tile);
    const int col_tiles = gemm_detail::tiles(problem.n, block_tile);
    const unsigned int blocks = gemm_detail::grid_blocks(row_tiles, col_tiles, name);
    gemm_tensor_core_kernel<Precision><<<blocks, threads, 0, current_stream()>>>(
        gemm_detail::operand_a(problem), gemm_detail::operand_b(problem), gemm_detail::output_c(problem), row_tiles,
        col_tiles);
    CUDAGRAD_LAUNCH_CHECK(name);
}

}  // namespace

void gemm_tensor_core(const GemmProblem& problem, MathMode mode) {
    check(mode == MathMode::TF32 || mode == MathMode::BF16, "gemm",
          "the tensor_core implementation needs math mode tf32 or bf16 (got ", math_mode_name(mode), ")");
    const cudaDeviceProp& properties = current_context().properties;
    check(properties.major >= 8, "gemm", "the tensor_core implementation needs a GPU of compute capability 8.0 or "
          "newer (TF32/BF16 mma.sync); this one is ", properties.major, ".", properties.minor);
    if (mode == MathMode::TF32) launch<Tf32>(problem, "gemm_tensor_core_kernel<tf32>");
    else launch<Bf16>(problem, "gemm_tensor_core_kernel<bf16>");
}

}  // namespace cudagrad::cuda
