// cudagrad CPU conv2d kernels: the direct reference loops and the im2col + GEMM fast path.
// The math and shapes are in conv2d.hpp; results must match PyTorch's torch.nn.functional.conv2d
// (and its autograd) to float rounding.
//
// What limits speed. A convolution is a GEMM in disguise: the forward pass does
// 2*N*K*P*Q*(C/groups)*R*S FLOPs, and so does each of the two backward products. ResNet-50's
// layer1 3x3 conv (64->64 on 8x8, batch 32) is 2*32*64*64*576 = 151 MFLOP: about 1.5 ms on
// one core of the dev VM at the ~100 GFLOP/s cpu::gemm reaches there with AVX-512. Writing its
// im2col matrix (576 rows x 2048 columns, 4.7 MB) and reading it back costs a few tenths of a
// millisecond of memory traffic. So the fast path spends its effort on making the GEMMs wide
// (several images per GEMM: one 8x8 image would give a GEMM only 64 columns wide), keeps the
// copies contiguous and spread over the cores, and skips the work that is pure padding. The
// direct loops in *_reference do the same FLOPs one scalar at a time with no reuse of loaded
// values: about 200x slower on that layer (measured: 365 ms against 1.7 ms forward).
#include "conv2d.hpp"

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <memory>
#include <stdexcept>
#include <vector>

#include "gemm.hpp"
#include "parallel.hpp"

