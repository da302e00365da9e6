// GPU tests for the elementwise ops, relu (both implementations), the reductions, the shape ops,
// Tensor copies of GPU views and gradient accumulation (src/ops/{elementwise,activation,
// reduction,shape}.cpp's GPU paths, kernels/elementwise.cu, kernels/reduction.cu,
// src/cuda/cudnn_activation.cu, kernels/copy.cu), each against the CPU op on the same inputs.
//
// What is checked:
//   - add, sub, mul, scale, add_scalar forward and backward on a ResNet-50 activation at batch 2
//     (2x256x56x56) and odd sizes (counts of 1, 3, 5 and 105: the float4 tail), and on views
//     whose data starts 4 bytes past an aligned address (the scalar path);
//   - relu with cudnn and cuda: forward and backward on the same shapes, inputs with exact
//     zeros (gradient 0 there), NaN forward (passes through); both rungs of the kernel ladder;
//     with cudnn a misaligned view is declined and runs cudagrad's kernel (run_with_fallback);
//   - sum, mean, sum over every dimension (rows short and long, columns, keep_dimension),
//     forward and backward; argmax with ties inside one lane's strided share and across lanes,
//     NaN, every dimension, int64 input; the top-k hit count against the evaluation code's
//     ordering, with ties, NaN and labels out of range;
//   - reshape, flatten, transpose, slice forward and backward; Tensor::contiguous / to / copy_ /
//     fill_ of transposed and sliced GPU tensors, float64 and int64 conversions on the device;
//   - gradient accumulation on the GPU (a tensor used twice, autograd's axpy);
//   - the errors: float64 on a GPU, tensors on different devices.
// Tolerances: the elementwise maps, relu and the SGD-style updates are single correctly rounded
// float operations on both devices (the kernels use __fadd_rn / __fmul_rn, no FMA), so they
// must agree exactly: tolerance 0. Sums accumulate in double on both devices but in a
// different order, so the float results may differ in the last bit: rtol 1e-6, atol 1e-6
// (a wrong index or a missed element changes a sum of uniform [-1, 1) values by ~0.1 or more).
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <functional>
#include <limits>
#include <numeric>
#include <string>
#include <vector>

#include "catch.hpp"
#include "compare.hpp"
#include "cuda_test_support.hpp"
#include "test_support.hpp"

#ifdef CUDAGRAD_WITH_CUDA
#include "cuda/elementwise.hpp"
#include "cuda/reduction.hpp"
#endif

using namespace cudagrad;
using cudagrad::testing::gpu;
using cudagrad::testing::ImplementationGuard;
using cudagrad::testing::random_cpu;
using cudagrad::testing::require_close;
using cudagrad::testing::require_error;
using cudagrad::testing::to_gpu_leaf;

