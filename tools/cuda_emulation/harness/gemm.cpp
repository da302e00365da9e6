// Emulation harness for the GEMM ladder (kernels/gemm_*.cu): runs every version (naive, tiled,
// register-blocked, vectorized, warp-tiled, tensor core TF32 and BF16) through cuda::gemm on
// odd sizes, all four transpose combinations, padded leading dimensions and misaligned base
// pointers (the vector paths must notice and fall back), alpha/beta, and checks C against a
// double-precision product of the operands rounded as the version's math mode rounds them.
// Also checks that no element outside the m x n result is written, and the support kernels.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>
#include <vector>

#include "compare.hpp"
#include "cuda/gemm.hpp"
#include "cudagrad/registry.hpp"

using namespace cudagrad;

namespace {

std::mt19937 rng(5);
constexpr float untouched = 777.0f;  // the padding of C must keep this value

float round_tf32(float v) { return __uint_as_float((__float_as_uint(v) + 0x1000u) & 0xFFFFE000u); }
float round_bf16(float v) {
    const std::uint32_t b = __float_as_uint(v);
    return __uint_as_float((b + 0x7FFFu + ((b >> 16) & 1u)) & 0xFFFF0000u);
}

// A rows x columns matrix stored row-major with leading dimension ld, starting `offset` floats
// into a 64-byte aligned buffer (offset 1 breaks 16-byte alignment on purpose).
struct Matrix {
    std::int64_t rows, columns, ld, offset;
    float* buffer;
    float at(std::int64_t r, std::int64_t c) const { return buffer[offset + r * ld + c]; }
    float* data() const { return buffer + offset; }
};
Matrix make_matrix(std::int64_t rows, std::int64_t columns, std::int64_t ld, std::int64_t offset, float fill,
                   bool nan_inside) {
    const std::int64_t floats = std::max<std::int64_t>(1, offset + rows * ld);
    float* buffer = static_cast<float*>(std::aligned_alloc(64, (floats * 4 + 63) / 64 * 64));
    std::fill(buffer, buffer + floats, fill);
    std::uniform_real_distribution<float> value(-1, 1);
    for (std::int64_t r = 0; r < rows; ++r)
        for (std::int64_t c = 0; c < columns; ++c) buffer[offset + r * ld + c] = nan_inside ? NAN : value(rng);
    return {rows, columns, ld, offset, buffer};
}

// layout 0: packed, aligned; 1: ld = width + 5 and base pointer off by one float; 2: ld a
// multiple of 4 with 4 floats of padding.
void check_gemm(const char* version, MathMode mode, std::int64_t m, std::int64_t n, std::int64_t k, bool transpose_a,
                bool transpose_b, int layout, float alpha, float beta) {
    auto ld_of = [&](std::int64_t width) { return layout == 0 ? width : layout == 1 ? width + 5 : (width + 3) / 4 * 4 + 4; };
    const std::int64_t offset = layout == 1 ? 1 : 0;
    const std::int64_t a_rows = transpose_a ? k : m, a_columns = transpose_a ? m : k;
    const std::int64_t b_rows = transpose_b ? n : k, b_columns = transpose_b ? k : n;
    const Matrix a = make_matrix(a_rows, a_columns, ld_of(a_columns), offset, NAN, false);
    const Matrix b = make_matrix(b_rows, b_columns, ld_of(b_columns), offset, NAN, false);
    // With beta == 0, C's old contents must be ignored even if NaN.
    const Matrix c = make_matrix(m, n, ld_of(n), offset, untouched, beta == 0.0f);
    std::vector<float> c_before(c.buffer, c.buffer + offset + m * c.ld);

    cuda::GemmProblem p;
    p.transpose_a = transpose_a; p.transpose_b = transpose_b; p.m = m; p.n = n; p.k = k;
    p.a = a.data(); p.lda = a.ld; p.b = b.data(); p.ldb = b.ld; p.c = c.data(); p.ldc = c.ld;
    p.alpha = alpha; p.beta = beta;
    cuda::gemm(p, version, mode);

    auto rounded = [&](float v) { return mode == MathMode::TF32 ? round_tf32(v) : mode == MathMode::BF16 ? round_bf16(v) : v; };
    int wrong = 0, outside = 0;
    for (std::int64_t i = 0; i < m; ++i)
        for (std::int64_t j = 0; j < c.ld; ++j) {
            const float got = c.at(i, j);
            if (j >= n) { outside += got != untouched; continue; }
            double sum = 0, magnitude = 0;
            for (std::int64_t q = 0; q < k; ++q) {
                const double x = rounded(transpose_a ? a.at(q, i) : a.at(i, q));
                const double y = rounded(transpose_b ? b.at(j, q) : b.at(q, j));
                sum += x * y;
                magnitude += std::fabs(x * y);
            }
            const double old = beta == 0 ? 0 : c_before[offset + i * c.ld + j];
            const double expected = alpha * sum + beta * old;
            // float32 accumulation error bound: ~k ulps of the sum of magnitudes, plus beta*C's rounding.
            const double bound = 2 * (std::fabs(alpha) * magnitude * (k + 2) * std::ldexp(1.0, -23) +
                                      std::fabs(beta * old) * std::ldexp(1.0, -22)) + 1e-30;
            if (!(std::fabs(got - expected) <= bound)) {
                if (wrong < 3) std::printf("    C[%lld,%lld] = %.9g, expected %.9g (bound %.3g)\n", (long long)i, (long long)j, got, expected, bound);
                ++wrong;
            }
        }
    if (offset && c.buffer[0] != untouched) ++outside;
    if (wrong || outside)
        emulation::fail(std::string(version) + "/" + math_mode_name(mode) + " m" + std::to_string(m) + " n" +
                        std::to_string(n) + " k" + std::to_string(k) + " ta" + std::to_string(transpose_a) + " tb" +
                        std::to_string(transpose_b) + " layout" + std::to_string(layout) + ": " + std::to_string(wrong) +
                        " wrong, " + std::to_string(outside) + " written outside C");
    else
        ++emulation::checks;
    std::free(a.buffer); std::free(b.buffer); std::free(c.buffer);
}

void check_support_kernels() {
    std::uniform_real_distribution<float> value(-1, 1);
    const std::int64_t rows = 37, columns = 45;
    std::vector<float> x(rows * columns);
    for (float& v : x) v = value(rng);
    std::vector<float> sums(columns, NAN);
    cuda::column_sums(x.data(), rows, columns, sums.data());
    std::vector<double> want_sums(columns, 0);
    for (std::int64_t r = 0; r < rows; ++r)
        for (std::int64_t c = 0; c < columns; ++c) want_sums[c] += x[r * columns + c];
    emulation::compare("column_sums 37x45", sums.data(), want_sums, 1e-6, 1e-6);

    std::vector<float> y(7 * columns, NAN);
    cuda::broadcast_row(x.data(), 7, columns, y.data());
    std::vector<double> want_rows(7 * columns);
    for (std::int64_t i = 0; i < 7 * columns; ++i) want_rows[i] = x[i % columns];
    emulation::compare("broadcast_row 7x45", y.data(), want_rows, 0, 0);

    std::vector<std::uint16_t> halves(5 * 9);
    cuda::convert_to_bf16(x.data(), 5, 9, columns, halves.data());
    std::vector<float> converted(halves.size());
    std::vector<double> want_halves(halves.size());
    for (int r = 0; r < 5; ++r)
        for (int c = 0; c < 9; ++c) {
            converted[r * 9 + c] = __uint_as_float(static_cast<std::uint32_t>(halves[r * 9 + c]) << 16);
            want_halves[r * 9 + c] = round_bf16(x[r * columns + c]);
        }
    emulation::compare("convert_to_bf16 5x9 of ld 45", converted.data(), want_halves, 0, 0);
}

}  // namespace

