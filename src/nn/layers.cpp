// The basic layers: parameters, their initialisation, and the op each one calls.
#include "cudagrad/nn/layers.hpp"

#include <sstream>

#include "cudagrad/init.hpp"

namespace cudagrad::nn {
namespace {
template <typename... Parts>
std::string join(const Parts&... parts) {
    std::ostringstream text;
    (text << ... << parts);
    return text.str();
}
}  // namespace

Conv2d::Conv2d(const Conv2dConfig& config, Generator& generator) : config_(config) {
    check(config.in_channels > 0 && config.out_channels > 0 && config.kernel_size > 0 && config.groups > 0,
          "Conv2d", "channels, kernel size and groups must be positive (in ", config.in_channels, ", out ",
          config.out_channels, ", kernel ", config.kernel_size, ", groups ", config.groups, ")");
    check(config.in_channels % config.groups == 0 && config.out_channels % config.groups == 0, "Conv2d", "groups ",
          config.groups, " must divide in_channels ", config.in_channels, " and out_channels ", config.out_channels);
    weight = Tensor::empty({config.out_channels, config.in_channels / config.groups, config.kernel_size,
                            config.kernel_size});
    kaiming_normal_(weight, FanMode::FanOut, generator);
    weight.set_requires_grad(true);
    register_parameter("weight", &weight);
    if (config.bias) {
        bias = Tensor::zeros({config.out_channels});
        bias.set_requires_grad(true);
        register_parameter("bias", &bias);
    }
}

Tensor Conv2d::forward(const Tensor& input) {
    Conv2dOptions options;
    options.stride_h = options.stride_w = config_.stride;
    options.padding_h = options.padding_w = config_.padding;
    options.dilation_h = options.dilation_w = config_.dilation;
    options.groups = config_.groups;
    return conv2d(input, weight, bias, options);
}

std::string Conv2d::extra_description() const {
    return join(config_.in_channels, ", ", config_.out_channels, ", kernel_size=", config_.kernel_size,
                ", stride=", config_.stride, ", padding=", config_.padding,
                config_.groups > 1 ? join(", groups=", config_.groups) : "", config_.bias ? "" : ", bias=False");
}

BatchNorm2d::BatchNorm2d(std::int64_t channels, double eps, double momentum)
    : channels_(channels), eps_(eps), momentum_(momentum) {
    check(channels > 0, "BatchNorm2d", "channel count ", channels, " must be positive");
    check(eps > 0 && momentum >= 0 && momentum <= 1, "BatchNorm2d", "eps ", eps, " must be positive and momentum ",
          momentum, " in [0, 1]");
    weight = Tensor::ones({channels});
    bias = Tensor::zeros({channels});
    weight.set_requires_grad(true);
    bias.set_requires_grad(true);
    running_mean = Tensor::zeros({channels});
    running_var = Tensor::ones({channels});
    num_batches_tracked = Tensor::zeros({}, DType::Int64);
    register_parameter("weight", &weight);
    register_parameter("bias", &bias);
    register_buffer("running_mean", &running_mean);
    register_buffer("running_var", &running_var);
    register_buffer("num_batches_tracked", &num_batches_tracked);
}

Tensor BatchNorm2d::forward(const Tensor& input) {
    BatchNormOptions options;
    options.training = is_training();
    options.momentum = momentum_;
    options.eps = eps_;
    return batch_norm2d(input, weight, bias, running_mean, running_var, num_batches_tracked, options);
}

std::string BatchNorm2d::extra_description() const { return join(channels_, ", eps=", eps_, ", momentum=", momentum_); }

MaxPool2d::MaxPool2d(std::int64_t kernel_size, std::int64_t stride, std::int64_t padding) {
    options_.kernel_h = options_.kernel_w = kernel_size;
    options_.stride_h = options_.stride_w = stride;
    options_.padding_h = options_.padding_w = padding;
}

std::string MaxPool2d::extra_description() const {
    return join("kernel_size=", options_.kernel_h, ", stride=", options_.stride_h, ", padding=", options_.padding_h);
}

Tensor AdaptiveAvgPool2d::forward(const Tensor& input) {
    if (output_h_ == 1 && output_w_ == 1) return global_avg_pool2d(input);
    return adaptive_avg_pool2d(input, output_h_, output_w_);
}

std::string AdaptiveAvgPool2d::extra_description() const {
    return join("output_size=(", output_h_, ", ", output_w_, ")");
}

Linear::Linear(std::int64_t in_features, std::int64_t out_features, bool has_bias, Generator& generator) {
    check(in_features > 0 && out_features > 0, "Linear", "feature counts must be positive (in ", in_features,
          ", out ", out_features, ")");
    weight = Tensor::empty({out_features, in_features});
    if (has_bias) bias = Tensor::empty({out_features});
    linear_default_init_(weight, bias, generator);
    weight.set_requires_grad(true);
    register_parameter("weight", &weight);
    if (has_bias) {
        bias.set_requires_grad(true);
        register_parameter("bias", &bias);
    }
}

std::string Linear::extra_description() const {
    return join("in_features=", weight.size(1), ", out_features=", weight.size(0), ", bias=", bias.defined());
}

Sequential::Sequential(std::vector<std::shared_ptr<Module>> modules) {
    for (auto& module : modules) append(std::move(module));
}

void Sequential::append(std::shared_ptr<Module> module) {
    register_module(std::to_string(children().size()), std::move(module));
}

Tensor Sequential::forward(const Tensor& input) {
    Tensor output = input;
    for (const auto& [name, module] : children()) output = module->forward(output);
    return output;
}

}  // namespace cudagrad::nn
