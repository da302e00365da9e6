// ResNet assembly: stages of blocks, torchvision's names and initialisation.
#include "cudagrad/nn/resnet.hpp"

namespace cudagrad::nn {
namespace {

std::shared_ptr<Conv2d> make_conv(std::int64_t in, std::int64_t out, std::int64_t kernel, std::int64_t stride,
                                  Generator& generator) {
    Conv2dConfig config;
    config.in_channels = in;
    config.out_channels = out;
    config.kernel_size = kernel;
    config.stride = stride;
    config.padding = kernel / 2;
    return std::make_shared<Conv2d>(config, generator);
}

// The projection shortcut, when a block changes the shape: conv1x1(stride) + bn.
std::shared_ptr<Sequential> make_downsample(std::int64_t in, std::int64_t out, std::int64_t stride,
                                            Generator& generator) {
    if (stride == 1 && in == out) return nullptr;
    return std::make_shared<Sequential>(
        std::vector<std::shared_ptr<Module>>{make_conv(in, out, 1, stride, generator), std::make_shared<BatchNorm2d>(out)});
}

}  // namespace

BasicBlock::BasicBlock(std::int64_t in_channels, std::int64_t width, std::int64_t stride, Generator& generator) {
    conv1_ = register_module("conv1", make_conv(in_channels, width, 3, stride, generator));
    bn1_ = register_module("bn1", std::make_shared<BatchNorm2d>(width));
    conv2_ = register_module("conv2", make_conv(width, width, 3, 1, generator));
    bn2_ = register_module("bn2", std::make_shared<BatchNorm2d>(width));
    if (auto downsample = make_downsample(in_channels, width * expansion, stride, generator)) {
        downsample_ = register_module("downsample", downsample);
    }
}

Tensor BasicBlock::forward(const Tensor& input) {
    Tensor out = relu((*bn1_)((*conv1_)(input)));
    out = (*bn2_)((*conv2_)(out));
    Tensor shortcut = downsample_ ? (*downsample_)(input) : input;
    return relu(add(out, shortcut));
}

Bottleneck::Bottleneck(std::int64_t in_channels, std::int64_t width, std::int64_t stride, Generator& generator) {
    conv1_ = register_module("conv1", make_conv(in_channels, width, 1, 1, generator));
    bn1_ = register_module("bn1", std::make_shared<BatchNorm2d>(width));
    conv2_ = register_module("conv2", make_conv(width, width, 3, stride, generator));  // v1.5: stride here
    bn2_ = register_module("bn2", std::make_shared<BatchNorm2d>(width));
    conv3_ = register_module("conv3", make_conv(width, width * expansion, 1, 1, generator));
    bn3_ = register_module("bn3", std::make_shared<BatchNorm2d>(width * expansion));
    if (auto downsample = make_downsample(in_channels, width * expansion, stride, generator)) {
        downsample_ = register_module("downsample", downsample);
    }
}

Tensor Bottleneck::forward(const Tensor& input) {
    Tensor out = relu((*bn1_)((*conv1_)(input)));
    out = relu((*bn2_)((*conv2_)(out)));
    out = (*bn3_)((*conv3_)(out));
    Tensor shortcut = downsample_ ? (*downsample_)(input) : input;
    return relu(add(out, shortcut));
}

std::vector<int> resnet_stage_blocks(int depth) {
    switch (depth) {
        case 18: return {2, 2, 2, 2};
        case 34: return {3, 4, 6, 3};
        case 50: return {3, 4, 6, 3};
        case 101: return {3, 4, 23, 3};
        case 152: return {3, 8, 36, 3};
    }
    fail("ResNet", "unsupported depth ", depth, " (expected 18, 34, 50, 101 or 152)");
}

namespace {
template <typename Block>
std::shared_ptr<Sequential> make_stage(std::int64_t& in_channels, std::int64_t width, int blocks, std::int64_t stride,
                                       bool zero_init_residual, Generator& generator) {
    auto stage = std::make_shared<Sequential>();
    for (int i = 0; i < blocks; ++i) {
        auto block = std::make_shared<Block>(in_channels, width, i == 0 ? stride : 1, generator);
        if (zero_init_residual) block->last_batch_norm().weight.zero_();
        stage->append(block);
        in_channels = width * Block::expansion;
    }
    return stage;
}
}  // namespace

ResNet::ResNet(const ResNetConfig& config) : config_(config) {
    std::vector<int> blocks = resnet_stage_blocks(config.depth);
    check(config.num_classes > 0 && config.in_channels > 0, "ResNet", "num_classes ", config.num_classes,
          " and in_channels ", config.in_channels, " must be positive");
    Generator generator(config.seed);
    conv1_ = register_module("conv1", config.small_stem ? make_conv(config.in_channels, 64, 3, 1, generator)
                                                        : make_conv(config.in_channels, 64, 7, 2, generator));
    bn1_ = register_module("bn1", std::make_shared<BatchNorm2d>(64));
    if (!config.small_stem) maxpool_ = std::make_shared<MaxPool2d>(3, 2, 1);  // no parameters, so unnamed in state

    const bool bottleneck = config.depth >= 50;
    std::int64_t channels = 64;
    const std::int64_t widths[4] = {64, 128, 256, 512};
    for (int stage = 0; stage < 4; ++stage) {
        std::int64_t stride = stage == 0 ? 1 : 2;
        auto layer = bottleneck ? make_stage<Bottleneck>(channels, widths[stage], blocks[stage], stride,
                                                         config.zero_init_residual, generator)
                                : make_stage<BasicBlock>(channels, widths[stage], blocks[stage], stride,
                                                         config.zero_init_residual, generator);
        layers_.push_back(register_module("layer" + std::to_string(stage + 1), layer));
    }
    fc_ = register_module("fc", std::make_shared<Linear>(channels, config.num_classes, true, generator));
}

Tensor ResNet::forward(const Tensor& input) {
    check(input.dim() == 4 && input.size(1) == config_.in_channels, "ResNet", "expected input (N, ",
          config_.in_channels, ", H, W), got ", input.description());
    Tensor x = relu((*bn1_)((*conv1_)(input)));
    if (maxpool_) x = (*maxpool_)(x);
    for (auto& layer : layers_) x = (*layer)(x);
    return (*fc_)(flatten(global_avg_pool2d(x), 1));
}

std::string ResNet::extra_description() const {
    return "depth=" + std::to_string(config_.depth) + ", num_classes=" + std::to_string(config_.num_classes) +
           (config_.small_stem ? ", small_stem" : "");
}

WeightDecaySplit split_for_weight_decay(const Module& module) {
    WeightDecaySplit split;
    for (auto& [name, tensor] : module.named_parameters()) {
        (tensor.dim() <= 1 ? split.no_decay : split.decay).emplace_back(name, tensor);
    }
    return split;
}

}  // namespace cudagrad::nn
