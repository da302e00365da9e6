// Optimisation: stochastic gradient descent with momentum, and learning-rate schedules.
//
// SGD follows torch.optim.SGD (foreach=False) step for step, so that a run here and a run in
// PyTorch from the same weights and gradients end at the same weights. For each parameter w
// with a gradient g, at learning rate lr:
//     d = g + weight_decay * w                      (L2 penalty folded into the gradient)
//     if momentum != 0:
//         buffer = d                                 on the parameter's first step (a copy)
//         buffer = momentum * buffer + (1 - dampening) * d    afterwards
//         d = d + momentum * buffer   if nesterov, else   d = buffer
//     w = w - lr * d
// Parameters without a gradient are skipped and their buffers left as they were.
//
// The learning rate is one number shared by every group and set from outside, usually from a
// schedule at the start of each iteration:
//     optimizer.set_lr(schedule.lr_at(optimizer.step_count()));
//     loss.backward(); optimizer.step(); optimizer.zero_grad();
// Weight decay is per group, so batch-norm scales and biases can go in a group with none, as
// the usual ResNet recipes do.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "cudagrad/tensor.hpp"

namespace cudagrad {

struct SgdOptions {
    double lr = 0.1;
    double momentum = 0.0;
    double dampening = 0.0;
    double weight_decay = 0.0;  // for groups that do not set their own
    bool nesterov = false;
};

struct ParameterGroup {
    std::vector<Tensor> parameters;
    std::optional<double> weight_decay;  // unset: SgdOptions::weight_decay
    // Optional, one per parameter: the names used as state_dict keys ("layer1.0.conv1.weight").
    // Without names a parameter's key is "<group index>.<index within the group>".
    std::vector<std::string> names;
};

// A group from named parameters (as Module::named_parameters() or nn::split_for_weight_decay
// return them), keeping the names as state_dict keys.
ParameterGroup named_parameter_group(const std::vector<std::pair<std::string, Tensor>>& named,
                                     std::optional<double> weight_decay = std::nullopt);

class SGD {
public:
    // Throws cudagrad::Error (naming SGD and the value) for lr, momentum, dampening or a weight
    // decay below zero, nesterov without momentum or with dampening, an undefined or
    // non-floating parameter, a parameter listed twice, names that do not match the parameters
    // in number, and duplicate names.
    SGD(std::vector<ParameterGroup> groups, SgdOptions options);
    // Moves but does not copy: a copy would share (and double-step) the momentum buffers.
    SGD(const SGD&) = delete;
    SGD& operator=(const SGD&) = delete;
    SGD(SGD&&) = default;
    SGD& operator=(SGD&&) = default;

    // One update of every parameter that has a gradient. Runs without recording a graph and
    // writes into the parameters' own storage, so modules holding the parameter Tensors see the
    // new values. Every parameter is checked (gradient shape and dtype, CPU) before any is
    // changed, so a failed step leaves the weights and buffers as they were.
    void step();

    // Drops (set_to_none) or zeroes every parameter's gradient, as PyTorch's zero_grad.
    void zero_grad(bool set_to_none = true);

    void set_lr(double lr);  // lr >= 0
    double lr() const { return lr_; }
    const SgdOptions& options() const { return options_; }
    const std::vector<ParameterGroup>& groups() const { return groups_; }
    double weight_decay(std::size_t group) const;  // the group's effective weight decay

    // Number of step() calls so far (restored by load_state_dict).
    std::int64_t step_count() const { return step_count_; }

    // The momentum buffer of a parameter, undefined before its first step (or without momentum).
    Tensor momentum_buffer(std::size_t group, std::size_t index) const;

    // Optimiser state for checkpoints, ready for save_safetensors:
    //   "step"                     int64 [1]    step_count()
    //   "lr"                       float64 [1]  lr()
    //   "momentum_buffer_present"  int64 [P]    1 where parameter p (groups in order) has a buffer
    //   "momentum_buffer.<key>"    one per present buffer, shaped like its parameter
    // The tensors are copies: stepping afterwards does not change a saved state.
    std::map<std::string, Tensor> state_dict() const;

    // Restores a state_dict() of an optimiser over the same parameters (same keys). Everything is
    // checked before anything changes; errors name the missing, unexpected or mis-shaped tensor.
    // Buffers are copied into this optimiser (converted to the parameter's dtype and device).
    void load_state_dict(const std::map<std::string, Tensor>& state);

