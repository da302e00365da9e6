// Around the GEMM kernels: the dispatcher that checks a problem and picks the implementation
// (src/cuda/gemm.hpp), and the small memory-bound kernels the GEMM and the linear layer need.
//
//   gemm_scale_output  C = beta * C (m x n, ldc): the whole GEMM when alpha == 0 or k == 0.
//                      Reads 4 and writes 4 bytes per element (writes only, when beta == 0).
//   convert_to_bf16    packed bfloat16 copy of a strided float32 matrix, rounded to nearest
//                      even: cuBLAS's inputs in bf16 mode. Reads 4, writes 2 bytes per element:
//                      a 4096 x 4096 matrix is 100 MB of traffic, ~35 us at ~3 TB/s.
//   broadcast_row      y[r, :] = row: the bias of linear (rows x columns floats written).
//   column_sums        sums[c] = sum over r of x[r, c]: linear's dbias (CPU: sum_rows in
//                      src/ops/linear.cpp). Reads rows x columns floats once.
// All grid-stride loops over int64 counts; launches on the current stream.
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <climits>
#include <cstdint>

#include "cuda/check.hpp"
#include "cuda/context.hpp"
#include "cuda/gemm.hpp"

namespace cudagrad::cuda {
namespace {

constexpr int threads_per_block = 256;

__global__ void scale_output_kernel(float* c, std::int64_t m, std::int64_t n, std::int64_t ldc, float beta) {
    const std::int64_t count = m * n;
    for (std::int64_t linear = blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x; linear < count;
         linear += static_cast<std::int64_t>(gridDim.x) * blockDim.x) {
        float* element = c + (linear / n) * ldc + linear % n;
        *element = beta == 0.0f ? 0.0f : beta * *element;
    }
}

__global__ void convert_to_bf16_kernel(const float* source, std::int64_t rows, std::int64_t columns, std::int64_t ld,
                                       std::uint16_t* destination) {
    const std::int64_t count = rows * columns;
    for (std::int64_t linear = blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x; linear < count;
         linear += static_cast<std::int64_t>(gridDim.x) * blockDim.x) {
        const float value = source[(linear / columns) * ld + linear % columns];
        destination[linear] = __bfloat16_as_ushort(__float2bfloat16_rn(value));
    }
}

__global__ void broadcast_row_kernel(const float* row, std::int64_t rows, std::int64_t columns, float* y) {
    const std::int64_t count = rows * columns;
    for (std::int64_t linear = blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x; linear < count;
         linear += static_cast<std::int64_t>(gridDim.x) * blockDim.x) {
        y[linear] = row[linear % columns];
    }
}

// A block owns 32 columns; its 8 warps' lanes each sum every 8th row of one column (coalesced:
// a warp reads 32 consecutive floats of a row), then the 8 partial sums of a column are added
// in shared memory in a fixed order, so the result does not depend on scheduling.
constexpr int sum_columns = 32, sum_row_groups = 8;

__global__ void __launch_bounds__(sum_columns* sum_row_groups)
    column_sums_kernel(const float* x, std::int64_t rows, std::int64_t columns, float* sums) {
    __shared__ float partial[sum_row_groups][sum_columns];
    const int lane = threadIdx.x % sum_columns, group = threadIdx.x / sum_columns;
    const std::int64_t column = static_cast<std::int64_t>(blockIdx.x) * sum_columns + lane;
    float total = 0.0f;
    if (column < columns) {
        for (std::int64_t r = group; r < rows; r += sum_row_groups) total += x[r * columns + column];
    }
    partial[group][lane] = total;
    __syncthreads();
    if (group == 0 && column < columns) {
        float sum = 0.0f;
#pragma unroll
        for (int g = 0; g < sum_row_groups; ++g) sum += partial[g][lane];
        sums[column] = sum;
    }
}

void check_problem(const GemmProblem& p) {
    constexpr const char* op = "gemm";
    check(p.m >= 0 && p.n >= 0 && p.k >= 0, op, "sizes must not be negative (m ", p.m, ", n ", p.n, ", k ", p.k, ")");
    constexpr std::int64_t limit = std::int64_t(1) << 30;  // keeps tile arithmetic inside int
    check(p.m < limit && p.n < limit && p.k < limit, op, "sizes must be below 2^30 (m ", p.m, ", n ", p.n, ", k ",
          p.k, ")");
    const std::int64_t a_width = p.transpose_a ? p.m : p.k, b_width = p.transpose_b ? p.k : p.n;
    check(p.lda >= std::max<std::int64_t>(1, a_width), op, "lda ", p.lda, " is smaller than the stored width ", a_width,
          " of A (", p.transpose_a ? "transposed, k x m" : "m x k", ")");
    check(p.ldb >= std::max<std::int64_t>(1, b_width), op, "ldb ", p.ldb, " is smaller than the stored width ", b_width,
          " of B (", p.transpose_b ? "transposed, n x k" : "k x n", ")");
    check(p.ldc >= std::max<std::int64_t>(1, p.n), op, "ldc ", p.ldc, " is smaller than n ", p.n);
    if (p.m > 0 && p.n > 0) {
        check(p.c != nullptr, op, "C is null for a ", p.m, " x ", p.n, " result");
        if (p.k > 0 && p.alpha != 0.0f) check(p.a != nullptr && p.b != nullptr, op, "A or B is null (m ", p.m, ", n ",
                                              p.n, ", k ", p.k, ")");
    }
}

}  // namespace

const std::vector<std::string>& gemm_implementations() {
    static const std::vector<std::string> names = {"cublas",     "naive",      "tiled",      "register_blocked",
                                                   "vectorized", "warp_tiled", "tensor_core"};
    return names;
}

void gemm(const GemmProblem& problem, const std::string& implementation, MathMode mode) {
    check_problem(problem);
    const std::vector<std::string>& names = gemm_implementations();
    check(std::find(names.begin(), names.end(), implementation) != names.end(), "gemm", "unknown implementation '",
          implementation, "' (expected cublas, naive, tiled, register_blocked, vectorized, warp_tiled or tensor_core)");
    if (implementation == "tensor_core") {
        // Checked before the early returns below, so the error does not depend on the sizes.
        check(mode == MathMode::TF32 || mode == MathMode::BF16, "gemm",
              "the tensor_core implementation needs math mode tf32 or bf16 (got ", math_mode_name(mode),
              "); set_math_mode(MathMode::TF32) or CUDAGRAD_MATH=tf32, or choose another gemm implementation");
    }
    if (problem.m == 0 || problem.n == 0) return;
    if (problem.k == 0 || problem.alpha == 0.0f) {  // BLAS: A and B are not read
        gemm_scale_output(problem.c, problem.m, problem.n, problem.ldc, problem.beta);
        return;
    }
    if (implementation == "cublas") gemm_cublas(problem, mode);
    else if (implementation == "naive") gemm_v1_naive(problem);
    else if (implementation == "tiled") gemm_v2_tiled(problem);
    else if (implementation == "register_blocked") gemm_v3_register_blocked(problem);
    else if (implementation == "vectorized") gemm_v4_vectorized(problem);
    else if (implementation == "warp_tiled") gemm_v5_warp_tiled(problem);
    else gemm_tensor_core(problem, mode);
}

void gemm(const GemmProblem& problem, const std::string& implementation) {
    gemm(problem, implementation, math_mode());
}

void gemm_for_current_settings(const GemmProblem& problem) { gemm(problem, implementation("gemm"), math_mode()); }

void gemm_scale_output(float* c, std::int64_t m, std::int64_t n, std::int64_t ldc, float beta) {
    if (m <= 0 || n <= 0 || beta == 1.0f) return;  // beta == 1: C stays as it is
    scale_output_kernel<<<grid_for(m * n, threads_per_block), threads_per_block, 0, current_stream()>>>(c, m, n, ldc,
                                                                                                      beta);
    CUDAGRAD_LAUNCH_CHECK("scale_output_kernel");
}

void convert_to_bf16(const float* source, std::int64_t rows, std::int64_t columns, std::int64_t ld,
                     std::uint16_t* destination) {
    if (rows <= 0 || columns <= 0) return;
    convert_to_bf16_kernel<<<grid_for(rows * columns, threads_per_block), threads_per_block, 0, current_stream()>>>(
        source, rows, columns, ld, destination);
    CUDAGRAD_LAUNCH_CHECK("convert_to_bf16_kernel");
}

void broadcast_row(const float* row, std::int64_t rows, std::int64_t columns, float* y) {
    if (rows <= 0 || columns <= 0) return;
    broadcast_row_kernel<<<grid_for(rows * columns, threads_per_block), threads_per_block, 0, current_stream()>>>(
        row, rows, columns, y);
    CUDAGRAD_LAUNCH_CHECK("broadcast_row_kernel");
}

void column_sums(const float* x, std::int64_t rows, std::int64_t columns, float* sums) {
    if (columns <= 0) return;
    const std::int64_t blocks = (columns + sum_columns - 1) / sum_columns;
    check(blocks <= INT_MAX, "column_sums", columns, " columns need more blocks than one launch allows");
    column_sums_kernel<<<static_cast<unsigned int>(blocks), sum_columns * sum_row_groups, 0, current_stream()>>>(
        x, rows, columns, sums);
    CUDAGRAD_LAUNCH_CHECK("column_sums_kernel");
}

}  // namespace cudagrad::cuda