namespace {

constexpr double sum_rtol = 1e-6, sum_atol = 1e-6;

using Unary = std::function<Tensor(const Tensor&)>;
using Binary = std::function<Tensor(const Tensor&, const Tensor&)>;

// The shapes every elementwise op runs on: a ResNet-50 activation at batch 2, then odd counts.
const std::vector<Shape>& elementwise_shapes() {
    static const std::vector<Shape> shapes = {{2, 256, 56, 56}, {1, 3, 7, 5}, {1}, {3}, {5}, {2, 33, 7, 7}};
    return shapes;
}

// The same values as `x`, as a view whose first element sits one float past the start of its
// storage: not 16-byte aligned, so the kernels must take their scalar path.
Tensor misaligned_copy(const Tensor& x) {
    Tensor storage = Tensor::empty({x.numel() + 1}, x.dtype(), x.device());
    Tensor view = storage.slice(0, 1, x.numel() + 1).view(x.shape());
    view.copy_(x);
    return view;
}

// f forward and backward (random upstream gradient) on both devices, compared.
void check_unary(const Unary& f, const Tensor& x_values, double rtol, double atol, std::uint64_t seed,
                 bool misaligned = false) {
    INFO("shape " << shape_string(x_values.shape()) << (misaligned ? ", misaligned" : ""));
    Tensor x_cpu = x_values.clone().set_requires_grad(true);
    Tensor y_cpu = f(x_cpu);
    Tensor upstream = random_cpu(y_cpu.shape(), seed);
    y_cpu.backward(upstream);

    Tensor x_gpu = misaligned ? misaligned_copy(x_values.to(gpu())) : x_values.to(gpu());
    x_gpu.set_requires_grad(true);
    Tensor y_gpu = f(x_gpu);
    REQUIRE(y_gpu.device() == gpu());
    require_close(y_gpu, y_cpu, rtol, atol);
    y_gpu.backward(misaligned ? misaligned_copy(upstream.to(gpu())) : upstream.to(gpu()));
    REQUIRE(x_gpu.grad().defined());
    require_close(x_gpu.grad(), x_cpu.grad(), rtol, atol);
}

void check_binary(const Binary& f, const Shape& shape, std::uint64_t seed, bool misaligned = false) {
    INFO("shape " << shape_string(shape) << (misaligned ? ", misaligned" : ""));
    Tensor a_cpu = random_cpu(shape, seed).set_requires_grad(true);
    Tensor b_cpu = random_cpu(shape, seed + 1).set_requires_grad(true);
    Tensor upstream = random_cpu(shape, seed + 2);
    Tensor y_cpu = f(a_cpu, b_cpu);
    y_cpu.backward(upstream);

    Tensor a_gpu = misaligned ? misaligned_copy(a_cpu.detach().to(gpu())) : a_cpu.detach().to(gpu());
    Tensor b_gpu = misaligned ? misaligned_copy(b_cpu.detach().to(gpu())) : b_cpu.detach().to(gpu());
    a_gpu.set_requires_grad(true);
    b_gpu.set_requires_grad(true);
    Tensor y_gpu = f(a_gpu, b_gpu);
    require_close(y_gpu, y_cpu, 0.0, 0.0);
    y_gpu.backward(upstream.to(gpu()));
    require_close(a_gpu.grad(), a_cpu.grad(), 0.0, 0.0);
    require_close(b_gpu.grad(), b_cpu.grad(), 0.0, 0.0);
}

// A fresh seed (a call, so two in one argument list are not unsequenced modifications).
std::uint64_t next(std::uint64_t& seed) { return ++seed; }

// Uniform values with about a third of them exactly 0 and some exactly -0.0.
Tensor values_with_zeros(const Shape& shape, std::uint64_t seed) {
    std::vector<float> values = random_cpu(shape, seed).to_float_vector();
    for (std::size_t i = 0; i < values.size(); ++i) {
        if (i % 3 == 0) values[i] = 0.0f;
        if (i % 7 == 1) values[i] = -0.0f;
    }
    return Tensor::from_vector(values, shape);
}

}  // namespace

// ------------------------------------------------------------------ elementwise

TEST_CASE("GPU add, sub, mul, scale and add_scalar match the CPU exactly, forward and backward") {
    std::uint64_t seed = 10;
    for (const Shape& shape : elementwise_shapes()) {
        for (bool misaligned : {false, true}) {
            check_binary([](const Tensor& a, const Tensor& b) { return add(a, b); }, shape, seed += 3, misaligned);
            check_binary([](const Tensor& a, const Tensor& b) { return sub(a, b); }, shape, seed += 3, misaligned);
            check_binary([](const Tensor& a, const Tensor& b) { return mul(a, b); }, shape, seed += 3, misaligned);
            check_unary([](const Tensor& x) { return scale(x, -0.37); }, random_cpu(shape, next(seed)), 0.0, 0.0,
                        next(seed), misaligned);
            check_unary([](const Tensor& x) { return add_scalar(x, 1.25); }, random_cpu(shape, next(seed)), 0.0, 0.0,
                        next(seed), misaligned);
        }
    }
}

TEST_CASE("GPU elementwise ops accept non-contiguous views") {
    Tensor a = random_cpu({6, 9}, 1), b = random_cpu({9, 6}, 2);
    require_close(add(a.to(gpu()), b.to(gpu()).transpose(0, 1)), add(a, b.transpose(0, 1)), 0.0, 0.0);
    require_close(mul(a.to(gpu()).slice(1, 2, 7), a.to(gpu()).slice(1, 1, 6)), mul(a.slice(1, 2, 7), a.slice(1, 1, 6)),
                  0.0, 0.0);
}

// ------------------------------------------------------------------ relu

