// conv2d v3: implicit GEMM on the tensor cores (mma.sync), all three passes.
//
//   x: (N, C, H, W), w: (K, C, R, S), y and dy: (N, K, P, Q)   (groups == 1, dilation 1)
//   The same three GEMMs as v2 (kernels/conv2d_implicit_gemm.cu, whose header has the table):
//   forward M=N*P*Q, N=K, reduction C*R*S; backward data M=N*H*W, N=C, reduction K*R*S;
//   backward weight M=K, N=C*R*S, reduction N*P*Q (split, partials added in a fixed order).
// Precision (registry.hpp's math mode; fp32 mode is an error, since these units cannot do it):
//   tf32  mma.sync.m16n8k8  .tf32 inputs: each input rounded to 10 mantissa bits (cvt.rna)
//   bf16  mma.sync.m16n8k16 .bf16 inputs: each input rounded to 7 mantissa bits (round to nearest)
// Products are accumulated in fp32 in both; the output is fp32.
// CPU reference: src/cpu/conv2d.cpp, to the tolerance the input rounding implies.
//
// What changes from v2: a block computes 128x64 outputs with 8 warps (4 along M x 2 along N),
// each warp a 32x32 tile = 2x4 mma tiles of 16x8. Operands are gathered with the same
// shared-memory records as v2 and rounded once, when stored into shared memory; fragments are
// then plain shared loads (tf32) or one pack instruction per pair (bf16). The shared tile of an
// operand is laid out along its global contiguous dimension, so the stores from global loads
// are conflict-free, and padded (+8 or +4 floats) so that the tf32 fragment loads
// (8 rows x 4 columns per warp) hit 32 different banks.
// Fragment layouts (PTX ISA, mma.m16n8k8 .tf32; g = lane / 4, t = lane % 4):
//   A 16x8:  a0 (g, t)  a1 (g+8, t)  a2 (g, t+4)  a3 (g+8, t+4)
//   B 8x8:   b0 (t, g)  b1 (t+4, g)
//   C 16x8:  c0 (g, 2t) c1 (g, 2t+1) c2 (g+8, 2t) c3 (g+8, 2t+1)
// and for .m16n8k16 .bf16 each A/B register holds the pair (k, k+1), the lower k in the low
// half: a0 (g, 2t..) a1 (g+8, 2t..) a2 (g, 2t+8..) a3 (g+8, 2t+8..); b0 (2t.., g) b1 (2t+8.., g).
//
// Napkin math (H100 SXM: tf32 ~495 TFLOP/s dense, bf16 ~990, fp32 FMA ~51; 132 SMs at ~1.8 GHz,
// so tf32 is ~2048 FLOP per clock per SM: one m16n8k8 mma per clock). Per 32-deep step a block
// issues 8 warps x 8 tiles x 4 k-steps = 256 mma (tf32) = 256 clocks of tensor work. It also
// gathers 128x32 + 64x32 = 6144 operand values: 24 per thread, each ~12 instructions of record
// arithmetic, bounds checks, load, round and store, ~300 per thread, ~2400 warp-instructions
// per block = ~600 issue clocks at 4 per clock per SM. So this single-buffered kernel is bound
// by the gather, not the tensor cores: at best ~30-40% of the tf32 peak with two blocks per SM
// overlapping, realistically 50-100 TFLOP/s; bf16 halves the tensor time and gains little.
// ResNet-50 layer1 3x3 (29.6 GFLOP at batch 128): ~0.3-0.6 ms. The next rungs: cp.async double
// buffering, ldmatrix, and a gather specialised for 1x1 convolutions (no r, s, no bounds).
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>
#include <string>

#include "conv2d_addressing.cuh"
#include "cuda/check.hpp"
#include "cuda/context.hpp"
#include "cuda/conv2d.hpp"
#include "cuda/runtime.hpp"
#include "cudagrad/registry.hpp"
#include "cudagrad/tensor.hpp"
#include "registry_internal.hpp"

