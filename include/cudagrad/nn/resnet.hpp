// ResNet v1.5 (He et al. 2016, with the stride of a downsampling bottleneck on its 3x3 conv,
// as torchvision), in depths 18, 34, 50, 101 and 152, with torchvision's module names so its
// weights load as they are.
//
//   stem:    conv1 7x7/2 (or 3x3/1 for small images) -> bn1 -> relu -> maxpool 3x3/2 (none for small)
//   layer1:  blocks at 64 channels (x4 for bottlenecks), stride 1
//   layer2:  128, first block stride 2;  layer3: 256, stride 2;  layer4: 512, stride 2
//   head:    avgpool (global) -> flatten -> fc
//
// A block: out = relu(branch(x) + shortcut(x)), shortcut = x, or conv1x1(stride) + bn when
// the shape changes ("downsample").
#pragma once

#include <memory>
#include <vector>

#include "cudagrad/nn/layers.hpp"

namespace cudagrad::nn {

// Two 3x3 convs; ResNet-18 and -34.
class BasicBlock : public Module {
public:
    static constexpr std::int64_t expansion = 1;
    BasicBlock(std::int64_t in_channels, std::int64_t width, std::int64_t stride, Generator& generator);
    Tensor forward(const Tensor& input) override;
    std::string type_name() const override { return "BasicBlock"; }
    BatchNorm2d& last_batch_norm() { return *bn2_; }

private:
    std::shared_ptr<Conv2d> conv1_, conv2_;
    std::shared_ptr<BatchNorm2d> bn1_, bn2_;
    std::shared_ptr<Sequential> downsample_;  // null when the shortcut is the identity
};

// 1x1 (reduce to width) -> 3x3 (stride) -> 1x1 (expand to 4 x width); ResNet-50 and deeper.
class Bottleneck : public Module {
public:
    static constexpr std::int64_t expansion = 4;
    Bottleneck(std::int64_t in_channels, std::int64_t width, std::int64_t stride, Generator& generator);
    Tensor forward(const Tensor& input) override;
    std::string type_name() const override { return "Bottleneck"; }
    BatchNorm2d& last_batch_norm() { return *bn3_; }

private:
    std::shared_ptr<Conv2d> conv1_, conv2_, conv3_;
    std::shared_ptr<BatchNorm2d> bn1_, bn2_, bn3_;
    std::shared_ptr<Sequential> downsample_;
};

struct ResNetConfig {
    int depth = 50;                   // 18, 34, 50, 101 or 152
    std::int64_t num_classes = 1000;
    std::int64_t in_channels = 3;
    bool small_stem = false;          // 3x3 stride-1 conv1 and no max-pool, for 28-64 px inputs
    bool zero_init_residual = false;  // last BN of each block starts at weight 0
    std::uint64_t seed = 0;           // for the initial weights
};

class ResNet : public Module {
public:
    explicit ResNet(const ResNetConfig& config);
    Tensor forward(const Tensor& input) override;
    std::string type_name() const override { return "ResNet"; }
    std::string extra_description() const override;
    const ResNetConfig& config() const { return config_; }

private:
    ResNetConfig config_;
    std::shared_ptr<Conv2d> conv1_;
    std::shared_ptr<BatchNorm2d> bn1_;
    std::shared_ptr<MaxPool2d> maxpool_;  // null with the small stem
    std::vector<std::shared_ptr<Sequential>> layers_;
    std::shared_ptr<Linear> fc_;
};

// The blocks per stage for a depth, e.g. 50 -> {3, 4, 6, 3}; an error for other depths.
std::vector<int> resnet_stage_blocks(int depth);

// Splits the parameters for weight decay as usual: conv and linear weights decay; batch norm
// weights and every bias (all 1-d parameters) do not.
struct WeightDecaySplit {
    NamedTensors decay, no_decay;
};
WeightDecaySplit split_for_weight_decay(const Module& module);

}  // namespace cudagrad::nn
