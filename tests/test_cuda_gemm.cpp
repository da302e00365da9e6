// The GPU GEMM (src/cuda/gemm.hpp) and the GPU linear/matmul ops.
//
// 1. Every implementation (cublas, naive, tiled, register_blocked, vectorized, warp_tiled,
//    tensor_core) in every math mode it supports, against a float64 loop on the CPU: all four
//    transpose combinations, odd sizes, tile multiples, alpha/beta != 1/0, leading dimensions
//    wider than the matrix, a misaligned base pointer (the scalar fallback of the float4 paths).
//    The stored matrices' padding holds NaN (a kernel that reads outside the matrix produces
//    NaN) and C's padding a sentinel that must survive (a kernel that writes outside fails).
// 2. linear and matmul forward and backward on the GPU against the CPU ops, per implementation.
// 3. The errors: float64 on the GPU, mixed devices, tensor_core in fp32 mode, unknown names.
//
// Tolerances. Rounding error of a k-term dot product: each float32 addition is off by at most
// one unit in the last place, 2^-23 relative (round-to-nearest gives half of that; tensor cores
// truncate when they align addends, hence the full ulp), so the accumulated error is at most
// (k + 2) * 2^-23 * S with S = sum_p |alpha a_ip b_pj| (the "+2": alpha * sum and + beta * c).
// The reduced-precision inputs add a relative error u per input, 2u per product:
//   TF32 keeps 10 mantissa bits: u = 2^-11 rounding to nearest, 2^-10 truncating;
//   BF16 keeps 7: u = 2^-8.
// Where we know the rounding (our tensor_core kernel: cvt.rna for TF32, nearest-even for BF16;
// cuBLAS in bf16 mode gets inputs our conversion kernel rounded to nearest-even) the reference
// is computed from identically rounded inputs and only the accumulation term remains; for cuBLAS
// TF32 (rounding not documented) the bound adds 2 * 2^-10 * S. The bound is the worst case
// (the typical error is ~sqrt(k) times smaller) so a correct kernel never fails it, while a
// missing, doubled or misplaced term costs |a b|, about 0.25 on average with inputs uniform in
// [-1, 1], far above (k + 2) * 2^-23 * S ~ 1e-3 at k = 256.
// The op tests round all inputs to BF16 in the reduced modes: bf16 values are exact in TF32 and
// BF16 and their products exact in float32, so the GPU and the CPU op (float32) differ only by
// accumulation order: rtol 1e-4 plus atol 1e-6 * k (the CPU's and GPU's accumulation error,
// about k/3 * 2^-24 each for inputs in [-1, 1], stay well under it; a wrong index does not).
#ifdef CUDAGRAD_WITH_CUDA

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <sstream>
#include <string>
#include <vector>

#include <cudagrad/cudagrad.hpp>

#include "catch.hpp"
#include "cuda/gemm.hpp"
#include "cuda_test_support.hpp"
#include "test_support.hpp"

using namespace cudagrad;
using testing::gpu;
using testing::ImplementationGuard;
using testing::random_cpu;
using testing::require_close;
using testing::require_error;

