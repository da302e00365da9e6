// CPU stand-in for include/cudagrad/tensor.hpp (tools/cuda_emulation): the kernels' host code
// only makes temporary float buffers with Tensor::empty. New buffers are NaN-filled, like the
// GPU tests' poisoned allocations, so an element a kernel forgets to write shows up.
#pragma once
#include <cmath>
#include <cstdint>
#include <initializer_list>
#include <memory>
#include <vector>

namespace cudagrad {

enum class DType { Float32 };
struct Device {
    static Device cuda(int) { return {}; }
};
struct Tensor {
    std::shared_ptr<std::vector<float>> storage;
    static Tensor empty(std::initializer_list<std::int64_t> shape, DType, Device) {
        std::int64_t count = 1;
        for (std::int64_t extent : shape) count *= extent;
        return Tensor{std::make_shared<std::vector<float>>(static_cast<std::size_t>(count), NAN)};
    }
    template <typename T>
    T* data() const { return storage->data(); }
};

}  // namespace cudagrad
