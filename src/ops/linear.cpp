// linear and matmul: the fully connected layer and the plain matrix product.
//
//   linear: x: (N, in), weight: (out, in), bias: (out) or undefined -> y: (N, out)
//           y = x weight^T + bias                      (PyTorch's torch.nn.functional.linear)
//           dx = dy weight,  dweight = dy^T x,  dbias = sum of dy over the N rows
//   matmul: a: (M, K), b: (K, N) -> c: (M, N) = a b    (PyTorch's torch.matmul on 2-D inputs)
//           da = dc b^T,  db = a^T dc
// Every product is one call of cpu::gemm, whose transpose flags read weight^T, dy^T, b^T and
// a^T in place: nothing is transposed in memory.
//
// What limits speed: the GEMM, 2*N*in*out FLOPs per product. ResNet-50's classifier
// (32 x 2048 -> 1000) is 131 MFLOP per product, about 1.3 ms at the ~100 GFLOP/s cpu::gemm
// reaches on one core of the dev VM; the bias copy and the column sums for dbias are single
// passes over y and dy, noise beside it.
//
// On a GPU the same products go through cuda::gemm_for_current_settings (src/cuda/gemm.hpp):
// implementation("gemm") (cublas or one of cudagrad's kernels) at math_mode(), with the same
// transpose flags; the bias is broadcast into y first (cuda::broadcast_row, then beta = 1) and
// dbias is cuda::column_sums of dy, always in float32 whatever the math mode. At batch 128 the
// classifier's products are 0.5 GFLOP each: ~10 us at cuBLAS's ~51 TFLOP/s, while y, dy and
// the weight (8 MB) move in ~3 us at ~3 TB/s, so even here the GEMM dominates.
#include <algorithm>
#include <string>

#include "cpu/gemm.hpp"
#include "cudagrad/ops.hpp"
#include "ops/op_support.hpp"

#ifdef CUDAGRAD_WITH_CUDA
#include "cuda/gemm.hpp"
#endif

