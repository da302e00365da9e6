// The layers ResNet is made of, each a thin Module over one op from ops.hpp, with
// torchvision's parameter names and default initialisation.
#pragma once

#include <memory>
#include <vector>

#include "cudagrad/nn/module.hpp"
#include "cudagrad/ops.hpp"
#include "cudagrad/random.hpp"

namespace cudagrad::nn {

struct Conv2dConfig {
    std::int64_t in_channels = 0, out_channels = 0;
    std::int64_t kernel_size = 1, stride = 1, padding = 0, dilation = 1, groups = 1;
    bool bias = false;  // ResNet's convs have none: batch norm follows each one
};

// weight: (out, in/groups, k, k), Kaiming-normal with fan_out (torchvision's ResNet init);
// bias: zeros.
class Conv2d : public Module {
public:
    explicit Conv2d(const Conv2dConfig& config, Generator& generator = default_generator());
    Tensor forward(const Tensor& input) override;
    std::string type_name() const override { return "Conv2d"; }
    std::string extra_description() const override;
    const Conv2dConfig& config() const { return config_; }

    Tensor weight, bias;

private:
    Conv2dConfig config_;
};

// y = (x - mean) / sqrt(var + eps) * weight + bias, per channel; batch statistics in training,
// running statistics in eval. weight = 1, bias = 0; buffers running_mean = 0, running_var = 1,
// num_batches_tracked = 0 (int64), as torch.nn.BatchNorm2d.
class BatchNorm2d : public Module {
public:
    explicit BatchNorm2d(std::int64_t channels, double eps = 1e-5, double momentum = 0.1);
    Tensor forward(const Tensor& input) override;
    std::string type_name() const override { return "BatchNorm2d"; }
    std::string extra_description() const override;

    Tensor weight, bias, running_mean, running_var, num_batches_tracked;

private:
    std::int64_t channels_;
    double eps_, momentum_;
};

class ReLU : public Module {
public:
    Tensor forward(const Tensor& input) override { return relu(input); }
    std::string type_name() const override { return "ReLU"; }
};

class MaxPool2d : public Module {
public:
    MaxPool2d(std::int64_t kernel_size, std::int64_t stride, std::int64_t padding = 0);
    Tensor forward(const Tensor& input) override { return max_pool2d(input, options_); }
    std::string type_name() const override { return "MaxPool2d"; }
    std::string extra_description() const override;

private:
    Pool2dOptions options_;
};

class AdaptiveAvgPool2d : public Module {
public:
    AdaptiveAvgPool2d(std::int64_t output_h, std::int64_t output_w) : output_h_(output_h), output_w_(output_w) {}
    Tensor forward(const Tensor& input) override;
    std::string type_name() const override { return "AdaptiveAvgPool2d"; }
    std::string extra_description() const override;

private:
    std::int64_t output_h_, output_w_;
};

class Flatten : public Module {
public:
    explicit Flatten(std::int64_t start_dim = 1) : start_dim_(start_dim) {}
    Tensor forward(const Tensor& input) override { return flatten(input, start_dim_); }
    std::string type_name() const override { return "Flatten"; }

private:
    std::int64_t start_dim_;
};

// y = x W^T + b; W: (out, in), b: (out), both U(-1/sqrt(in), 1/sqrt(in)) as nn.Linear.
class Linear : public Module {
public:
    Linear(std::int64_t in_features, std::int64_t out_features, bool bias = true,
           Generator& generator = default_generator());
    Tensor forward(const Tensor& input) override { return linear(input, weight, bias); }
    std::string type_name() const override { return "Linear"; }
    std::string extra_description() const override;

    Tensor weight, bias;
};

class Identity : public Module {
public:
    Tensor forward(const Tensor& input) override { return input; }
    std::string type_name() const override { return "Identity"; }
};

// Runs its children in order; they are named "0", "1", ... as in torch.nn.Sequential.
class Sequential : public Module {
public:
    Sequential() = default;
    explicit Sequential(std::vector<std::shared_ptr<Module>> modules);
    void append(std::shared_ptr<Module> module);
    Tensor forward(const Tensor& input) override;
    std::string type_name() const override { return "Sequential"; }
    std::size_t size() const { return children().size(); }
};

}  // namespace cudagrad::nn
