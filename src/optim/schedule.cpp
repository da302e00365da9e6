// Learning-rate schedules: StepLR, MultiStepLR, CosineAnnealingLR, WarmupCosine, OneCycleLR.
//
// Each maps the optimiser step count (0 for the first iteration) to a learning rate with a
// closed-form formula (see include/cudagrad/optim.hpp). They must match PyTorch's schedulers
// stepped once per iteration: PyTorch updates most of them recursively (lr *= gamma, a ratio of
// cosines), which agrees with the closed forms to a few ulps, and tests/test_optim.cpp checks
// our values against sequences recorded from PyTorch 1.13 (tools/make_optimizer_fixtures.py) to
// a relative 1e-12. OneCycleLR is computed exactly as PyTorch's get_lr does, fractional phase
// boundaries included.
//
// What limits speed: nothing; one call costs a cos() or a pow(), once per iteration.
#include <algorithm>
#include <cmath>
#include <iomanip>
#include <sstream>

#include "cudagrad/optim.hpp"

namespace cudagrad {
namespace {

constexpr double pi = 3.14159265358979323846;

void check_rate(double value, const char* schedule, const char* name) {
    check(std::isfinite(value) && value >= 0.0, schedule, name, " must be a finite number >= 0, got ", value);
}

void check_step(std::int64_t step, const char* schedule) {
    check(step >= 0, schedule, "the step must be >= 0, got ", step);
}

// min + (max - min) * (1 + cos(pi * t / T)) / 2, written as PyTorch's CosineAnnealingLR writes it.
double cosine_between(double max_lr, double min_lr, double t, double period) {
    return min_lr + (max_lr - min_lr) * (1.0 + std::cos(pi * t / period)) / 2.0;
}

// Formats "Name(key=value, ...)" with enough digits to tell schedules apart.
template <typename... Parts>
std::string describe_parts(Parts&&... parts) {
    std::ostringstream text;
    text << std::setprecision(10);
    (text << ... << std::forward<Parts>(parts));
    return text.str();
}

}  // namespace

LrSchedule::~LrSchedule() = default;

// ------------------------------------------------------------------ StepLR

StepLR::StepLR(double base_lr, std::int64_t step_size, double gamma)
    : base_lr_(base_lr), step_size_(step_size), gamma_(gamma) {
    check_rate(base_lr, "StepLR", "base_lr");
    check(step_size > 0, "StepLR", "step_size must be > 0, got ", step_size);
    check(std::isfinite(gamma) && gamma >= 0.0, "StepLR", "gamma must be a finite number >= 0, got ", gamma);
}

double StepLR::lr_at(std::int64_t step) const {
    check_step(step, "StepLR");
    return base_lr_ * std::pow(gamma_, static_cast<double>(step / step_size_));
}

std::string StepLR::describe() const {
    return describe_parts("StepLR(base_lr=", base_lr_, ", step_size=", step_size_, ", gamma=", gamma_, ")");
}

// ------------------------------------------------------------------ MultiStepLR

MultiStepLR::MultiStepLR(double base_lr, std::vector<std::int64_t> milestones, double gamma)
    : base_lr_(base_lr), milestones_(std::move(milestones)), gamma_(gamma) {
    check_rate(base_lr, "MultiStepLR", "base_lr");
    check(std::isfinite(gamma) && gamma >= 0.0, "MultiStepLR", "gamma must be a finite number >= 0, got ", gamma);
    for (std::int64_t milestone : milestones_)
        check(milestone >= 0, "MultiStepLR", "milestones must be >= 0, got ", milestone);
    std::sort(milestones_.begin(), milestones_.end());
}

double MultiStepLR::lr_at(std::int64_t step) const {
    check_step(step, "MultiStepLR");
    // Python's bisect_right: the number of milestones <= step.
    const auto passed = std::upper_bound(milestones_.begin(), milestones_.end(), step) - milestones_.begin();
    return base_lr_ * std::pow(gamma_, static_cast<double>(passed));
}

std::string MultiStepLR::describe() const {
    std::ostringstream list;
    for (std::size_t i = 0; i < milestones_.size(); ++i) list << (i ? ", " : "") << milestones_[i];
    return describe_parts("MultiStepLR(base_lr=", base_lr_, ", milestones=[", list.str(), "], gamma=", gamma_, ")");
}

// ------------------------------------------------------------------ CosineAnnealingLR

CosineAnnealingLR::CosineAnnealingLR(double base_lr, std::int64_t total_steps, double min_lr)
    : base_lr_(base_lr), total_steps_(total_steps), min_lr_(min_lr) {
    check_rate(base_lr, "CosineAnnealingLR", "base_lr");
    check_rate(min_lr, "CosineAnnealingLR", "min_lr");
    check(total_steps > 0, "CosineAnnealingLR", "total_steps must be > 0, got ", total_steps);
}

double CosineAnnealingLR::lr_at(std::int64_t step) const {
    check_step(step, "CosineAnnealingLR");
    return cosine_between(base_lr_, min_lr_, static_cast<double>(step), static_cast<double>(total_steps_));
}

std::string CosineAnnealingLR::describe() const {
    return describe_parts("CosineAnnealingLR(base_lr=", base_lr_, ", total_steps=", total_steps_,
                          ", min_lr=", min_lr_, ")");
}

// ------------------------------------------------------------------ WarmupCosine

WarmupCosine::WarmupCosine(double base_lr, std::int64_t warmup_steps, std::int64_t total_steps, double min_lr,
                           double warmup_start_factor)
    : base_lr_(base_lr),
      warmup_steps_(warmup_steps),
      total_steps_(total_steps),
      min_lr_(min_lr),
      warmup_start_factor_(warmup_start_factor) {
    check_rate(base_lr, "WarmupCosine", "base_lr");
    check_rate(min_lr, "WarmupCosine", "min_lr");
    check(warmup_steps >= 0, "WarmupCosine", "warmup_steps must be >= 0, got ", warmup_steps);
    check(total_steps > warmup_steps, "WarmupCosine", "total_steps (", total_steps,
          ") must be greater than warmup_steps (", warmup_steps, ")");
    check(warmup_start_factor >= 0.0 && warmup_start_factor <= 1.0, "WarmupCosine",
          "warmup_start_factor must be in [0, 1], got ", warmup_start_factor);
}

double WarmupCosine::lr_at(std::int64_t step) const {
    check_step(step, "WarmupCosine");
    if (step < warmup_steps_) {
        // PyTorch's LinearLR in closed form: start + (end - start) * step / total_iters.
        const double fraction = static_cast<double>(step) / static_cast<double>(warmup_steps_);
        return base_lr_ * (warmup_start_factor_ + (1.0 - warmup_start_factor_) * fraction);
    }
    if (step >= total_steps_) return min_lr_;
    return cosine_between(base_lr_, min_lr_, static_cast<double>(step - warmup_steps_),
                          static_cast<double>(total_steps_ - warmup_steps_));
}

std::string WarmupCosine::describe() const {
    return describe_parts("WarmupCosine(base_lr=", base_lr_, ", warmup_steps=", warmup_steps_,
                          ", total_steps=", total_steps_, ", min_lr=", min_lr_,
                          ", warmup_start_factor=", warmup_start_factor_, ")");
}

// ------------------------------------------------------------------ OneCycleLR

OneCycleLR::OneCycleLR(double max_lr, std::int64_t total_steps, double pct_start, double div_factor,
                       double final_div_factor, bool three_phase)
    : max_lr_(max_lr),
      total_steps_(total_steps),
      pct_start_(pct_start),
      div_factor_(div_factor),
      final_div_factor_(final_div_factor),
      three_phase_(three_phase) {
    constexpr const char* name = "OneCycleLR";
    check_rate(max_lr, name, "max_lr");
    check(total_steps > 0, name, "total_steps must be > 0, got ", total_steps);
    check(pct_start > 0.0 && pct_start < 1.0, name, "pct_start must be in (0, 1), got ", pct_start);
    check(std::isfinite(div_factor) && div_factor > 0.0, name, "div_factor must be > 0, got ", div_factor);
    check(std::isfinite(final_div_factor) && final_div_factor > 0.0, name, "final_div_factor must be > 0, got ",
          final_div_factor);

    const double initial_lr = max_lr / div_factor;
    const double final_lr = initial_lr / final_div_factor;
    const double total = static_cast<double>(total_steps);
    const double warmup_end = pct_start * total - 1.0;  // PyTorch: float(pct_start * total_steps) - 1
    // A first phase ending at step 0 or before would divide by zero (PyTorch returns NaN there).
    check(warmup_end > 0.0, name, "the warm-up phase is empty: pct_start * total_steps must exceed 1, got ",
          pct_start, " * ", total_steps, " = ", pct_start * total);
    if (three_phase) {
        const double cooldown_end = 2.0 * pct_start * total - 2.0;
        check(cooldown_end < total - 1.0, name, "with three_phase, the annealing phase is empty: ",
              "2 * pct_start * total_steps - 2 = ", cooldown_end, " must be below total_steps - 1 = ", total - 1.0);
        phases_ = {{warmup_end, initial_lr, max_lr},
                   {cooldown_end, max_lr, initial_lr},
                   {total - 1.0, initial_lr, final_lr}};
    } else {
        check(total - 1.0 > warmup_end, name, "the annealing phase is empty (total_steps ", total_steps,
              ", pct_start ", pct_start, ")");
        phases_ = {{warmup_end, initial_lr, max_lr}, {total - 1.0, max_lr, final_lr}};
    }
}

double OneCycleLR::lr_at(std::int64_t step) const {
    check_step(step, "OneCycleLR");
    check(step <= total_steps_, "OneCycleLR", "step ", step, " is past the end of the cycle (total_steps ",
          total_steps_, ")");
    const double position = static_cast<double>(step);
    double start_step = 0.0;
    for (std::size_t i = 0; i < phases_.size(); ++i) {
        const Phase& phase = phases_[i];
        if (position <= phase.end_step || i + 1 == phases_.size()) {
            const double fraction = (position - start_step) / (phase.end_step - start_step);
            // PyTorch's _annealing_cos, term for term.
            const double cos_out = std::cos(pi * fraction) + 1.0;
            return phase.end_lr + (phase.start_lr - phase.end_lr) / 2.0 * cos_out;
        }
        start_step = phase.end_step;
    }
    return phases_.back().end_lr;  // not reached: the last phase takes every remaining step
}

std::string OneCycleLR::describe() const {
    return describe_parts("OneCycleLR(max_lr=", max_lr_, ", total_steps=", total_steps_, ", pct_start=", pct_start_,
                          ", div_factor=", div_factor_, ", final_div_factor=", final_div_factor_,
                          ", three_phase=", three_phase_ ? "true" : "false", ")");
}

}  // namespace cudagrad