namespace {

// ------------------------------------------------------------------ rounding as the GPU does it
float from_bits(std::uint32_t bits) {
    float value;
    std::memcpy(&value, &bits, sizeof value);
    return value;
}
std::uint32_t to_bits(float value) {
    std::uint32_t bits;
    std::memcpy(&bits, &value, sizeof bits);
    return bits;
}
// cvt.rna.tf32.f32: keep 10 mantissa bits, nearest, ties away from zero (add half an ulp to
// the magnitude, truncate).
float round_tf32(float value) {
    if (!std::isfinite(value)) return value;
    return from_bits((to_bits(value) + 0x1000u) & 0xFFFFE000u);
}
// __float2bfloat16_rn: keep 7 mantissa bits, nearest, ties to even.
float round_bf16(float value) {
    if (!std::isfinite(value)) return value;
    const std::uint32_t bits = to_bits(value);
    return from_bits((bits + 0x7FFFu + ((bits >> 16) & 1u)) & 0xFFFF0000u);
}

enum class Rounding { None, Tf32, Bf16 };
float apply(Rounding rounding, float value) {
    switch (rounding) {
        case Rounding::None: return value;
        case Rounding::Tf32: return round_tf32(value);
        case Rounding::Bf16: return round_bf16(value);
    }
    return value;
}

// One implementation in one math mode, with what the reference must do to match it.
struct Variant {
    const char* implementation;
    MathMode mode;
    Rounding rounding;       // applied to the reference's inputs
    double input_error;      // relative error per input the reference cannot reproduce
};

std::vector<Variant> all_variants() {
    return {
        {"cublas", MathMode::FP32, Rounding::None, 0.0},
        {"cublas", MathMode::TF32, Rounding::None, std::ldexp(1.0, -10)},
        {"cublas", MathMode::BF16, Rounding::Bf16, 0.0},
        {"naive", MathMode::FP32, Rounding::None, 0.0},
        {"tiled", MathMode::FP32, Rounding::None, 0.0},
        {"register_blocked", MathMode::FP32, Rounding::None, 0.0},
        {"vectorized", MathMode::FP32, Rounding::None, 0.0},
        {"warp_tiled", MathMode::FP32, Rounding::None, 0.0},
        {"warp_tiled", MathMode::TF32, Rounding::None, 0.0},  // SIMT ignores the mode: still float32
        {"tensor_core", MathMode::TF32, Rounding::Tf32, 0.0},
        {"tensor_core", MathMode::BF16, Rounding::Bf16, 0.0},
    };
}

std::string describe(const Variant& variant) {
    return std::string(variant.implementation) + "/" + math_mode_name(variant.mode);
}

// ------------------------------------------------------------------ a stored matrix
constexpr float c_sentinel = 777.0f;

// rows x columns, row-major with leading dimension ld, starting `offset` floats into its
// buffer. Padding (the offset and the ld - columns gap of each row) holds `padding`.
struct Stored {
    std::int64_t rows = 0, columns = 0, ld = 0, offset = 0;
    std::vector<float> host;  // the whole buffer
    float at(std::int64_t r, std::int64_t c) const { return host[static_cast<std::size_t>(offset + r * ld + c)]; }
};

Stored make_stored(std::int64_t rows, std::int64_t columns, std::int64_t ld, std::int64_t offset, float padding,
                   Generator& generator, bool fill_nan = false) {
    Stored stored{rows, columns, ld, offset, {}};
    stored.host.assign(static_cast<std::size_t>(std::max<std::int64_t>(1, offset + rows * ld)), padding);
    Tensor values = Tensor::empty({std::max<std::int64_t>(1, rows * columns)});
    uniform_(values, -1.0, 1.0, generator);
    const float* v = values.data<float>();
    for (std::int64_t r = 0; r < rows; ++r)
        for (std::int64_t c = 0; c < columns; ++c)
            stored.host[static_cast<std::size_t>(offset + r * ld + c)] =
                fill_nan ? std::numeric_limits<float>::quiet_NaN() : v[r * columns + c];
    return stored;
}

Tensor upload(const Stored& stored) {
    return Tensor::from_vector(stored.host, {static_cast<std::int64_t>(stored.host.size())}).to(gpu());
}

float* device_pointer(const Tensor& buffer, const Stored& stored) { return buffer.data<float>() + stored.offset; }

// How the leading dimension and base of each matrix are chosen.
enum class Layout { Tight, PaddedMisaligned, PaddedAligned };
const char* layout_name(Layout layout) {
    switch (layout) {
        case Layout::Tight: return "tight";
        case Layout::PaddedMisaligned: return "ld+5, base+1";
        case Layout::PaddedAligned: return "ld rounded up to 4 + 4";
    }
    return "?";
}
std::int64_t leading_dimension(Layout layout, std::int64_t width) {
    switch (layout) {
        case Layout::Tight: return width;
        case Layout::PaddedMisaligned: return width + 5;
        case Layout::PaddedAligned: return (width + 3) / 4 * 4 + 4;
    }
    return width;
}
std::int64_t base_offset(Layout layout) { return layout == Layout::PaddedMisaligned ? 1 : 0; }

struct Problem {
    std::int64_t m, n, k;
    bool transpose_a, transpose_b;
    Layout layout;
    float alpha, beta;
};

std::string describe(const Problem& p) {
    std::ostringstream text;
    text << "m " << p.m << ", n " << p.n << ", k " << p.k << (p.transpose_a ? ", A^T" : ", A")
         << (p.transpose_b ? ", B^T" : ", B") << ", " << layout_name(p.layout) << ", alpha " << p.alpha << ", beta "
         << p.beta;
    return text.str();
}

// The float64 reference for one rounding of the inputs: expected C, and the two magnitudes the
// error bound scales with (header comment).
struct Reference {
    std::vector<double> expected;
    std::vector<double> products;  // |alpha| * sum_p |a_ip b_pj|
    std::vector<double> old;       // |beta * c_ij|
};

Reference reference(const Problem& p, const Stored& a, const Stored& b, const Stored& c, Rounding rounding) {
    // op(A) as m x k and op(B)^T as n x k, rounded, so the inner loop runs over contiguous k.
    std::vector<double> left(static_cast<std::size_t>(p.m * p.k)), right(static_cast<std::size_t>(p.n * p.k));
    for (std::int64_t i = 0; i < p.m; ++i)
        for (std::int64_t q = 0; q < p.k; ++q)
            left[static_cast<std::size_t>(i * p.k + q)] = apply(rounding, p.transpose_a ? a.at(q, i) : a.at(i, q));
    for (std::int64_t j = 0; j < p.n; ++j)
        for (std::int64_t q = 0; q < p.k; ++q)
            right[static_cast<std::size_t>(j * p.k + q)] = apply(rounding, p.transpose_b ? b.at(j, q) : b.at(q, j));
    Reference result;
    const std::size_t count = static_cast<std::size_t>(p.m * p.n);
    result.expected.resize(count);
    result.products.resize(count);
    result.old.resize(count);
    for (std::int64_t i = 0; i < p.m; ++i)
        for (std::int64_t j = 0; j < p.n; ++j) {
            const double* x = left.data() + i * p.k;
            const double* y = right.data() + j * p.k;
            double sum = 0.0, magnitude = 0.0;
            for (std::int64_t q = 0; q < p.k; ++q) {
                sum += x[q] * y[q];
                magnitude += std::abs(x[q] * y[q]);
            }
            const double old = p.beta == 0.0f ? 0.0 : static_cast<double>(c.at(i, j));
            const std::size_t index = static_cast<std::size_t>(i * p.n + j);
            result.expected[index] = p.alpha * sum + p.beta * old;
            result.products[index] = std::abs(p.alpha) * magnitude;
            result.old[index] = std::abs(p.beta * old);
        }
    return result;
}

// The worst-case error of a correct implementation (header comment), times 2 for safety.
double error_bound(const Reference& reference, std::size_t index, std::int64_t k, double input_error) {
    const double accumulation = (static_cast<double>(k) + 2.0) * std::ldexp(1.0, -23);
    return 2.0 * (reference.products[index] * (2.0 * input_error + accumulation) +
                  reference.old[index] * std::ldexp(1.0, -22)) +
           1e-30;
}

// Runs one variant on one problem and checks C inside (against the reference) and outside
// (the sentinel padding must be untouched).
void check_variant(const Variant& variant, const Problem& p, const Stored& a, const Stored& b, const Stored& c,
                   const Tensor& a_device, const Tensor& b_device, const Reference& expected) {
    INFO("gemm " << describe(variant) << ": " << describe(p));
    const Tensor c_device = upload(c);
    cuda::GemmProblem problem;
    problem.transpose_a = p.transpose_a;
    problem.transpose_b = p.transpose_b;
    problem.m = p.m;
    problem.n = p.n;
    problem.k = p.k;
    problem.a = device_pointer(a_device, a);
    problem.lda = a.ld;
    problem.b = device_pointer(b_device, b);
    problem.ldb = b.ld;
    problem.c = device_pointer(c_device, c);
    problem.ldc = c.ld;
    problem.alpha = p.alpha;
    problem.beta = p.beta;
    cuda::gemm(problem, variant.implementation, variant.mode);
    const std::vector<float> result = c_device.to(Device::cpu()).to_float_vector();

    std::int64_t failures = 0, outside = 0;
    std::string first;
    for (std::int64_t i = 0; i < p.m; ++i)
        for (std::int64_t j = 0; j < c.ld; ++j) {
            const float got = result[static_cast<std::size_t>(c.offset + i * c.ld + j)];
            if (j >= p.n) {  // padding
                if (got != c_sentinel) ++outside;
                continue;
            }
            const std::size_t index = static_cast<std::size_t>(i * p.n + j);
            const double error = std::abs(static_cast<double>(got) - expected.expected[index]);
            const double bound = error_bound(expected, index, p.k, variant.input_error);
            if (!(error <= bound)) {  // NaN fails too
                if (failures++ == 0) {
                    std::ostringstream text;
                    text << "C[" << i << ", " << j << "] = " << got << ", expected " << expected.expected[index]
                         << " (error " << error << ", bound " << bound << ")";
                    first = text.str();
                }
            }
        }
    if (c.offset > 0 && result[0] != c_sentinel) ++outside;
    INFO(failures << " elements outside the bound; first: " << first);
    CHECK(failures == 0);
    INFO(outside << " padding elements of C were overwritten");
    CHECK(outside == 0);
}

const std::int64_t sizes[][3] = {
    {1, 1, 1},      {7, 13, 5},    {33, 65, 17}, {127, 129, 131}, {256, 256, 256},
    {132, 68, 36},  // multiples of 4 but not of the tiles: the float4 paths with edge tiles
    {1100, 300, 64},  // 9 tile rows: the grouped block order's last, partial group
    {64, 40, 300},    // k not a multiple of any BK
};

}  // namespace