    // The state_dict key of a parameter: "<name>" or "<group>.<index>".
    const std::string& parameter_key(std::size_t group, std::size_t index) const;

private:
    std::vector<ParameterGroup> groups_;
    SgdOptions options_;
    double lr_;
    std::int64_t step_count_ = 0;
    std::vector<std::vector<Tensor>> momentum_buffers_;  // [group][index], undefined until first step
    std::vector<std::vector<std::string>> keys_;        // [group][index]
};

// ------------------------------------------------------------------ learning-rate schedules
//
// A schedule maps the number of optimiser steps taken so far (0 for the first iteration) to a
// learning rate. The formulas match PyTorch's schedulers when those are stepped once per
// iteration; lr_at is a pure function, so resuming a run needs only the step count.
class LrSchedule {
public:
    virtual ~LrSchedule();
    virtual double lr_at(std::int64_t step) const = 0;  // step >= 0, else cudagrad::Error
    virtual std::string describe() const = 0;           // "StepLR(base_lr=0.1, step_size=30, gamma=0.1)"
};

// base_lr * gamma^floor(step / step_size)          (torch.optim.lr_scheduler.StepLR)
class StepLR : public LrSchedule {
public:
    StepLR(double base_lr, std::int64_t step_size, double gamma = 0.1);
    double lr_at(std::int64_t step) const override;
    std::string describe() const override;

private:
    double base_lr_;
    std::int64_t step_size_;
    double gamma_;
};

// base_lr * gamma^(number of milestones <= step)     (torch.optim.lr_scheduler.MultiStepLR;
// a milestone listed twice counts twice, as there)
class MultiStepLR : public LrSchedule {
public:
    MultiStepLR(double base_lr, std::vector<std::int64_t> milestones, double gamma = 0.1);
    double lr_at(std::int64_t step) const override;
    std::string describe() const override;

private:
    double base_lr_;
    std::vector<std::int64_t> milestones_;  // sorted
    double gamma_;
};

// min_lr + (base_lr - min_lr) * (1 + cos(pi * step / total_steps)) / 2
// (torch.optim.lr_scheduler.CosineAnnealingLR with T_max = total_steps, eta_min = min_lr). As in
// PyTorch the cosine goes on past total_steps and the rate climbs again; WarmupCosine stays at
// min_lr instead.
class CosineAnnealingLR : public LrSchedule {
public:
    CosineAnnealingLR(double base_lr, std::int64_t total_steps, double min_lr = 0.0);
    double lr_at(std::int64_t step) const override;
    std::string describe() const override;

private:
    double base_lr_;
    std::int64_t total_steps_;
    double min_lr_;
};

// Linear warm-up from warmup_start_factor * base_lr at step 0 to base_lr at step warmup_steps,
// then a cosine from base_lr down to min_lr at step total_steps, and min_lr from there on.
// Equal to PyTorch's SequentialLR([LinearLR(start_factor, total_iters=warmup_steps),
// CosineAnnealingLR(T_max=total_steps - warmup_steps, eta_min=min_lr)], [warmup_steps]) up to
// total_steps. warmup_steps may be 0.
class WarmupCosine : public LrSchedule {
public:
    WarmupCosine(double base_lr, std::int64_t warmup_steps, std::int64_t total_steps, double min_lr = 0.0,
                 double warmup_start_factor = 0.1);
    double lr_at(std::int64_t step) const override;
    std::string describe() const override;

private:
    double base_lr_;
    std::int64_t warmup_steps_;
    std::int64_t total_steps_;
    double min_lr_;
    double warmup_start_factor_;
};

// torch.optim.lr_scheduler.OneCycleLR with anneal_strategy="cos" and cycle_momentum=False:
// initial = max_lr / div_factor, final = initial / final_div_factor;
//   two phases:   initial -> max_lr over steps [0, pct_start * total - 1],
//                 max_lr -> final  up to step total - 1
//   three_phase:  initial -> max_lr -> initial (ending at 2 * pct_start * total - 2) -> final
// each a cosine in the fraction of its phase, with PyTorch's (fractional) phase boundaries.
// Steps beyond total_steps are an error, as in PyTorch. The momentum cycling of PyTorch's
// default is not reproduced: SGD's momentum stays fixed.
class OneCycleLR : public LrSchedule {
public:
    OneCycleLR(double max_lr, std::int64_t total_steps, double pct_start = 0.3, double div_factor = 25.0,
               double final_div_factor = 1e4, bool three_phase = false);
    double lr_at(std::int64_t step) const override;
    std::string describe() const override;

private:
    struct Phase {
        double end_step;
        double start_lr;
        double end_lr;
    };
    double max_lr_;
    std::int64_t total_steps_;
    double pct_start_;
    double div_factor_;
    double final_div_factor_;
    bool three_phase_;
    std::vector<Phase> phases_;
};

}  // namespace cudagrad