int main(int argc, char** argv) {
    struct Version { const char* name; MathMode mode; };
    const std::vector<Version> versions = {{"naive", MathMode::FP32}, {"tiled", MathMode::FP32},
                                           {"register_blocked", MathMode::FP32}, {"vectorized", MathMode::FP32},
                                           {"warp_tiled", MathMode::FP32}, {"tensor_core", MathMode::TF32},
                                           {"tensor_core", MathMode::BF16}};
    const std::string only = argc > 1 ? argv[1] : "";  // e.g. `emulate_gemm warp_tiled`
    const std::int64_t sizes[][3] = {{1, 1, 1}, {7, 13, 5}, {33, 65, 17}, {132, 68, 36}, {127, 129, 131}, {64, 40, 300}};
    for (const Version& v : versions) {
        if (!only.empty() && only != v.name) continue;
        const int before = emulation::failures;
        int size_index = 0;
        for (const auto& s : sizes) {
            // Four runs per size: every transpose combination once; layouts and alpha/beta rotate.
            for (int transposes = 0; transposes < 4; ++transposes) {
                const int layout = (transposes + size_index) % 3;
                const bool scaled = (transposes + size_index) % 2 == 1;
                check_gemm(v.name, v.mode, s[0], s[1], s[2], transposes & 1, transposes & 2, layout,
                           scaled ? 1.5f : 1.0f, scaled ? -0.75f : 0.0f);
            }
            ++size_index;
        }
        std::printf("  gemm %s/%s: %s\n", v.name, math_mode_name(v.mode), emulation::failures == before ? "ok" : "MISMATCH");
        std::fflush(stdout);
    }
    if (only.empty()) check_support_kernels();
    return emulation::finish("gemm");
}
