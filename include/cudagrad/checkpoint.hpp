// Training checkpoints in the safetensors layout (8-byte header length, JSON header, raw
// little-endian data), so any safetensors reader opens them.
//
//   tensors:   the model's state under its own names (torchvision's: "conv1.weight", ...);
//              the optimiser's state under "optimizer.<key>" (momentum buffers);
//   metadata:  "format" = "cudagrad.checkpoint.v1", "epoch", "step", "rng_state",
//              "best_top1", and the training configuration as "config.<flag>" strings.
//
// A file with model tensors only (e.g. converted from torchvision by tools/convert_torchvision.py)
// loads as weights. Writes are atomic (temporary file, then rename); loads check everything
// before changing the model or the optimiser.
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <string>

#include "cudagrad/nn/module.hpp"
#include "cudagrad/optim.hpp"

namespace cudagrad {

struct CheckpointInfo {
    std::int64_t epoch = 0;  // epochs completed
    std::int64_t step = 0;   // optimiser steps completed
    std::array<std::uint64_t, 4> rng_state{};
    double best_top1 = 0.0;
    std::map<std::string, std::string> config;  // flag name -> value as given
};

// optimizer may be null (weights only).
void save_checkpoint(const std::string& path, const nn::Module& model, const SGD* optimizer,
                     const CheckpointInfo& info);

// Loads the model's tensors (all must be present, with the model's shapes), and, when
// optimizer is not null, its state. Returns the metadata; rng_state is zero when absent.
CheckpointInfo load_checkpoint(const std::string& path, nn::Module& model, SGD* optimizer = nullptr);

}  // namespace cudagrad
