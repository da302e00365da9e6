// CPU reduction kernels: see reduction.hpp for the (outer, extent, inner) layout, the math and
// the speed budget.
#include "cpu/reduction.hpp"

#include <algorithm>
#include <cmath>
#include <type_traits>

#include "cpu/elementwise.hpp"

namespace cudagrad::cpu {
namespace {

// Sum of a contiguous run in double. The lane loop has no dependence between lanes, so GCC
// vectorizes it without -ffast-math; the lanes are added up at the end in a fixed order.
template <typename T> double sum_contiguous(const T* x, std::int64_t count) {
    constexpr int lanes = 8;
    double partial[lanes] = {};
    std::int64_t i = 0;
    for (; i + lanes <= count; i += lanes) {
        for (int lane = 0; lane < lanes; ++lane) partial[lane] += static_cast<double>(x[i + lane]);
    }
    double total = 0.0;
    for (; i < count; ++i) total += static_cast<double>(x[i]);
    for (int lane = 0; lane < lanes; ++lane) total += partial[lane];
    return total;
}

// Columns of the inner dimension summed together per task in sum_over_dimension: 512 double
// accumulators (4 KiB) stay in L1 while the rows stream past.
constexpr std::int64_t column_tile = 512;

// Tasks per parallel chunk so that a chunk reads at least elementwise_grain_size elements.
std::int64_t grain_for(std::int64_t elements_per_task) {
    return std::max<std::int64_t>(1, elementwise_grain_size / std::max<std::int64_t>(elements_per_task, 1));
}

template <typename T> bool is_nan(T value) {
    if constexpr (std::is_floating_point_v<T>) return std::isnan(value);
    return false;
}

// Whether `candidate` should replace `best` as the maximum (ties keep the earlier index).
template <typename T> bool beats(T candidate, T best) {
    return candidate > best || (is_nan(candidate) && !is_nan(best));
}

}  // namespace

template <typename T> double sum_all(const T* x, std::int64_t count) {
    // Fixed blocks (not one per thread) so the rounding does not depend on the thread count.
    constexpr std::int64_t block = elementwise_grain_size;
    const std::int64_t blocks = (count + block - 1) / block;
    std::vector<double> partial(static_cast<std::size_t>(blocks), 0.0);
    parallel_over_range(blocks, 1, [&](std::int64_t begin, std::int64_t end) {
        for (std::int64_t b = begin; b < end; ++b) {
            const std::int64_t start = b * block;
            partial[static_cast<std::size_t>(b)] = sum_contiguous(x + start, std::min(block, count - start));
        }
    });
    double total = 0.0;
    for (double value : partial) total += value;
    return total;
}

template <typename T> void sum_over_dimension(const T* x, T* y, const DimensionSplit& split) {
    const std::int64_t outer = split.outer, extent = split.extent, inner = split.inner;
    if (inner == 1) {  // reducing the last dimension: each output is the sum of one contiguous row
        parallel_over_range(outer, grain_for(extent), [=](std::int64_t begin, std::int64_t end) {
            for (std::int64_t o = begin; o < end; ++o) y[o] = static_cast<T>(sum_contiguous(x + o * extent, extent));
        });
        return;
    }
    // Otherwise add whole rows of `inner` contiguous values, one tile of columns at a time.
    const std::int64_t tiles = (inner + column_tile - 1) / column_tile;
    const std::int64_t tile_work = extent * std::min(inner, column_tile);
    parallel_over_range(outer * tiles, grain_for(tile_work), [=](std::int64_t begin, std::int64_t end) {
        double accumulator[column_tile];
        for (std::int64_t task = begin; task < end; ++task) {
            const std::int64_t o = task / tiles;
            const std::int64_t first_column = (task % tiles) * column_tile;
            const std::int64_t width = std::min(column_tile, inner - first_column);
            std::fill(accumulator, accumulator + width, 0.0);
            for (std::int64_t r = 0; r < extent; ++r) {
                const T* row = x + (o * extent + r) * inner + first_column;
                for (std::int64_t i = 0; i < width; ++i) accumulator[i] += static_cast<double>(row[i]);
            }
            T* output = y + o * inner + first_column;
            for (std::int64_t i = 0; i < width; ++i) output[i] = static_cast<T>(accumulator[i]);
        }
    });
}

template <typename T>
void broadcast_over_dimension(const T* y_gradient, T* x_gradient, const DimensionSplit& split) {
    const std::int64_t extent = split.extent, inner = split.inner;
    // One task per (o, r) row of `inner` values.
    parallel_over_range(split.outer * extent, grain_for(inner), [=](std::int64_t begin, std::int64_t end) {
        for (std::int64_t row = begin; row < end; ++row) {
            const T* source = y_gradient + (row / extent) * inner;
            T* destination = x_gradient + row * inner;
            for (std::int64_t i = 0; i < inner; ++i) destination[i] = source[i];
        }
    });
}

template <typename T>
void argmax_over_dimension(const T* x, std::int64_t* index, const DimensionSplit& split) {
    const std::int64_t extent = split.extent, inner = split.inner;
    // One task per output element; a strided walk when inner > 1, which is rare (argmax is
    // mostly taken over the class dimension of (N, classes) logits).
    parallel_over_range(split.outer * inner, grain_for(extent), [=](std::int64_t begin, std::int64_t end) {
        for (std::int64_t output = begin; output < end; ++output) {
            const T* values = x + (output / inner) * extent * inner + output % inner;
            T best = values[0];
            std::int64_t best_index = 0;
            for (std::int64_t r = 1; r < extent; ++r) {
                if (beats(values[r * inner], best)) {
                    best = values[r * inner];
                    best_index = r;
                }
            }
            index[output] = best_index;
        }
    });
}

template double sum_all<float>(const float*, std::int64_t);
template double sum_all<double>(const double*, std::int64_t);
template void sum_over_dimension<float>(const float*, float*, const DimensionSplit&);
template void sum_over_dimension<double>(const double*, double*, const DimensionSplit&);
template void broadcast_over_dimension<float>(const float*, float*, const DimensionSplit&);
template void broadcast_over_dimension<double>(const double*, double*, const DimensionSplit&);
template void argmax_over_dimension<float>(const float*, std::int64_t*, const DimensionSplit&);
template void argmax_over_dimension<double>(const double*, std::int64_t*, const DimensionSplit&);
template void argmax_over_dimension<std::int64_t>(const std::int64_t*, std::int64_t*, const DimensionSplit&);

}  // namespace cudagrad::cpu