TEST_CASE("GPU relu matches the CPU with both implementations, including exact zeros") {
    ImplementationGuard guard;
    const std::string choice = GENERATE(std::string("cudnn"), std::string("cuda"));
    set_implementation("relu", choice);
    INFO("implementation " << choice);
    std::uint64_t seed = 200;
    for (const Shape& shape : elementwise_shapes()) {
        check_unary([](const Tensor& x) { return relu(x); }, random_cpu(shape, next(seed)), 0.0, 0.0, next(seed));
        check_unary([](const Tensor& x) { return relu(x); }, values_with_zeros(shape, next(seed)), 0.0, 0.0,
                    next(seed));
        check_unary([](const Tensor& x) { return relu(x); }, random_cpu(shape, next(seed)), 0.0, 0.0, next(seed), true);
    }
    check_unary([](const Tensor& x) { return relu(x); }, random_cpu({4, 1000}, next(seed)), 0.0, 0.0,
                next(seed));  // 2-d
    check_unary([](const Tensor& x) { return relu(x); }, random_cpu({2, 3, 4, 5, 6}, next(seed)), 0.0, 0.0, next(seed));

    // The gradient at exactly 0 (and -0) is 0, whatever the upstream gradient.
    Tensor x = Tensor::from_vector(std::vector<float>{0.0f, -0.0f, 1.0f, -1.0f, 0.0f, 2.0f, -0.0f, 3.0f}, {8})
                   .to(gpu())
                   .set_requires_grad(true);
    Tensor y = relu(x);
    y.backward(Tensor::full({8}, 5.0, DType::Float32, gpu()));
    CHECK(x.grad().to_float_vector() == std::vector<float>{0, 0, 5, 0, 0, 5, 0, 5});
    CHECK(y.to_float_vector() == std::vector<float>{0, 0, 1, 0, 0, 2, 0, 3});
}

TEST_CASE("GPU relu passes NaN through in the forward pass, both implementations") {
    ImplementationGuard guard;
    const std::string choice = GENERATE(std::string("cudnn"), std::string("cuda"));
    set_implementation("relu", choice);
    INFO("implementation " << choice);
    const float nan = std::numeric_limits<float>::quiet_NaN();
    Tensor x = Tensor::from_vector(std::vector<float>{nan, -1.0f, 2.0f, nan, 0.0f}, {5});
    require_close(relu(x.to(gpu())), relu(x), 0.0, 0.0);  // compare() matches NaN with NaN
}

TEST_CASE("GPU relu backward gives 0 where the output is NaN, as the CPU (cuda implementation)") {
    // cuDNN's NaN handling in the backward pass is its own; cudagrad's kernel follows the CPU.
    ImplementationGuard guard;
    set_implementation("relu", "cuda");
    const float nan = std::numeric_limits<float>::quiet_NaN();
    Tensor x = Tensor::from_vector(std::vector<float>{nan, -1.0f, 2.0f, 0.5f}, {4}).to(gpu()).set_requires_grad(true);
    relu(x).backward(Tensor::from_vector(std::vector<float>{1.0f, 2.0f, 3.0f, nan}, {4}).to(gpu()));
    const std::vector<float> gradient = x.grad().to_float_vector();
    CHECK(gradient[0] == 0.0f);
    CHECK(gradient[1] == 0.0f);
    CHECK(gradient[2] == 3.0f);
    CHECK(std::isnan(gradient[3]));
}

#ifdef CUDAGRAD_WITH_CUDA
TEST_CASE("both rungs of the relu kernel ladder match the CPU, aligned or not") {
    make_device_current(gpu());
    for (std::int64_t count : {std::int64_t{1}, std::int64_t{3}, std::int64_t{4}, std::int64_t{5}, std::int64_t{257},
                               std::int64_t{1000003}}) {
        for (std::int64_t offset : {std::int64_t{0}, std::int64_t{1}, std::int64_t{3}}) {
            INFO("count " << count << ", offset " << offset);
            Tensor x_cpu = values_with_zeros({count}, static_cast<std::uint64_t>(count + offset));
            Tensor expected = relu(x_cpu);
            // Input and output start `offset` floats into their blocks: 16-byte aligned or not.
            Tensor input_storage = Tensor::empty({count + offset}, DType::Float32, gpu());
            Tensor input = input_storage.slice(0, offset, offset + count);
            input.copy_(x_cpu);
            Tensor output_storage = Tensor::empty({count + offset}, DType::Float32, gpu());
            Tensor output = output_storage.slice(0, offset, offset + count);
            cuda::relu_forward_v1_one_per_thread(input.data<float>(), output.data<float>(), count);
            require_close(output, expected, 0.0, 0.0);
            output.fill_(std::nan(""));
            cuda::relu_forward_v2_grid_stride_float4(input.data<float>(), output.data<float>(), count);
            require_close(output, expected, 0.0, 0.0);
        }
    }
}
#endif