TEST_CASE("gemm: every implementation and math mode matches a float64 reference", "[cuda][gemm]") {
    const std::vector<Variant> variants = all_variants();
    Generator generator(2024);
    for (const auto& size : sizes) {
        for (int transposes = 0; transposes < 4; ++transposes) {
            for (Layout layout : {Layout::Tight, Layout::PaddedMisaligned, Layout::PaddedAligned}) {
                for (int scaling = 0; scaling < 2; ++scaling) {
                    Problem p{size[0], size[1], size[2], (transposes & 1) != 0, (transposes & 2) != 0, layout,
                              scaling == 0 ? 1.0f : 1.5f, scaling == 0 ? 0.0f : -0.75f};
                    const std::int64_t a_rows = p.transpose_a ? p.k : p.m, a_columns = p.transpose_a ? p.m : p.k;
                    const std::int64_t b_rows = p.transpose_b ? p.n : p.k, b_columns = p.transpose_b ? p.k : p.n;
                    const float nan = std::numeric_limits<float>::quiet_NaN();
                    const Stored a = make_stored(a_rows, a_columns, leading_dimension(layout, a_columns),
                                                 base_offset(layout), nan, generator);
                    const Stored b = make_stored(b_rows, b_columns, leading_dimension(layout, b_columns),
                                                 base_offset(layout), nan, generator);
                    // beta == 0: C starts as NaN, which must never be read.
                    const Stored c = make_stored(p.m, p.n, leading_dimension(layout, p.n), base_offset(layout),
                                                 c_sentinel, generator, p.beta == 0.0f);
                    const Tensor a_device = upload(a), b_device = upload(b);
                    Reference references[3];  // by Rounding, computed when first needed
                    bool computed[3] = {false, false, false};
                    for (const Variant& variant : variants) {
                        const int slot = static_cast<int>(variant.rounding);
                        if (!computed[slot]) {
                            references[slot] = reference(p, a, b, c, variant.rounding);
                            computed[slot] = true;
                        }
                        check_variant(variant, p, a, b, c, a_device, b_device, references[slot]);
                    }
                }
            }
        }
    }
}

