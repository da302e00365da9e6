// Definitions the translated kernels link against in tools/cuda_emulation, in place of the
// library's registry and vendor code: the math mode (settable by the harnesses), the
// implementation choice, notice_once and a cuBLAS entry point that always refuses.
#include <cstdio>
#include <set>
#include <string>

#include "cuda/gemm.hpp"
#include "cudagrad/error.hpp"
#include "cudagrad/registry.hpp"
#include "registry_internal.hpp"

namespace cudagrad {

namespace {
MathMode emulated_math_mode = MathMode::FP32;
}
void set_math_mode(MathMode mode) { emulated_math_mode = mode; }
MathMode math_mode() { return emulated_math_mode; }
const char* math_mode_name(MathMode mode) {
    return mode == MathMode::FP32 ? "fp32" : mode == MathMode::TF32 ? "tf32" : "bf16";
}
std::string implementation(const std::string&) { return "cuda"; }

namespace detail {
void notice_once(const std::string& key, const std::string& message) {
    static std::set<std::string> seen;
    if (seen.insert(key).second) std::fprintf(stderr, "cudagrad: %s\n", message.c_str());
}
}  // namespace detail

namespace cuda {
void gemm_cublas(const GemmProblem&, MathMode) { throw Error("cuBLAS is not emulated"); }
}  // namespace cuda

}  // namespace cudagrad