// ------------------------------------------------------------------ reductions

TEST_CASE("GPU sum and mean match the CPU, forward and backward") {
    std::uint64_t seed = 300;
    for (const Shape& shape : {Shape{2, 256, 56, 56}, Shape{1}, Shape{5}, Shape{3, 7, 5}, Shape{1000003}}) {
        check_unary([](const Tensor& x) { return sum(x); }, random_cpu(shape, next(seed)), sum_rtol, sum_atol,
                    next(seed));
        check_unary([](const Tensor& x) { return mean(x); }, random_cpu(shape, next(seed)), sum_rtol, sum_atol,
                    next(seed));
        check_unary([](const Tensor& x) { return sum(x); }, random_cpu(shape, next(seed)), sum_rtol, sum_atol,
                    next(seed), true);
    }
    // A non-contiguous input is summed through a contiguous copy.
    Tensor x = random_cpu({30, 40}, 9);
    require_close(sum(x.to(gpu()).transpose(0, 1).slice(0, 3, 33)), sum(x.transpose(0, 1).slice(0, 3, 33)), sum_rtol,
                  sum_atol);
    // Deterministic: the same bits on every run.
    Tensor big = random_cpu({2, 256, 56, 56}, 10).to(gpu());
    const double first = sum(big).item();
    for (int run = 0; run < 3; ++run) CHECK(sum(big).item() == first);
}

TEST_CASE("GPU sum over a dimension matches the CPU on every kernel path, forward and backward") {
    std::uint64_t seed = 400;
    const std::vector<Shape> shapes = {
        {2, 256, 56, 56},  // columns: inner 3136 / 56 / 1
        {3, 5, 7, 9},      // odd sizes everywhere
        {1, 1},            // degenerate
        {7, 1, 3},         // a reduced dimension of size 1
        {3, 5000},         // inner == 1 with long rows (a block per row), and a long column reduction
        {64, 1000},        // the classifier shape
    };
    for (const Shape& shape : shapes) {
        for (std::int64_t d = 0; d < static_cast<std::int64_t>(shape.size()); ++d) {
            for (bool keep : {false, true}) {
                INFO("dimension " << d << (keep ? ", keep_dimension" : ""));
                check_unary([d, keep](const Tensor& x) { return sum(x, d, keep); }, random_cpu(shape, next(seed)),
                            sum_rtol, sum_atol, next(seed));
            }
        }
    }
    check_unary([](const Tensor& x) { return sum(x, -1); }, random_cpu({4, 6}, next(seed)), sum_rtol, sum_atol,
                next(seed));
}

