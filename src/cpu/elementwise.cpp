// CPU elementwise kernels: see elementwise.hpp for the math and the speed budget.
//
// Every kernel has the same shape: a lambda over [begin, end) holding one plain indexed loop,
// handed to parallel_over_range. The loop bodies contain no calls and no branches other than a
// select, so GCC -O3 turns each into SSE/AVX code (with a run-time check that `out` does not
// overlap the inputs).
#include "cpu/elementwise.hpp"

#include <algorithm>
#include <cstring>

namespace cudagrad::cpu {

template <typename T> void add(const T* a, const T* b, T* out, std::int64_t count) {
    parallel_over_range(count, elementwise_grain_size, [=](std::int64_t begin, std::int64_t end) {
        for (std::int64_t i = begin; i < end; ++i) out[i] = a[i] + b[i];
    });
}

template <typename T> void subtract(const T* a, const T* b, T* out, std::int64_t count) {
    parallel_over_range(count, elementwise_grain_size, [=](std::int64_t begin, std::int64_t end) {
        for (std::int64_t i = begin; i < end; ++i) out[i] = a[i] - b[i];
    });
}

template <typename T> void multiply(const T* a, const T* b, T* out, std::int64_t count) {
    parallel_over_range(count, elementwise_grain_size, [=](std::int64_t begin, std::int64_t end) {
        for (std::int64_t i = begin; i < end; ++i) out[i] = a[i] * b[i];
    });
}

template <typename T> void scale(const T* a, T factor, T* out, std::int64_t count) {
    parallel_over_range(count, elementwise_grain_size, [=](std::int64_t begin, std::int64_t end) {
        for (std::int64_t i = begin; i < end; ++i) out[i] = a[i] * factor;
    });
}

template <typename T> void add_scalar(const T* a, T value, T* out, std::int64_t count) {
    parallel_over_range(count, elementwise_grain_size, [=](std::int64_t begin, std::int64_t end) {
        for (std::int64_t i = begin; i < end; ++i) out[i] = a[i] + value;
    });
}

template <typename T> void relu_forward(const T* x, T* y, std::int64_t count) {
    parallel_over_range(count, elementwise_grain_size, [=](std::int64_t begin, std::int64_t end) {
        // "x < 0 ? 0 : x" rather than std::max: a NaN input compares false and passes through,
        // as in PyTorch, and the select compiles to a vector compare and blend.
        for (std::int64_t i = begin; i < end; ++i) y[i] = x[i] < T(0) ? T(0) : x[i];
    });
}

template <typename T>
void relu_backward(const T* y, const T* output_gradient, T* input_gradient, std::int64_t count) {
    parallel_over_range(count, elementwise_grain_size, [=](std::int64_t begin, std::int64_t end) {
        // Both loads happen unconditionally: "y > 0 ? g[i] : 0" would be a conditional load,
        // which GCC will not vectorize.
        for (std::int64_t i = begin; i < end; ++i) {
            const T gradient = output_gradient[i];
            input_gradient[i] = y[i] > T(0) ? gradient : T(0);
        }
    });
}

void copy_blocks(const void* source, void* destination, std::int64_t blocks, std::size_t block_bytes,
                 std::size_t source_stride, std::size_t destination_stride) {
    if (block_bytes == 0) return;
    const char* from = static_cast<const char*>(source);
    char* to = static_cast<char*>(destination);
    // Split by blocks; a chunk should move at least ~128 KiB to pay for waking a thread.
    const std::int64_t grain = std::max<std::int64_t>(1, static_cast<std::int64_t>((128 * 1024) / block_bytes));
    parallel_over_range(blocks, grain, [=](std::int64_t begin, std::int64_t end) {
        for (std::int64_t k = begin; k < end; ++k) {
            std::memcpy(to + static_cast<std::size_t>(k) * destination_stride,
                        from + static_cast<std::size_t>(k) * source_stride, block_bytes);
        }
    });
}

// Explicit instantiations: the kernels exist for float and double only.
template void add<float>(const float*, const float*, float*, std::int64_t);
template void add<double>(const double*, const double*, double*, std::int64_t);
template void subtract<float>(const float*, const float*, float*, std::int64_t);
template void subtract<double>(const double*, const double*, double*, std::int64_t);
template void multiply<float>(const float*, const float*, float*, std::int64_t);
template void multiply<double>(const double*, const double*, double*, std::int64_t);
template void scale<float>(const float*, float, float*, std::int64_t);
template void scale<double>(const double*, double, double*, std::int64_t);
template void add_scalar<float>(const float*, float, float*, std::int64_t);
template void add_scalar<double>(const double*, double, double*, std::int64_t);
template void relu_forward<float>(const float*, float*, std::int64_t);
template void relu_forward<double>(const double*, double*, std::int64_t);
template void relu_backward<float>(const float*, const float*, float*, std::int64_t);
template void relu_backward<double>(const double*, const double*, double*, std::int64_t);

}  // namespace cudagrad::cpu
