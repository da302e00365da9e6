// What every cuDNN file needs around the legacy API's descriptors (for .cu files only):
//   - owning wrappers: a descriptor is created in the constructor and destroyed in the
//     destructor, so none leaks when a later CUDAGRAD_CUDNN_CHECK throws;
//   - the int-range rule: legacy descriptors take int sizes, and a size beyond INT_MAX is not an
//     error but a configuration cuDNN cannot be given. It is declined (detail::VendorDeclined),
//     so detail::run_with_fallback runs cudagrad's own kernel instead.
// Each caller words its own decline message (it knows the op and the shape); the message is
// built only when the size does not fit.
#pragma once

#include <cudnn.h>

#include <climits>
#include <cstdint>
#include <initializer_list>

#include "cuda/check.hpp"

namespace cudagrad::cuda {

template <typename Handle, cudnnStatus_t (*Create)(Handle*), cudnnStatus_t (*Destroy)(Handle)>
class CudnnDescriptor {
public:
    CudnnDescriptor() { CUDAGRAD_CUDNN_CHECK(Create(&handle_)); }
    ~CudnnDescriptor() {
        // A destructor must not throw; destroying a valid handle cannot fail.
        if (handle_) Destroy(handle_);
    }
    CudnnDescriptor(const CudnnDescriptor&) = delete;
    CudnnDescriptor& operator=(const CudnnDescriptor&) = delete;
    Handle get() const { return handle_; }

private:
    Handle handle_{};
};

using TensorDescriptor =
    CudnnDescriptor<cudnnTensorDescriptor_t, cudnnCreateTensorDescriptor, cudnnDestroyTensorDescriptor>;
using FilterDescriptor =
    CudnnDescriptor<cudnnFilterDescriptor_t, cudnnCreateFilterDescriptor, cudnnDestroyFilterDescriptor>;
using ConvolutionDescriptor = CudnnDescriptor<cudnnConvolutionDescriptor_t, cudnnCreateConvolutionDescriptor,
                                              cudnnDestroyConvolutionDescriptor>;
using PoolingDescriptor =
    CudnnDescriptor<cudnnPoolingDescriptor_t, cudnnCreatePoolingDescriptor, cudnnDestroyPoolingDescriptor>;
using ActivationDescriptor =
    CudnnDescriptor<cudnnActivationDescriptor_t, cudnnCreateActivationDescriptor, cudnnDestroyActivationDescriptor>;

// A packed NCHW tensor of (n, c, h, w) elements of `data_type`.
inline void set_nchw(const TensorDescriptor& descriptor, int n, int c, int h, int w,
                     cudnnDataType_t data_type = CUDNN_DATA_FLOAT) {
    CUDAGRAD_CUDNN_CHECK(cudnnSetTensor4dDescriptor(descriptor.get(), CUDNN_TENSOR_NCHW, data_type, n, c, h, w));
}

// True when `size` fits cuDNN's int arguments.
constexpr bool fits_int(std::int64_t size) { return size <= INT_MAX; }

// Declines (throws detail::VendorDeclined(explain())) unless every size fits an int.
template <typename Explain>
void decline_beyond_int(std::initializer_list<std::int64_t> sizes, Explain&& explain) {
    for (std::int64_t size : sizes) {
        if (!fits_int(size)) throw detail::VendorDeclined(explain());
    }
}

// `size` as an int, or declined as decline_beyond_int.
template <typename Explain>
int int_or_decline(std::int64_t size, Explain&& explain) {
    decline_beyond_int({size}, explain);
    return static_cast<int>(size);
}

}  // namespace cudagrad::cuda
