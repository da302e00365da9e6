// The finite-difference gradient checker every op test uses (as in Caffe).
//
// For y = f(inputs), it draws a fixed random projection v shaped like y and compares
//   analytic:  d(sum(v * y)) / d input[i]  from backward() with output gradient v
//   numeric:   (L(input[i] + eps) - L(input[i] - eps)) / (2 eps),  L = sum(v * f(...))
// for every element of every input that requires a gradient. Inputs must be float64: central
// differences in float32 lose all their digits to rounding.
// Near a kink (ReLU at 0, two equal maxima in a pooling window) the numeric derivative is
// meaningless, so tests draw inputs away from ties rather than loosening the tolerance.
#pragma once

#include <cmath>
#include <functional>
#include <sstream>
#include <string>
#include <vector>

#include <cudagrad/cudagrad.hpp>

namespace cudagrad::testing {

struct GradcheckOptions {
    double eps = 1e-6;
    double atol = 1e-6;
    double rtol = 1e-5;
};

struct GradcheckResult {
    bool passed = true;
    double max_error = 0.0;  // largest |analytic - numeric| seen
    std::int64_t checked = 0;
    std::string report;  // the first mismatches, for the test log
};

using TensorFunction = std::function<Tensor(const std::vector<Tensor>&)>;

inline double projected_sum(const Tensor& output, const std::vector<double>& projection) {
    std::vector<double> values = output.to_double_vector();
    double total = 0.0;
    for (std::size_t i = 0; i < values.size(); ++i) total += values[i] * projection[i];
    return total;
}

inline GradcheckResult gradcheck(const TensorFunction& function, const std::vector<Tensor>& inputs,
                                 const GradcheckOptions& options = {}) {
    GradcheckResult result;
    for (const Tensor& input : inputs) {
        check(!input.defined() || (input.dtype() == DType::Float64 && input.is_contiguous()), "gradcheck",
              "inputs must be contiguous float64, got ", input.description());
    }
    // Analytic gradients.
    for (const Tensor& input : inputs) {
        if (input.defined()) Tensor(input).zero_grad();
    }
    Tensor output = function(inputs);
    Generator generator(1234);
    std::vector<double> projection(static_cast<std::size_t>(output.numel()));
    for (double& value : projection) value = generator.uniform() * 2.0 - 1.0;
    output.backward(Tensor::from_vector(projection, output.shape()));

    std::ostringstream report;
    int reported = 0;
    for (std::size_t which = 0; which < inputs.size(); ++which) {
        const Tensor& input = inputs[which];
        if (!input.defined() || !input.requires_grad()) continue;
        Tensor analytic = input.grad();
        std::vector<double> analytic_values =
            analytic.defined() ? analytic.to_double_vector() : std::vector<double>(input.numel(), 0.0);
        double* values = input.data<double>();
        for (std::int64_t i = 0; i < input.numel(); ++i) {
            const double saved = values[i];
            double plus, minus;
            {
                NoGradGuard no_grad;
                values[i] = saved + options.eps;
                plus = projected_sum(function(inputs), projection);
                values[i] = saved - options.eps;
                minus = projected_sum(function(inputs), projection);
                values[i] = saved;
            }
            const double numeric = (plus - minus) / (2.0 * options.eps);
            const double error = std::abs(analytic_values[i] - numeric);
            result.max_error = std::max(result.max_error, error);
            ++result.checked;
            if (error > options.atol + options.rtol * std::abs(numeric)) {
                result.passed = false;
                if (reported++ < 8) {
                    report << "input " << which << " element " << i << ": analytic " << analytic_values[i]
                           << ", numeric " << numeric << "\n";
                }
            }
        }
    }
    report << result.checked << " elements checked, max error " << result.max_error;
    result.report = report.str();
    return result;
}

// A float64 tensor of uniform values in [low, high) that requires a gradient.
inline Tensor random_input(const Shape& shape, Generator& generator, double low = -1.0, double high = 1.0) {
    Tensor tensor = Tensor::empty(shape, DType::Float64);
    uniform_(tensor, low, high, generator);
    tensor.set_requires_grad(true);
    return tensor;
}

}  // namespace cudagrad::testing
