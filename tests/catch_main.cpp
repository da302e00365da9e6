// The one main() every test binary shares, for Catch2 2 and 3 alike.
// Catch2 2 compiles its runner into the translation unit that defines CATCH_CONFIG_RUNNER;
// Catch2 3 ships it in its library.
//
// Compiled twice (tests/CMakeLists.txt): plainly, and with CUDAGRAD_TEST_NEEDS_GPU for the
// test_cuda_* binaries, whose main first checks for a GPU: none usable means exit code 77,
// which ctest reports as Skipped, unless CUDAGRAD_REQUIRE_GPU=1 demands one (then it fails).
#if !__has_include(<catch2/catch_all.hpp>)
#define CATCH_CONFIG_RUNNER
#endif
#include "catch.hpp"

#ifdef CUDAGRAD_TEST_NEEDS_GPU
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include <cudagrad/device.hpp>
#endif

int main(int argc, char* argv[]) {
#ifdef CUDAGRAD_TEST_NEEDS_GPU
    const char* require = std::getenv("CUDAGRAD_REQUIRE_GPU");
    const bool required = require != nullptr && std::strcmp(require, "1") == 0;
    if (!cudagrad::cuda_available()) {
        if (required) {
            std::fprintf(stderr, "FAILED: CUDAGRAD_REQUIRE_GPU=1 but no GPU is usable (%s)\n",
                         cudagrad::built_with_cuda() ? "see the line above" : "cudagrad was built without CUDA");
            return 1;
        }
        std::printf("Skipped: this test needs a GPU and none is usable\n");
        return 77;
    }
    setenv("CUDAGRAD_POISON_DEVICE_MEMORY", "1", 0);  // read at the first device allocation
    std::printf("%s\n", cudagrad::describe_devices().c_str());
#endif
    return Catch::Session().run(argc, argv);
}
