// Parameter initialisations used by torchvision's ResNet, computed the way PyTorch does so
// that the distributions (not the exact numbers: the generators differ) match.
#pragma once

#include "cudagrad/random.hpp"

namespace cudagrad {

enum class FanMode { FanIn, FanOut };

// fan_in = weight.size(1) * receptive field; fan_out = weight.size(0) * receptive field.
std::int64_t fan(const Tensor& weight, FanMode mode);

// kaiming_normal_(w, mode, nonlinearity="relu"): std = sqrt(2) / sqrt(fan). torchvision uses
// mode = fan_out for every ResNet conv.
Tensor& kaiming_normal_(Tensor& weight, FanMode mode = FanMode::FanOut,
                        Generator& generator = default_generator());

// nn.Linear's default: weight ~ U(-1/sqrt(fan_in), 1/sqrt(fan_in)) (kaiming_uniform with
// a = sqrt(5) reduces to this), bias ~ U(-1/sqrt(fan_in), 1/sqrt(fan_in)).
void linear_default_init_(Tensor& weight, Tensor& bias, Generator& generator = default_generator());

}  // namespace cudagrad
