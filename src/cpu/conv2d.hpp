// cudagrad CPU conv2d kernels: forward, gradient of the input, gradient of the weight and bias.
//
// What they compute (PyTorch's conv2d, which is a cross-correlation; NCHW, row-major):
//   x: (N, C, H, W), weight: (K, C/groups, R, S), bias: (K), y: (N, K, P, Q)
//   P = (H + 2*padding_h - dilation_h*(R-1) - 1) / stride_h + 1   (likewise Q from W, S)
//   y[n, k, p, q] = bias[k] + sum over c in k's group, r, s of
//                   weight[k, c, r, s] * x[n, c, p*stride_h - padding_h + r*dilation_h,
//                                              q*stride_w - padding_w + s*dilation_w]
//   (x outside [0, H) x [0, W) reads as 0). Output channel k belongs to group k / (K/groups)
//   and sees input channels [group * C/groups, (group+1) * C/groups).
// Backward, given dy = dL/dy of shape (N, K, P, Q):
//   dx[n, c, h, w]  = sum of dy[n, k, p, q] * weight[k, c', r, s] over every (k, p, q, r, s)
//                     whose tap above read x[n, c, h, w]
//   dweight[k, c, r, s] = sum over n, p, q of dy[n, k, p, q] * x[n, c, ..., ...]
//   dbias[k]            = sum over n, p, q of dy[n, k, p, q]
//
// Two implementations of each, same signature:
//   *_reference  direct nested loops straight from the formulas: slow, the oracle.
//   *_im2col     lowering to GEMM (as Caffe): copy every receptive field of a chunk of images
//                into the columns of a matrix, "col" (C/groups*R*S rows, images*P*Q columns),
//                so that the convolution of a group is one GEMM:
//                  y_group (K/g, images*P*Q) = weight_group (K/g, C/g*R*S) * col
//                  dcol = weight_group^T * dy_group, then col2im adds dcol back into dx
//                  dweight_group += dy_group * col^T
//                A 1x1 convolution with stride 1 and no padding needs no im2col: an image's
//                channels already are the matrix (C, H*W) (small images are still copied
//                side by side, so that one GEMM covers many). Kernel taps that only ever
//                read padding are left out of col and of the GEMM.
// conv2d_forward / conv2d_backward_data / conv2d_backward_weight dispatch to conv_impl(),
// which the environment variable CUDAGRAD_CONV=reference|im2col or set_conv_impl() selects
// (default im2col): tests compare the two, benchmarks time them.
//
// All pointers are to contiguous arrays. The functions overwrite their outputs (dx, dweight,
// dbias), they do not accumulate. bias and dbias may be null. Call them from the main thread:
// the im2col path runs cpu::gemm, which must not run inside a parallel_for body.
#pragma once

#include <cstdint>
#include <string>

namespace cudagrad::cpu {

// Sizes of one conv2d call; the letters in the comments are the ones used in the formulas.
struct ConvGeometry {
    std::int64_t batch = 1;                                // N
    std::int64_t in_channels = 1;                          // C
    std::int64_t in_height = 1, in_width = 1;              // H, W
    std::int64_t out_channels = 1;                         // K
    std::int64_t kernel_height = 1, kernel_width = 1;      // R, S
    std::int64_t out_height = 1, out_width = 1;            // P, Q
    std::int64_t stride_height = 1, stride_width = 1;
    std::int64_t padding_height = 0, padding_width = 0;
    std::int64_t dilation_height = 1, dilation_width = 1;
    std::int64_t groups = 1;

    std::int64_t in_channels_per_group() const { return in_channels / groups; }
    std::int64_t out_channels_per_group() const { return out_channels / groups; }
    // Rows of the im2col matrix: one per (channel of the group, r, s).
    std::int64_t patch_size() const { return in_channels_per_group() * kernel_height * kernel_width; }
    std::int64_t in_plane() const { return in_height * in_width; }
    std::int64_t out_plane() const { return out_height * out_width; }
    // A 1x1 convolution with stride 1 and no padding: the input already is the im2col matrix.
    bool is_pointwise() const {
        return kernel_height == 1 && kernel_width == 1 && stride_height == 1 && stride_width == 1 &&
               padding_height == 0 && padding_width == 0;
    }
};

// Output size along one axis by PyTorch's formula; may be <= 0 when the kernel does not fit.
std::int64_t conv_output_size(std::int64_t input, std::int64_t kernel, std::int64_t stride, std::int64_t padding,
                              std::int64_t dilation);

enum class ConvImpl { Reference, Im2col };

// Current choice; the first call reads CUDAGRAD_CONV (std::invalid_argument if it names
// neither implementation).
ConvImpl conv_impl();
void set_conv_impl(ConvImpl impl);
const char* conv_impl_name(ConvImpl impl);  // "reference" or "im2col"
ConvImpl conv_impl_from_name(const std::string& name);  // std::invalid_argument naming the text

// Upper bound on the bytes of the im2col column buffer (and its companion output buffer):
// the number of images gathered into one GEMM is chosen to stay under it (one image at least).
// Default 4 MiB: col is written by im2col and read straight back by the GEMM, so it should
// stay in cache (2 MiB of L2 per core on the dev VM). For ResNet-50 at 224x224, batch 32, one
// core, the layer1 3x3 conv took 101/73/86 ms (forward/dx/dweight) with 4 MiB against
// 128/101/122 ms with 128 MiB; at 32x32 inputs the limit hardly matters. Exposed so tests can
// force several chunks on small shapes, and benchmarks can tune it.
std::int64_t conv_workspace_limit_bytes();
void set_conv_workspace_limit_bytes(std::int64_t bytes);

// ---- reference: direct loops ----
template <typename T>
void conv2d_forward_reference(const ConvGeometry& geometry, const T* x, const T* weight, const T* bias, T* y);
template <typename T>
void conv2d_backward_data_reference(const ConvGeometry& geometry, const T* dy, const T* weight, T* dx);
template <typename T>
void conv2d_backward_weight_reference(const ConvGeometry& geometry, const T* x, const T* dy, T* dweight,
                                      T* dbias);

// ---- fast path: im2col + GEMM ----
template <typename T>
void conv2d_forward_im2col(const ConvGeometry& geometry, const T* x, const T* weight, const T* bias, T* y);
template <typename T>
void conv2d_backward_data_im2col(const ConvGeometry& geometry, const T* dy, const T* weight, T* dx);
template <typename T>
void conv2d_backward_weight_im2col(const ConvGeometry& geometry, const T* x, const T* dy, T* dweight, T* dbias);

// ---- dispatch to conv_impl() ----
template <typename T>
void conv2d_forward(const ConvGeometry& geometry, const T* x, const T* weight, const T* bias, T* y);
template <typename T>
void conv2d_backward_data(const ConvGeometry& geometry, const T* dy, const T* weight, T* dx);
template <typename T>
void conv2d_backward_weight(const ConvGeometry& geometry, const T* x, const T* dy, T* dweight, T* dbias);

}  // namespace cudagrad::cpu
