// Include Catch2 whichever major version is installed (2 on Debian here, 3 on the GPU machine).
#pragma once

#if __has_include(<catch2/catch_all.hpp>)
#include <catch2/catch_all.hpp>
#else
#include <catch2/catch.hpp>
#endif

#include <string>

namespace cudagrad::testing {
// A matcher for exception messages that contain `text`, under either Catch2 version's name.
inline auto message_contains(const std::string& text) {
#if __has_include(<catch2/catch_all.hpp>)
    return Catch::Matchers::ContainsSubstring(text);
#else
    return Catch::Matchers::Contains(text);
#endif
}
}  // namespace cudagrad::testing
