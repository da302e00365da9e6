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
//
// On a GPU (float32; argmax also int64) the kernels of kernels/reduction.cu run: the sums keep
// double accumulators in a fixed order (deterministic, no atomics), a sum of 4M floats reads
// 16 MB, a few microseconds at ~3 TB/s. sum and mean leave their result on the GPU; their
// gradient is filled from it there, without a host synchronisation.
#include "cpu/elementwise.hpp"
#include "cpu/reduction.hpp"
#include "cudagrad/ops.hpp"
#include "ops/op_support.hpp"

#ifdef CUDAGRAD_WITH_CUDA
#include "cuda/reduction.hpp"
#endif

namespace cudagrad {
namespace {

using detail::check_input;
using detail::dispatch_floating;
using detail::resolve_dimension;

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

// sum(x) / divisor as a float32 scalar (shape []) on x's GPU.
Tensor total_gpu(const Tensor& x, double divisor, const char* op) {
    Tensor output = Tensor::empty({}, DType::Float32, x.device());
#ifdef CUDAGRAD_WITH_CUDA
    (void)op;
    Tensor input = x.contiguous();
    Tensor partials = Tensor::empty({cuda::sum_all_partial_count(input.numel())}, DType::Float64, x.device());
    cuda::sum_all(input.data<float>(), input.numel(), divisor, partials.data<double>(), output.data<float>());
#else
    (void)divisor;
    detail::fail_without_cuda(op);
#endif
    return output;
}

// The gradient of sum (divisor 1) or mean (divisor numel): every element gradient / divisor.
// On a GPU the scalar gradient is read by the kernel, not copied to the host.
Tensor total_gradient(const Tensor& gradient, const Shape& input_shape, DType dtype, double divisor, const char* op) {
    if (!gradient.device().is_cuda()) return constant_tensor(input_shape, gradient.item() / divisor, dtype);
    Tensor result = Tensor::empty(input_shape, DType::Float32, gradient.device());
#ifdef CUDAGRAD_WITH_CUDA
    check(gradient.dtype() == DType::Float32, op, "the incoming gradient is ", gradient.description());
    make_device_current(gradient.device());
    Tensor value = gradient.contiguous();
    cuda::fill_with_scalar(value.data<float>(), divisor, result.data<float>(), result.numel());
#else
    detail::fail_without_cuda(op);
#endif
    return result;
}

}  // namespace

Tensor sum(const Tensor& x) {
    check_input(x, "sum", "input");
    Tensor output = x.device().is_cuda() ? total_gpu(x, 1.0, "sum")
                                         : Tensor::full({}, sum_values(x), x.dtype(), x.device());
    record_op(output, "sum", {x}, [input_shape = x.shape(), dtype = x.dtype()](const Tensor& gradient) {
        // x / 1.0 is x exactly: the CPU result is the same as gradient.item().
        return std::vector<Tensor>{total_gradient(gradient, input_shape, dtype, 1.0, "sum backward")};
    });
    return output;
}

Tensor mean(const Tensor& x) {
    check_input(x, "mean", "input");
    const double count = static_cast<double>(x.numel());
    Tensor output = x.device().is_cuda() ? total_gpu(x, count, "mean")
                                         : Tensor::full({}, sum_values(x) / count, x.dtype(), x.device());
    record_op(output, "mean", {x}, [input_shape = x.shape(), dtype = x.dtype(), count](const Tensor& gradient) {
        return std::vector<Tensor>{total_gradient(gradient, input_shape, dtype, count, "mean backward")};
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
    if (x.device().is_cuda()) {
#ifdef CUDAGRAD_WITH_CUDA
        cuda::sum_over_dimension(input.data<float>(), output.data<float>(), split.outer, split.extent, split.inner);
#else
        detail::fail_without_cuda("sum");
#endif
    } else {
        dispatch_floating(x.dtype(), "sum", [&](auto zero) {
            using T = decltype(zero);
            cpu::sum_over_dimension(input.data<T>(), output.data<T>(), split);
        });
    }
    record_op(output, "sum", {x}, [input_shape = x.shape(), dtype = x.dtype(), split](const Tensor& gradient) {
        // With or without the kept dimension, g holds outer * inner values in (o, i) order.
        Tensor g = gradient.contiguous();
        if (g.device().is_cuda()) {
            Tensor input_gradient = Tensor::empty(input_shape, DType::Float32, g.device());
#ifdef CUDAGRAD_WITH_CUDA
            check(g.dtype() == DType::Float32, "sum backward", "the incoming gradient is ", g.description());
            make_device_current(g.device());
            cuda::broadcast_over_dimension(g.data<float>(), input_gradient.data<float>(), split.outer, split.extent,
                                           split.inner);
#else
            detail::fail_without_cuda("sum backward");
#endif
            return std::vector<Tensor>{input_gradient};
        }
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
    check(x.device().is_cpu() || x.dtype() != DType::Float64, "argmax", "input is ", x.description(),
          ": on a GPU the ops compute in float32 (or int64) only (move float64 work to the CPU)");
    const std::size_t reduced = resolve_dimension(x, dimension, "argmax");
    const cpu::DimensionSplit split = cpu::split_at_dimension(x.shape(), reduced);
    Shape output_shape = x.shape();
    output_shape.erase(output_shape.begin() + static_cast<std::ptrdiff_t>(reduced));
    Tensor input = x.contiguous();
    Tensor output = Tensor::empty(output_shape, DType::Int64, x.device());
    if (x.device().is_cuda()) {
#ifdef CUDAGRAD_WITH_CUDA
        make_device_current(x.device());
        std::int64_t* device_indices = output.data<std::int64_t>();
        if (x.dtype() == DType::Int64) {
            cuda::argmax_over_dimension(input.data<std::int64_t>(), device_indices, split.outer, split.extent,
                                        split.inner);
        } else {
            cuda::argmax_over_dimension(input.data<float>(), device_indices, split.outer, split.extent, split.inner);
        }
#else
        detail::fail_without_cuda("argmax");
#endif
        return output;  // indices carry no gradient: no record_op
    }
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
