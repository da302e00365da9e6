// Which implementation runs each GPU op, and at which precision.
//
// Most GPU ops have more than one implementation: cudagrad's own CUDA kernels (kernels/*.cu,
// several versions for GEMM and convolution, from the readable one to the fast one) and the
// vendor library's (cuDNN, cuBLAS). One registry holds the choice per op family:
//
//   op family    choices (default first)
//   conv2d       cudnn, direct, implicit_gemm, tensor_core
//   gemm         cublas, naive, tiled, register_blocked, vectorized, warp_tiled, tensor_core
//   batch_norm   cudnn, cuda
//   max_pool     cudnn, cuda
//   avg_pool     cudnn, cuda
//   relu         cudnn, cuda
//   softmax      cudnn, cuda     (softmax and log_softmax; cross_entropy always runs
//                                the fused kernel: one pass instead of three)
//
// The defaults are the vendor libraries until a measurement on a GPU says otherwise
// (docs/benchmarks.md). Choose with set_implementation("batch_norm", "cuda") or, for a whole
// process, the environment: CUDAGRAD_IMPL=batch_norm:cuda,max_pool:cuda. When cuDNN declines a
// configuration (CUDNN_STATUS_NOT_SUPPORTED) the op runs cudagrad's kernel instead and says so
// once on standard error. Ops with a single GPU implementation (add, SGD, cross-entropy, ...)
// are not listed.
//
// The math mode sets the precision of the matrix products inside conv2d and gemm: fp32
// (default; plain float arithmetic), tf32 (tensor cores, 10-bit mantissa inputs, fp32
// accumulation, as PyTorch's allow_tf32) or bf16 (inputs rounded to bfloat16, fp32
// accumulation). Tensors stay float32 in every mode. Environment: CUDAGRAD_MATH=tf32.
#pragma once

#include <string>
#include <vector>

namespace cudagrad {

// The op families that have a choice, in the order of the table above.
std::vector<std::string> implementation_ops();
// The choices for one op family; throws naming the op and the known families if it is unknown.
std::vector<std::string> implementation_choices(const std::string& op);
// Throws naming the op and the valid choices for an unknown op or implementation.
void set_implementation(const std::string& op, const std::string& implementation);
std::string implementation(const std::string& op);
// Restores the defaults (then applies nothing from the environment).
void reset_implementations();
// "conv2d=cudnn gemm=cublas batch_norm=cudnn ... math=fp32"
std::string describe_implementations();

enum class MathMode { FP32, TF32, BF16 };
void set_math_mode(MathMode mode);
MathMode math_mode();
const char* math_mode_name(MathMode mode);  // "fp32", "tf32", "bf16"
MathMode parse_math_mode(const std::string& text);  // throws naming the text

// Deterministic algorithms only (cuDNN convolutions whose results do not depend on the order of
// atomic additions), as torch.backends.cudnn.deterministic. Off by default; environment:
// CUDAGRAD_DETERMINISTIC=1.
void set_deterministic(bool enabled);
bool deterministic();

// Sets the implementations from a "op:choice,op:choice" list (the CUDAGRAD_IMPL syntax);
// everything is checked before anything changes.
void set_implementations_from_string(const std::string& text);

}  // namespace cudagrad