TEST_CASE("GPU argmax matches the CPU: ties, NaN, every dimension, int64") {
    const float nan = std::numeric_limits<float>::quiet_NaN();
    // Rows of 100: in the warp-per-row kernel lane l holds indices l, l + 32, l + 64, ...
    std::vector<float> rows(6 * 100, 0.0f);
    auto row = [&](int r) { return rows.begin() + r * 100; };
    for (int i : {13, 45, 77}) row(0)[i] = 5.0f;  // ties inside one lane's share: 13
    for (int i : {50, 20}) row(1)[i] = 5.0f;      // ties across lanes: 20
    for (int i : {60, 31}) row(2)[i] = nan;       // the first NaN beats any number: 31
    row(2)[99] = 1e30f;
    row(3)[99] = 1.0f;                                    // the last element: 99
    std::fill(row(4), row(4) + 100, -2.0f);               // all equal: 0
    row(5)[0] = -std::numeric_limits<float>::infinity();  // zeros after a -inf: 1
    Tensor x = Tensor::from_vector(rows, {6, 100});
    CHECK(argmax(x.to(gpu()), 1).to_int64_vector() == argmax(x, 1).to_int64_vector());
    CHECK(argmax(x, 1).to_int64_vector() == std::vector<std::int64_t>{13, 20, 31, 99, 0, 1});
    CHECK(argmax(x.to(gpu()), 0).to_int64_vector() == argmax(x, 0).to_int64_vector());

    // Random shapes with few distinct values (many ties), every dimension.
    for (const Shape& shape : {Shape{2, 3, 4}, Shape{5, 33, 7}, Shape{1, 1000}, Shape{257}, Shape{3, 2000}}) {
        std::vector<float> values = random_cpu(shape, 77).to_float_vector();
        for (float& v : values) v = std::round(v * 2.0f);  // values in {-2, ..., 2}
        Tensor t = Tensor::from_vector(values, shape);
        for (std::int64_t d = 0; d < t.dim(); ++d) {
            INFO("shape " << shape_string(shape) << ", dimension " << d);
            Tensor result = argmax(t.to(gpu()), d);
            CHECK(result.device() == gpu());
            CHECK(result.dtype() == DType::Int64);
            CHECK(result.to_int64_vector() == argmax(t, d).to_int64_vector());
            CHECK(argmax(t.to(DType::Int64).to(gpu()), d).to_int64_vector() ==
                  argmax(t.to(DType::Int64), d).to_int64_vector());
        }
    }
    // A transposed (non-contiguous) input.
    Tensor m = random_cpu({7, 9}, 5);
    CHECK(argmax(m.to(gpu()).transpose(0, 1), 1).to_int64_vector() == argmax(m.transpose(0, 1), 1).to_int64_vector());
}

#ifdef CUDAGRAD_WITH_CUDA
namespace {

// The evaluation code's order (examples/resnet50/common.cpp top_k): higher logit first, the
// lower class first on a tie. NaN-free rows only.
bool label_in_top_k_by_sorting(const std::vector<float>& row, std::int64_t label, std::int64_t k) {
    std::vector<std::int64_t> order(row.size());
    std::iota(order.begin(), order.end(), 0);
    const auto kept = std::min<std::int64_t>(k, static_cast<std::int64_t>(row.size()));
    std::partial_sort(order.begin(), order.begin() + kept, order.end(),
                      [&](std::int64_t a, std::int64_t b) { return row[a] > row[b] || (row[a] == row[b] && a < b); });
    return std::find(order.begin(), order.begin() + kept, label) != order.begin() + kept;
}

// The documented rule, with NaN counted as the largest value.
bool label_in_top_k_by_rank(const std::vector<float>& row, std::int64_t label, std::int64_t k) {
    if (label < 0 || label >= static_cast<std::int64_t>(row.size())) return false;
    auto beats = [](float a, float b) { return a > b || (std::isnan(a) && !std::isnan(b)); };
    const float target = row[static_cast<std::size_t>(label)];
    std::int64_t ahead = 0;
    for (std::int64_t c = 0; c < static_cast<std::int64_t>(row.size()); ++c) {
        const float value = row[static_cast<std::size_t>(c)];
        if (beats(value, target) || (!beats(target, value) && c < label)) ++ahead;
    }
    return ahead < k;
}

std::int64_t gpu_top_k_hits(const Tensor& logits, const Tensor& labels, std::int64_t k) {
    make_device_current(gpu());
    Tensor logits_gpu = logits.to(gpu()).contiguous(), labels_gpu = labels.to(gpu()).contiguous();
    const std::int64_t rows = logits.size(0), classes = logits.size(1);
    Tensor partials = Tensor::empty({cuda::top_k_partial_count(rows)}, DType::Int64, gpu());
    Tensor count = Tensor::empty({1}, DType::Int64, gpu());
    cuda::count_top_k_hits(logits_gpu.data<float>(), labels_gpu.data<std::int64_t>(), rows, classes, k,
                           partials.data<std::int64_t>(), count.data<std::int64_t>());
    return count.to_int64_vector()[0];
}

}  // namespace

