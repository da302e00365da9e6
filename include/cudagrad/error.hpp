// Errors: every failure in cudagrad is a cudagrad::Error (a std::runtime_error) whose message
// names the operation and the values that were wrong ("conv2d: input has 3 channels but weight
// expects 4 (input [2, 3, 8, 8], weight [16, 4, 3, 3])").
//
// `check(condition, "op", parts...)` builds the message only when the condition fails, so it
// costs nothing on the hot path beyond the comparison.
#pragma once

#include <sstream>
#include <stdexcept>
#include <string>
#include <utility>

namespace cudagrad {

class Error : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

template <typename... Parts>
[[noreturn]] void fail(const char* op, Parts&&... parts) {
    std::ostringstream message;
    message << op << ": ";
    (message << ... << std::forward<Parts>(parts));
    throw Error(message.str());
}

template <typename... Parts>
void check(bool condition, const char* op, Parts&&... parts) {
    if (!condition) fail(op, std::forward<Parts>(parts)...);
}

}  // namespace cudagrad
