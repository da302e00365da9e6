// Shared by the emulation harnesses (tools/cuda_emulation): compares a kernel's float output
// with a double-precision reference, prints one line per mismatch and counts failures, so a
// harness can end with `return finish("family")` (nonzero exit on any mismatch).
#pragma once
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <random>
#include <string>
#include <vector>

#include "cuda_runtime.h"

namespace emulation {

inline int failures = 0;
inline int checks = 0;

// Passes when |got - want| <= atol + rtol * |want| everywhere (NaN only where NaN is expected).
inline void compare(const std::string& what, const float* got, const std::vector<double>& want, double rtol,
                    double atol) {
    ++checks;
    std::size_t bad = 0, first = 0;
    for (std::size_t i = 0; i < want.size(); ++i) {
        const double error = std::fabs(got[i] - want[i]);
        const bool ok = (std::isnan(want[i]) && std::isnan(got[i])) || error <= atol + rtol * std::fabs(want[i]);
        if (!ok && bad++ == 0) first = i;
    }
    if (bad == 0) return;
    ++failures;
    std::printf("  MISMATCH %s: %zu of %zu elements wrong, first at %zu: got %.9g, expected %.9g\n", what.c_str(), bad,
                want.size(), first, got[first], want[first]);
}

inline void compare_integers(const std::string& what, const std::int64_t* got, const std::vector<std::int64_t>& want) {
    ++checks;
    std::size_t bad = 0, first = 0;
    for (std::size_t i = 0; i < want.size(); ++i)
        if (got[i] != want[i] && bad++ == 0) first = i;
    if (bad == 0) return;
    ++failures;
    std::printf("  MISMATCH %s: %zu of %zu wrong, first at %zu: got %lld, expected %lld\n", what.c_str(), bad,
                want.size(), first, static_cast<long long>(got[first]), static_cast<long long>(want[first]));
}

inline void fail(const std::string& what) {
    ++checks;
    ++failures;
    std::printf("  MISMATCH %s\n", what.c_str());
}

// Small integers over a power of two: exact in float, so most sums have no rounding at all and
// a tight tolerance separates a right kernel from a wrong one.
inline std::vector<float> random_values(std::mt19937& rng, std::int64_t count, int low = -8, int high = 8,
                                        float divisor = 4.0f) {
    std::uniform_int_distribution<int> pick(low, high);
    std::vector<float> values(static_cast<std::size_t>(count));
    for (float& v : values) v = static_cast<float>(pick(rng)) / divisor;
    return values;
}

inline int finish(const char* family) {
    std::printf("%s: %d checks, %d mismatches (%ld launches, %ld blocks emulated) -> %s\n", family, checks, failures,
                emu_launches, emu_blocks_run, failures == 0 ? "PASS" : "FAIL");
    return failures == 0 ? 0 : 1;
}

}  // namespace emulation
