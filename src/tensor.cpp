// Tensor: creation, views, copies and printing. Everything here is layout bookkeeping; the
// arithmetic lives in src/ops/.
#include "cudagrad/tensor.hpp"

#include <algorithm>
#include <cstring>
#include <iomanip>
#include <ostream>
#include <sstream>

#include "cudagrad/autograd.hpp"

#ifdef CUDAGRAD_WITH_CUDA
#include "cuda/copy.hpp"
#include "cuda/runtime.hpp"
#endif

namespace cudagrad {

std::string shape_string(const Shape& shape) {
    std::ostringstream text;
    text << '[';
    for (std::size_t i = 0; i < shape.size(); ++i) text << (i ? ", " : "") << shape[i];
    text << ']';
    return text.str();
}

std::int64_t shape_numel(const Shape& shape) {
    std::int64_t count = 1;
    for (std::int64_t size : shape) count *= size;
    return count;
}

Shape contiguous_strides(const Shape& shape) {
    Shape strides(shape.size());
    std::int64_t stride = 1;
    for (std::size_t i = shape.size(); i-- > 0;) {
        strides[i] = stride;
        stride *= std::max<std::int64_t>(shape[i], 1);
    }
    return strides;
}

std::string Device::str() const { return is_cpu() ? "cpu" : "cuda:" + std::to_string(index); }

Storage::Storage(std::size_t bytes, Allocator& allocator)
    : data_(allocator.allocate(bytes)), bytes_(bytes), allocator_(&allocator) {}

Storage::~Storage() { allocator_->deallocate(data_, bytes_); }

// ------------------------------------------------------------------------------- creation

Tensor Tensor::empty(const Shape& shape, DType dtype, Device device) {
    return empty_in(shape, dtype, allocator_for(device));
}

Tensor Tensor::empty_in(const Shape& shape, DType dtype, Allocator& allocator) {
    for (std::int64_t size : shape) {
        check(size >= 0, "Tensor::empty", "negative size in shape ", shape_string(shape));
    }
    auto impl = std::make_shared<TensorImpl>();
    std::size_t bytes = static_cast<std::size_t>(shape_numel(shape)) * element_size(dtype);
    impl->storage = std::make_shared<Storage>(bytes, allocator);
    impl->shape = shape;
    impl->strides = contiguous_strides(shape);
    impl->dtype = dtype;
    return Tensor(std::move(impl));
}

Tensor Tensor::zeros(const Shape& shape, DType dtype, Device device) {
    return full(shape, 0.0, dtype, device);
}

Tensor Tensor::ones(const Shape& shape, DType dtype, Device device) { return full(shape, 1.0, dtype, device); }

Tensor Tensor::full(const Shape& shape, double value, DType dtype, Device device) {
    Tensor tensor = empty(shape, dtype, device);
    tensor.fill_(value);
    return tensor;
}

namespace {
template <typename T>
Tensor tensor_from_values(const std::vector<T>& values, const Shape& shape) {
    check(static_cast<std::int64_t>(values.size()) == shape_numel(shape), "Tensor::from_vector", values.size(),
          " values do not fill shape ", shape_string(shape));
    Tensor tensor = Tensor::empty(shape, dtype_of<T>());
    if (!values.empty()) std::memcpy(tensor.raw_data(), values.data(), values.size() * sizeof(T));
    return tensor;
}
}  // namespace

Tensor Tensor::from_vector(const std::vector<float>& values, const Shape& shape) {
    return tensor_from_values(values, shape);
}
Tensor Tensor::from_vector(const std::vector<double>& values, const Shape& shape) {
    return tensor_from_values(values, shape);
}
Tensor Tensor::from_vector(const std::vector<std::int64_t>& values, const Shape& shape) {
    return tensor_from_values(values, shape);
}
Tensor Tensor::scalar(double value, DType dtype) { return full({}, value, dtype); }

// ----------------------------------------------------------------------------- properties

TensorImpl& Tensor::impl() const {
    check(impl_ != nullptr, "Tensor", "use of an undefined tensor");
    return *impl_;
}

std::int64_t Tensor::size(std::int64_t dimension) const {
    std::int64_t dims = dim();
    check(dimension >= -dims && dimension < dims, "Tensor::size", "dimension ", dimension,
          " out of range for ", description());
    return shape()[dimension < 0 ? dimension + dims : dimension];
}

bool Tensor::is_contiguous() const {
    const Shape expected = contiguous_strides(shape());
    for (std::size_t i = 0; i < expected.size(); ++i) {
        if (shape()[i] != 1 && strides()[i] != expected[i]) return false;
    }
    return true;
}

std::string Tensor::description() const {
    if (!defined()) return "Tensor(undefined)";
    return "Tensor(" + shape_string(shape()) + ", " + dtype_name(dtype()) + ", " + device().str() + ")";
}

void* Tensor::raw_data() const {
    return static_cast<char*>(impl().storage->data()) + impl().offset * element_size(dtype());
}

namespace {

// Reads element `linear_offset` (in elements, from the storage start) as double.
double read_element(const void* base, DType dtype, std::int64_t element) {
    switch (dtype) {
        case DType::Float32: return static_cast<const float*>(base)[element];
        case DType::Float64: return static_cast<const double*>(base)[element];
        case DType::Int64: return static_cast<double>(static_cast<const std::int64_t*>(base)[element]);
    }
    return 0.0;
}

// Calls visit(offset_a, offset_b) for every element of `shape` in logical (row-major) order,
// where offset_a and offset_b are that element's positions (in elements from the storage
// start) in two layouts of the same shape. The generic strided walk behind copies,
// conversions and fills; the innermost dimension is a plain loop so it stays fast.
template <typename Visit>
void for_each_offset_pair(const Shape& shape, const Shape& strides_a, std::int64_t offset_a, const Shape& strides_b,
                          std::int64_t offset_b, Visit&& visit) {
    std::int64_t count = shape_numel(shape);
    if (count == 0) return;
    if (shape.empty()) {
        visit(offset_a, offset_b);
        return;
    }
    const std::size_t last = shape.size() - 1;
    const std::int64_t inner = shape[last], inner_a = strides_a[last], inner_b = strides_b[last];
    std::vector<std::int64_t> index(last, 0);
    std::int64_t position_a = offset_a, position_b = offset_b;
    for (std::int64_t row = 0; row < count / inner; ++row) {
        for (std::int64_t i = 0; i < inner; ++i) visit(position_a + i * inner_a, position_b + i * inner_b);
        for (std::size_t d = last; d-- > 0;) {  // advance the outer index like an odometer
            if (++index[d] < shape[d]) {
                position_a += strides_a[d];
                position_b += strides_b[d];
                break;
            }
            position_a -= strides_a[d] * (shape[d] - 1);
            position_b -= strides_b[d] * (shape[d] - 1);
            index[d] = 0;
        }
    }
}

template <typename Visit>
void for_each_offset(const Shape& shape, const Shape& strides, std::int64_t offset, Visit&& visit) {
    for_each_offset_pair(shape, strides, offset, strides, offset, [&](std::int64_t element, std::int64_t) { visit(element); });
}

// Calls body(T{}) with the C++ type of dtype.
template <typename Body>
void with_element_type(DType dtype, Body&& body) {
    switch (dtype) {
        case DType::Float32: body(float{}); return;
        case DType::Float64: body(double{}); return;
        case DType::Int64: body(std::int64_t{}); return;
    }
}


}  // namespace

double Tensor::item() const {
    check(numel() == 1, "Tensor::item", "needs exactly one element, got ", description());
    if (device().is_cuda()) return to(Device::cpu()).item();  // waits for the GPU
    return read_element(raw_data(), dtype(), 0);
}

double Tensor::at(const std::vector<std::int64_t>& index) const {
    check(static_cast<std::int64_t>(index.size()) == dim(), "Tensor::at", "index has ", index.size(),
          " entries for ", description());
    if (device().is_cuda()) return to(Device::cpu()).at(index);  // slow, for tests and printing
    std::int64_t element = 0;
    for (std::size_t d = 0; d < index.size(); ++d) {
        check(index[d] >= 0 && index[d] < shape()[d], "Tensor::at", "index ", index[d], " out of range in dimension ",
              d, " of ", description());
        element += index[d] * strides()[d];
    }
    return read_element(raw_data(), dtype(), element);
}

namespace {
template <typename T>
std::vector<T> gather_as(const Tensor& tensor) {
    if (tensor.device().is_cuda()) return gather_as<T>(tensor.to(Device::cpu()));
    std::vector<T> values;
    values.reserve(static_cast<std::size_t>(tensor.numel()));
    const void* base = tensor.impl().storage->data();
    DType dtype = tensor.dtype();
    for_each_offset(tensor.shape(), tensor.strides(), tensor.offset(),
                    [&](std::int64_t element) { values.push_back(static_cast<T>(read_element(base, dtype, element))); });
    return values;
}
}  // namespace

std::vector<float> Tensor::to_float_vector() const { return gather_as<float>(*this); }
std::vector<double> Tensor::to_double_vector() const { return gather_as<double>(*this); }
std::vector<std::int64_t> Tensor::to_int64_vector() const { return gather_as<std::int64_t>(*this); }

// ----------------------------------------------------------------------------- views

namespace {
Shape infer_shape(const Shape& requested, std::int64_t numel, const char* op) {
    Shape shape = requested;
    std::int64_t known = 1;
    int inferred = -1;
    for (std::size_t i = 0; i < shape.size(); ++i) {
        if (shape[i] == -1) {
            check(inferred < 0, op, "only one size may be -1 in ", shape_string(requested));
            inferred = static_cast<int>(i);
        } else {
            check(shape[i] >= 0, op, "invalid size ", shape[i], " in ", shape_string(requested));
            known *= shape[i];
        }
    }
    if (inferred >= 0) {
        check(known > 0 && numel % known == 0, op, "cannot infer -1 in ", shape_string(requested), " for ", numel,
              " elements");
        shape[inferred] = numel / known;
    }
    check(shape_numel(shape) == numel, op, "shape ", shape_string(requested), " does not hold ", numel, " elements");
    return shape;
}

Tensor alias(const Tensor& base) {
    auto impl = std::make_shared<TensorImpl>();
    impl->storage = base.impl().storage;
    impl->shape = base.shape();
    impl->strides = base.strides();
    impl->offset = base.offset();
    impl->dtype = base.dtype();
    return Tensor(std::move(impl));
}
}  // namespace

Tensor Tensor::view(const Shape& shape) const {
    Shape resolved = infer_shape(shape, numel(), "Tensor::view");
    check(is_contiguous(), "Tensor::view", "a view needs a contiguous tensor, got ", description(),
          " with strides ", shape_string(strides()), "; use reshape()");
    Tensor result = alias(*this);
    result.impl().shape = resolved;
    result.impl().strides = contiguous_strides(resolved);
    return result;
}

Tensor Tensor::reshape(const Shape& shape) const { return is_contiguous() ? view(shape) : contiguous().view(shape); }

Tensor Tensor::flatten(std::int64_t start_dim) const {
    std::int64_t dims = dim();
    if (start_dim < 0) start_dim += dims;
    check(start_dim >= 0 && start_dim < std::max<std::int64_t>(dims, 1), "Tensor::flatten", "start_dim ", start_dim,
          " out of range for ", description());
    Shape shape(this->shape().begin(), this->shape().begin() + start_dim);
    shape.push_back(-1);
    if (numel() == 0) shape.back() = 0;
    return reshape(shape);
}

Tensor Tensor::slice(std::int64_t dimension, std::int64_t start, std::int64_t end) const {
    std::int64_t dims = dim();
    check(dimension >= -dims && dimension < dims, "Tensor::slice", "dimension ", dimension, " out of range for ",
          description());
    if (dimension < 0) dimension += dims;
    std::int64_t extent = shape()[dimension];
    check(0 <= start && start <= end && end <= extent, "Tensor::slice", "range [", start, ", ", end,
          ") is not inside [0, ", extent, ") in dimension ", dimension, " of ", description());
    Tensor result = alias(*this);
    result.impl().offset += start * strides()[dimension];
    result.impl().shape[dimension] = end - start;
    return result;
}

Tensor Tensor::transpose(std::int64_t dim0, std::int64_t dim1) const {
    std::int64_t dims = dim();
    check(dim0 >= -dims && dim0 < dims && dim1 >= -dims && dim1 < dims, "Tensor::transpose", "dimensions ", dim0,
          " and ", dim1, " out of range for ", description());
    if (dim0 < 0) dim0 += dims;
    if (dim1 < 0) dim1 += dims;
    Tensor result = alias(*this);
    std::swap(result.impl().shape[dim0], result.impl().shape[dim1]);
    std::swap(result.impl().strides[dim0], result.impl().strides[dim1]);
    return result;
}

// ----------------------------------------------------------------------------- copies

namespace {

#ifdef CUDAGRAD_WITH_CUDA
cuda::StridedView strided_view(const Tensor& tensor) {
    cuda::StridedView view;
    view.data = tensor.raw_data();
    view.dtype = tensor.dtype();
    view.dims = static_cast<int>(tensor.dim());
    check(view.dims <= cuda::max_copy_dims, "Tensor::copy_", "GPU copies support up to ", cuda::max_copy_dims,
          " dimensions, got ", tensor.description());
    for (int d = 0; d < view.dims; ++d) {
        view.shape[d] = tensor.shape()[static_cast<std::size_t>(d)];
        view.strides[d] = tensor.strides()[static_cast<std::size_t>(d)];
    }
    return view;
}
#endif

bool same_dense_layout(const Tensor& a, const Tensor& b) {
    return a.dtype() == b.dtype() && a.is_contiguous() && b.is_contiguous();
}

void copy_cpu_to_cpu(Tensor& destination, const Tensor& source) {
    if (same_dense_layout(destination, source)) {
        std::memmove(destination.raw_data(), source.raw_data(),
                     static_cast<std::size_t>(source.numel()) * element_size(source.dtype()));
        return;
    }
    // Generic path: walk both layouts at once, converting each element.
    with_element_type(destination.dtype(), [&](auto destination_zero) {
        using Destination = decltype(destination_zero);
        with_element_type(source.dtype(), [&](auto source_zero) {
            using Source = decltype(source_zero);
            Destination* target = static_cast<Destination*>(destination.impl().storage->data());
            const Source* values = static_cast<const Source*>(source.impl().storage->data());
            for_each_offset_pair(destination.shape(), destination.strides(), destination.offset(), source.strides(),
                                 source.offset(), [&](std::int64_t to, std::int64_t from) {
                                     target[to] = static_cast<Destination>(values[from]);
                                 });
        });
    });
}

// Copies involving a GPU. Conversions and re-layouts happen on the side that holds the data,
// and the bytes cross the bus once, contiguous.
void copy_with_device(Tensor& destination, const Tensor& source) {
#ifdef CUDAGRAD_WITH_CUDA
    const std::size_t bytes = static_cast<std::size_t>(destination.numel()) * element_size(destination.dtype());
    if (destination.device().is_cuda() && source.device().is_cuda()) {
        if (destination.device() != source.device()) {  // between GPUs: through the host (rare)
            Tensor staged = source.to(Device::cpu());
            copy_with_device(destination, staged);
            return;
        }
        make_device_current(destination.device());
        if (same_dense_layout(destination, source)) {
            cuda::copy_device_to_device(destination.raw_data(), source.raw_data(), bytes);
        } else {
            cuda::strided_copy(strided_view(destination), strided_view(source));
        }
        return;
    }
    if (destination.device().is_cuda()) {  // host -> device
        make_device_current(destination.device());
        const Tensor dense = source.to(destination.dtype()).contiguous();
        if (destination.is_contiguous()) {
            cuda::copy_host_to_device(destination.raw_data(), dense.raw_data(), bytes);
        } else {
            Tensor staged = Tensor::empty(destination.shape(), destination.dtype(), destination.device());
            cuda::copy_host_to_device(staged.raw_data(), dense.raw_data(), bytes);
            cuda::strided_copy(strided_view(destination), strided_view(staged));
        }
        return;
    }
    // device -> host
    make_device_current(source.device());
    const Tensor dense = source.to(destination.dtype()).contiguous();  // converted on the GPU
    if (destination.is_contiguous()) {
        cuda::copy_device_to_host(destination.raw_data(), dense.raw_data(), bytes);
    } else {
        Tensor staged = Tensor::empty(destination.shape(), destination.dtype());
        cuda::copy_device_to_host(staged.raw_data(), dense.raw_data(), bytes);
        copy_cpu_to_cpu(destination, staged);
    }
#else
    (void)source;
    fail("Tensor::copy_", "cudagrad was built without CUDA, so ", destination.description(), " cannot exist");
#endif
}

}  // namespace

Tensor& Tensor::copy_(const Tensor& source) {
    check(source.defined(), "Tensor::copy_", "source is undefined");
    check(shape() == source.shape(), "Tensor::copy_", "shape mismatch: destination ", description(), ", source ",
          source.description());
    if (device().is_cpu() && source.device().is_cpu()) {
        copy_cpu_to_cpu(*this, source);
    } else {
        copy_with_device(*this, source);
    }
    return *this;
}

Tensor& Tensor::fill_(double value) {
    if (device().is_cuda()) {
#ifdef CUDAGRAD_WITH_CUDA
        make_device_current(device());
        cuda::strided_fill(strided_view(*this), value);
#endif
        return *this;
    }
    with_element_type(dtype(), [&](auto zero) {
        using T = decltype(zero);
        T* base = static_cast<T*>(impl().storage->data());
        const T typed = static_cast<T>(value);
        for_each_offset(shape(), strides(), offset(), [&](std::int64_t element) { base[element] = typed; });
    });
    return *this;
}

Tensor Tensor::contiguous() const { return is_contiguous() ? *this : clone(); }

Tensor Tensor::clone() const {
    Tensor copy = empty(shape(), dtype(), device());
    copy.copy_(*this);
    return copy;
}

Tensor Tensor::to(DType target) const {
    if (target == dtype()) return *this;
    Tensor converted = empty(shape(), target, device());
    converted.copy_(*this);
    return converted;
}

Tensor Tensor::to(Device target) const {
    if (target == device()) return *this;
    Tensor moved = empty(shape(), dtype(), target);
    moved.copy_(*this);
    return moved;
}

// ----------------------------------------------------------------------------- autograd

Tensor& Tensor::set_requires_grad(bool enabled) {
    check(!enabled || is_floating(dtype()), "Tensor::set_requires_grad", "only floating tensors can require a gradient, got ",
          description());
    check(is_leaf() || enabled, "Tensor::set_requires_grad", "cannot turn off requires_grad on a non-leaf tensor; use detach()");
    impl().requires_grad = enabled;
    return *this;
}

Tensor Tensor::grad() const { return impl().grad ? Tensor(impl().grad) : Tensor(); }

void Tensor::set_grad(const Tensor& gradient) {
    if (gradient.defined()) {
        check(gradient.shape() == shape() && gradient.dtype() == dtype(), "Tensor::set_grad", "gradient ",
              gradient.description(), " does not match ", description());
    }
    impl().grad = gradient.defined() ? gradient.impl_ptr() : nullptr;
}

void Tensor::zero_grad(bool set_to_none) {
    if (set_to_none || !impl().grad) {
        impl().grad = nullptr;
    } else {
        Tensor(impl().grad).zero_();
    }
}

Tensor Tensor::detach() const { return alias(*this); }

void Tensor::backward(const Tensor& gradient, bool retain_graph) const {
    cudagrad::backward(*this, gradient, retain_graph);
}

// ----------------------------------------------------------------------------- printing

std::ostream& operator<<(std::ostream& stream, const Tensor& tensor) {
    stream << tensor.description();
    if (!tensor.defined()) return stream;
    constexpr std::int64_t shown = 8;  // first elements printed, enough to recognise a tensor
    std::vector<double> values = tensor.to_double_vector();
    stream << " [";
    for (std::int64_t i = 0; i < std::min<std::int64_t>(shown, tensor.numel()); ++i) {
        stream << (i ? ", " : "") << std::setprecision(6) << values[static_cast<std::size_t>(i)];
    }
    if (tensor.numel() > shown) stream << ", ...";
    return stream << ']';
}

}  // namespace cudagrad
