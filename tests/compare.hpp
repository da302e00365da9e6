// Element-by-element comparison with |actual - expected| <= atol + rtol * |expected|, the
// tolerance rule used across the test suite. On failure the report names the worst element.
#pragma once

#include <cmath>
#include <sstream>
#include <string>

#include <cudagrad/cudagrad.hpp>

#include "catch.hpp"

namespace cudagrad::testing {

struct Comparison {
    bool close = true;
    double max_abs_error = 0.0;
    std::string report;
};

inline Comparison compare(const Tensor& actual, const Tensor& expected, double rtol, double atol) {
    Comparison result;
    std::ostringstream report;
    if (!actual.defined() || !expected.defined() || actual.shape() != expected.shape()) {
        result.close = false;
        result.report = "shape mismatch: " + actual.description() + " vs expected " + expected.description();
        return result;
    }
    std::vector<double> a = actual.to_double_vector();
    std::vector<double> e = expected.to_double_vector();
    std::size_t worst = 0;
    double worst_excess = -1.0;
    std::int64_t failures = 0;
    for (std::size_t i = 0; i < a.size(); ++i) {
        double error = std::abs(a[i] - e[i]);
        double allowed = atol + rtol * std::abs(e[i]);
        if (std::isnan(a[i]) != std::isnan(e[i])) error = INFINITY;  // a NaN never matches a number
        if (std::isnan(a[i]) && std::isnan(e[i])) error = 0.0;
        result.max_abs_error = std::max(result.max_abs_error, error);
        if (!(error <= allowed)) {
            ++failures;
            if (error - allowed > worst_excess) {
                worst_excess = error - allowed;
                worst = i;
            }
        }
    }
    result.close = failures == 0;
    report << actual.description() << ": " << failures << " of " << a.size() << " elements outside rtol " << rtol
           << ", atol " << atol << "; max abs error " << result.max_abs_error;
    if (failures) report << "; worst at flat index " << worst << ": " << a[worst] << " vs expected " << e[worst];
    result.report = report.str();
    return result;
}

}  // namespace cudagrad::testing

namespace cudagrad::testing {
// Checks inside a Catch2 test (include catch.hpp first), printing the report when it fails.
inline void require_close(const Tensor& actual, const Tensor& expected, double rtol, double atol) {
    Comparison comparison = compare(actual, expected, rtol, atol);
    INFO(comparison.report);
    REQUIRE(comparison.close);
}
}  // namespace cudagrad::testing
