// CPU kernels for elementwise maps over contiguous arrays of `count` elements:
//   add:          out[i] = a[i] + b[i]          subtract: out[i] = a[i] - b[i]
//   multiply:     out[i] = a[i] * b[i]          scale:    out[i] = a[i] * factor
//   add_scalar:   out[i] = a[i] + value
//   relu_forward: y[i] = max(x[i], 0) (NaN stays NaN, as PyTorch)
//   relu_backward: dx[i] = y[i] > 0 ? dy[i] : 0 (the gradient at exactly 0 is 0, as PyTorch)
// plus copy_blocks, the strided block copy behind the gradient of slice().
//
// T is float or double. `out` may be the same array as an input (in-place use); it must not
// partially overlap one.
//
// Speed: each map reads one or two arrays and writes one, a few bytes per flop, so it runs at
// memory bandwidth (~10 GB/s on one core here: ~5 ms to add two 4M-float arrays, 48 MB of
// traffic). GCC -O3 vectorizes the loops (plain indexed loops with no calls); large arrays are
// split across the thread pool in chunks of at least elementwise_grain_size elements.
#pragma once

#include <cstddef>
#include <cstdint>
#include <utility>

#include "cpu/parallel.hpp"

namespace cudagrad::cpu {

// Below this many elements a loop runs on the calling thread: waking the pool costs a few
// microseconds, about what 32k additions take.
inline constexpr std::int64_t elementwise_grain_size = 32768;

// Calls body(begin, end) over [0, count): directly when count is at most `grain` (no
// std::function, no pool), otherwise in parallel chunks of at least `grain`.
template <typename Body>
void parallel_over_range(std::int64_t count, std::int64_t grain, Body&& body) {
    if (count <= 0) return;
    if (count <= grain) {
        body(std::int64_t{0}, count);
        return;
    }
    parallel_for(0, count, grain, std::forward<Body>(body));
}

template <typename T> void add(const T* a, const T* b, T* out, std::int64_t count);
template <typename T> void subtract(const T* a, const T* b, T* out, std::int64_t count);
template <typename T> void multiply(const T* a, const T* b, T* out, std::int64_t count);
template <typename T> void scale(const T* a, T factor, T* out, std::int64_t count);
template <typename T> void add_scalar(const T* a, T value, T* out, std::int64_t count);

template <typename T> void relu_forward(const T* x, T* y, std::int64_t count);
// Uses the forward output y: y > 0 exactly where x > 0.
template <typename T>
void relu_backward(const T* y, const T* output_gradient, T* input_gradient, std::int64_t count);

// Copies `blocks` blocks of `block_bytes` bytes: block k goes from source + k*source_stride to
// destination + k*destination_stride (strides in bytes). Any element type.
void copy_blocks(const void* source, void* destination, std::int64_t blocks, std::size_t block_bytes,
                 std::size_t source_stride, std::size_t destination_stride);

}  // namespace cudagrad::cpu