TEST_CASE("gemm: alpha == 0, k == 0 and empty results follow the BLAS conventions", "[cuda][gemm]") {
    Generator generator(7);
    const float nan = std::numeric_limits<float>::quiet_NaN();
    for (const Variant& variant : all_variants()) {
        INFO("gemm " << describe(variant));
        // alpha == 0: A and B (all NaN) are not read; C = beta * C exactly.
        const Stored a = make_stored(5, 6, 6, 0, nan, generator, true);
        const Stored b = make_stored(6, 7, 7, 0, nan, generator, true);
        const Stored c = make_stored(5, 7, 7, 0, c_sentinel, generator);
        const Tensor a_device = upload(a), b_device = upload(b), c_device = upload(c);
        cuda::GemmProblem problem;
        problem.m = 5;
        problem.n = 7;
        problem.k = 6;
        problem.a = a_device.data<float>();
        problem.lda = 6;
        problem.b = b_device.data<float>();
        problem.ldb = 7;
        problem.c = c_device.data<float>();
        problem.ldc = 7;
        problem.alpha = 0.0f;
        problem.beta = 2.0f;
        cuda::gemm(problem, variant.implementation, variant.mode);
        std::vector<float> result = c_device.to(Device::cpu()).to_float_vector();
        for (std::size_t i = 0; i < result.size(); ++i) REQUIRE(result[i] == 2.0f * c.host[i]);

        // k == 0 with beta == 0: C becomes zeros, even where it held NaN.
        const Stored nan_c = make_stored(5, 7, 7, 0, c_sentinel, generator, true);
        const Tensor nan_c_device = upload(nan_c);
        problem.k = 0;
        problem.alpha = 1.0f;
        problem.beta = 0.0f;
        problem.c = nan_c_device.data<float>();
        cuda::gemm(problem, variant.implementation, variant.mode);
        result = nan_c_device.to(Device::cpu()).to_float_vector();
        for (float value : result) REQUIRE(value == 0.0f);

        // m == 0: nothing happens (null pointers are fine).
        cuda::GemmProblem empty;
        empty.m = 0;
        empty.n = 3;
        empty.k = 4;
        empty.lda = 4;
        empty.ldb = 3;
        empty.ldc = 3;
        cuda::gemm(empty, variant.implementation, variant.mode);
    }
}

