// Reductions: sum and mean of all elements (shape []), sum over one dimension (that dimension
// removed, or kept with size 1), and argmax over one dimension (int64 indices, no gradient).
//
//   sum(x) = sum_i x_i                       dx_i = g
//   mean(x) = sum(x) / numel(x)              dx_i = g / numel(x)
//   sum(x, d)[o, i] = sum_r x[o, r, i]       dx[o, r, i] = g[o, i]
// with x seen as (outer, extent, inner) around dimension d (src/cpu/reduction.hpp).
// argmax returns the first index of the maximum, a NaN counting as the maximum.
// Reference: torch.sum(x), torch.mean(x), torch.sum(x, dim, keepdim), torch.argmax(x, dim).
// Sums accumulate in double, so float32 results can differ from PyTorch's float accumulation in
// the last bit or two.
//
// Speed: one pass over memory each (~2 ms per 4M floats on one core here); the gradient of a sum is a
// broadcast copy of the same size.
#include "cpu/elementwise.hpp"
#include "cpu/reduction.hpp"
#include "cudagrad/ops.hpp"
#include "ops/op_support.hpp"

namespace cudagrad {
namespace {

using detail::check_input;
using detail::dispatch_floating;

// Wraps a possibly negative dimension, with an error naming the op and the input's shape.
std::size_t resolve_dimension(const Tensor& x, std::int64_t dimension, const char* op) {
    check(dimension >= -x.dim() && dimension < x.dim(), op, "dimension ", dimension, " is out of range for input ",
          x.description());
    return static_cast<std::size_t>(dimension < 0 ? dimension + x.dim() : dimension);
}

// A tensor whose every element is `value`: the gradient of sum and mean. A direct fill; the
// generic strided walk behind Tensor::full costs several times more per element.
Tensor constant_tensor(const Shape& shape, double value, DType dtype) {
    Tensor result = Tensor::empty(shape, dtype);
    dispatch_floating(dtype, "sum backward", [&](auto zero) {
        using T = decltype(zero);
        T* values = result.data<T>();
        const T constant = static_cast<T>(value);
        auto fill = [=](std::int64_t begin, std::int64_t end) {
            for (std::int64_t i = begin; i < end; ++i) values[i] = constant;
        };
        cpu::parallel_over_range(result.numel(), cpu::elementwise_grain_size, fill);
    });
    return result;
}

double sum_values(const Tensor& x) {
    Tensor input = x.contiguous();
    return dispatch_floating(x.dtype(), "sum", [&](auto zero) {
        using T = decltype(zero);
        return cpu::sum_all(input.data<T>(), input.numel());
    });
}

}  // namespace

Tensor sum(const Tensor& x) {
    check_input(x, "sum", "input");
    Tensor output = Tensor::full({}, sum_values(x), x.dtype(), x.device());
    record_op(output, "sum", {x}, [input_shape = x.shape(), dtype = x.dtype()](const Tensor& gradient) {
        return std::vector<Tensor>{constant_tensor(input_shape, gradient.item(), dtype)};
    });
    return output;
}

Tensor mean(const Tensor& x) {
    check_input(x, "mean", "input");
    const double count = static_cast<double>(x.numel());
    Tensor output = Tensor::full({}, sum_values(x) / count, x.dtype(), x.device());
    record_op(output, "mean", {x}, [input_shape = x.shape(), dtype = x.dtype(), count](const Tensor& gradient) {
        return std::vector<Tensor>{constant_tensor(input_shape, gradient.item() / count, dtype)};
    });
    return output;
}

Tensor sum(const Tensor& x, std::int64_t dimension, bool keep_dimension) {
    check_input(x, "sum", "input");
    const std::size_t reduced = resolve_dimension(x, dimension, "sum");
    const cpu::DimensionSplit split = cpu::split_at_dimension(x.shape(), reduced);
    Shape output_shape = x.shape();
    if (keep_dimension) {
        output_shape[reduced] = 1;
    } else {
        output_shape.erase(output_shape.begin() + static_cast<std::ptrdiff_t>(reduced));
    }
    Tensor input = x.contiguous();
    Tensor output = Tensor::empty(output_shape, x.dtype(), x.device());
    dispatch_floating(x.dtype(), "sum", [&](auto zero) {
        using T = decltype(zero);
        cpu::sum_over_dimension(input.data<T>(), output.data<T>(), split);
    });
    record_op(output, "sum", {x}, [input_shape = x.shape(), dtype = x.dtype(), split](const Tensor& gradient) {
        // With or without the kept dimension, g holds outer * inner values in (o, i) order.
        Tensor g = gradient.contiguous();
        Tensor input_gradient = Tensor::empty(input_shape, dtype);
        dispatch_floating(dtype, "sum backward", [&](auto zero) {
            using T = decltype(zero);
            cpu::broadcast_over_dimension(g.data<T>(), input_gradient.data<T>(), split);
        });
        return std::vector<Tensor>{input_gradient};
    });
    return output;
}

Tensor argmax(const Tensor& x, std::int64_t dimension) {
    check(x.defined(), "argmax", "input is undefined");
    check(x.numel() > 0, "argmax", "input is empty (", x.description(), ")");
    check(x.device().is_cpu(), "argmax", "input is on ", x.device().str(),
          ", but this op has only a CPU implementation so far");
    const std::size_t reduced = resolve_dimension(x, dimension, "argmax");
    const cpu::DimensionSplit split = cpu::split_at_dimension(x.shape(), reduced);
    Shape output_shape = x.shape();
    output_shape.erase(output_shape.begin() + static_cast<std::ptrdiff_t>(reduced));
    Tensor input = x.contiguous();
    Tensor output = Tensor::empty(output_shape, DType::Int64, x.device());
    std::int64_t* indices = output.data<std::int64_t>();
    switch (x.dtype()) {
        case DType::Float32: cpu::argmax_over_dimension(input.data<float>(), indices, split); break;
        case DType::Float64: cpu::argmax_over_dimension(input.data<double>(), indices, split); break;
        case DType::Int64: cpu::argmax_over_dimension(input.data<std::int64_t>(), indices, split); break;
        default: fail("argmax", "unsupported dtype ", dtype_name(x.dtype()), " (", x.description(), ")");
    }
    return output;  // indices carry no gradient: no record_op
}

}  // namespace cudagrad