TEST_CASE("the GPU top-k hit count matches the evaluation code's ordering") {
    for (const Shape& shape : {Shape{37, 1000}, Shape{1, 10}, Shape{300, 7}, Shape{5000, 10}}) {
        const std::int64_t rows = shape[0], classes = shape[1];
        std::vector<float> logits = random_cpu(shape, 91).to_float_vector();
        for (std::size_t i = 0; i < logits.size(); i += 3) logits[i] = std::round(logits[i] * 4.0f);  // ties
        Generator generator(92);
        std::vector<std::int64_t> labels(static_cast<std::size_t>(rows));
        for (auto& label : labels)
            label = static_cast<std::int64_t>(generator.below(static_cast<std::uint64_t>(classes)));
        const Tensor logits_tensor = Tensor::from_vector(logits, shape);
        const Tensor labels_tensor = Tensor::from_vector(labels, {rows});
        for (std::int64_t k : {std::int64_t{1}, std::int64_t{5}, classes, classes + 3}) {
            std::int64_t expected = 0;
            for (std::int64_t r = 0; r < rows; ++r) {
                const std::vector<float> row(logits.begin() + r * classes, logits.begin() + (r + 1) * classes);
                const bool hit = label_in_top_k_by_sorting(row, labels[static_cast<std::size_t>(r)], k);
                REQUIRE(hit == label_in_top_k_by_rank(row, labels[static_cast<std::size_t>(r)], k));
                expected += hit ? 1 : 0;
            }
            INFO("shape " << shape_string(shape) << ", k " << k);
            CHECK(gpu_top_k_hits(logits_tensor, labels_tensor, k) == expected);
            // The public op on both devices (accuracy.cpp) agrees with the kernel and the sort.
            CHECK(top_k_hits(logits_tensor, labels_tensor, k).item() == static_cast<double>(expected));
            CHECK(top_k_hits(logits_tensor.to(gpu()), labels_tensor.to(gpu()), k).item() == static_cast<double>(expected));
        }
    }

    // Hand-made rows: all equal (rank = label), NaN, labels out of range.
    const float nan = std::numeric_limits<float>::quiet_NaN();
    std::vector<float> logits(6 * 10, 1.0f);
    logits[2 * 10 + 4] = nan;  // row 2: a NaN at class 4 ranks first
    logits[3 * 10 + 6] = nan;  // row 3: the label is NaN: ahead of every number
    Tensor logits_tensor = Tensor::from_vector(logits, {6, 10});
    Tensor labels = Tensor::from_vector(std::vector<std::int64_t>{3, 7, 0, 6, -1, 10}, {6});
    // k = 5: row 0 (rank 3) hit, row 1 (rank 7) miss, row 2 (rank 1: the NaN) hit, row 3 hit,
    // rows 4 and 5 (bad labels) miss.
    CHECK(gpu_top_k_hits(logits_tensor, labels, 5) == 3);
    CHECK(gpu_top_k_hits(logits_tensor, labels, 1) == 1);  // only row 3 (its own NaN is first)
    CHECK(gpu_top_k_hits(logits_tensor, labels, 8) == 4);
}
#endif

// ------------------------------------------------------------------ shape ops and copies

TEST_CASE("GPU reshape, flatten, transpose and slice match the CPU, forward and backward") {
    std::uint64_t seed = 500;
    const Tensor x = random_cpu({2, 6, 5, 3}, next(seed));
    check_unary([](const Tensor& t) { return reshape(t, {12, -1}); }, x, 0.0, 0.0, next(seed));
    check_unary([](const Tensor& t) { return flatten(t, 1); }, x, 0.0, 0.0, next(seed));
    check_unary([](const Tensor& t) { return transpose(t, 1, 3); }, x, 0.0, 0.0, next(seed));
    for (std::int64_t d = 0; d < 4; ++d) {
        INFO("slice dimension " << d);
        check_unary([d](const Tensor& t) { return slice(t, d, 1, t.size(d)); }, x, 0.0, 0.0, next(seed));
        check_unary([d](const Tensor& t) { return slice(t, d, 0, 1); }, x, 0.0, 0.0, next(seed));
    }
    // Chains: a flatten of a transposed tensor (a copy on the device), slices used twice.
    check_unary([](const Tensor& t) { return flatten(transpose(t, 0, 2), 1); }, x, 0.0, 0.0, next(seed));
    check_unary([](const Tensor& t) { return add(slice(t, 1, 0, 3), slice(t, 1, 2, 5)); }, x, 0.0, 0.0, next(seed));
}