namespace cudagrad::cpu {

std::int64_t conv_output_size(std::int64_t input, std::int64_t kernel, std::int64_t stride, std::int64_t padding,
                              std::int64_t dilation) {
    // The kernel's extent may exceed the padded input; C++ division truncates toward zero, so
    // a span of -1 would otherwise give 1 output instead of none.
    const std::int64_t span = input + 2 * padding - dilation * (kernel - 1) - 1;
    return span < 0 ? 0 : span / stride + 1;
}

// ------------------------------------------------------------------- implementation switch
namespace {
std::atomic<int> chosen_impl{-1};  // -1: not chosen yet, the first conv_impl() reads CUDAGRAD_CONV
std::atomic<std::int64_t> workspace_limit{std::int64_t{4} << 20};
}  // namespace

const char* conv_impl_name(ConvImpl impl) { return impl == ConvImpl::Reference ? "reference" : "im2col"; }

ConvImpl conv_impl_from_name(const std::string& name) {
    for (ConvImpl impl : {ConvImpl::Reference, ConvImpl::Im2col}) {
        if (name == conv_impl_name(impl)) return impl;
    }
    throw std::invalid_argument("conv_impl_from_name: unknown conv2d implementation '" + name +
                                "' (expected reference or im2col; check CUDAGRAD_CONV)");
}

ConvImpl conv_impl() {
    int impl = chosen_impl.load();
    if (impl < 0) {
        const char* text = std::getenv("CUDAGRAD_CONV");
        impl = static_cast<int>(text ? conv_impl_from_name(text) : ConvImpl::Im2col);
        chosen_impl.store(impl);
    }
    return static_cast<ConvImpl>(impl);
}

void set_conv_impl(ConvImpl impl) { chosen_impl.store(static_cast<int>(impl)); }

std::int64_t conv_workspace_limit_bytes() { return workspace_limit.load(); }

void set_conv_workspace_limit_bytes(std::int64_t bytes) {
    if (bytes < 1) throw std::invalid_argument("set_conv_workspace_limit_bytes: limit must be >= 1, got " +
                                               std::to_string(bytes));
    workspace_limit.store(bytes);
}

// ------------------------------------------------------------------- reference: direct loops
namespace {
// Flat index of element (a, b, c, d) of a 4-D contiguous array of sizes (., B, C, D).
inline std::int64_t index4(std::int64_t a, std::int64_t b, std::int64_t c, std::int64_t d, std::int64_t size_b,
                           std::int64_t size_c, std::int64_t size_d) {
    return ((a * size_b + b) * size_c + c) * size_d + d;
}

// Calls tap(y_index, x_index, weight_index) with the flat indices of every multiply-add
// y[y_index] += weight[weight_index] * x[x_index] of the convolution whose input tap falls
// inside the image (padding contributes nothing). The three references are this loop nest
// with a different statement in the middle.
template <typename Tap>
void for_each_tap(const ConvGeometry& g, Tap&& tap) {
    const std::int64_t channels_per_group = g.in_channels_per_group();
    const std::int64_t out_per_group = g.out_channels_per_group();
    for (std::int64_t n = 0; n < g.batch; ++n)
        for (std::int64_t k = 0; k < g.out_channels; ++k) {
            const std::int64_t first_channel = (k / out_per_group) * channels_per_group;
            for (std::int64_t p = 0; p < g.out_height; ++p)
                for (std::int64_t q = 0; q < g.out_width; ++q) {
                    const std::int64_t y_index = index4(n, k, p, q, g.out_channels, g.out_height, g.out_width);
                    for (std::int64_t c = 0; c < channels_per_group; ++c)
                        for (std::int64_t r = 0; r < g.kernel_height; ++r) {
                            const std::int64_t h = p * g.stride_height - g.padding_height + r * g.dilation_height;
                            if (h < 0 || h >= g.in_height) continue;
                            for (std::int64_t s = 0; s < g.kernel_width; ++s) {
                                const std::int64_t w = q * g.stride_width - g.padding_width + s * g.dilation_width;
                                if (w < 0 || w >= g.in_width) continue;
                                tap(y_index,
                                    index4(n, first_channel + c, h, w, g.in_channels, g.in_height, g.in_width),
                                    index4(k, c, r, s, channels_per_group, g.kernel_height, g.kernel_width));
                            }
                        }
                }
        }
}
}  // namespace

template <typename T>
void conv2d_forward_reference(const ConvGeometry& g, const T* x, const T* weight, const T* bias, T* y) {
    const std::int64_t plane = g.out_plane();
    for (std::int64_t i = 0; i < g.batch * g.out_channels * plane; ++i) {
        y[i] = bias ? bias[(i / plane) % g.out_channels] : T(0);
    }
    for_each_tap(g, [&](std::int64_t y_index, std::int64_t x_index, std::int64_t weight_index) {
        y[y_index] += weight[weight_index] * x[x_index];
    });
}

template <typename T>
void conv2d_backward_data_reference(const ConvGeometry& g, const T* dy, const T* weight, T* dx) {
    std::fill(dx, dx + g.batch * g.in_channels * g.in_plane(), T(0));
    for_each_tap(g, [&](std::int64_t y_index, std::int64_t x_index, std::int64_t weight_index) {
        dx[x_index] += dy[y_index] * weight[weight_index];
    });
}

template <typename T>
void conv2d_backward_weight_reference(const ConvGeometry& g, const T* x, const T* dy, T* dweight, T* dbias) {
    std::fill(dweight, dweight + g.out_channels * g.patch_size(), T(0));
    for_each_tap(g, [&](std::int64_t y_index, std::int64_t x_index, std::int64_t weight_index) {
        dweight[weight_index] += dy[y_index] * x[x_index];
    });
    if (!dbias) return;
    const std::int64_t plane = g.out_plane();
    for (std::int64_t k = 0; k < g.out_channels; ++k) {
        T total = 0;
        for (std::int64_t n = 0; n < g.batch; ++n)
            for (std::int64_t i = 0; i < plane; ++i) total += dy[(n * g.out_channels + k) * plane + i];
        dbias[k] = total;
    }
}

// ------------------------------------------------------------------- fast path: im2col + GEMM
namespace {

// Pointwise convolutions with planes at least this large run one GEMM per image straight on x:
// the GEMM is already wide enough, and copying the images side by side would only cost time.
constexpr std::int64_t kPointwiseDirectPlane = 256;
// parallel_for grain: a chunk should copy at least this many elements, or waking a worker
// (a few microseconds) costs more than it saves.
constexpr std::int64_t kElementsPerTask = 16384;

std::int64_t grain_for(std::int64_t elements_per_item) {
    return std::max<std::int64_t>(1, kElementsPerTask / std::max<std::int64_t>(1, elements_per_item));
}

// Reusable scratch memory, three buffers per thread and element type: the column buffer
// reaches megabytes, and allocating (and page-faulting) it on every call would cost more than
// the copies into it. Contents are garbage on return; callers overwrite what they read.
enum Slot { kColumns, kOutputs, kWeights };
template <typename T>
T* scratch(Slot slot, std::int64_t elements) {
    struct Buffer {
        std::unique_ptr<T[]> data;
        std::int64_t capacity = 0;
    };
    thread_local Buffer buffers[3];
    Buffer& buffer = buffers[slot];
    if (buffer.capacity < elements) {
        buffer.data.reset();  // free the old buffer before allocating the larger one
        buffer.data = std::make_unique_for_overwrite<T[]>(static_cast<std::size_t>(elements));
        buffer.capacity = elements;
    }
    return buffer.data.get();
}

// Indices i in [0, count) with 0 <= offset + i*stride < size, as [begin, end): the outputs
// along one axis whose tap lands inside the image rather than in the padding.
struct Range {
    std::int64_t begin, end;
    bool empty() const { return begin == end; }
};
Range inside(std::int64_t offset, std::int64_t stride, std::int64_t size, std::int64_t count) {
    std::int64_t begin = offset >= 0 ? 0 : (-offset + stride - 1) / stride;
    std::int64_t end = offset >= size ? 0 : (size - offset + stride - 1) / stride;
    end = std::min(end, count);
    return {std::min(begin, end), end};
}

// Where kernel tap (r, s) reads: input pixel (h0 + p*stride_h, w0 + q*stride_w) for output
// pixel (p, q), inside the image for p in ps and q in qs.
struct TapPlan {
    std::int64_t h0, w0;
    Range ps, qs;
    std::int64_t kernel_index;  // r*S + s
};

// What the fast path derives from the geometry once per call (the divisions in inside()
// would otherwise cost as much as the copying). Only *live* taps, those that read at least
// one real pixel, become rows of col: a 3x3 kernel with padding 1 on ResNet-50's 1x1 layer4
// images has 8 taps that only ever see padding, and keeping them would make col 9x larger and
// the GEMM do 9x the work, all on zeros. Their weights are left out of the GEMM to match.
struct Lowering {
    std::vector<TapPlan> taps;  // the live taps, in (r, s) order
    std::int64_t rows = 0;      // rows of col: C/groups * live taps
    bool all_live = true;
    std::int64_t images_per_chunk = 1;
    // Small output planes only: for each live tap and output pixel, the offset in the input
    // plane of the pixel it reads, or -1 for padding (see lower_plane).
    std::vector<std::int64_t> offsets;
};

// Output planes up to this size (4x4) are lowered through Lowering::offsets.
constexpr std::int64_t kSmallPlane = 16;

Lowering plan_lowering(const ConvGeometry& g, std::int64_t element_bytes) {
    Lowering lowering;
    for (std::int64_t r = 0; r < g.kernel_height; ++r)
        for (std::int64_t s = 0; s < g.kernel_width; ++s) {
            TapPlan tap;
            tap.h0 = r * g.dilation_height - g.padding_height;
            tap.w0 = s * g.dilation_width - g.padding_width;
            tap.ps = inside(tap.h0, g.stride_height, g.in_height, g.out_height);
            tap.qs = inside(tap.w0, g.stride_width, g.in_width, g.out_width);
            tap.kernel_index = r * g.kernel_width + s;
            if (tap.ps.empty() || tap.qs.empty()) {
                lowering.all_live = false;
            } else {
                lowering.taps.push_back(tap);
            }
        }
    lowering.rows = g.in_channels_per_group() * static_cast<std::int64_t>(lowering.taps.size());
    if (g.out_plane() <= kSmallPlane) {
        for (const TapPlan& tap : lowering.taps)
            for (std::int64_t p = 0; p < g.out_height; ++p)
                for (std::int64_t q = 0; q < g.out_width; ++q) {
                    const std::int64_t h = tap.h0 + p * g.stride_height, w = tap.w0 + q * g.stride_width;
                    const bool real = h >= 0 && h < g.in_height && w >= 0 && w < g.in_width;
                    lowering.offsets.push_back(real ? h * g.in_width + w : -1);
                }
    }
    // As many images per GEMM as fit under the workspace limit (col plus the GEMM's output),
    // evened out so that 32 images with room for 20 become two chunks of 16, not 20 + 12.
    const std::int64_t bytes_per_image = (lowering.rows + g.out_channels_per_group()) * g.out_plane() * element_bytes;
    const std::int64_t fit = std::clamp<std::int64_t>(conv_workspace_limit_bytes() / bytes_per_image, 1, g.batch);
    const std::int64_t chunks = (g.batch + fit - 1) / fit;
    lowering.images_per_chunk = (g.batch + chunks - 1) / chunks;
    if (g.is_pointwise() && g.out_plane() >= kPointwiseDirectPlane) lowering.images_per_chunk = 1;
    return lowering;
}

// Zeroes the elements of a tap's row, within the rows ps, whose input column lies in the
// padding: with stride 1 and Q == W they sit where one image row wraps into the next (see
// below). Column by column: a handful of strided stores instead of a call per short run.
template <typename T>
void zero_wrapped_columns(T* row, Range ps, Range qs, std::int64_t Q) {
    auto zero_column = [&](std::int64_t q) {
        for (std::int64_t p = ps.begin; p < ps.end; ++p) row[p * Q + q] = T(0);
    };
    for (std::int64_t q = 0; q < qs.begin; ++q) zero_column(q);
    for (std::int64_t q = qs.end; q < Q; ++q) zero_column(q);
}

// Both directions of the lowering, one (channel, image) plane at a time. The row of col for
// a tap holds, for every output pixel (p, q), the input value that tap reads:
//   im2col: row[p*Q + q] = plane[h*W + w]   (0 where (h, w) is padding)
//   col2im: plane[h*W + w] += row[p*Q + q]  (the transpose: dcol back into dx)
// with h = h0 + p*stride_h, w = w0 + q*stride_w. Three ways to walk it, the first that fits:
// * output planes of at most kSmallPlane pixels: element by element through the offset table,
//   since loops over rows of 2 or 4 pixels would cost more in overhead than in copying;
// * stride 1 and Q == W (a "same" convolution, most 3x3 layers): a tap is one shifted copy,
//   row[i] = plane[i + h0*W + w0] over a single flat range, except the few elements where a
//   row wraps into its neighbour: their column is padding, so they are zeroed (im2col), or
//   zeroed in dcol before a flat add (col2im; adding +0 leaves dx exact);
// * otherwise row by row: a contiguous (stride 1) or strided loop over the valid columns.
template <typename T, bool ToColumns>
void lower_plane(const ConvGeometry& g, const Lowering& lowering, T* plane, T* rows, std::int64_t row_stride) {
    const std::int64_t P = g.out_height, Q = g.out_width, W = g.in_width;
    if (!lowering.offsets.empty()) {
        const std::int64_t* offsets = lowering.offsets.data();
        for (std::size_t tap = 0; tap < lowering.taps.size(); ++tap, offsets += P * Q) {
            T* row = rows + static_cast<std::int64_t>(tap) * row_stride;
            for (std::int64_t i = 0; i < P * Q; ++i) {
                if constexpr (ToColumns) {
                    row[i] = offsets[i] >= 0 ? plane[offsets[i]] : T(0);
                } else if (offsets[i] >= 0) {
                    plane[offsets[i]] += row[i];
                }
            }
        }
        return;
    }
    const bool flat = g.stride_height == 1 && g.stride_width == 1 && Q == W;
    for (std::size_t tap = 0; tap < lowering.taps.size(); ++tap) {
        T* row = rows + static_cast<std::int64_t>(tap) * row_stride;
        const auto [h0, w0, ps, qs, kernel_index] = lowering.taps[tap];
        if (flat) {
            const std::int64_t first = ps.begin * Q + qs.begin, last = (ps.end - 1) * Q + qs.end;
            const std::int64_t shift = h0 * W + w0;
            if constexpr (ToColumns) {
                std::fill(row, row + first, T(0));
                for (std::int64_t i = first; i < last; ++i) row[i] = plane[i + shift];
                std::fill(row + last, row + P * Q, T(0));
                zero_wrapped_columns(row, ps, qs, Q);
            } else {
                zero_wrapped_columns(row, ps, qs, Q);
                for (std::int64_t i = first; i < last; ++i) plane[i + shift] += row[i];
            }
            continue;
        }
        if constexpr (ToColumns) {
            std::fill(row, row + ps.begin * Q, T(0));
            std::fill(row + ps.end * Q, row + P * Q, T(0));
        }
        const std::int64_t stride = g.stride_width;
        for (std::int64_t p = ps.begin; p < ps.end; ++p) {
            T* out = row + p * Q;
            T* in = plane + (h0 + p * g.stride_height) * W;  // the input row; column w0 + q*stride
            if constexpr (ToColumns) {
                for (std::int64_t q = 0; q < qs.begin; ++q) out[q] = T(0);
                if (stride == 1) {  // a separate loop the compiler can vectorise
                    for (std::int64_t q = qs.begin; q < qs.end; ++q) out[q] = in[w0 + q];
                } else {
                    for (std::int64_t q = qs.begin; q < qs.end; ++q) out[q] = in[w0 + q * stride];
                }
                for (std::int64_t q = qs.end; q < Q; ++q) out[q] = T(0);
            } else if (stride == 1) {
                for (std::int64_t q = qs.begin; q < qs.end; ++q) in[w0 + q] += out[q];
            } else {
                for (std::int64_t q = qs.begin; q < qs.end; ++q) in[w0 + q * stride] += out[q];
            }
        }
    }
}

// Calls body(outer, inner) for the pairs numbered outer*inner_count + inner in [lo, hi),
// stepping through them rather than dividing per pair: with ResNet's 1x1 layer4 planes a
// division would cost more than the copy it addresses.
template <typename Body>
void for_each_pair(std::int64_t lo, std::int64_t hi, std::int64_t inner_count, Body&& body) {
    std::int64_t outer = lo / inner_count, inner = lo % inner_count;
    for (std::int64_t item = lo; item < hi; ++item) {
        body(outer, inner);
        if (++inner == inner_count) {
            inner = 0;
            ++outer;
        }
    }
}

// Between a tensor (N, channels_total, plane) and a matrix (channels, images*plane) holding
// channels [first_channel, first_channel + channels) of images [first, first + images) side by
// side. gather copies tensor -> matrix; scatter copies matrix -> tensor adding bias[channel].
template <typename T, bool Gather>
void move_planes(T* tensor, std::int64_t channels_total, std::int64_t first_channel, std::int64_t channels,
                 std::int64_t plane, std::int64_t first, std::int64_t images, T* matrix, const T* bias) {
    // Image by image, so the tensor side is walked in memory order: for 1x1 planes this is a
    // transpose, and the other order would write every element to a different cache line.
    parallel_for(0, images * channels, grain_for(plane), [&](std::int64_t lo, std::int64_t hi) {
        for_each_pair(lo, hi, channels, [&](std::int64_t image, std::int64_t c) {
            T* in_tensor = tensor + ((first + image) * channels_total + first_channel + c) * plane;
            T* in_matrix = matrix + (c * images + image) * plane;
            const T offset = !Gather && bias ? bias[first_channel + c] : T(0);
            if (plane == 1) {  // spare a loop (or a library call) per element
                if constexpr (Gather) in_matrix[0] = in_tensor[0];
                else in_tensor[0] = in_matrix[0] + offset;
            } else if constexpr (Gather) {
                std::copy(in_tensor, in_tensor + plane, in_matrix);
            } else {
                for (std::int64_t i = 0; i < plane; ++i) in_tensor[i] = in_matrix[i] + offset;
            }
        });
    });
}

// col (rows, images*P*Q columns) <-> channels of `group` in images [first, first + images)
// of x / dx. col2im overwrites those dx planes. For a pointwise convolution col holds the
// planes themselves, side by side.
template <typename T, bool ToColumns>
void lower(const ConvGeometry& g, const Lowering& lowering, T* tensor, std::int64_t group, std::int64_t first,
           std::int64_t images, T* col) {
    const std::int64_t channels = g.in_channels_per_group();
    if (g.is_pointwise()) {
        return move_planes<T, ToColumns>(tensor, g.in_channels, group * channels, channels, g.in_plane(), first,
                                         images, col, nullptr);
    }
    const std::int64_t taps = static_cast<std::int64_t>(lowering.taps.size()), columns = images * g.out_plane();
    parallel_for(0, channels * images, grain_for(taps * g.out_plane()), [&](std::int64_t lo, std::int64_t hi) {
        for_each_pair(lo, hi, images, [&](std::int64_t c, std::int64_t image) {
            T* plane = tensor + ((first + image) * g.in_channels + group * channels + c) * g.in_plane();
            if constexpr (!ToColumns) std::fill(plane, plane + g.in_plane(), T(0));
            lower_plane<T, ToColumns>(g, lowering, plane, col + c * taps * columns + image * g.out_plane(), columns);
        });
    });
}

// A group's slice of dy for a chunk of images as a matrix (K/groups, images*P*Q): in place
// when the chunk is one image, else gathered into scratch.
template <typename T>
const T* output_gradient_matrix(const ConvGeometry& g, const T* dy, std::int64_t group, std::int64_t first,
                                std::int64_t images) {
    const std::int64_t out_per_group = g.out_channels_per_group();
    if (images == 1) return dy + (first * g.out_channels + group * out_per_group) * g.out_plane();
    T* matrix = scratch<T>(kOutputs, out_per_group * images * g.out_plane());
    move_planes<T, true>(const_cast<T*>(dy), g.out_channels, group * out_per_group, out_per_group, g.out_plane(),
                         first, images, matrix, nullptr);
    return matrix;
}

// The input side of the GEMM for a group and chunk: x itself for a one-image pointwise
// convolution, else its im2col matrix in scratch. Row stride = images*P*Q either way.
template <typename T>
const T* input_matrix(const ConvGeometry& g, const Lowering& lowering, const T* x, std::int64_t group,
                      std::int64_t first, std::int64_t images) {
    if (g.is_pointwise() && images == 1) {
        return x + (first * g.in_channels + group * g.in_channels_per_group()) * g.in_plane();
    }
    T* col = scratch<T>(kColumns, lowering.rows * images * g.out_plane());
    lower<T, true>(g, lowering, const_cast<T*>(x), group, first, images, col);
    return col;
}

// Between the full weight (K, C/groups, R*S) and the compact matrix (K, rows) of live taps.
// Compact gathers the live taps' weights; expand writes them back and zeroes the dead taps
// (their gradient: they only ever multiplied padding).
template <typename T, bool Compact>
void move_live_taps(const ConvGeometry& g, const Lowering& lowering, T* full, T* compact) {
    const std::int64_t kernel = g.kernel_height * g.kernel_width;
    std::vector<std::int64_t> index;
    for (const TapPlan& tap : lowering.taps) index.push_back(tap.kernel_index);
    const std::int64_t taps = static_cast<std::int64_t>(index.size());
    const std::int64_t weight_rows = g.out_channels * g.in_channels_per_group();
    parallel_for(0, weight_rows, grain_for(kernel), [&](std::int64_t lo, std::int64_t hi) {
        for (std::int64_t row = lo; row < hi; ++row) {
            T* full_row = full + row * kernel;
            T* compact_row = compact + row * taps;
            if constexpr (Compact) {
                for (std::int64_t tap = 0; tap < taps; ++tap) compact_row[tap] = full_row[index[tap]];
            } else {
                std::fill(full_row, full_row + kernel, T(0));
                for (std::int64_t tap = 0; tap < taps; ++tap) full_row[index[tap]] = compact_row[tap];
            }
        }
    });
}

// The weights of the live taps as a matrix (K, rows): the weight itself when every tap is
// live, else a compacted copy.
template <typename T>
const T* live_weights(const ConvGeometry& g, const Lowering& lowering, const T* weight) {
    if (lowering.all_live) return weight;
    T* compact = scratch<T>(kWeights, g.out_channels * lowering.rows);
    move_live_taps<T, true>(g, lowering, const_cast<T*>(weight), compact);
    return compact;
}

}  // namespace

template <typename T>
void conv2d_forward_im2col(const ConvGeometry& g, const T* x, const T* weight, const T* bias, T* y) {
    const Lowering lowering = plan_lowering(g, sizeof(T));
    const std::int64_t out_per_group = g.out_channels_per_group(), rows = lowering.rows, plane = g.out_plane();
    if (rows == 0) {  // every tap reads padding (e.g. 1x1 kernel, stride 2, padding 1 on a 1x1 image)
        for (std::int64_t i = 0; i < g.batch * g.out_channels * plane; ++i) {
            y[i] = bias ? bias[i / plane % g.out_channels] : T(0);
        }
        return;
    }
    const T* weights = live_weights(g, lowering, weight);
    for (std::int64_t first = 0; first < g.batch; first += lowering.images_per_chunk) {
        const std::int64_t images = std::min(lowering.images_per_chunk, g.batch - first), columns = images * plane;
        for (std::int64_t group = 0; group < g.groups; ++group) {
            const T* col = input_matrix(g, lowering, x, group, first, images);
            // One image: the GEMM writes y's rows directly. Several: their columns interleave
            // images, so the product lands in scratch and is scattered into y.
            T* product = images == 1 ? y + (first * g.out_channels + group * out_per_group) * plane
                                     : scratch<T>(kOutputs, out_per_group * columns);
            gemm(Transpose::No, Transpose::No, out_per_group, columns, rows, T(1),
                 weights + group * out_per_group * rows, rows, col, columns, T(0), product, columns);
            if (images > 1 || bias) {
                move_planes<T, false>(y, g.out_channels, group * out_per_group, out_per_group, plane, first, images,
                                      product, bias);
            }
        }
    }
}

template <typename T>
void conv2d_backward_data_im2col(const ConvGeometry& g, const T* dy, const T* weight, T* dx) {
    const Lowering lowering = plan_lowering(g, sizeof(T));
    const std::int64_t out_per_group = g.out_channels_per_group(), rows = lowering.rows, plane = g.out_plane();
    if (rows == 0) return std::fill(dx, dx + g.batch * g.in_channels * g.in_plane(), T(0));
    const T* weights = live_weights(g, lowering, weight);
    for (std::int64_t first = 0; first < g.batch; first += lowering.images_per_chunk) {
        const std::int64_t images = std::min(lowering.images_per_chunk, g.batch - first), columns = images * plane;
        for (std::int64_t group = 0; group < g.groups; ++group) {
            const T* dy_matrix = output_gradient_matrix(g, dy, group, first, images);
            const T* weight_group = weights + group * out_per_group * rows;
            // dcol (rows, columns) = weight_group^T (rows, K/g) * dy_matrix (K/g, columns);
            // for a one-image pointwise convolution dcol is dx itself.
            const bool direct = g.is_pointwise() && images == 1;
            T* dcol = direct ? dx + (first * g.in_channels + group * g.in_channels_per_group()) * g.in_plane()
                             : scratch<T>(kColumns, rows * columns);
            gemm(Transpose::Yes, Transpose::No, rows, columns, out_per_group, T(1), weight_group, rows, dy_matrix,
                 columns, T(0), dcol, columns);
            if (!direct) lower<T, false>(g, lowering, dx, group, first, images, dcol);
        }
    }
}

template <typename T>
void conv2d_backward_weight_im2col(const ConvGeometry& g, const T* x, const T* dy, T* dweight, T* dbias) {
    const Lowering lowering = plan_lowering(g, sizeof(T));
    const std::int64_t out_per_group = g.out_channels_per_group(), rows = lowering.rows, plane = g.out_plane();
    // With dead taps the GEMMs fill a compact (K, rows) matrix, spread into dweight at the end.
    T* weights = lowering.all_live ? dweight : scratch<T>(kWeights, g.out_channels * rows);
    if (dbias) std::fill(dbias, dbias + g.out_channels, T(0));
    for (std::int64_t first = 0; first < g.batch; first += lowering.images_per_chunk) {
        const std::int64_t images = std::min(lowering.images_per_chunk, g.batch - first), columns = images * plane;
        for (std::int64_t group = 0; group < g.groups; ++group) {
            const T* dy_matrix = output_gradient_matrix(g, dy, group, first, images);
            if (rows > 0) {
                // dweight_group (K/g, rows) += dy_matrix (K/g, columns) * col^T (columns, rows)
                const T* col = input_matrix(g, lowering, x, group, first, images);
                gemm(Transpose::No, Transpose::Yes, out_per_group, rows, columns, T(1), dy_matrix, columns, col,
                     columns, first == 0 ? T(0) : T(1), weights + group * out_per_group * rows, rows);
            }
            if (!dbias) continue;
            for (std::int64_t k = 0; k < out_per_group; ++k) {
                const T* row = dy_matrix + k * columns;
                T total = 0;
                for (std::int64_t i = 0; i < columns; ++i) total += row[i];
                dbias[group * out_per_group + k] += total;
            }
        }
    }
    if (!lowering.all_live) move_live_taps<T, false>(g, lowering, dweight, weights);
}

// ------------------------------------------------------------------- dispatch
template <typename T>
void conv2d_forward(const ConvGeometry& g, const T* x, const T* weight, const T* bias, T* y) {
    if (conv_impl() == ConvImpl::Reference) return conv2d_forward_reference(g, x, weight, bias, y);
    conv2d_forward_im2col(g, x, weight, bias, y);
}

template <typename T>
void conv2d_backward_data(const ConvGeometry& g, const T* dy, const T* weight, T* dx) {
    if (conv_impl() == ConvImpl::Reference) return conv2d_backward_data_reference(g, dy, weight, dx);
    conv2d_backward_data_im2col(g, dy, weight, dx);
}

template <typename T>
void conv2d_backward_weight(const ConvGeometry& g, const T* x, const T* dy, T* dweight, T* dbias) {
    if (conv_impl() == ConvImpl::Reference) return conv2d_backward_weight_reference(g, x, dy, dweight, dbias);
    conv2d_backward_weight_im2col(g, x, dy, dweight, dbias);
}

// Explicit instantiations: float for training, double for gradient checks.
template void conv2d_forward_reference<float>(const ConvGeometry&, const float*, const float*, const float*, float*);
template void conv2d_forward_reference<double>(const ConvGeometry&, const double*, const double*, const double*,
                                               double*);
template void conv2d_backward_data_reference<float>(const ConvGeometry&, const float*, const float*, float*);
template void conv2d_backward_data_reference<double>(const ConvGeometry&, const double*, const double*, double*);
template void conv2d_backward_weight_reference<float>(const ConvGeometry&, const float*, const float*, float*, float*);
template void conv2d_backward_weight_reference<double>(const ConvGeometry&, const double*, const double*, double*,
                                                       double*);
template void conv2d_forward_im2col<float>(const ConvGeometry&, const float*, const float*, const float*, float*);
template void conv2d_forward_im2col<double>(const ConvGeometry&, const double*, const double*, const double*, double*);
template void conv2d_backward_data_im2col<float>(const ConvGeometry&, const float*, const float*, float*);
template void conv2d_backward_data_im2col<double>(const ConvGeometry&, const double*, const double*, double*);
template void conv2d_backward_weight_im2col<float>(const ConvGeometry&, const float*, const float*, float*, float*);
template void conv2d_backward_weight_im2col<double>(const ConvGeometry&, const double*, const double*, double*,
                                                    double*);
template void conv2d_forward<float>(const ConvGeometry&, const float*, const float*, const float*, float*);
template void conv2d_forward<double>(const ConvGeometry&, const double*, const double*, const double*, double*);
template void conv2d_backward_data<float>(const ConvGeometry&, const float*, const float*, float*);
template void conv2d_backward_data<double>(const ConvGeometry&, const double*, const double*, double*);
template void conv2d_backward_weight<float>(const ConvGeometry&, const float*, const float*, float*, float*);
template void conv2d_backward_weight<double>(const ConvGeometry&, const double*, const double*, double*, double*);

}  // namespace cudagrad::cpu