namespace cudagrad {
namespace {

using cpu::Transpose;

// Validates a 2-D operand: defined, floating, non-empty, on the CPU.
void check_matrix(const Tensor& tensor, const char* op, const char* name) {
    detail::check_input(tensor, op, name);
    detail::check_dim(tensor, 2, op, name);
}

// dbias[j] = sum over rows i of dy[i, j]; row by row so the inner loop is contiguous.
template <typename T>
void sum_rows(const T* dy, std::int64_t rows, std::int64_t columns, T* total) {
    std::fill(total, total + columns, T(0));
    for (std::int64_t i = 0; i < rows; ++i) {
        const T* row = dy + i * columns;
        for (std::int64_t j = 0; j < columns; ++j) total[j] += row[j];
    }
}

#ifdef CUDAGRAD_WITH_CUDA
// c = op(a) op(b) (+ c when accumulate) on the GPU, row-major float32, with the implementation
// and math mode the registry says; the tensors are contiguous and on the current device.
void gpu_gemm(bool transpose_a, bool transpose_b, std::int64_t m, std::int64_t n, std::int64_t k, const Tensor& a,
              std::int64_t lda, const Tensor& b, std::int64_t ldb, bool accumulate, const Tensor& c,
              std::int64_t ldc) {
    cuda::GemmProblem problem;
    problem.transpose_a = transpose_a;
    problem.transpose_b = transpose_b;
    problem.m = m;
    problem.n = n;
    problem.k = k;
    problem.a = a.data<float>();
    problem.lda = lda;
    problem.b = b.data<float>();
    problem.ldb = ldb;
    problem.c = c.data<float>();
    problem.ldc = ldc;
    problem.alpha = 1.0f;
    problem.beta = accumulate ? 1.0f : 0.0f;
    cuda::gemm_for_current_settings(problem);
}
#endif

}  // namespace

Tensor linear(const Tensor& x, const Tensor& weight, const Tensor& bias) {
    constexpr const char* op = "linear";
    check_matrix(x, op, "input (N, in)");
    check_matrix(weight, op, "weight (out, in)");
    detail::check_same_kind(x, weight, op, "input", "weight");
    const std::int64_t rows = x.size(0), in = x.size(1), out = weight.size(0);
    check(weight.size(1) == in, op, "input has ", in, " features but weight expects ", weight.size(1), " (input ",
          shape_string(x.shape()), ", weight ", shape_string(weight.shape()), ")");
    if (bias.defined()) {
        detail::check_input(bias, op, "bias");
        detail::check_same_kind(x, bias, op, "input", "bias");
        check(bias.dim() == 1 && bias.size(0) == out, op, "bias must have shape [", out, "], got ",
              shape_string(bias.shape()), " (input ", shape_string(x.shape()), ", weight ",
              shape_string(weight.shape()), ")");
    }

    const Tensor input = x.contiguous();
    const Tensor matrix = weight.contiguous();
    const Tensor offset = bias.defined() ? bias.contiguous() : Tensor();
    Tensor output = Tensor::empty({rows, out}, x.dtype(), x.device());
    if (x.device().is_cuda()) {
#ifdef CUDAGRAD_WITH_CUDA
        // As on the CPU: y = bias in every row, then y += x weight^T.
        if (offset.defined()) cuda::broadcast_row(offset.data<float>(), rows, out, output.data<float>());
        gpu_gemm(false, true, rows, out, in, input, in, matrix, in, offset.defined(), output, out);
#else
        detail::fail_without_cuda(op);
#endif
    } else {
        detail::dispatch_floating(x.dtype(), op, [&](auto zero) {
            using T = decltype(zero);
            T* y = output.data<T>();
            // With a bias, y starts as the bias in every row and the GEMM adds x weight^T onto it
            // (beta = 1): one pass over y instead of two.
            if (offset.defined()) {
                const T* b = offset.data<T>();
                for (std::int64_t i = 0; i < rows; ++i) std::copy(b, b + out, y + i * out);
            }
            cpu::gemm<T>(Transpose::No, Transpose::Yes, rows, out, in, T(1), input.data<T>(), in, matrix.data<T>(),
                         in, offset.defined() ? T(1) : T(0), y, out);
        });
    }

    // The closure keeps only what the wanted gradients need: the weight for dx, x for dweight.
    const bool need_input = x.requires_grad(), need_weight = weight.requires_grad();
    const bool need_bias = bias.defined() && bias.requires_grad();
    record_op(output, op, {x, weight, bias},
              [input = need_weight ? input : Tensor(), matrix = need_input ? matrix : Tensor(),
               need_input, need_weight, need_bias, rows, in, out](const Tensor& output_gradient) {
        const Tensor dy = output_gradient.contiguous();
        Tensor dx, dweight, dbias;
        if (dy.device().is_cuda()) {
#ifdef CUDAGRAD_WITH_CUDA
            make_device_current(dy.device());
            if (need_input) {  // dx (N, in) = dy (N, out) weight (out, in)
                dx = Tensor::empty({rows, in}, dy.dtype(), dy.device());
                gpu_gemm(false, false, rows, in, out, dy, out, matrix, in, false, dx, in);
            }
            if (need_weight) {  // dweight (out, in) = dy^T (out, N) x (N, in)
                dweight = Tensor::empty({out, in}, dy.dtype(), dy.device());
                gpu_gemm(true, false, out, in, rows, dy, out, input, in, false, dweight, in);
            }
            if (need_bias) {
                dbias = Tensor::empty({out}, dy.dtype(), dy.device());
                cuda::column_sums(dy.data<float>(), rows, out, dbias.data<float>());
            }
#else
            detail::fail_without_cuda("linear backward");
#endif
            return std::vector<Tensor>{dx, dweight, dbias};
        }
        detail::dispatch_floating(dy.dtype(), "linear backward", [&](auto zero) {
            using T = decltype(zero);
            if (need_input) {  // dx (N, in) = dy (N, out) weight (out, in)
                dx = Tensor::empty({rows, in}, dy.dtype(), dy.device());
                cpu::gemm<T>(Transpose::No, Transpose::No, rows, in, out, T(1), dy.data<T>(), out, matrix.data<T>(), in,
                             T(0), dx.data<T>(), in);
            }
            if (need_weight) {  // dweight (out, in) = dy^T (out, N) x (N, in)
                dweight = Tensor::empty({out, in}, dy.dtype(), dy.device());
                cpu::gemm<T>(Transpose::Yes, Transpose::No, out, in, rows, T(1), dy.data<T>(), out, input.data<T>(),
                             in, T(0), dweight.data<T>(), in);
            }
            if (need_bias) {
                dbias = Tensor::empty({out}, dy.dtype(), dy.device());
                sum_rows(dy.data<T>(), rows, out, dbias.data<T>());
            }
        });
        return std::vector<Tensor>{dx, dweight, dbias};
    });
    return output;
}

Tensor matmul(const Tensor& a, const Tensor& b) {
    constexpr const char* op = "matmul";
    check_matrix(a, op, "a (M, K)");
    check_matrix(b, op, "b (K, N)");
    detail::check_same_kind(a, b, op, "a", "b");
    const std::int64_t M = a.size(0), K = a.size(1), N = b.size(1);
    check(b.size(0) == K, op, "inner dimensions differ: a has ", K, " columns but b has ", b.size(0), " rows (a ",
          shape_string(a.shape()), ", b ", shape_string(b.shape()), ")");

    const Tensor left = a.contiguous();
    const Tensor right = b.contiguous();
    Tensor output = Tensor::empty({M, N}, a.dtype(), a.device());
    if (a.device().is_cuda()) {
#ifdef CUDAGRAD_WITH_CUDA
        gpu_gemm(false, false, M, N, K, left, K, right, N, false, output, N);
#else
        detail::fail_without_cuda(op);
#endif
    } else {
        detail::dispatch_floating(a.dtype(), op, [&](auto zero) {
            using T = decltype(zero);
            cpu::gemm<T>(Transpose::No, Transpose::No, M, N, K, T(1), left.data<T>(), K, right.data<T>(), N, T(0),
                         output.data<T>(), N);
        });
    }

    // da needs b and db needs a: each operand is kept only if the other one wants a gradient.
    const bool need_left = a.requires_grad(), need_right = b.requires_grad();
    record_op(output, op, {a, b},
              [left = need_right ? left : Tensor(), right = need_left ? right : Tensor(), need_left,
               need_right, M, K, N](const Tensor& output_gradient) {
        const Tensor dc = output_gradient.contiguous();
        Tensor da, db;
        if (dc.device().is_cuda()) {
#ifdef CUDAGRAD_WITH_CUDA
            make_device_current(dc.device());
            if (need_left) {  // da (M, K) = dc (M, N) b^T (N, K)
                da = Tensor::empty({M, K}, dc.dtype(), dc.device());
                gpu_gemm(false, true, M, K, N, dc, N, right, N, false, da, K);
            }
            if (need_right) {  // db (K, N) = a^T (K, M) dc (M, N)
                db = Tensor::empty({K, N}, dc.dtype(), dc.device());
                gpu_gemm(true, false, K, N, M, left, K, dc, N, false, db, N);
            }
#else
            detail::fail_without_cuda("matmul backward");
#endif
            return std::vector<Tensor>{da, db};
        }
        detail::dispatch_floating(dc.dtype(), "matmul backward", [&](auto zero) {
            using T = decltype(zero);
            if (need_left) {  // da (M, K) = dc (M, N) b^T (N, K)
                da = Tensor::empty({M, K}, dc.dtype(), dc.device());
                cpu::gemm<T>(Transpose::No, Transpose::Yes, M, K, N, T(1), dc.data<T>(), N, right.data<T>(), N, T(0),
                             da.data<T>(), K);
            }
            if (need_right) {  // db (K, N) = a^T (K, M) dc (M, N)
                db = Tensor::empty({K, N}, dc.dtype(), dc.device());
                cpu::gemm<T>(Transpose::Yes, Transpose::No, K, N, M, T(1), left.data<T>(), K, dc.data<T>(), N, T(0),
                             db.data<T>(), N);
            }
        });
        return std::vector<Tensor>{da, db};
    });
    return output;
}

}  // namespace cudagrad
