// torchvision ResNet initialisation, with PyTorch's formulas (torch/nn/init.py).
#include "cudagrad/init.hpp"

#include <cmath>

namespace cudagrad {

std::int64_t fan(const Tensor& weight, FanMode mode) {
    check(weight.defined() && weight.dim() >= 2, "fan", "needs a weight with at least 2 dimensions, got ",
          weight.description());
    std::int64_t receptive_field = 1;
    for (std::int64_t d = 2; d < weight.dim(); ++d) receptive_field *= weight.size(d);
    return (mode == FanMode::FanIn ? weight.size(1) : weight.size(0)) * receptive_field;
}

Tensor& kaiming_normal_(Tensor& weight, FanMode mode, Generator& generator) {
    const double gain = std::sqrt(2.0);  // calculate_gain("relu")
    std::int64_t fan_value = fan(weight, mode);
    check(fan_value > 0, "kaiming_normal_", "zero fan for ", weight.description());
    return normal_(weight, 0.0, gain / std::sqrt(static_cast<double>(fan_value)), generator);
}

void linear_default_init_(Tensor& weight, Tensor& bias, Generator& generator) {
    std::int64_t fan_in = fan(weight, FanMode::FanIn);
    check(fan_in > 0, "linear_default_init_", "zero fan_in for ", weight.description());
    const double bound = 1.0 / std::sqrt(static_cast<double>(fan_in));
    uniform_(weight, -bound, bound, generator);
    if (bias.defined()) uniform_(bias, -bound, bound, generator);
}

}  // namespace cudagrad