namespace cudagrad::cuda {
namespace {

constexpr int tile_m = 128, tile_n = 64, tile_k = 32, threads_per_block = 256, max_splits = 64;
constexpr int a_stride_rows_fastest = tile_m + 8, a_stride_k_fastest = tile_k + 4;  // floats per shared row
constexpr int b_stride_cols_fastest = tile_n + 8, b_stride_k_fastest = tile_k + 4;
constexpr int a_tile_floats = tile_m * a_stride_k_fastest;  // >= tile_k * a_stride_rows_fastest
constexpr int b_tile_floats = tile_n * b_stride_k_fastest;  // == tile_k * b_stride_cols_fastest
static_assert(a_tile_floats >= tile_k * a_stride_rows_fastest && b_tile_floats >= tile_k * b_stride_cols_fastest);
static_assert(tile_m + tile_n <= threads_per_block, "one thread per row and column record of a tile");

enum class Precision { Tf32, Bf16 };

using namespace conv2d_detail;  // Geometry, geometry_of and the three passes (conv2d_addressing.cuh)

// ---- rounding and the mma instructions ----
template <Precision precision>
__device__ float round_input(float value) {
    if constexpr (precision == Precision::Tf32) {
        unsigned int bits;
        asm("cvt.rna.tf32.f32 %0, %1;" : "=r"(bits) : "f"(value));
        return __uint_as_float(bits);
    } else {
        return __bfloat162float(__float2bfloat16_rn(value));
    }
}

// Two already-rounded values as one .bf16x2 register: `low` (the smaller k) in bits 0..15.
__device__ unsigned int pack_bf16(float low, float high) {
    const __nv_bfloat162 pair = __floats2bfloat162_rn(low, high);
    return *reinterpret_cast<const unsigned int*>(&pair);
}

__device__ void mma_tf32(float (&c)[4], const unsigned int (&a)[4], const unsigned int (&b)[2]) {
    asm volatile("mma.sync.aligned.m16n8k8.row.col.f32.tf32.tf32.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
                 "{%0,%1,%2,%3};"
                 : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
                 : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
}

__device__ void mma_bf16(float (&c)[4], const unsigned int (&a)[4], const unsigned int (&b)[2]) {
    asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
                 "{%0,%1,%2,%3};"
                 : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
                 : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
}

// One block: out[m0 .. m0+127][n0 .. n0+63] over the reduction slice of blockIdx.z.
// RowsFastestA / ColsFastestB: the operand is contiguous in global memory along M / N (else
// along the reduction); loads and the shared layout follow that dimension.
// Two blocks per SM (at most 128 registers a thread; ptxas spills a few dozen bytes for the
// backward passes): one block's gather overlaps the other's mma. Unbounded, it takes ~160-190
// registers and only one block fits.
template <Precision precision, typename Pass, bool RowsFastestA, bool ColsFastestB>
__global__ void __launch_bounds__(threads_per_block, 2)
    tensor_core_gemm_kernel(Pass pass, int M, int N, int reduction, int per_split) {
    __shared__ __align__(16) float a_tile[a_tile_floats];
    __shared__ __align__(16) float b_tile[b_tile_floats];
    __shared__ int4 rows[tile_m], cols[tile_n], steps[tile_k];
    // Element (m, j) of the A tile and (j, n) of the B tile in shared memory.
    auto a_at = [&](int m, int j) -> float& {
        return RowsFastestA ? a_tile[j * a_stride_rows_fastest + m] : a_tile[m * a_stride_k_fastest + j];
    };
    auto b_at = [&](int j, int n) -> float& {
        return ColsFastestB ? b_tile[j * b_stride_cols_fastest + n] : b_tile[n * b_stride_k_fastest + j];
    };

    const int tid = threadIdx.x, m0 = blockIdx.x * tile_m, n0 = blockIdx.y * tile_n, split = blockIdx.z;
    const int j_begin = split * per_split, j_end = min(reduction, j_begin + per_split);
    write_row_and_col_records(pass, tid, m0, M, n0, N, rows, cols);
    __syncthreads();

    const int lane = tid % 32, warp = tid / 32, g = lane / 4, t = lane % 4;
    const int warp_m = (warp % 4) * 32, warp_n = (warp / 4) * 32;
    float acc[2][4][4] = {};
    constexpr int a_per_thread = tile_m * tile_k / threads_per_block;  // 16
    constexpr int b_per_thread = tile_n * tile_k / threads_per_block;  // 8
    for (int j0 = j_begin; j0 < j_end; j0 += tile_k) {
        write_step_records(pass, tid, j0, j_end, steps);
        __syncthreads();  // steps ready; every warp has finished the previous step's mma
        float a_values[a_per_thread], b_values[b_per_thread];
#pragma unroll
        for (int i = 0; i < a_per_thread; ++i) {
            const int e = tid + i * threads_per_block;
            const int m = RowsFastestA ? e % tile_m : e / tile_k, j = RowsFastestA ? e / tile_m : e % tile_k;
            a_values[i] = m0 + m < M && j0 + j < j_end ? pass.a(rows[m], steps[j]) : 0.0f;
        }
#pragma unroll
        for (int i = 0; i < b_per_thread; ++i) {
            const int e = tid + i * threads_per_block;
            const int n = ColsFastestB ? e % tile_n : e / tile_k, j = ColsFastestB ? e / tile_n : e % tile_k;
            b_values[i] = n0 + n < N && j0 + j < j_end ? pass.b(steps[j], cols[n]) : 0.0f;
        }
#pragma unroll
        for (int i = 0; i < a_per_thread; ++i) {
            const int e = tid + i * threads_per_block;
            a_at(RowsFastestA ? e % tile_m : e / tile_k, RowsFastestA ? e / tile_m : e % tile_k) =
                round_input<precision>(a_values[i]);
        }
#pragma unroll
        for (int i = 0; i < b_per_thread; ++i) {
            const int e = tid + i * threads_per_block;
            b_at(ColsFastestB ? e / tile_n : e % tile_k, ColsFastestB ? e % tile_n : e / tile_k) =
                round_input<precision>(b_values[i]);
        }
        __syncthreads();  // tiles ready
        constexpr int step = precision == Precision::Tf32 ? 8 : 16;
#pragma unroll
        for (int ks = 0; ks < tile_k; ks += step) {
            unsigned int a[2][4], b[4][2];
#pragma unroll
            for (int mt = 0; mt < 2; ++mt) {
                const int row = warp_m + mt * 16 + g;
                if constexpr (precision == Precision::Tf32) {
                    a[mt][0] = __float_as_uint(a_at(row, ks + t));
                    a[mt][1] = __float_as_uint(a_at(row + 8, ks + t));
                    a[mt][2] = __float_as_uint(a_at(row, ks + t + 4));
                    a[mt][3] = __float_as_uint(a_at(row + 8, ks + t + 4));
                } else {
                    const int k = ks + 2 * t;
                    a[mt][0] = pack_bf16(a_at(row, k), a_at(row, k + 1));
                    a[mt][1] = pack_bf16(a_at(row + 8, k), a_at(row + 8, k + 1));
                    a[mt][2] = pack_bf16(a_at(row, k + 8), a_at(row, k + 9));
                    a[mt][3] = pack_bf16(a_at(row + 8, k + 8), a_at(row + 8, k + 9));
                }
            }
#pragma unroll
            for (int nt = 0; nt < 4; ++nt) {
                const int col = warp_n + nt * 8 + g;
                if constexpr (precision == Precision::Tf32) {
                    b[nt][0] = __float_as_uint(b_at(ks + t, col));
                    b[nt][1] = __float_as_uint(b_at(ks + t + 4, col));
                } else {
                    const int k = ks + 2 * t;
                    b[nt][0] = pack_bf16(b_at(k, col), b_at(k + 1, col));
                    b[nt][1] = pack_bf16(b_at(k + 8, col), b_at(k + 9, col));
                }
            }
#pragma unroll
            for (int mt = 0; mt < 2; ++mt)
#pragma unroll
                for (int nt = 0; nt < 4; ++nt) {
                    if constexpr (precision == Precision::Tf32) mma_tf32(acc[mt][nt], a[mt], b[nt]);
                    else mma_bf16(acc[mt][nt], a[mt], b[nt]);
                }
        }
    }
#pragma unroll
    for (int mt = 0; mt < 2; ++mt)
#pragma unroll
        for (int nt = 0; nt < 4; ++nt)
#pragma unroll
            for (int q = 0; q < 4; ++q) {
                const int m = warp_m + mt * 16 + g + (q / 2) * 8, n = warp_n + nt * 8 + 2 * t + q % 2;
                if (m0 + m < M && n0 + n < N) pass.store(rows[m], cols[n], acc[mt][nt][q], split);
            }
}

template <bool RowsFastestA, bool ColsFastestB, typename Pass>
void launch(Precision precision, const Pass& pass, int M, int N, int reduction, int splits, int per_split,
            const char* name) {
    const dim3 grid(static_cast<unsigned int>((static_cast<std::int64_t>(M) + tile_m - 1) / tile_m),
                    static_cast<unsigned int>((static_cast<std::int64_t>(N) + tile_n - 1) / tile_n),
                    static_cast<unsigned int>(splits));
    if (precision == Precision::Tf32) {
        tensor_core_gemm_kernel<Precision::Tf32, Pass, RowsFastestA, ColsFastestB>
            <<<grid, threads_per_block, 0, current_stream()>>>(pass, M, N, reduction, per_split);
    } else {
        tensor_core_gemm_kernel<Precision::Bf16, Pass, RowsFastestA, ColsFastestB>
            <<<grid, threads_per_block, 0, current_stream()>>>(pass, M, N, reduction, per_split);
    }
    CUDAGRAD_LAUNCH_CHECK(name);
}

// The precision from the math mode; fp32 is a clear error (tensor cores have no fp32 mode).
Precision precision_from_math_mode() {
    const MathMode mode = math_mode();
    check(mode != MathMode::FP32, "conv2d",
          "the tensor_core implementation needs math mode tf32 or bf16 (set_math_mode(MathMode::TF32) or "
          "CUDAGRAD_MATH=tf32), but the math mode is fp32; use implicit_gemm, direct or cudnn for fp32");
    return mode == MathMode::BF16 ? Precision::Bf16 : Precision::Tf32;
}

bool fall_back_if_unsupported(const ConvProblem& problem, const char* pass) {
    if (implicit_gemm_supports(problem)) return false;
    detail::notice_once("conv2d tensor_core fallback",
                        std::string("conv2d: the tensor_core kernels need groups == 1, dilation 1 and 32-bit "
                                    "offsets (first seen in ") +
                            pass + ": " + problem.description() + "); running the direct kernel (fp32) instead");
    return true;
}

}  // namespace

void conv2d_forward_v3_tensor_core(const ConvProblem& problem, const float* x, const float* w, float* y) {
    const Precision precision = precision_from_math_mode();
    if (fall_back_if_unsupported(problem, "forward")) return conv2d_forward_v1_direct(problem, x, w, y);
    const Geometry g = geometry_of(problem);
    const int M = g.N * g.P * g.Q, reduction = g.C * g.R * g.S;
    launch<true, false>(precision, ForwardPass{g, x, w, y}, M, g.K, reduction, 1, reduction,
                        "tensor_core_gemm_kernel<forward>");
}

void conv2d_backward_data_v3_tensor_core(const ConvProblem& problem, const float* dy, const float* w, float* dx) {
    const Precision precision = precision_from_math_mode();
    if (fall_back_if_unsupported(problem, "backward data")) return conv2d_backward_data_v1_direct(problem, dy, w, dx);
    const Geometry g = geometry_of(problem);
    const int M = g.N * g.H * g.W, reduction = g.K * g.R * g.S;
    launch<true, true>(precision, BackwardDataPass{g, dy, w, dx}, M, g.C, reduction, 1, reduction,
                       "tensor_core_gemm_kernel<backward data>");
}

void conv2d_backward_weight_v3_tensor_core(const ConvProblem& problem, const float* x, const float* dy,
                                           float* dw) {
    const Precision precision = precision_from_math_mode();
    if (fall_back_if_unsupported(problem, "backward weight")) {
        return conv2d_backward_weight_v1_direct(problem, x, dy, dw);
    }
    const Geometry g = geometry_of(problem);
    const int M = g.K, N = g.C * g.R * g.S, reduction = g.N * g.P * g.Q;
    // Splits for about 4 blocks per SM (2 resident x 2 waves), at least 8 steps of 32 each.
    const std::int64_t tiles = ((M + tile_m - 1LL) / tile_m) * ((N + tile_n - 1LL) / tile_n);
    const std::int64_t steps = (reduction + tile_k - 1LL) / tile_k;
    const std::int64_t wanted = (current_context().properties.multiProcessorCount * 4LL + tiles - 1) / tiles;
    std::int64_t splits = std::min<std::int64_t>({wanted, std::max<std::int64_t>(1, steps / 8), max_splits});
    const int per_split = static_cast<int>((steps + splits - 1) / splits) * tile_k;
    splits = (reduction + per_split - 1) / per_split;  // every split non-empty
    if (splits == 1) {
        return launch<false, false>(precision, BackwardWeightPass{g, x, dy, dw}, M, N, reduction, 1, reduction,
                                    "tensor_core_gemm_kernel<backward weight>");
    }
    const std::int64_t count = problem.w_count();
    Tensor partials = Tensor::empty({splits * count}, DType::Float32, Device::cuda(current_device()));
    launch<false, false>(precision, BackwardWeightPass{g, x, dy, partials.data<float>()}, M, N, reduction,
                         static_cast<int>(splits), per_split, "tensor_core_gemm_kernel<backward weight, split>");
    conv2d_sum_partials(partials.data<float>(), splits, count, dw);  // stream order keeps `partials` alive enough
}

}  // namespace cudagrad::cuda
