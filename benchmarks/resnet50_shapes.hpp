// The ResNet-50 (v1.5, 224x224) layer shapes the benchmarks use, and the batch sizes.
// Batch: CUDAGRAD_BENCH_BATCHES="32,128,256" (default "128"; the short mode of
// tools/gpu_check.sh uses one batch).
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <sstream>
#include <string>
#include <vector>

namespace cudagrad::bench {

struct ConvLayer {
    const char* name;
    std::int64_t channels, size, out_channels, kernel, stride;  // C, H=W, K, R=S, stride
    std::int64_t padding() const { return kernel / 2; }
    std::int64_t out_size() const { return (size + 2 * padding() - kernel) / stride + 1; }
    // Multiply-adds of the forward pass per image (x2 for FLOPs).
    double macs_per_image() const {
        return static_cast<double>(out_channels) * out_size() * out_size() * channels * kernel * kernel;
    }
};

// The 23 distinct conv shapes of ResNet-50 at 224x224.
inline const std::vector<ConvLayer>& resnet50_conv_layers() {
    static const std::vector<ConvLayer> layers = {
        {"conv1_7x7s2_3to64_224", 3, 224, 64, 7, 2},
        {"layer1_1x1_64to64_56", 64, 56, 64, 1, 1},
        {"layer1_3x3_64to64_56", 64, 56, 64, 3, 1},
        {"layer1_1x1_64to256_56", 64, 56, 256, 1, 1},
        {"layer1_1x1_256to64_56", 256, 56, 64, 1, 1},
        {"layer2_1x1_256to128_56", 256, 56, 128, 1, 1},
        {"layer2_3x3s2_128to128_56", 128, 56, 128, 3, 2},
        {"layer2_1x1_128to512_28", 128, 28, 512, 1, 1},
        {"layer2_1x1s2_256to512_56", 256, 56, 512, 1, 2},
        {"layer2_1x1_512to128_28", 512, 28, 128, 1, 1},
        {"layer2_3x3_128to128_28", 128, 28, 128, 3, 1},
        {"layer3_1x1_512to256_28", 512, 28, 256, 1, 1},
        {"layer3_3x3s2_256to256_28", 256, 28, 256, 3, 2},
        {"layer3_1x1_256to1024_14", 256, 14, 1024, 1, 1},
        {"layer3_1x1s2_512to1024_28", 512, 28, 1024, 1, 2},
        {"layer3_1x1_1024to256_14", 1024, 14, 256, 1, 1},
        {"layer3_3x3_256to256_14", 256, 14, 256, 3, 1},
        {"layer4_1x1_1024to512_14", 1024, 14, 512, 1, 1},
        {"layer4_3x3s2_512to512_14", 512, 14, 512, 3, 2},
        {"layer4_1x1_512to2048_7", 512, 7, 2048, 1, 1},
        {"layer4_1x1s2_1024to2048_14", 1024, 14, 2048, 1, 2},
        {"layer4_1x1_2048to512_7", 2048, 7, 512, 1, 1},
        {"layer4_3x3_512to512_7", 512, 7, 512, 3, 1},
    };
    return layers;
}

// The activation shapes (C, H=W) the memory-bound ops see: the output of each stage's convs.
struct ActivationShape {
    const char* name;
    std::int64_t channels, size;
};
inline const std::vector<ActivationShape>& resnet50_activations() {
    static const std::vector<ActivationShape> shapes = {
        {"stem_64x112", 64, 112},  {"layer1_256x56", 256, 56}, {"layer2_512x28", 512, 28},
        {"layer3_1024x14", 1024, 14}, {"layer4_2048x7", 2048, 7},
    };
    return shapes;
}

// Batch sizes from CUDAGRAD_BENCH_BATCHES (comma-separated), default {128}.
inline std::vector<std::int64_t> benchmark_batches() {
    std::vector<std::int64_t> batches;
    const char* text = std::getenv("CUDAGRAD_BENCH_BATCHES");
    std::stringstream stream(text && *text ? text : "128");
    std::string item;
    while (std::getline(stream, item, ',')) {
        if (!item.empty()) batches.push_back(std::max<std::int64_t>(1, std::atoll(item.c_str())));
    }
    return batches;
}

}  // namespace cudagrad::bench
