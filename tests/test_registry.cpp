// The implementation registry (registry.hpp): the choices per op family, selection by API and by
// the CUDAGRAD_IMPL syntax, math mode, deterministic flag, and the errors for unknown names.
// Runs on every machine: the registry is plain host code.
#include "catch.hpp"
#include "registry_internal.hpp"
#include "test_support.hpp"

using namespace cudagrad;
using cudagrad::testing::require_error;

TEST_CASE("every op family has its vendor version first (the default) and cudagrad's kernels") {
    reset_implementations();
    const std::vector<std::string> ops = implementation_ops();
    REQUIRE(ops.size() == 7);
    for (const std::string& op : ops) {
        const std::vector<std::string> choices = implementation_choices(op);
        REQUIRE(choices.size() >= 2);
        CHECK(implementation(op) == choices.front());
        CHECK((choices.front() == "cudnn" || choices.front() == "cublas"));
    }
    CHECK(implementation_choices("gemm").back() == "tensor_core");
    CHECK(math_mode() == MathMode::FP32);
}

TEST_CASE("set_implementation changes one family; reset restores the defaults") {
    reset_implementations();
    set_implementation("batch_norm", "cuda");
    set_implementation("gemm", "warp_tiled");
    CHECK(implementation("batch_norm") == "cuda");
    CHECK(implementation("gemm") == "warp_tiled");
    CHECK(implementation("conv2d") == "cudnn");
    CHECK(describe_implementations().find("batch_norm=cuda") != std::string::npos);
    reset_implementations();
    CHECK(implementation("batch_norm") == "cudnn");
}

TEST_CASE("the CUDAGRAD_IMPL syntax sets several families and checks all before changing any") {
    reset_implementations();
    set_implementations_from_string("max_pool:cuda,conv2d:implicit_gemm");
    CHECK(implementation("max_pool") == "cuda");
    CHECK(implementation("conv2d") == "implicit_gemm");
    require_error([] { set_implementations_from_string("relu:cuda,conv2d:winograd"); }, {"winograd", "conv2d", "choices"});
    CHECK(implementation("relu") == "cudnn");  // untouched: the bad entry stopped the whole list
    require_error([] { set_implementations_from_string("relu=cuda"); }, {"relu=cuda", "op:implementation"});
    reset_implementations();
}

TEST_CASE("unknown op families and implementations are errors that list the valid names") {
    require_error([] { set_implementation("dropout", "cuda"); }, {"dropout", "conv2d", "batch_norm"});
    require_error([] { set_implementation("gemm", "cudnn"); }, {"cudnn", "gemm", "cublas", "tensor_core"});
    require_error([] { implementation("layer_norm"); }, {"layer_norm"});
}

TEST_CASE("math mode and deterministic flag") {
    reset_implementations();
    CHECK(parse_math_mode("tf32") == MathMode::TF32);
    CHECK(parse_math_mode("bf16") == MathMode::BF16);
    CHECK(std::string(math_mode_name(MathMode::FP32)) == "fp32");
    require_error([] { parse_math_mode("fp16"); }, {"fp16", "fp32, tf32 or bf16"});
    set_math_mode(MathMode::TF32);
    CHECK(math_mode() == MathMode::TF32);
    CHECK(describe_implementations().find("math=tf32") != std::string::npos);
    set_deterministic(true);
    CHECK(deterministic());
    set_deterministic(false);
    reset_implementations();
    CHECK(math_mode() == MathMode::FP32);
}

TEST_CASE("run_with_fallback runs ours only when the vendor declines, and passes other errors on") {
    int vendor_calls = 0, our_calls = 0;
    detail::run_with_fallback(
        "test_op", [&] { ++vendor_calls; }, [&] { ++our_calls; });
    CHECK(vendor_calls == 1);
    CHECK(our_calls == 0);
    detail::run_with_fallback(
        "test_op", [&] { throw detail::VendorDeclined("declined"); }, [&] { ++our_calls; });
    CHECK(our_calls == 1);
    require_error(
        [&] {
            detail::run_with_fallback(
                "test_op", [&] { throw Error("broken"); }, [&] { ++our_calls; });
        },
        {"broken"});
    CHECK(our_calls == 1);
}
