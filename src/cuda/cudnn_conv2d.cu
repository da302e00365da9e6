// conv2d with cuDNN's legacy API: cudnnConvolutionForward, cudnnConvolutionBackwardData,
// cudnnConvolutionBackwardFilter on NCHW tensors (the interface and the precisions are in
// cudnn_conv2d.hpp; the math in cuda/conv2d.hpp). The CPU reference is src/cpu/conv2d.cpp.
//
// Algorithm search. cuDNN offers up to 8 algorithms per pass (implicit GEMM, precomputed
// implicit GEMM, FFT, Winograd, ...) whose speed depends on the shape. The first call for a
// (shape, pass, precision, deterministic, device) runs cudnnFind*AlgorithmEx, which times every
// algorithm on this call's own buffers (its output buffer is then overwritten by the real run)
// with a workspace of the largest size any algorithm asks for, capped at
// cudnn_workspace_limit_bytes(). Find rather than the heuristic cudnnGet*Algorithm_v7: it
// measures instead of guessing (PyTorch's cudnn.benchmark), and its cost, a blocking search of
// some milliseconds, is paid once per shape: ResNet-50 has 23 convolution shapes (x3 passes,
// and again for a smaller last batch), against thousands of steps. The result, the fastest
// algorithm whose status is success, whose workspace fits, and (when deterministic() is on)
// whose determinism is CUDNN_DETERMINISTIC (this excludes BACKWARD_DATA_ALGO_0 and
// BACKWARD_FILTER_ALGO_0/3, which add with atomics), is cached in a map; later calls run it
// directly, with no host synchronisation.
//
// Precision: fp32 searches and runs with CUDNN_FMA_MATH (cuDNN's default math would allow TF32
// on sm_80+, which is not fp32); tf32 with CUDNN_DEFAULT_MATH, then runs with the math type the
// chosen result reports; bf16 converts x, w (or dy) to bfloat16 temporaries first.
//
// Napkin math: cuDNN is the bar the hand-written kernels are measured against (the vs_vendor
// counter of bench_cuda_conv2d): on an H100 its fp32 kernels reach a large part of the ~51
// TFLOP/s FMA peak and its tensor-core kernels several hundred TFLOP/s on ResNet-50's shapes.
// The bf16 path adds conversions: 6 bytes per element of x and w (read 4, write 2) and 6 per
// output element, e.g. ~1.2 ms for the 103M-element layer1 tensors at batch 128.
#include <cuda_bf16.h>
#include <cuda_runtime.h>
#include <cudnn.h>

#include <cstdlib>
#include <map>
#include <mutex>
#include <optional>
#include <string>

#include "cuda/check.hpp"
#include "cuda/context.hpp"
#include "cuda/cudnn_conv2d.hpp"
#include "cuda/cudnn_descriptors.hpp"
#include "cuda/runtime.hpp"
#include "cudagrad/tensor.hpp"
#include "registry_internal.hpp"

namespace cudagrad::cuda {
namespace {

int to_int(std::int64_t value, const ConvProblem& problem) {
    return int_or_decline(value, [&] {
        return "a size exceeds cuDNN's int arguments (" + problem.description() + ")";
    });
}

// x: (N, C, H, W), y: (N, K, P, Q), w: (K, C/groups, R, S), and the convolution.
struct Descriptors {
    TensorDescriptor x, y;
    FilterDescriptor w;
    ConvolutionDescriptor convolution;