TEST_CASE("gemm: clear errors for bad problems and bad choices", "[cuda][gemm]") {
    Tensor buffer = Tensor::zeros({64}, DType::Float32, gpu());
    cuda::GemmProblem problem;
    problem.m = 4;
    problem.n = 4;
    problem.k = 4;
    problem.a = buffer.data<float>();
    problem.lda = 4;
    problem.b = buffer.data<float>();
    problem.ldb = 4;
    problem.c = buffer.data<float>() + 32;
    problem.ldc = 4;
    require_error([&] { cuda::gemm(problem, "tensor_core", MathMode::FP32); },
                  {"gemm", "the tensor_core implementation needs math mode tf32 or bf16"});
    require_error([&] { cuda::gemm(problem, "fastest", MathMode::FP32); }, {"gemm", "unknown implementation", "fastest"});
    cuda::GemmProblem narrow = problem;
    narrow.lda = 3;
    require_error([&] { cuda::gemm(narrow, "cublas", MathMode::FP32); }, {"gemm", "lda 3"});
    narrow = problem;
    narrow.transpose_b = true;
    narrow.n = 8;
    narrow.ldc = 8;
    narrow.ldb = 2;
    require_error([&] { cuda::gemm(narrow, "naive", MathMode::FP32); }, {"gemm", "ldb 2"});

    // Through the ops: tensor_core in fp32 mode names the fix.
    const ImplementationGuard restore;
    set_implementation("gemm", "tensor_core");
    set_math_mode(MathMode::FP32);
    const Tensor x = random_cpu({2, 3}, 1).to(gpu()), w = random_cpu({4, 3}, 2).to(gpu());
    require_error([&] { linear(x, w, Tensor()); }, {"tensor_core", "tf32 or bf16"});
}

TEST_CASE("linear and matmul on the GPU: clear errors", "[cuda][linear]") {
    const Tensor x = random_cpu({2, 3}, 1), w = random_cpu({4, 3}, 2);
    require_error([&] { linear(x.to(gpu()), w, Tensor()); }, {"linear", "different devices"});
    require_error([&] { linear(x.to(DType::Float64).to(gpu()), w.to(DType::Float64).to(gpu()), Tensor()); },
                  {"linear", "float32"});
    require_error([&] { matmul(x.to(gpu()), random_cpu({3, 5}, 3)); }, {"matmul", "different devices"});
    require_error([&] { matmul(x.to(gpu()), random_cpu({4, 5}, 3).to(gpu())); }, {"matmul", "inner dimensions"});
}

