// Shape ops: differentiable reshape, flatten, transpose and slice.
//
// Forward, each is the Tensor method of the same name: reshape/flatten of a contiguous tensor,
// transpose and slice always return a view sharing the input's storage (a non-contiguous input
// to reshape/flatten is copied first, as Tensor::reshape does). Backward maps the gradient g of
// the output back onto the input's layout:
//   reshape, flatten: dx = g reshaped to x's shape
//   transpose(d0, d1): dx = g transposed back (the same swap)
//   slice(d, start, end): dx = zeros shaped like x, with g written into [start, end) along d
// Reference: torch.reshape, torch.flatten(x, start_dim), torch.transpose, x.narrow(d, start,
// end - start). Unlike Python slicing, an out-of-range slice is an error, not clamped.
//
// Any dtype is accepted (int64 labels can be reshaped); empty tensors are allowed, since a view
// of nothing is still a valid view. Only float tensors can require a gradient, so only they
// record a node.
//
// Speed: the forward ops only build a new (shape, strides, offset); the slice gradient is one
// zero fill and one block copy per outer index, memory bound.
//
// GPU tensors: the forward views work on any device (no data moves); a non-contiguous input to
// reshape/flatten is copied on its GPU by Tensor::contiguous. The slice gradient on a GPU is a
// zero fill plus a strided copy into the slice's view, both on the device.
#include <cstring>

#include "cpu/elementwise.hpp"
#include "cpu/reduction.hpp"
#include "cudagrad/ops.hpp"
#include "ops/op_support.hpp"

namespace cudagrad {
namespace {

using detail::resolve_dimension;

// `requested` with a -1 replaced by the size that makes it hold x's elements.
Shape resolve_shape(const Shape& requested, const Tensor& x, const char* op) {
    Shape shape = requested;
    std::int64_t known = 1;
    std::ptrdiff_t inferred = -1;
    for (std::size_t i = 0; i < shape.size(); ++i) {
        if (shape[i] == -1) {
            check(inferred < 0, op, "only one size may be -1 in ", shape_string(requested), " (input ",
                  x.description(), ")");
            inferred = static_cast<std::ptrdiff_t>(i);
        } else {
            check(shape[i] >= 0, op, "invalid size ", shape[i], " in ", shape_string(requested), " (input ",
                  x.description(), ")");
            known *= shape[i];
        }
    }
    if (inferred >= 0) {
        check(known > 0 && x.numel() % known == 0, op, "cannot infer the -1 in ", shape_string(requested),
              " for input ", x.description(), " with ", x.numel(), " elements");
        shape[static_cast<std::size_t>(inferred)] = x.numel() / known;
    }
    check(shape_numel(shape) == x.numel(), op, "shape ", shape_string(requested), " does not hold the ", x.numel(),
          " elements of input ", x.description());
    return shape;
}

Tensor recorded_reshape(const Tensor& x, const Shape& shape, const char* op) {
    Tensor output = x.reshape(shape);
    record_op(output, op, {x}, [input_shape = x.shape()](const Tensor& gradient) {
        return std::vector<Tensor>{gradient.reshape(input_shape)};
    });
    return output;
}

}  // namespace

Tensor reshape(const Tensor& x, const Shape& shape) {
    check(x.defined(), "reshape", "input is undefined");
    return recorded_reshape(x, resolve_shape(shape, x, "reshape"), "reshape");
}

Tensor flatten(const Tensor& x, std::int64_t start_dim) {
    check(x.defined(), "flatten", "input is undefined");
    if (x.dim() == 0) {  // PyTorch flattens a scalar into shape [1]
        check(start_dim == 0 || start_dim == -1, "flatten", "start_dim ", start_dim, " is out of range for input ",
              x.description());
        return recorded_reshape(x, {1}, "flatten");
    }
    const std::size_t start = resolve_dimension(x, start_dim, "flatten");
    Shape shape(x.shape().begin(), x.shape().begin() + static_cast<std::ptrdiff_t>(start));
    std::int64_t rest = 1;
    for (std::size_t d = start; d < x.shape().size(); ++d) rest *= x.shape()[d];
    shape.push_back(rest);
    return recorded_reshape(x, shape, "flatten");
}

Tensor transpose(const Tensor& x, std::int64_t dim0, std::int64_t dim1) {
    check(x.defined(), "transpose", "input is undefined");
    const auto first = static_cast<std::int64_t>(resolve_dimension(x, dim0, "transpose"));
    const auto second = static_cast<std::int64_t>(resolve_dimension(x, dim1, "transpose"));
    Tensor output = x.transpose(first, second);
    record_op(output, "transpose", {x}, [first, second](const Tensor& gradient) {
        return std::vector<Tensor>{gradient.transpose(first, second)};
    });
    return output;
}

Tensor slice(const Tensor& x, std::int64_t dimension, std::int64_t start, std::int64_t end) {
    check(x.defined(), "slice", "input is undefined");
    const std::size_t sliced = resolve_dimension(x, dimension, "slice");
    const std::int64_t extent = x.shape()[sliced];
    check(0 <= start && start <= end && end <= extent, "slice", "range [", start, ", ", end, ") is not inside [0, ",
          extent, "] in dimension ", sliced, " of input ", x.description());
    Tensor output = x.slice(static_cast<std::int64_t>(sliced), start, end);
    record_op(output, "slice", {x},
              [input_shape = x.shape(), dtype = x.dtype(), sliced, start, end](const Tensor& gradient) {
                  if (gradient.device().is_cuda()) {
                      // On a GPU: zeros, then the gradient copied into the slice's view of them
                      // (Tensor::fill_ and copy_ run kernels/copy.cu's strided kernels).
                      Tensor input_gradient = Tensor::zeros(input_shape, dtype, gradient.device());
                      input_gradient.slice(static_cast<std::int64_t>(sliced), start, end).copy_(gradient);
                      return std::vector<Tensor>{input_gradient};
                  }
                  // Raw bytes are copied below, so the gradient must have exactly this dtype.
                  Tensor g = gradient.to(dtype).contiguous();
                  Tensor input_gradient = Tensor::empty(input_shape, dtype);
                  const std::size_t bytes = static_cast<std::size_t>(input_gradient.numel()) * element_size(dtype);
                  if (bytes > 0) std::memset(input_gradient.raw_data(), 0, bytes);  // all-zero bits are 0.0
                  // Each outer index owns one contiguous run of (end - start) * inner elements
                  // inside a run of extent * inner elements of the input gradient.
                  const cpu::DimensionSplit split = cpu::split_at_dimension(input_shape, sliced);
                  const std::size_t element = element_size(dtype);
                  const auto run = static_cast<std::size_t>((end - start) * split.inner) * element;
                  const auto stride = static_cast<std::size_t>(split.extent * split.inner) * element;
                  char* first = static_cast<char*>(input_gradient.raw_data()) +
                                static_cast<std::size_t>(start * split.inner) * element;
                  cpu::copy_blocks(g.raw_data(), first, split.outer, run, run, stride);
                  return std::vector<Tensor>{input_gradient};
              });
    return output;
}

}  // namespace cudagrad
