// ReLU through cuDNN's legacy activation API (cudnnActivationForward / cudnnActivationBackward
// with CUDNN_ACTIVATION_RELU): the vendor version of kernels/elementwise.cu, selected by
// implementation("relu") == "cudnn" (the default).
//
//   forward:  y = max(x, 0), NaN propagated (CUDNN_PROPAGATE_NAN), as the CPU op
//   backward: dx = dy where y > 0, else 0
// CPU reference: src/cpu/elementwise.cpp relu_forward / relu_backward.
//
// cuDNN's backward asks for y, dy and x. The autograd closure keeps only y (the CPU op does the
// same), so y is passed in x's place: for ReLU y > 0 exactly where x > 0, and y = 0 wherever
// x <= 0, so whichever of the two cuDNN tests, the mask is the same, and the gradient at x = 0
// exactly is 0 (tests/test_cuda_elementwise.cpp checks it).
//
// Shapes: cuDNN's 4-d descriptors take int sizes and at most 2^31 - 1 elements. A tensor of up
// to 4 dimensions goes as its own shape, padded with trailing 1s ((N, F) -> (N, F, 1, 1), as
// Caffe does); anything else (5-d and more, or more elements) is cut into flat pieces of up to
// 2^30 elements, each described as (1, piece, 1, 1). The map is elementwise, so any split of a
// contiguous array gives the same result.
//
// Alignment: cuDNN is only handed arrays that start on a 16-byte boundary (as every block of the
// caching allocator does). A view that starts elsewhere (a slice at an odd offset) is declined
// here with detail::VendorDeclined, so the op runs cudagrad's kernel for it and says so once,
// rather than betting on how each cuDNN version treats such pointers.
//
// Speed: the same memory-bound traffic as the hand-written kernel (8 bytes per element forward,
// 12 backward); the benchmark (benchmarks/bench_cuda_elementwise.cpp) compares the two.
#include <cudnn.h>

#include <cstdint>
#include <initializer_list>
#include <vector>

#include "cuda/check.hpp"
#include "cuda/context.hpp"
#include "cuda/cudnn_activation.hpp"
#include "cuda/cudnn_descriptors.hpp"

namespace cudagrad::cuda {
namespace {

// One call's worth of elements: `dims` describes elements [offset, offset + n*c*h*w).
struct Piece {
    std::int64_t offset;
    int dims[4];
};

constexpr std::int64_t flat_piece = std::int64_t{1} << 30;

std::vector<Piece> pieces_for(const std::vector<std::int64_t>& shape) {
    std::int64_t count = 1;
    for (std::int64_t size : shape) count *= size;
    std::vector<Piece> pieces;
    if (count == 0) return pieces;
    if (shape.size() <= 4 && fits_int(count)) {
        Piece piece{0, {1, 1, 1, 1}};
        for (std::size_t d = 0; d < shape.size(); ++d) piece.dims[d] = static_cast<int>(shape[d]);
        pieces.push_back(piece);
        return pieces;
    }
    for (std::int64_t offset = 0; offset < count; offset += flat_piece) {
        const std::int64_t size = count - offset < flat_piece ? count - offset : flat_piece;
        pieces.push_back(Piece{offset, {1, static_cast<int>(size), 1, 1}});
    }
    return pieces;
}

void describe(const TensorDescriptor& descriptor, const Piece& piece) {
    set_nchw(descriptor, piece.dims[0], piece.dims[1], piece.dims[2], piece.dims[3]);
}

void require_aligned(std::initializer_list<const void*> pointers) {
    for (const void* pointer : pointers) {
        if (reinterpret_cast<std::uintptr_t>(pointer) % 16 != 0) {
            throw detail::VendorDeclined("cudagrad passes cuDNN 16-byte-aligned arrays only; this view starts at an "
                                         "offset that is not a multiple of 16 bytes");
        }
    }
}

void describe_relu(const ActivationDescriptor& activation) {
    CUDAGRAD_CUDNN_CHECK(
        cudnnSetActivationDescriptor(activation.get(), CUDNN_ACTIVATION_RELU, CUDNN_PROPAGATE_NAN, 0.0));
}

}  // namespace

void cudnn_relu_forward(const float* x, float* y, const std::vector<std::int64_t>& shape) {
    const std::vector<Piece> pieces = pieces_for(shape);
    if (pieces.empty()) return;
    require_aligned({x, y});
    ActivationDescriptor activation;
    describe_relu(activation);
    TensorDescriptor tensor;
    const float one = 1.0f, zero = 0.0f;  // y = 1 * relu(x) + 0 * y
    cudnnHandle_t handle = current_context().cudnn;
    for (const Piece& piece : pieces) {
        describe(tensor, piece);
        CUDAGRAD_CUDNN_CHECK(cudnnActivationForward(handle, activation.get(), &one, tensor.get(), x + piece.offset,
                                                    &zero, tensor.get(), y + piece.offset));
    }
}

void cudnn_relu_backward(const float* y, const float* output_gradient, float* input_gradient,
                         const std::vector<std::int64_t>& shape) {
    const std::vector<Piece> pieces = pieces_for(shape);
    if (pieces.empty()) return;
    require_aligned({y, output_gradient, input_gradient});
    ActivationDescriptor activation;
    describe_relu(activation);
    TensorDescriptor tensor;
    const float one = 1.0f, zero = 0.0f;
    cudnnHandle_t handle = current_context().cudnn;
    for (const Piece& piece : pieces) {
        describe(tensor, piece);
        const float* forward_output = y + piece.offset;
        // (y, dy, x = y): see the top of the file.
        CUDAGRAD_CUDNN_CHECK(cudnnActivationBackward(handle, activation.get(), &one, tensor.get(), forward_output,
                                                     tensor.get(), output_gradient + piece.offset, tensor.get(),
                                                     forward_output, &zero, tensor.get(),
                                                     input_gradient + piece.offset));
    }
}

}  // namespace cudagrad::cuda
