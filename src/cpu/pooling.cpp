// CPU kernels for 2-d pooling: see pooling.hpp for what each computes.
//
// What limits the speed: one pass over x (forward) or dx (backward), each input element touched
// about kernel_h*kernel_w / (stride_h*stride_w) times -- 2.25 times for ResNet's 3x3/2 max pool.
// Max pooling is the one ResNet trains through, so it has a fast path: the outputs whose windows
// need no clipping are computed a row at a time with a branch-free compare-and-select that GCC
// vectorises (see max_pool_interior); only border outputs take the scalar loop, whose
// data-dependent branch mispredicts about once per window on random data (measured 3-6x
// slower per output). Average pooling keeps the plain window loops: it is off ResNet's
// training path, and its window sums accumulate in double (windows of adaptive and global
// pooling can hold thousands of elements).
#include "cpu/pooling.hpp"

#include <algorithm>
#include <cmath>
#include <limits>

#include "cpu/parallel.hpp"

namespace cudagrad::cpu {
namespace {

// A parallel_for chunk should hold at least this much work (elements touched); below that,
// waking a worker costs more than the work.
constexpr std::int64_t kMinimumWorkPerChunk = 32768;

std::int64_t planes_per_chunk(std::int64_t work_per_plane) {
    return std::max<std::int64_t>(1, kMinimumWorkPerChunk / std::max<std::int64_t>(1, work_per_plane));
}

std::int64_t pool_work_per_plane(const Pool2dGeometry& g) {
    return std::max(g.input_h * g.input_w, g.output_h * g.output_w * g.kernel_h * g.kernel_w);
}

// One window of max_pool2d/avg_pool2d along one axis: [start, end) clipped to the input, and
// the unclipped length up to input + padding (PyTorch's count_include_pad divisor).
struct Window {
    std::int64_t start, end, padded_length;
};

Window pool_window(std::int64_t output_index, std::int64_t stride, std::int64_t padding, std::int64_t kernel,
                   std::int64_t input_size) {
    const std::int64_t start = output_index * stride - padding;
    const std::int64_t end = std::min(start + kernel, input_size + padding);
    return {std::max<std::int64_t>(start, 0), std::min(end, input_size), end - start};
}

// PyTorch's adaptive window: [floor(i*in/out), ceil((i+1)*in/out)).
Window adaptive_window(std::int64_t output_index, std::int64_t input_size, std::int64_t output_size) {
    const std::int64_t start = output_index * input_size / output_size;
    const std::int64_t end = ((output_index + 1) * input_size + output_size - 1) / output_size;
    return {start, end, end - start};
}

std::int64_t avg_divisor(const Window& row, const Window& column, bool count_include_pad) {
    return count_include_pad ? row.padded_length * column.padded_length
                             : (row.end - row.start) * (column.end - column.start);
}

template <typename T>
double window_sum(const T* plane, std::int64_t width, const Window& row, const Window& column) {
    double total = 0.0;
    for (std::int64_t h = row.start; h < row.end; ++h) {
        const T* line = plane + h * width;
        for (std::int64_t w = column.start; w < column.end; ++w) total += static_cast<double>(line[w]);
    }
    return total;
}

template <typename T>
void window_add(T* plane, std::int64_t width, const Window& row, const Window& column, T value) {
    for (std::int64_t h = row.start; h < row.end; ++h) {
        T* line = plane + h * width;
        for (std::int64_t w = column.start; w < column.end; ++w) line[w] += value;
    }
}

// Output columns q whose windows lie wholly inside the input (no clipping): [first, last).
struct ColumnRange {
    std::int64_t first, last;
};

ColumnRange interior_columns(const Pool2dGeometry& g) {
    const std::int64_t first = (g.padding_w + g.stride_w - 1) / g.stride_w;  // q*stride - padding >= 0
    const std::int64_t room = g.input_w + g.padding_w - g.kernel_w;            // q*stride <= room
    const std::int64_t last = room < 0 ? 0 : std::min(room / g.stride_w + 1, g.output_w);
    return {std::min(first, last), last};
}

// The fast path of max_pool2d: the interior outputs of one output row at once. It visits the
// window positions in the same row-major order as the scalar code (so ties and NaN resolve the
// same way), but with the loop over outputs innermost: for a fixed window position the candidate
// inputs of neighbouring outputs sit `stride` apart, and the compare-and-select is branch free,
// so GCC vectorises it. (One output at a time, the data-dependent branch mispredicts about once
// per window on random data, which made the scalar loop 3-6x slower.) The winner is tracked as
// its position in the window, a small int32 that vectorises alongside float lanes, and turned
// into a plane index once per block.
template <typename T, bool record_index>
void max_pool_interior(const T* input, T* output_row, std::int64_t* index_row, const Window& row,
                       const ColumnRange& interior, const Pool2dGeometry& g) {
    constexpr std::int64_t kBlock = 256;
    std::int32_t winner[kBlock];  // row-major position within the window
    const std::int64_t stride = g.stride_w;
    for (std::int64_t block_first = interior.first; block_first < interior.last; block_first += kBlock) {
        const std::int64_t count = std::min(kBlock, interior.last - block_first);
        T* best = output_row + block_first;
        for (std::int64_t i = 0; i < count; ++i) {
            best[i] = -std::numeric_limits<T>::infinity();
            winner[i] = 0;
        }
        std::int32_t position = 0;
        for (std::int64_t h = row.start; h < row.end; ++h) {
            for (std::int64_t j = 0; j < g.kernel_w; ++j, ++position) {
                const T* candidates = input + h * g.input_w + block_first * stride + j - g.padding_w;
                for (std::int64_t i = 0; i < count; ++i) {
                    const T value = candidates[i * stride];
                    // Strictly greater: a tie keeps the first maximum. value != value: NaN wins.
                    const bool take = value > best[i] || value != value;
                    best[i] = take ? value : best[i];
                    if constexpr (record_index) winner[i] = take ? position : winner[i];
                }
            }
        }
        if constexpr (record_index) {
            for (std::int64_t i = 0; i < count; ++i) {
                const std::int64_t window_row = row.start + winner[i] / g.kernel_w;
                const std::int64_t window_column = (block_first + i) * stride - g.padding_w + winner[i] % g.kernel_w;
                index_row[block_first + i] = window_row * g.input_w + window_column;
            }
        }
    }
}

}  // namespace

template <typename T>
void max_pool2d_forward(const T* x, T* y, std::int64_t* argmax, const Pool2dGeometry& g) {
    const std::int64_t input_plane = g.input_h * g.input_w, output_plane = g.output_h * g.output_w;
    const ColumnRange interior = interior_columns(g);
    parallel_for(0, g.planes, planes_per_chunk(pool_work_per_plane(g)), [&](std::int64_t first, std::int64_t last) {
        for (std::int64_t plane = first; plane < last; ++plane) {
            const T* input = x + plane * input_plane;
            for (std::int64_t p = 0; p < g.output_h; ++p) {
                const Window row = pool_window(p, g.stride_h, g.padding_h, g.kernel_h, g.input_h);
                T* output_row = y + plane * output_plane + p * g.output_w;
                std::int64_t* index_row = argmax ? argmax + plane * output_plane + p * g.output_w : nullptr;
                if (index_row) {
                    max_pool_interior<T, true>(input, output_row, index_row, row, interior, g);
                } else {
                    max_pool_interior<T, false>(input, output_row, index_row, row, interior, g);
                }
                for (std::int64_t q = 0; q < g.output_w; ++q) {
                    if (q >= interior.first && q < interior.last) continue;
                    const Window column = pool_window(q, g.stride_w, g.padding_w, g.kernel_w, g.input_w);
                    // Padding is -infinity, so it never wins; if every value is -infinity the first
                    // real position is reported, as in PyTorch.
                    T best = -std::numeric_limits<T>::infinity();
                    std::int64_t best_index = row.start * g.input_w + column.start;
                    for (std::int64_t h = row.start; h < row.end; ++h) {
                        const T* line = input + h * g.input_w;
                        for (std::int64_t w = column.start; w < column.end; ++w) {
                            // Strictly greater: a tie keeps the first maximum. NaN propagates.
                            if (line[w] > best || std::isnan(line[w])) {
                                best = line[w];
                                best_index = h * g.input_w + w;
                            }
                        }
                    }
                    output_row[q] = best;
                    if (index_row) index_row[q] = best_index;
                }
            }
        }
    });
}

template <typename T>
void max_pool2d_backward(const T* dy, const std::int64_t* argmax, T* dx, const Pool2dGeometry& g) {
    const std::int64_t input_plane = g.input_h * g.input_w, output_plane = g.output_h * g.output_w;
    parallel_for(0, g.planes, planes_per_chunk(input_plane + output_plane), [&](std::int64_t first, std::int64_t last) {
        for (std::int64_t plane = first; plane < last; ++plane) {
            T* input_gradient = dx + plane * input_plane;
            const T* output_gradient = dy + plane * output_plane;
            const std::int64_t* indices = argmax + plane * output_plane;
            std::fill(input_gradient, input_gradient + input_plane, T(0));
            for (std::int64_t i = 0; i < output_plane; ++i) input_gradient[indices[i]] += output_gradient[i];
        }
    });
}

template <typename T>
void avg_pool2d_forward(const T* x, T* y, const Pool2dGeometry& g, bool count_include_pad) {
    const std::int64_t input_plane = g.input_h * g.input_w, output_plane = g.output_h * g.output_w;
    parallel_for(0, g.planes, planes_per_chunk(pool_work_per_plane(g)), [&](std::int64_t first, std::int64_t last) {
        for (std::int64_t plane = first; plane < last; ++plane) {
            const T* input = x + plane * input_plane;
            T* output = y + plane * output_plane;
            for (std::int64_t p = 0; p < g.output_h; ++p) {
                const Window row = pool_window(p, g.stride_h, g.padding_h, g.kernel_h, g.input_h);
                for (std::int64_t q = 0; q < g.output_w; ++q) {
                    const Window column = pool_window(q, g.stride_w, g.padding_w, g.kernel_w, g.input_w);
                    const double divisor = static_cast<double>(avg_divisor(row, column, count_include_pad));
                    output[p * g.output_w + q] = static_cast<T>(window_sum(input, g.input_w, row, column) / divisor);
                }
            }
        }
    });
}

template <typename T>
void avg_pool2d_backward(const T* dy, T* dx, const Pool2dGeometry& g, bool count_include_pad) {
    const std::int64_t input_plane = g.input_h * g.input_w, output_plane = g.output_h * g.output_w;
    parallel_for(0, g.planes, planes_per_chunk(pool_work_per_plane(g)), [&](std::int64_t first, std::int64_t last) {
        for (std::int64_t plane = first; plane < last; ++plane) {
            T* input_gradient = dx + plane * input_plane;
            const T* output_gradient = dy + plane * output_plane;
            std::fill(input_gradient, input_gradient + input_plane, T(0));
            for (std::int64_t p = 0; p < g.output_h; ++p) {
                const Window row = pool_window(p, g.stride_h, g.padding_h, g.kernel_h, g.input_h);
                for (std::int64_t q = 0; q < g.output_w; ++q) {
                    const Window column = pool_window(q, g.stride_w, g.padding_w, g.kernel_w, g.input_w);
                    const double divisor = static_cast<double>(avg_divisor(row, column, count_include_pad));
                    const T share = static_cast<T>(static_cast<double>(output_gradient[p * g.output_w + q]) / divisor);
                    window_add(input_gradient, g.input_w, row, column, share);
                }
            }
        }
    });
}

template <typename T>
void adaptive_avg_pool2d_forward(const T* x, T* y, std::int64_t planes, std::int64_t input_h, std::int64_t input_w,
                                 std::int64_t output_h, std::int64_t output_w) {
    const std::int64_t input_plane = input_h * input_w, output_plane = output_h * output_w;
    // Each input element is read about once (twice where windows overlap).
    const std::int64_t work = std::max(input_plane, output_plane);
    parallel_for(0, planes, planes_per_chunk(work), [&](std::int64_t first, std::int64_t last) {
        for (std::int64_t plane = first; plane < last; ++plane) {
            const T* input = x + plane * input_plane;
            T* output = y + plane * output_plane;
            for (std::int64_t p = 0; p < output_h; ++p) {
                const Window row = adaptive_window(p, input_h, output_h);
                for (std::int64_t q = 0; q < output_w; ++q) {
                    const Window column = adaptive_window(q, input_w, output_w);
                    const double count = static_cast<double>(row.padded_length * column.padded_length);
                    output[p * output_w + q] = static_cast<T>(window_sum(input, input_w, row, column) / count);
                }
            }
        }
    });
}

template <typename T>
void adaptive_avg_pool2d_backward(const T* dy, T* dx, std::int64_t planes, std::int64_t input_h,
                                  std::int64_t input_w, std::int64_t output_h, std::int64_t output_w) {
    const std::int64_t input_plane = input_h * input_w, output_plane = output_h * output_w;
    const std::int64_t work = std::max(input_plane, output_plane);
    parallel_for(0, planes, planes_per_chunk(work), [&](std::int64_t first, std::int64_t last) {
        for (std::int64_t plane = first; plane < last; ++plane) {
            T* input_gradient = dx + plane * input_plane;
            const T* output_gradient = dy + plane * output_plane;
            std::fill(input_gradient, input_gradient + input_plane, T(0));
            for (std::int64_t p = 0; p < output_h; ++p) {
                const Window row = adaptive_window(p, input_h, output_h);
                for (std::int64_t q = 0; q < output_w; ++q) {
                    const Window column = adaptive_window(q, input_w, output_w);
                    const double count = static_cast<double>(row.padded_length * column.padded_length);
                    const T share = static_cast<T>(static_cast<double>(output_gradient[p * output_w + q]) / count);
                    window_add(input_gradient, input_w, row, column, share);
                }
            }
        }
    });
}

template <typename T>
void global_avg_pool2d_forward(const T* x, T* y, std::int64_t planes, std::int64_t plane_size) {
    parallel_for(0, planes, planes_per_chunk(plane_size), [&](std::int64_t first, std::int64_t last) {
        for (std::int64_t plane = first; plane < last; ++plane) {
            const T* input = x + plane * plane_size;
            // Eight partial sums: independent chains GCC can vectorise (a single running sum
            // is a dependency chain it may not reorder without -ffast-math).
            double partial[8] = {};
            std::int64_t i = 0;
            for (; i + 8 <= plane_size; i += 8) {
                for (int lane = 0; lane < 8; ++lane) partial[lane] += static_cast<double>(input[i + lane]);
            }
            double total = 0.0;
            for (; i < plane_size; ++i) total += static_cast<double>(input[i]);
            for (double value : partial) total += value;
            y[plane] = static_cast<T>(total / static_cast<double>(plane_size));
        }
    });
}

template <typename T>
void global_avg_pool2d_backward(const T* dy, T* dx, std::int64_t planes, std::int64_t plane_size) {
    parallel_for(0, planes, planes_per_chunk(plane_size), [&](std::int64_t first, std::int64_t last) {
        for (std::int64_t plane = first; plane < last; ++plane) {
            const T share = static_cast<T>(static_cast<double>(dy[plane]) / static_cast<double>(plane_size));
            std::fill(dx + plane * plane_size, dx + (plane + 1) * plane_size, share);
        }
    });
}

template void max_pool2d_forward<float>(const float*, float*, std::int64_t*, const Pool2dGeometry&);
template void max_pool2d_backward<float>(const float*, const std::int64_t*, float*, const Pool2dGeometry&);
template void avg_pool2d_forward<float>(const float*, float*, const Pool2dGeometry&, bool);
template void avg_pool2d_backward<float>(const float*, float*, const Pool2dGeometry&, bool);
template void adaptive_avg_pool2d_forward<float>(const float*, float*, std::int64_t, std::int64_t, std::int64_t,
                                                std::int64_t, std::int64_t);
template void adaptive_avg_pool2d_backward<float>(const float*, float*, std::int64_t, std::int64_t, std::int64_t,
                                                 std::int64_t, std::int64_t);
template void global_avg_pool2d_forward<float>(const float*, float*, std::int64_t, std::int64_t);
template void global_avg_pool2d_backward<float>(const float*, float*, std::int64_t, std::int64_t);

template void max_pool2d_forward<double>(const double*, double*, std::int64_t*, const Pool2dGeometry&);
template void max_pool2d_backward<double>(const double*, const std::int64_t*, double*, const Pool2dGeometry&);
template void avg_pool2d_forward<double>(const double*, double*, const Pool2dGeometry&, bool);
template void avg_pool2d_backward<double>(const double*, double*, const Pool2dGeometry&, bool);
template void adaptive_avg_pool2d_forward<double>(const double*, double*, std::int64_t, std::int64_t, std::int64_t,
                                                std::int64_t, std::int64_t);
template void adaptive_avg_pool2d_backward<double>(const double*, double*, std::int64_t, std::int64_t, std::int64_t,
                                                 std::int64_t, std::int64_t);
template void global_avg_pool2d_forward<double>(const double*, double*, std::int64_t, std::int64_t);
template void global_avg_pool2d_backward<double>(const double*, double*, std::int64_t, std::int64_t);

}  // namespace cudagrad::cpu
