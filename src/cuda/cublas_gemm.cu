// The vendor GEMM: cuBLAS, implementation "cublas" of op "gemm" (src/cuda/gemm.hpp), in each
// math mode:
//   fp32  cublasGemmEx, float inputs and output, CUBLAS_COMPUTE_32F (plain SGEMM; the context
//         keeps the handle in CUBLAS_DEFAULT_MATH, so no TF32 sneaks in)
//   tf32  the same with CUBLAS_COMPUTE_32F_FAST_TF32: tensor cores, inputs rounded to TF32
//   bf16  A and B first converted to packed bfloat16 temporaries (convert_to_bf16 in
//         kernels/gemm_support.cu, nearest-even, as the tensor_core kernel rounds), then
//         cublasGemmEx with CUDA_R_16BF inputs, CUDA_R_32F output, CUBLAS_COMPUTE_32F
// cuBLAS is column-major; our matrices are row-major. A row-major matrix X (r x c, ld) is the
// column-major matrix X^T (c x r, ld) at the same address, so instead of C = op(A) op(B) we ask
// for C^T = op(B)^T op(A)^T: B first, A second, sizes n x m, same leading dimensions, and the
// transpose flags unchanged. The 64-bit API (cublasGemmEx_64) takes the int64 sizes as they are.
//
// The bf16 temporaries are Tensors from the caching allocator (no cudaMalloc), released at the
// end of the call: the GEMM reading them is queued on the same stream before anything that
// could reuse their memory. Conversion traffic: 6 bytes per element of A and B.
#include <cublas_v2.h>
#include <cuda_runtime.h>

#include <cstdint>

#include "cuda/check.hpp"
#include "cuda/context.hpp"
#include "cuda/gemm.hpp"
#include "cuda/runtime.hpp"
#include "cudagrad/tensor.hpp"

namespace cudagrad::cuda {
namespace {

cublasOperation_t operation(bool transpose) { return transpose ? CUBLAS_OP_T : CUBLAS_OP_N; }

// Row-major C = op(A) op(B) as column-major C^T = op(B)^T op(A)^T, with inputs of `input_type`.
void gemm_ex(const GemmProblem& p, const void* a, std::int64_t lda, const void* b, std::int64_t ldb,
             cudaDataType input_type, cublasComputeType_t compute) {
    Context& context = current_context();
    CUDAGRAD_CUBLAS_CHECK(cublasGemmEx_64(context.cublas, operation(p.transpose_b), operation(p.transpose_a), p.n, p.m,
                                          p.k, &p.alpha, b, input_type, ldb, a, input_type, lda, &p.beta, p.c,
                                          CUDA_R_32F, p.ldc, compute, CUBLAS_GEMM_DEFAULT));
}

// Packed bfloat16 copies of A and B in one temporary tensor; returns the tensor (keep it alive
// until the GEMM is queued) and sets the two pointers.
Tensor convert_inputs(const GemmProblem& p, const std::uint16_t** a_bf16, const std::uint16_t** b_bf16) {
    const std::int64_t a_rows = p.transpose_a ? p.k : p.m, a_columns = p.transpose_a ? p.m : p.k;
    const std::int64_t b_rows = p.transpose_b ? p.n : p.k, b_columns = p.transpose_b ? p.k : p.n;
    // A's part rounded up to 8 elements (16 bytes) so B's part starts aligned.
    const std::int64_t a_elements = (a_rows * a_columns + 7) / 8 * 8, b_elements = b_rows * b_columns;
    const std::int64_t floats = (a_elements + b_elements + 1) / 2;  // two bfloat16 per float
    Tensor scratch = Tensor::empty({floats}, DType::Float32, Device::cuda(current_device()));
    std::uint16_t* base = static_cast<std::uint16_t*>(scratch.raw_data());
    convert_to_bf16(p.a, a_rows, a_columns, p.lda, base);
    convert_to_bf16(p.b, b_rows, b_columns, p.ldb, base + a_elements);
    *a_bf16 = base;
    *b_bf16 = base + a_elements;
    return scratch;
}

}  // namespace

void gemm_cublas(const GemmProblem& problem, MathMode mode) {
    switch (mode) {
        case MathMode::FP32:
            gemm_ex(problem, problem.a, problem.lda, problem.b, problem.ldb, CUDA_R_32F, CUBLAS_COMPUTE_32F);
            return;
        case MathMode::TF32:
            gemm_ex(problem, problem.a, problem.lda, problem.b, problem.ldb, CUDA_R_32F, CUBLAS_COMPUTE_32F_FAST_TF32);
            return;
        case MathMode::BF16: {
            const std::uint16_t *a_bf16 = nullptr, *b_bf16 = nullptr;
            const Tensor scratch = convert_inputs(problem, &a_bf16, &b_bf16);
            // Packed: the leading dimension is the stored width.
            const std::int64_t lda = problem.transpose_a ? problem.m : problem.k;
            const std::int64_t ldb = problem.transpose_b ? problem.k : problem.n;
            gemm_ex(problem, a_bf16, lda, b_bf16, ldb, CUDA_R_16BF, CUBLAS_COMPUTE_32F);
            return;
        }
    }
    fail("gemm", "unknown math mode");
}

}  // namespace cudagrad::cuda
