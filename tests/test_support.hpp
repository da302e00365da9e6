// Assertions every op test uses: an expected error with the pieces its message must name,
// and a passing finite-difference gradient check.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include <cudagrad/cudagrad.hpp>

#include "catch.hpp"
#include "gradcheck.hpp"

namespace cudagrad::testing {

// Runs `action`, which must throw a cudagrad::Error whose message contains every fragment.
inline void require_error(const std::function<void()>& action, const std::vector<std::string>& fragments) {
    try {
        action();
    } catch (const Error& error) {
        const std::string message = error.what();
        INFO("message: " << message);
        for (const std::string& fragment : fragments) {
            INFO("expected fragment: " << fragment);
            CHECK(message.find(fragment) != std::string::npos);
        }
        return;
    }
    FAIL("expected a cudagrad::Error");
}

inline void require_gradcheck(const TensorFunction& function, const std::vector<Tensor>& inputs,
                              const GradcheckOptions& options = {}) {
    GradcheckResult result = gradcheck(function, inputs, options);
    INFO(result.report);
    REQUIRE(result.passed);
    REQUIRE(result.checked > 0);
}

}  // namespace cudagrad::testing