namespace {

Tensor rounded_input(const Shape& shape, std::uint64_t seed, bool round) {
    Tensor tensor = random_cpu(shape, seed);
    if (round) {
        float* values = tensor.data<float>();
        for (std::int64_t i = 0; i < tensor.numel(); ++i) values[i] = round_bf16(values[i]);
    }
    return tensor;
}

// rtol 1e-4, atol 1e-6 per term of the longest dot product (header comment).
void require_close_for(const Tensor& gpu_result, const Tensor& cpu_result, std::int64_t k) {
    require_close(gpu_result, cpu_result, 1e-4, 1e-6 * static_cast<double>(std::max<std::int64_t>(k, 8)));
}

void check_linear(const Variant& variant, std::int64_t rows, std::int64_t in, std::int64_t out, bool with_bias) {
    INFO("linear " << describe(variant) << ": x [" << rows << ", " << in << "], weight [" << out << ", " << in << "]"
                   << (with_bias ? " with bias" : " without bias"));
    const bool round = variant.mode != MathMode::FP32;
    Tensor x = rounded_input({rows, in}, 11, round).set_requires_grad(true);
    Tensor w = rounded_input({out, in}, 12, round).set_requires_grad(true);
    Tensor b = with_bias ? rounded_input({out}, 13, round).set_requires_grad(true) : Tensor();
    const Tensor dy = rounded_input({rows, out}, 14, round);

    Tensor y = linear(x, w, b);
    y.backward(dy);

    const ImplementationGuard restore;
    set_implementation("gemm", variant.implementation);
    set_math_mode(variant.mode);
    Tensor x_gpu = testing::to_gpu_leaf(x), w_gpu = testing::to_gpu_leaf(w);
    Tensor b_gpu = with_bias ? testing::to_gpu_leaf(b) : Tensor();
    Tensor y_gpu = linear(x_gpu, w_gpu, b_gpu);
    y_gpu.backward(dy.to(gpu()));
    reset_implementations();

    require_close_for(y_gpu, y, in);
    require_close_for(x_gpu.grad(), x.grad(), out);
    require_close_for(w_gpu.grad(), w.grad(), rows);
    if (with_bias) require_close_for(b_gpu.grad(), b.grad(), rows);
}

void check_matmul(const Variant& variant, std::int64_t m, std::int64_t k, std::int64_t n) {
    INFO("matmul " << describe(variant) << ": [" << m << ", " << k << "] x [" << k << ", " << n << "]");
    const bool round = variant.mode != MathMode::FP32;
    Tensor a = rounded_input({m, k}, 21, round).set_requires_grad(true);
    Tensor b = rounded_input({k, n}, 22, round).set_requires_grad(true);
    const Tensor dc = rounded_input({m, n}, 23, round);
    Tensor c = matmul(a, b);
    c.backward(dc);

    const ImplementationGuard restore;
    set_implementation("gemm", variant.implementation);
    set_math_mode(variant.mode);
    Tensor a_gpu = testing::to_gpu_leaf(a), b_gpu = testing::to_gpu_leaf(b);
    Tensor c_gpu = matmul(a_gpu, b_gpu);
    c_gpu.backward(dc.to(gpu()));
    reset_implementations();

    require_close_for(c_gpu, c, k);
    require_close_for(a_gpu.grad(), a.grad(), n);
    require_close_for(b_gpu.grad(), b.grad(), m);
}

}  // namespace

TEST_CASE("linear on the GPU matches the CPU op, forward and backward, with every implementation",
          "[cuda][linear]") {
    for (const Variant& variant : all_variants()) {
        check_linear(variant, 4, 2048, 1000, true);  // ResNet-50's classifier at batch 4
        check_linear(variant, 3, 37, 29, true);      // odd sizes
        check_linear(variant, 1, 5, 7, true);        // batch 1
        check_linear(variant, 6, 130, 66, false);    // no bias
    }
}

TEST_CASE("matmul on the GPU matches the CPU op, forward and backward, with every implementation",
          "[cuda][matmul]") {
    for (const Variant& variant : all_variants()) {
        check_matmul(variant, 33, 65, 17);
        check_matmul(variant, 128, 256, 64);
        check_matmul(variant, 1, 1, 1);
        check_matmul(variant, 5, 300, 7);
    }
}

#endif  // CUDAGRAD_WITH_CUDA