    Descriptors(const ConvProblem& p, cudnnDataType_t data_type, cudnnMathType_t math) {
        auto i = [&](std::int64_t value) { return to_int(value, p); };
        set_nchw(x, i(p.N), i(p.C), i(p.H), i(p.W), data_type);
        set_nchw(y, i(p.N), i(p.K), i(p.P), i(p.Q), data_type);
        CUDAGRAD_CUDNN_CHECK(cudnnSetFilter4dDescriptor(w.get(), data_type, CUDNN_TENSOR_NCHW, i(p.K),
                                                        i(p.channels_per_group()), i(p.R), i(p.S)));
        // Cross-correlation (no kernel flip), as PyTorch; float accumulation for float and bf16 data.
        CUDAGRAD_CUDNN_CHECK(cudnnSetConvolution2dDescriptor(convolution.get(), i(p.pad_h), i(p.pad_w), i(p.stride_h),
                                                             i(p.stride_w), i(p.dilation_h), i(p.dilation_w),
                                                             CUDNN_CROSS_CORRELATION, CUDNN_DATA_FLOAT));
        CUDAGRAD_CUDNN_CHECK(cudnnSetConvolutionGroupCount(convolution.get(), i(p.groups)));
        CUDAGRAD_CUDNN_CHECK(cudnnSetConvolutionMathType(convolution.get(), math));
        int n = 0, k = 0, h = 0, w_out = 0;  // cuDNN's output size must be ours (same formula)
        CUDAGRAD_CUDNN_CHECK(
            cudnnGetConvolution2dForwardOutputDim(convolution.get(), x.get(), w.get(), &n, &k, &h, &w_out));
        check(n == p.N && k == p.K && h == p.P && w_out == p.Q, "conv2d", "cuDNN computes an output of ", n, "x", k,
              "x", h, "x", w_out, " for ", p.description(), ", expected ", p.N, "x", p.K, "x", p.P, "x", p.Q);
    }
};

// ---- the algorithm cache ----
struct Choice {
    bool found = false;
    int algorithm = 0;
    cudnnMathType_t math = CUDNN_FMA_MATH;
    std::size_t workspace_bytes = 0;
};

std::mutex cache_mutex;
std::map<std::string, Choice>& cache() {
    static auto* choices = new std::map<std::string, Choice>;  // never destroyed (used until exit)
    return *choices;
}

std::string cache_key(const ConvProblem& p, ConvPass pass, MathMode mode) {
    return p.description() + " " + conv_pass_name(pass) + " " + math_mode_name(mode) +
           (deterministic() ? " deterministic" : "") + " device " + std::to_string(current_device());
}

std::optional<Choice> cached(const std::string& key) {
    std::lock_guard<std::mutex> lock(cache_mutex);
    auto found = cache().find(key);
    if (found == cache().end()) return std::nullopt;
    return found->second;
}

void remember(const std::string& key, const Choice& choice) {
    std::lock_guard<std::mutex> lock(cache_mutex);
    cache()[key] = choice;
}

// The first acceptable result; cuDNN returns them fastest first.
template <typename Perf>
Choice pick(const Perf* results, int count, MathMode mode) {
    for (int i = 0; i < count; ++i) {
        const Perf& result = results[i];
        if (result.status != CUDNN_STATUS_SUCCESS || result.memory > cudnn_workspace_limit_bytes()) continue;
        if (deterministic() && result.determinism != CUDNN_DETERMINISTIC) continue;
        // fp32 stays on FMA math whatever cuDNN reports; otherwise run the math type it timed.
        return Choice{true, static_cast<int>(result.algo), mode == MathMode::FP32 ? CUDNN_FMA_MATH : result.mathType,
                      result.memory};
    }
    return Choice{};
}

cudnnMathType_t search_math(MathMode mode) {
    switch (mode) {
        case MathMode::FP32: return CUDNN_FMA_MATH;
        case MathMode::TF32: return CUDNN_DEFAULT_MATH;  // permits TF32 tensor cores for float data
        case MathMode::BF16: return CUDNN_TENSOR_OP_MATH;
    }
    return CUDNN_FMA_MATH;
}

// The largest workspace any algorithm of the pass needs, up to the limit (the Find workspace).
// Algorithms that do not apply answer with an error status here; they are just skipped.
template <typename Algorithm, typename SizeQuery>
std::size_t largest_workspace(int algorithm_count, SizeQuery&& query) {
    std::size_t largest = 0;
    for (int algorithm = 0; algorithm < algorithm_count; ++algorithm) {
        std::size_t bytes = 0;
        if (query(static_cast<Algorithm>(algorithm), &bytes) == CUDNN_STATUS_SUCCESS &&
            bytes <= cudnn_workspace_limit_bytes() && bytes > largest) {
            largest = bytes;
        }
    }
    return largest;
}

void* workspace_or_null(std::size_t bytes) { return bytes > 0 ? workspace(bytes) : nullptr; }

[[noreturn]] void decline(const ConvProblem& p, ConvPass pass, MathMode mode) {
    throw detail::VendorDeclined(std::string("cuDNN has no ") + math_mode_name(mode) + " " + conv_pass_name(pass) +
                                 " algorithm for " + p.description() + " within the " +
                                 std::to_string(cudnn_workspace_limit_bytes() >> 20) + " MiB workspace limit" +
                                 (deterministic() ? " among the deterministic ones" : ""));
}

// ---- bf16 temporaries ----
__global__ void float_to_bf16_kernel(const float* __restrict__ in, __nv_bfloat16* __restrict__ out,
                                     std::int64_t count) {
    for (std::int64_t i = blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x; i < count;
         i += static_cast<std::int64_t>(gridDim.x) * blockDim.x) {
        out[i] = __float2bfloat16_rn(in[i]);
    }
}

__global__ void bf16_to_float_kernel(const __nv_bfloat16* __restrict__ in, float* __restrict__ out,
                                     std::int64_t count) {
    for (std::int64_t i = blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x; i < count;
         i += static_cast<std::int64_t>(gridDim.x) * blockDim.x) {
        out[i] = __bfloat162float(in[i]);
    }
}

// Device memory for `count` bfloat16 values, from the caching allocator (tensors have no bf16
// dtype, so the storage is a float tensor of half the length).
struct Bf16Buffer {
    Tensor storage;
    explicit Bf16Buffer(std::int64_t count)
        : storage(Tensor::empty({(count + 1) / 2}, DType::Float32, Device::cuda(current_device()))) {}
    __nv_bfloat16* data() const { return reinterpret_cast<__nv_bfloat16*>(storage.data<float>()); }
};

Bf16Buffer to_bf16(const float* values, std::int64_t count) {
    Bf16Buffer buffer(count);
    float_to_bf16_kernel<<<grid_for(count, 256), 256, 0, current_stream()>>>(values, buffer.data(), count);
    CUDAGRAD_LAUNCH_CHECK("float_to_bf16_kernel");
    return buffer;
}

void to_float(const Bf16Buffer& buffer, float* out, std::int64_t count) {
    bf16_to_float_kernel<<<grid_for(count, 256), 256, 0, current_stream()>>>(buffer.data(), out, count);
    CUDAGRAD_LAUNCH_CHECK("bf16_to_float_kernel");
}

// ---- one pass: look up or search the algorithm, then run it ----
// Runs the pass on `a`, `b` -> `out` (forward: x, w -> y; backward data: dy, w -> dx; backward
// weight: x, dy -> dw) in the data type of `mode`.
void run_pass(const ConvProblem& p, ConvPass pass, MathMode mode, const void* a, const void* b, void* out) {
    const cudnnDataType_t data_type = mode == MathMode::BF16 ? CUDNN_DATA_BFLOAT16 : CUDNN_DATA_FLOAT;
    Descriptors d(p, data_type, search_math(mode));
    cudnnHandle_t handle = current_context().cudnn;
    const std::string key = cache_key(p, pass, mode);
    std::optional<Choice> choice = cached(key);
    if (!choice) try {
        constexpr int most = 8;  // >= every *_ALGO_COUNT
        int returned = 0;
        if (pass == ConvPass::Forward) {
            cudnnConvolutionFwdAlgoPerf_t results[most];
            const std::size_t bytes = largest_workspace<cudnnConvolutionFwdAlgo_t>(
                CUDNN_CONVOLUTION_FWD_ALGO_COUNT, [&](cudnnConvolutionFwdAlgo_t algorithm, std::size_t* size) {
                    return cudnnGetConvolutionForwardWorkspaceSize(handle, d.x.get(), d.w.get(), d.convolution.get(),
                                                                   d.y.get(), algorithm, size);
                });
            CUDAGRAD_CUDNN_CHECK(cudnnFindConvolutionForwardAlgorithmEx(
                handle, d.x.get(), a, d.w.get(), b, d.convolution.get(), d.y.get(), out, most, &returned, results,
                workspace_or_null(bytes), bytes));
            choice = pick(results, returned, mode);
        } else if (pass == ConvPass::BackwardData) {
            cudnnConvolutionBwdDataAlgoPerf_t results[most];
            const std::size_t bytes = largest_workspace<cudnnConvolutionBwdDataAlgo_t>(
                CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT, [&](cudnnConvolutionBwdDataAlgo_t algorithm, std::size_t* size) {
                    return cudnnGetConvolutionBackwardDataWorkspaceSize(
                        handle, d.w.get(), d.y.get(), d.convolution.get(), d.x.get(), algorithm, size);
                });
            CUDAGRAD_CUDNN_CHECK(cudnnFindConvolutionBackwardDataAlgorithmEx(
                handle, d.w.get(), b, d.y.get(), a, d.convolution.get(), d.x.get(), out, most, &returned, results,
                workspace_or_null(bytes), bytes));
            choice = pick(results, returned, mode);
        } else {
            cudnnConvolutionBwdFilterAlgoPerf_t results[most];
            const std::size_t bytes = largest_workspace<cudnnConvolutionBwdFilterAlgo_t>(
                CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT,
                [&](cudnnConvolutionBwdFilterAlgo_t algorithm, std::size_t* size) {
                    return cudnnGetConvolutionBackwardFilterWorkspaceSize(
                        handle, d.x.get(), d.y.get(), d.convolution.get(), d.w.get(), algorithm, size);
                });
            CUDAGRAD_CUDNN_CHECK(cudnnFindConvolutionBackwardFilterAlgorithmEx(
                handle, d.x.get(), a, d.y.get(), b, d.convolution.get(), d.w.get(), out, most, &returned, results,
                workspace_or_null(bytes), bytes));
            choice = pick(results, returned, mode);
        }
        remember(key, *choice);
    } catch (const detail::VendorDeclined&) {
        remember(key, Choice{});  // cuDNN refused the configuration itself: do not search again
        throw;
    }
    if (!choice->found) decline(p, pass, mode);

    CUDAGRAD_CUDNN_CHECK(cudnnSetConvolutionMathType(d.convolution.get(), choice->math));
    void* scratch = workspace_or_null(choice->workspace_bytes);
    const float one = 1.0f, zero = 0.0f;  // out = 1 * op(a, b) + 0 * out (float scalars for float and bf16 data)
    if (pass == ConvPass::Forward) {
        CUDAGRAD_CUDNN_CHECK(cudnnConvolutionForward(handle, &one, d.x.get(), a, d.w.get(), b, d.convolution.get(),
                                                     static_cast<cudnnConvolutionFwdAlgo_t>(choice->algorithm), scratch,
                                                     choice->workspace_bytes, &zero, d.y.get(), out));
    } else if (pass == ConvPass::BackwardData) {
        CUDAGRAD_CUDNN_CHECK(cudnnConvolutionBackwardData(
            handle, &one, d.w.get(), b, d.y.get(), a, d.convolution.get(),
            static_cast<cudnnConvolutionBwdDataAlgo_t>(choice->algorithm), scratch, choice->workspace_bytes, &zero,
            d.x.get(), out));
    } else {
        CUDAGRAD_CUDNN_CHECK(cudnnConvolutionBackwardFilter(
            handle, &one, d.x.get(), a, d.y.get(), b, d.convolution.get(),
            static_cast<cudnnConvolutionBwdFilterAlgo_t>(choice->algorithm), scratch, choice->workspace_bytes, &zero,
            d.w.get(), out));
    }
}

// Float inputs (a, b) -> float output of `out_count` elements, converting through bf16 when
// the mode asks for it. A configuration already known to be declined is declined before
// anything is converted.
void run(const ConvProblem& p, ConvPass pass, MathMode mode, const float* a, std::int64_t a_count, const float* b,
         std::int64_t b_count, float* out, std::int64_t out_count) {
    if (mode != MathMode::BF16) return run_pass(p, pass, mode, a, b, out);
    if (std::optional<Choice> known = cached(cache_key(p, pass, mode)); known && !known->found) decline(p, pass, mode);
    const Bf16Buffer a16 = to_bf16(a, a_count), b16 = to_bf16(b, b_count);
    const Bf16Buffer out16(out_count);
    run_pass(p, pass, mode, a16.data(), b16.data(), out16.data());
    to_float(out16, out, out_count);
}

const char* algorithm_name(ConvPass pass, int algorithm) {
    static const char* forward[] = {"IMPLICIT_GEMM", "IMPLICIT_PRECOMP_GEMM", "GEMM", "DIRECT",
                                    "FFT", "FFT_TILING", "WINOGRAD", "WINOGRAD_NONFUSED"};
    static const char* data[] = {"ALGO_0", "ALGO_1", "FFT", "FFT_TILING", "WINOGRAD", "WINOGRAD_NONFUSED"};
    static const char* filter[] = {"ALGO_0", "ALGO_1", "FFT", "ALGO_3", "WINOGRAD", "WINOGRAD_NONFUSED", "FFT_TILING"};
    if (pass == ConvPass::Forward && algorithm >= 0 && algorithm < 8) return forward[algorithm];
    if (pass == ConvPass::BackwardData && algorithm >= 0 && algorithm < 6) return data[algorithm];
    if (pass == ConvPass::BackwardWeight && algorithm >= 0 && algorithm < 7) return filter[algorithm];
    return "unknown";
}

}  // namespace

std::size_t cudnn_workspace_limit_bytes() {
    static const std::size_t limit = [] {
        const char* text = std::getenv("CUDAGRAD_CUDNN_WORKSPACE_MB");
        const long long megabytes = text && *text ? std::atoll(text) : 512;
        return static_cast<std::size_t>(megabytes > 0 ? megabytes : 0) << 20;
    }();
    return limit;
}

void cudnn_conv2d_forward(const ConvProblem& problem, MathMode mode, const float* x, const float* w, float* y) {
    run(problem, ConvPass::Forward, mode, x, problem.x_count(), w, problem.w_count(), y, problem.y_count());
}

void cudnn_conv2d_backward_data(const ConvProblem& problem, MathMode mode, const float* dy, const float* w,
                                float* dx) {
    run(problem, ConvPass::BackwardData, mode, dy, problem.y_count(), w, problem.w_count(), dx, problem.x_count());
}

void cudnn_conv2d_backward_weight(const ConvProblem& problem, MathMode mode, const float* x, const float* dy,
                                  float* dw) {
    run(problem, ConvPass::BackwardWeight, mode, x, problem.x_count(), dy, problem.y_count(), dw, problem.w_count());
}

std::string cudnn_conv2d_choice(const ConvProblem& problem, ConvPass pass, MathMode mode) {
    const std::optional<Choice> choice = cached(cache_key(problem, pass, mode));
    if (!choice) return "not searched yet";
    if (!choice->found) return "no algorithm";
    const char* math = choice->math == CUDNN_FMA_MATH ? "fma" : choice->math == CUDNN_DEFAULT_MATH ? "default math"
                                                                                                  : "tensor ops";
    return std::string(algorithm_name(pass, choice->algorithm)) + ", " + math + ", " +
           std::to_string(choice->workspace_bytes >> 20) + " MiB workspace";
}

}  // namespace cudagrad::cuda
