// CPU kernels for reductions over contiguous arrays.
//
// A reduction over one dimension of a contiguous tensor sees it as a 3-d array
// (outer, extent, inner): `extent` is the size of the reduced dimension, `outer` the product of
// the sizes before it, `inner` the product of the sizes after it. Element (o, r, i) lives at
// (o * extent + r) * inner + i. So a (N, C) tensor reduced over dim 1 is (N, C, 1), over dim 0
// it is (1, N, C); softmax and cross-entropy (loss.hpp) use the same split.
//
//   sum_all:                  sum of x[0 .. count), accumulated in double
//   sum_over_dimension:       y[o, i] = sum over r of x[o, r, i]   (double accumulators)
//   broadcast_over_dimension: x_gradient[o, r, i] = y_gradient[o, i]  (the gradient of the sum)
//   argmax_over_dimension:    index[o, i] = first r with the largest x[o, r, i]; a NaN counts
//                             as larger than any number (PyTorch's rule)
//
// Speed: memory bound, one read per element. Float sums use 8 independent double accumulators
// per row, which GCC vectorizes (one accumulator would chain every add on the last: ~4x slower)
// and which keep float32 sums of millions of elements accurate to ~1e-7 relative. Work is split
// into fixed blocks, so results are bitwise identical whatever the thread count.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace cudagrad::cpu {

struct DimensionSplit {
    std::int64_t outer = 1;
    std::int64_t extent = 1;
    std::int64_t inner = 1;
};

// The (outer, extent, inner) view of a contiguous tensor of `shape` around `dimension`
// (0 <= dimension < shape.size()).
inline DimensionSplit split_at_dimension(const std::vector<std::int64_t>& shape, std::size_t dimension) {
    DimensionSplit split;
    for (std::size_t d = 0; d < shape.size(); ++d) {
        if (d < dimension) split.outer *= shape[d];
        if (d == dimension) split.extent = shape[d];
        if (d > dimension) split.inner *= shape[d];
    }
    return split;
}

template <typename T> double sum_all(const T* x, std::int64_t count);

template <typename T> void sum_over_dimension(const T* x, T* y, const DimensionSplit& split);

template <typename T>
void broadcast_over_dimension(const T* y_gradient, T* x_gradient, const DimensionSplit& split);

// T is float, double or int64.
template <typename T>
void argmax_over_dimension(const T* x, std::int64_t* index, const DimensionSplit& split);

}  // namespace cudagrad::cpu
