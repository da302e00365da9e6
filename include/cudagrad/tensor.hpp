// Tensor: an n-dimensional view (shape, strides, offset) onto reference-counted storage.
//
// Copying a Tensor copies a handle: both handles see the same data, as in PyTorch. Views
// (reshape of a contiguous tensor, slice, transpose) share storage with their base; contiguous()
// and clone() copy. A tensor that requires_grad collects its gradient in grad() when
// backward() runs (see autograd.hpp).
#pragma once

#include <cstdint>
#include <initializer_list>
#include <iosfwd>
#include <memory>
#include <string>
#include <vector>

#include "cudagrad/allocator.hpp"
#include "cudagrad/device.hpp"
#include "cudagrad/dtype.hpp"
#include "cudagrad/error.hpp"

namespace cudagrad {

using Shape = std::vector<std::int64_t>;

std::string shape_string(const Shape& shape);  // "[2, 3, 4]"
std::int64_t shape_numel(const Shape& shape);
Shape contiguous_strides(const Shape& shape);

// A block of bytes on one device, returned to its allocator when the last tensor using it dies.
class Storage {
public:
    Storage(std::size_t bytes, Allocator& allocator);
    ~Storage();
    Storage(const Storage&) = delete;
    Storage& operator=(const Storage&) = delete;

    void* data() const { return data_; }
    std::size_t bytes() const { return bytes_; }
    Device device() const { return allocator_->device(); }

private:
    void* data_;
    std::size_t bytes_;
    Allocator* allocator_;
};

struct Node;  // autograd.hpp
class Tensor;

struct TensorImpl {
    std::shared_ptr<Storage> storage;
    Shape shape;
    Shape strides;  // in elements
    std::int64_t offset = 0;  // in elements
    DType dtype = DType::Float32;
    bool requires_grad = false;
    std::shared_ptr<TensorImpl> grad;  // accumulated gradient of a leaf, or null
    std::shared_ptr<Node> grad_fn;     // the op that produced this tensor, or null for a leaf
};

class Tensor {
public:
    Tensor() = default;  // an undefined tensor: defined() is false
    explicit Tensor(std::shared_ptr<TensorImpl> impl) : impl_(std::move(impl)) {}

    // ---- creation ----
    static Tensor empty(const Shape& shape, DType dtype = DType::Float32, Device device = Device::cpu());
    // Uninitialised, with memory from a given allocator (e.g. pinned_allocator()); the tensor's
    // device is the allocator's.
    static Tensor empty_in(const Shape& shape, DType dtype, Allocator& allocator);
    static Tensor zeros(const Shape& shape, DType dtype = DType::Float32, Device device = Device::cpu());
    static Tensor ones(const Shape& shape, DType dtype = DType::Float32, Device device = Device::cpu());
    static Tensor full(const Shape& shape, double value, DType dtype = DType::Float32,
                       Device device = Device::cpu());
    static Tensor from_vector(const std::vector<float>& values, const Shape& shape);
    static Tensor from_vector(const std::vector<double>& values, const Shape& shape);
    static Tensor from_vector(const std::vector<std::int64_t>& values, const Shape& shape);
    static Tensor scalar(double value, DType dtype = DType::Float32);

    // ---- properties ----
    bool defined() const { return impl_ != nullptr; }
    const Shape& shape() const { return impl().shape; }
    const Shape& strides() const { return impl().strides; }
    std::int64_t dim() const { return static_cast<std::int64_t>(impl().shape.size()); }
    std::int64_t size(std::int64_t dimension) const;  // negative counts from the end
    std::int64_t numel() const { return shape_numel(impl().shape); }
    std::int64_t offset() const { return impl().offset; }
    DType dtype() const { return impl().dtype; }
    Device device() const { return impl().storage->device(); }
    bool is_contiguous() const;
    std::string description() const;  // "Tensor([2, 3], float32, cpu)"

    // ---- element access (CPU tensors) ----
    // Pointer to the first element of this view; T must match dtype().
    template <typename T> T* data() const;
    void* raw_data() const;  // pointer to the first element, any dtype, any device
    // The single element of a one-element tensor, converted to double.
    double item() const;
    // Element at a multi-index, converted to double (slow: for tests and printing).
    double at(const std::vector<std::int64_t>& index) const;
    std::vector<float> to_float_vector() const;
    std::vector<double> to_double_vector() const;
    std::vector<std::int64_t> to_int64_vector() const;

    // ---- views and copies ----
    Tensor reshape(const Shape& shape) const;  // a view when contiguous, else a copy; -1 infers one size
    Tensor view(const Shape& shape) const;     // a view, or an error if the layout does not allow one
    Tensor flatten(std::int64_t start_dim = 1) const;
    Tensor slice(std::int64_t dimension, std::int64_t start, std::int64_t end) const;  // [start, end)
    Tensor transpose(std::int64_t dim0, std::int64_t dim1) const;
    Tensor contiguous() const;
    Tensor clone() const;
    Tensor to(DType dtype) const;    // converts element type (copy unless already that type)
    Tensor to(Device device) const;  // copies between devices (same tensor if already there)
    Tensor& copy_(const Tensor& source);  // elementwise copy, shapes must match, converts dtype
    Tensor& fill_(double value);
    Tensor& zero_() { return fill_(0.0); }

    // ---- autograd ----
    bool requires_grad() const { return impl().requires_grad; }
    Tensor& set_requires_grad(bool enabled);
    Tensor grad() const;  // undefined when no gradient has been accumulated
    void set_grad(const Tensor& gradient);
    // Zeroes the gradient in place, or drops it (set_to_none), as PyTorch's zero_grad.
    void zero_grad(bool set_to_none = true);
    bool is_leaf() const { return impl().grad_fn == nullptr; }
    const std::shared_ptr<Node>& grad_fn() const { return impl().grad_fn; }
    // A tensor sharing this one's storage but outside the graph.
    Tensor detach() const;
    // Runs backpropagation from this tensor (see autograd.hpp).
    void backward(const Tensor& gradient = Tensor(), bool retain_graph = false) const;

    TensorImpl& impl() const;
    const std::shared_ptr<TensorImpl>& impl_ptr() const { return impl_; }
    bool same_as(const Tensor& other) const { return impl_ == other.impl_; }

private:
    std::shared_ptr<TensorImpl> impl_;
};

std::ostream& operator<<(std::ostream& stream, const Tensor& tensor);

template <typename T> T* Tensor::data() const {
    check(defined(), "Tensor::data", "tensor is undefined");
    check(dtype() == dtype_of<T>(), "Tensor::data", "tensor has dtype ", dtype_name(dtype()),
          " but ", dtype_name(dtype_of<T>()), " was requested (", description(), ")");
    return static_cast<T*>(raw_data());
}

}  // namespace cudagrad
