// The fused SGD-momentum step over every float32 parameter of an optimiser on one GPU
// (kernels/sgd.cu): one kernel launch per step, whatever the number of parameters.
// CUDA-free, so src/optim/sgd.cpp (plain C++) can call it.
//
// How it is driven: the host lists the parameters that have a gradient (SgdParameterUpdate),
// build_sgd_table packs them with the chunk -> parameter map into an int64 table, the caller
// copies that table into a device int64 tensor (copy_host_to_device), then sgd_step launches
// one block per chunk.
#pragma once

#include <cstdint>
#include <vector>

namespace cudagrad::cuda {

// One parameter's update: contiguous device arrays of `count` floats.
struct SgdParameterUpdate {
    float* weight = nullptr;
    const float* gradient = nullptr;
    float* buffer = nullptr;  // the momentum buffer; unused (may be null) without momentum
    std::int64_t count = 0;
    float weight_decay = 0.0f;      // the group's, already rounded to float
    bool use_weight_decay = false;  // the group's weight decay (a double) != 0
    bool first_step = false;        // the buffer is new: buffer = d instead of the update
};

// The settings shared by every parameter, already rounded to float as the CPU does.
struct SgdHyperparameters {
    float lr = 0.0f;
    float momentum = 0.0f;
    float one_minus_dampening = 1.0f;
    bool use_momentum = false;  // momentum (a double) != 0
    bool nesterov = false;
};

// Elements one block updates (the last chunk of a parameter may be shorter).
constexpr std::int64_t sgd_chunk_elements = 8192;

// Packs the updates into `table` (replacing its contents): per parameter 8 int64 words
// (weight, gradient, buffer pointers, count, weight-decay float bits, flags, first chunk, 0),
// then per chunk the index of its parameter. Returns the number of chunks (the grid size).
// Parameters with count 0 get no chunk.
std::int64_t build_sgd_table(const std::vector<SgdParameterUpdate>& updates, std::vector<std::int64_t>& table);

// Launches the step on the current device. `device_table` is a device copy of build_sgd_table's
// table for `parameters` updates and `chunks` chunks.
void sgd_step(const std::int64_t* device_table, std::int64_t parameters, std::int64_t chunks,
              const SgdHyperparameters& hyperparameters);

}  // namespace cudagrad::cuda
