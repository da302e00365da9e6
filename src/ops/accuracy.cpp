// top_k_hits: how many rows of a batch have their label among the k highest logits, for
// top-1/top-5 accuracy without copying the logits to the host.
//
//   logits: (N, classes) float32 or float64, labels: (N) int64 -> an int64 scalar (shape [])
//   on the logits' device.
//
// Ranking rule (the evaluation code's, examples/resnet50/common.cpp): class c ranks before the
// label l when logits[n, c] > logits[n, l], or when they are equal and c < l; the label is a hit
// when fewer than k classes rank before it. NaN counts as larger than any number and NaNs tie.
// On the CPU a label outside [0, classes) is an error; on the GPU it counts as a miss (an error
// would need a host synchronisation; the data loader checks labels on the host).
//
// Not differentiable. Speed: one pass over the logits (N x classes reads); on the GPU one
// block-partial count and a final sum (kernels/reduction.cu).
#include <cmath>

#include "cudagrad/ops.hpp"
#include "ops/op_support.hpp"

#ifdef CUDAGRAD_WITH_CUDA
#include "cuda/reduction.hpp"
#endif

namespace cudagrad {
namespace {

constexpr const char* kOp = "top_k_hits";

// a ranks before b (a's value larger, NaN largest).
template <typename T>
bool larger(T a, T b) {
    if (std::isnan(a)) return !std::isnan(b);
    if (std::isnan(b)) return false;
    return a > b;
}

template <typename T>
std::int64_t count_hits(const T* logits, const std::int64_t* labels, std::int64_t rows, std::int64_t classes,
                        std::int64_t k) {
    std::int64_t hits = 0;
    for (std::int64_t n = 0; n < rows; ++n) {
        const std::int64_t label = labels[n];
        check(label >= 0 && label < classes, kOp, "label ", label, " of row ", n, " is outside [0, ", classes, ")");
        const T* row = logits + n * classes;
        std::int64_t ahead = 0;
        for (std::int64_t c = 0; c < classes; ++c) {
            const bool tie = !larger(row[c], row[label]) && !larger(row[label], row[c]);
            if (larger(row[c], row[label]) || (tie && c < label)) ++ahead;
        }
        hits += ahead < k;
    }
    return hits;
}

}  // namespace

Tensor top_k_hits(const Tensor& logits, const Tensor& labels, std::int64_t k) {
    detail::check_input(logits, kOp, "logits");
    detail::check_dim(logits, 2, kOp, "logits");
    check(labels.defined() && labels.dtype() == DType::Int64 && labels.dim() == 1 && labels.size(0) == logits.size(0),
          kOp, "labels must be int64 with shape [", logits.size(0), "] (one per row of logits ",
          shape_string(logits.shape()), "), got ", labels.description());
    check(labels.device() == logits.device(), kOp, "logits and labels are on different devices (",
          logits.description(), " vs ", labels.description(), ")");
    check(k >= 1, kOp, "k must be at least 1, got ", k);
    const std::int64_t rows = logits.size(0), classes = logits.size(1);
    const Tensor scores = logits.contiguous(), targets = labels.contiguous();
    Tensor count = Tensor::empty({}, DType::Int64, logits.device());
    if (logits.device().is_cuda()) {
#ifdef CUDAGRAD_WITH_CUDA
        Tensor partials = Tensor::empty({cuda::top_k_partial_count(rows)}, DType::Int64, logits.device());
        cuda::count_top_k_hits(scores.data<float>(), targets.data<std::int64_t>(), rows, classes, k,
                               partials.data<std::int64_t>(), count.data<std::int64_t>());
#else
        detail::fail_without_cuda(kOp);
#endif
        return count;
    }
    detail::dispatch_floating(logits.dtype(), kOp, [&](auto zero) {
        using T = decltype(zero);
        count.data<std::int64_t>()[0] = count_hits(scores.data<T>(), targets.data<std::int64_t>(), rows, classes, k);
    });
    return count;
}

}  // namespace cudagrad