TEST_CASE("Tensor copies, conversions and fills of transposed and sliced GPU tensors") {
    const Tensor base = random_cpu({4, 6, 5}, 11, -50.0, 50.0);
    const Tensor on_gpu = base.to(gpu());
    const auto views = std::vector<std::function<Tensor(const Tensor&)>>{
        [](const Tensor& t) { return t.transpose(0, 2); },
        [](const Tensor& t) { return t.slice(1, 1, 5); },
        [](const Tensor& t) { return t.transpose(1, 2).slice(0, 1, 3); },
    };
    for (std::size_t v = 0; v < views.size(); ++v) {
        INFO("view " << v);
        const Tensor cpu_view = views[v](base), gpu_view = views[v](on_gpu);
        CHECK_FALSE(gpu_view.is_contiguous());
        require_close(gpu_view.contiguous(), cpu_view.contiguous(), 0.0, 0.0);
        CHECK(gpu_view.contiguous().is_contiguous());
        require_close(gpu_view.clone(), cpu_view, 0.0, 0.0);
        // Conversions on the device, from a strided view: float32 -> float64 -> float32, -> int64.
        const Tensor doubles = gpu_view.to(DType::Float64);
        CHECK(doubles.device() == gpu());
        require_close(doubles, cpu_view.to(DType::Float64), 0.0, 0.0);
        require_close(doubles.transpose(0, 1).to(DType::Float32), cpu_view.transpose(0, 1), 0.0, 0.0);
        const Tensor integers = gpu_view.to(DType::Int64);
        CHECK(integers.to_int64_vector() == cpu_view.to(DType::Int64).to_int64_vector());
        require_close(integers.to(DType::Float32), cpu_view.to(DType::Int64).to(DType::Float32), 0.0, 0.0);
        // A fill and a copy into a strided view leave the rest untouched.
        Tensor gpu_target = on_gpu.clone(), cpu_target = base.clone();
        views[v](gpu_target).fill_(-3.5);
        views[v](cpu_target).fill_(-3.5);
        require_close(gpu_target, cpu_target, 0.0, 0.0);
        views[v](gpu_target).copy_(views[v](on_gpu.to(DType::Float64)));  // converting strided copy
        views[v](cpu_target).copy_(views[v](base.to(DType::Float64)));
        require_close(gpu_target, cpu_target, 0.0, 0.0);
    }
}

TEST_CASE("gradients accumulate on the GPU when a tensor is used twice") {
    Tensor x_cpu = random_cpu({3, 37}, 21).set_requires_grad(true);
    Tensor x_gpu = to_gpu_leaf(x_cpu);
    // x * x + x: the gradient 2x + 1 reaches x three times and is summed by autograd (axpy).
    Tensor upstream = random_cpu({3, 37}, 22);
    add(mul(x_cpu, x_cpu), x_cpu).backward(upstream);
    add(mul(x_gpu, x_gpu), x_gpu).backward(upstream.to(gpu()));
    require_close(x_gpu.grad(), x_cpu.grad(), 0.0, 0.0);
    // A second backward accumulates into the existing gradient.
    relu(scale(x_cpu, 2.0)).backward(upstream);
    relu(scale(x_gpu, 2.0)).backward(upstream.to(gpu()));
    require_close(x_gpu.grad(), x_cpu.grad(), 0.0, 0.0);
    CHECK(x_gpu.grad().device() == gpu());
}

// ------------------------------------------------------------------ errors

TEST_CASE("GPU elementwise, relu and reductions reject float64 and mixed devices with clear errors") {
    Tensor doubles = Tensor::ones({2, 3}, DType::Float64).to(gpu());
    require_error([&] { relu(doubles); }, {"relu", "float64", "float32"});
    require_error([&] { add(doubles, doubles); }, {"add", "float64", "float32"});
    require_error([&] { sum(doubles); }, {"sum", "float64", "float32"});
    require_error([&] { sum(doubles, 0); }, {"sum", "float64", "float32"});
    require_error([&] { argmax(doubles, 0); }, {"argmax", "float64", "float32"});
    Tensor on_gpu = Tensor::ones({2, 3}, DType::Float32, gpu());
    Tensor on_cpu = Tensor::ones({2, 3});
    require_error([&] { add(on_gpu, on_cpu); }, {"add", "different devices", "cuda:0", "cpu"});
    require_error([&] { mul(on_cpu, on_gpu); }, {"mul", "different devices", "cuda:0", "cpu"});
    require_error([&] { sub(on_gpu, Tensor::ones({3, 2}, DType::Float32, gpu())); }, {"sub", "[2, 3]", "[3, 2]"});
}
