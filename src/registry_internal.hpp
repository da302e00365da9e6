// What the op files need from the registry beyond the public API: a once-only notice, and the
// pattern "run the vendor version, and if it declines this configuration, run ours".
#pragma once

#include <string>

#include "cudagrad/error.hpp"
#include "cudagrad/registry.hpp"

namespace cudagrad::detail {

// A vendor library declined a configuration (cuDNN's CUDNN_STATUS_NOT_SUPPORTED): not a
// failure, a reason to run cudagrad's own kernel. Thrown by check_cudnn (cuda/check.hpp).
class VendorDeclined : public Error {
public:
    using Error::Error;
};

// Prints "cudagrad: <message>" on standard error the first time `key` is seen.
void notice_once(const std::string& key, const std::string& message);

// Runs vendor(); if the vendor library declines the configuration, says so once for `op` and
// runs ours() instead. Any other error propagates.
template <typename Vendor, typename Ours>
void run_with_fallback(const char* op, Vendor&& vendor, Ours&& ours) {
    try {
        vendor();
    } catch (const VendorDeclined& declined) {
        notice_once(std::string(op) + " fallback", std::string(op) + ": the vendor library declined (" +
                                                      declined.what() + "); running cudagrad's kernel instead");
        ours();
    }
}

}  // namespace cudagrad::detail
