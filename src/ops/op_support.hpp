// Helpers every op file uses: input validation with messages that name the op and the shapes,
// and dispatch from a runtime DType to a templated kernel.
#pragma once

#include <cstddef>
#include <string>
#include <utility>

#include "cudagrad/autograd.hpp"
#include "cudagrad/tensor.hpp"

namespace cudagrad::detail {

// Calls body(float{}) or body(double{}) according to dtype; any other dtype is an error that
// names the op.
template <typename Body>
decltype(auto) dispatch_floating(DType dtype, const char* op, Body&& body) {
    switch (dtype) {
        case DType::Float32: return body(float{});
        case DType::Float64: return body(double{});
        default: fail(op, "expected a float32 or float64 tensor, got ", dtype_name(dtype));
    }
}

// The input must be defined, non-empty and floating; on a GPU, float32 (the CUDA kernels are
// written for float32 only: float64 exists for gradient checks, which run on the CPU).
// A CUDA input also makes its device the current one for the kernels the op launches.
inline void check_input(const Tensor& x, const char* op, const char* name) {
    check(x.defined(), op, name, " is undefined");
    check(is_floating(x.dtype()), op, name, " must be float32 or float64, got ", x.description());
    check(x.numel() > 0, op, name, " is empty (", x.description(), ")");
    if (x.device().is_cuda()) {
        check(x.dtype() == DType::Float32, op, name, " is ", x.description(),
              ": on a GPU the ops compute in float32 only (move float64 work to the CPU)");
        make_device_current(x.device());
    }
}

// The GPU branch of an op in a build without CUDA. Unreachable in practice (no CUDA tensor can
// be created without CUDA), but it keeps every op's device dispatch total.
[[noreturn]] inline void fail_without_cuda(const char* op) {
    fail(op, "cudagrad was built without CUDA, so this op cannot run on a GPU");
}

inline void check_dim(const Tensor& x, std::int64_t dims, const char* op, const char* name) {
    check(x.dim() == dims, op, name, " must have ", dims, " dimensions, got ", x.description());
}

// b must match a's dtype and device (the first input sets both).
inline void check_same_kind(const Tensor& a, const Tensor& b, const char* op, const char* name_a,
                            const char* name_b) {
    check(a.dtype() == b.dtype(), op, name_a, " and ", name_b, " have different dtypes (",
          a.description(), " vs ", b.description(), ")");
    check(a.device() == b.device(), op, name_a, " and ", name_b, " are on different devices (",
          a.description(), " vs ", b.description(), ")");
}

inline void check_same_shape(const Tensor& a, const Tensor& b, const char* op, const char* name_a,
                             const char* name_b) {
    check(a.shape() == b.shape(), op, name_a, " and ", name_b, " have different shapes (",
          shape_string(a.shape()), " vs ", shape_string(b.shape()), ")");
}

// Wraps a possibly negative dimension of x into [0, x.dim()), with an error naming the op and
// the input's shape.
inline std::size_t resolve_dimension(const Tensor& x, std::int64_t dimension, const char* op) {
    check(dimension >= -x.dim() && dimension < x.dim(), op, "dimension ", dimension, " is out of range for input ",
          x.description());
    return static_cast<std::size_t>(dimension < 0 ? dimension + x.dim() : dimension);
}

// Adds `gradient` into `accumulator` (a defined, contiguous tensor of the same shape), no graph.
void accumulate_into(Tensor& accumulator, const Tensor& gradient);

}  // namespace cudagrad::detail
