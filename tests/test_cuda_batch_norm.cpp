// GPU tests for batch_norm2d (src/ops/batch_norm.cpp): both implementations (cuDNN and cudagrad's
// kernels, kernels/batch_norm*.cu) and the v1 kernels directly, against the CPU op on the same
// inputs.
//
// What is checked, on ResNet-50 activation shapes at a small batch (2x64x112x112, 4x256x56x56,
// 4x2048x7x7) and odd ones (3x5x7x9, batch 1 with 3x3 planes and 33 channels):
//   * training and eval, affine and not: y, the saved statistics' effect (through dx), dx,
//     dweight, dbias, the updated running_mean / running_var (unbiased variance, momentum) and
//     num_batches_tracked, on the CPU or on the GPU;
//   * running statistics that are strided views, only one of them tracked, or none;
//   * float32 accuracy with a large mean (1e4 +- 1): the sums must not lose the variance;
//   * clear errors for float64 GPU input, mismatched devices, and a num_batches_tracked elsewhere.
// Inputs are uniform in [-1, 3) so the channel means are far from 0 (a kernel that forgot to
// subtract the mean cannot pass).
//
// Tolerances: cudagrad's kernels accumulate in double like the CPU and compute the per-channel
// constants with the same expressions, so rtol 1e-4 / atol 1e-5 holds everywhere (the
// remaining differences are a few float roundings). cuDNN computes its statistics in float:
// y and dx get atol 1e-4, and dweight / dbias (sums over M = N*H*W up to 25088 products of size
// ~1 here) rtol 1e-3 / atol 1e-3. A wrong kernel misses these by orders of magnitude: a biased
// instead of unbiased running variance is off by M/(M-1) = 12% at M = 9, a missing block of a
// split channel by 1/splits of a sum.
#include <cmath>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <cudagrad/cudagrad.hpp>

#include "catch.hpp"
#include "cuda_test_support.hpp"
#include "test_support.hpp"

#ifdef CUDAGRAD_WITH_CUDA
#include "cuda/batch_norm.hpp"
#endif

namespace {

using namespace cudagrad;
using cudagrad::testing::gpu;
using cudagrad::testing::ImplementationGuard;
using cudagrad::testing::random_cpu;
using cudagrad::testing::require_close;
using cudagrad::testing::require_error;

enum class Tracking { Both, None, MeanOnly, Strided };

struct Case {
    Shape shape;
    bool training = true;
    bool affine = true;
    Tracking tracking = Tracking::Both;
    bool counter_on_gpu = false;
};

std::string describe(const Case& c, const std::string& implementation) {
    static const char* tracking_names[] = {"both", "none", "mean only", "strided"};
    return implementation + " " + shape_string(c.shape) + (c.training ? " train" : " eval") +
           (c.affine ? " affine" : " no-affine") + " running: " + tracking_names[static_cast<int>(c.tracking)] +
           (c.counter_on_gpu ? " counter on gpu" : " counter on cpu");
}

// A 1-d view of every other element of `base` (2C elements): stride 2, as a strided buffer.
Tensor every_other(const Tensor& base) {
    auto impl = std::make_shared<TensorImpl>(base.impl());
    impl->shape = {base.numel() / 2};
    impl->strides = {2};
    impl->grad = nullptr;
    impl->grad_fn = nullptr;
    impl->requires_grad = false;
    return Tensor(impl);
}

struct Outcome {
    Tensor y, dx, dweight, dbias, running_mean, running_var, counter;
};

// Runs batch_norm2d forward and backward on `device`; every input from fixed seeds, so the CPU
// and GPU runs see the same values.
Outcome run(const Case& c, Device device) {
    const std::int64_t channels = c.shape[1];
    Tensor x = random_cpu(c.shape, 11, -1.0, 3.0).to(device).set_requires_grad(true);
    Tensor weight, bias;
    if (c.affine) {
        weight = random_cpu({channels}, 12, 0.5, 1.5).to(device).set_requires_grad(true);
        bias = random_cpu({channels}, 13).to(device).set_requires_grad(true);
    }
    Tensor running_mean, running_var, mean_storage, var_storage;
    const Tensor mean_values = random_cpu({channels}, 14), var_values = random_cpu({channels}, 15, 0.5, 2.0);
    if (c.tracking == Tracking::Strided) {
        mean_storage = random_cpu({2 * channels}, 14).clone().to(device);
        var_storage = random_cpu({2 * channels}, 15, 0.5, 2.0).clone().to(device);
        running_mean = every_other(mean_storage);
        running_var = every_other(var_storage);
    } else {
        if (c.tracking != Tracking::None) running_mean = mean_values.clone().to(device);
        if (c.tracking == Tracking::Both) running_var = var_values.clone().to(device);
    }
    Tensor counter = Tensor::full({}, 5.0, DType::Int64);
    if (c.counter_on_gpu && device.is_cuda()) counter = counter.to(device);
    BatchNormOptions options;
    options.training = c.training;
    options.momentum = 0.3;
    Tensor y = batch_norm2d(x, weight, bias, running_mean, running_var, counter, options);
    y.backward(random_cpu(c.shape, 16).to(device));
    return {y, x.grad(), c.affine ? weight.grad() : Tensor(), c.affine ? bias.grad() : Tensor(),
            c.tracking == Tracking::Strided ? mean_storage : running_mean,
            c.tracking == Tracking::Strided ? var_storage : running_var, counter};
}

void require_close_if_defined(const Tensor& actual, const Tensor& expected, double rtol, double atol) {
    REQUIRE(actual.defined() == expected.defined());
    if (expected.defined()) require_close(actual, expected, rtol, atol);
}

void check_against_cpu(const Case& c, const std::string& implementation) {
    INFO(describe(c, implementation));
    const ImplementationGuard guard;
    set_implementation("batch_norm", implementation);
    const Outcome expected = run(c, Device::cpu());
    const Outcome actual = run(c, gpu());
    const bool vendor = implementation == "cudnn";
    const double atol = vendor ? 1e-4 : 1e-5;
    require_close(actual.y, expected.y, 1e-4, atol);
    require_close(actual.dx, expected.dx, 1e-4, atol);
    require_close_if_defined(actual.dweight, expected.dweight, vendor ? 1e-3 : 1e-4, vendor ? 1e-3 : 1e-5);
    require_close_if_defined(actual.dbias, expected.dbias, vendor ? 1e-3 : 1e-4, vendor ? 1e-3 : 1e-5);
    require_close_if_defined(actual.running_mean, expected.running_mean, 1e-4, 1e-5);
    require_close_if_defined(actual.running_var, expected.running_var, 1e-4, 1e-5);
    CHECK(actual.counter.device() == (c.counter_on_gpu ? gpu() : Device::cpu()));
    CHECK(actual.counter.to_int64_vector() == expected.counter.to_int64_vector());
}

const std::vector<Shape>& test_shapes() {
    static const std::vector<Shape> shapes = {
        {2, 64, 112, 112}, {4, 256, 56, 56}, {4, 2048, 7, 7}, {3, 5, 7, 9}, {1, 33, 3, 3},
    };
    return shapes;
}

}  // namespace

TEST_CASE("cuda batch_norm2d matches the CPU on ResNet-50 and odd shapes", "[cuda][batch_norm]") {
    for (const std::string implementation : {"cuda", "cudnn"}) {
        for (const Shape& shape : test_shapes()) {
            for (const bool training : {true, false}) {
                for (const bool affine : {true, false}) {
                    Case c;
                    c.shape = shape;
                    c.training = training;
                    c.affine = affine;
                    c.counter_on_gpu = affine;  // both placements, on every shape
                    check_against_cpu(c, implementation);
                }
            }
        }
    }
}

TEST_CASE("cuda batch_norm2d running statistics: strided, one tracked, none", "[cuda][batch_norm]") {
    for (const std::string implementation : {"cuda", "cudnn"}) {
        for (const Tracking tracking : {Tracking::Strided, Tracking::MeanOnly, Tracking::None}) {
            for (const Shape& shape : {Shape{3, 5, 7, 9}, Shape{2, 64, 16, 16}}) {
                Case c;
                c.shape = shape;
                c.tracking = tracking;
                check_against_cpu(c, implementation);
                if (tracking == Tracking::Strided) {  // eval reads strided statistics too
                    c.training = false;
                    check_against_cpu(c, implementation);
                }
            }
        }
    }
}

TEST_CASE("cuda batch_norm2d keeps float32 accuracy with a large mean", "[cuda][batch_norm]") {
    // Values 1e4 +- 1: the variance is 1e-8 of the mean squared, so a sum of squares (or a float
    // accumulator) would return garbage; shifted sums in double keep it.
    const ImplementationGuard guard;
    set_implementation("batch_norm", "cuda");
    Generator generator(9);
    Tensor values = Tensor::empty({4, 3, 64, 64}, DType::Float64);
    uniform_(values, 1e4 - 1.0, 1e4 + 1.0, generator);
    const Tensor x = values.to(DType::Float32);
    const Tensor expected = batch_norm2d(x, Tensor(), Tensor(), Tensor(), Tensor(), Tensor(), BatchNormOptions{});
    const Tensor actual =
        batch_norm2d(x.to(gpu()), Tensor(), Tensor(), Tensor(), Tensor(), Tensor(), BatchNormOptions{});
    // y ~ N(0, 1); x itself is only known to float precision (1e-3 absolute at 1e4), which
    // both devices see identically, so the results agree far better than that.
    require_close(actual, expected, 1e-4, 1e-4);
}

#ifdef CUDAGRAD_WITH_CUDA
TEST_CASE("cuda batch_norm v1 kernels match the CPU", "[cuda][batch_norm]") {
    // The v1 ladder step (one block per channel) is not reachable through the op: call it directly.
    for (const Shape& shape : {Shape{2, 64, 112, 112}, Shape{4, 2048, 7, 7}, Shape{3, 5, 7, 9}, Shape{1, 33, 3, 3}}) {
        INFO("shape " << shape_string(shape));
        const std::int64_t channels = shape[1];
        const Tensor x = random_cpu(shape, 21, -1.0, 3.0), dy = random_cpu(shape, 22);
        const Tensor weight = random_cpu({channels}, 23, 0.5, 1.5), bias = random_cpu({channels}, 24);
        Tensor cpu_mean = random_cpu({channels}, 25), cpu_var = random_cpu({channels}, 26, 0.5, 2.0);
        Tensor gpu_mean = cpu_mean.clone().to(gpu()), gpu_var = cpu_var.clone().to(gpu());
        // The CPU reference through the op, gradients through autograd.
        Tensor x_leaf = x.clone().set_requires_grad(true), w_leaf = weight.clone().set_requires_grad(true);
        Tensor b_leaf = bias.clone().set_requires_grad(true);
        BatchNormOptions options;
        const Tensor expected = batch_norm2d(x_leaf, w_leaf, b_leaf, cpu_mean, cpu_var, Tensor(), options);
        expected.backward(dy);

        const Tensor gx = x.to(gpu()), gdy = dy.to(gpu()), gw = weight.to(gpu()), gb = bias.to(gpu());
        Tensor y = Tensor::empty(shape, DType::Float32, gpu());
        Tensor saved_mean = Tensor::empty({channels}, DType::Float32, gpu());
        Tensor saved_inverse_std = Tensor::empty({channels}, DType::Float32, gpu());
        cuda::BatchNormForward forward;
        forward.x = gx.data<float>();
        forward.y = y.data<float>();
        forward.weight = gw.data<float>();
        forward.bias = gb.data<float>();
        forward.saved_mean = saved_mean.data<float>();
        forward.saved_inverse_std = saved_inverse_std.data<float>();
        forward.running_mean = gpu_mean.data<float>();
        forward.running_var = gpu_var.data<float>();
        forward.momentum = options.momentum;
        forward.eps = options.eps;
        forward.batch = shape[0];
        forward.channels = channels;
        forward.plane = shape[2] * shape[3];
        cuda::batch_norm_forward_training_v1_block_per_channel(forward);
        require_close(y, expected, 1e-4, 1e-5);
        require_close(gpu_mean, cpu_mean, 1e-4, 1e-5);
        require_close(gpu_var, cpu_var, 1e-4, 1e-5);

        Tensor dx = Tensor::empty(shape, DType::Float32, gpu());
        Tensor dweight = Tensor::empty({channels}, DType::Float32, gpu());
        Tensor dbias = Tensor::empty({channels}, DType::Float32, gpu());
        cuda::BatchNormBackward backward;
        backward.dy = gdy.data<float>();
        backward.x = gx.data<float>();
        backward.saved_mean = saved_mean.data<float>();
        backward.saved_inverse_std = saved_inverse_std.data<float>();
        backward.weight = gw.data<float>();
        backward.dx = dx.data<float>();
        backward.dweight = dweight.data<float>();
        backward.dbias = dbias.data<float>();
        backward.batch = shape[0];
        backward.channels = channels;
        backward.plane = shape[2] * shape[3];
        cuda::batch_norm_backward_v1_block_per_channel(backward);
        require_close(dx, x_leaf.grad(), 1e-4, 1e-5);
        require_close(dweight, w_leaf.grad(), 1e-4, 1e-5);
        require_close(dbias, b_leaf.grad(), 1e-4, 1e-5);
    }
}
#endif

TEST_CASE("cuda batch_norm2d errors are clear", "[cuda][batch_norm]") {
    const Tensor x = random_cpu({2, 3, 4, 4}, 31).to(gpu());
    const Tensor c3 = Tensor::ones({3}).to(gpu());
    require_error([&] {
        batch_norm2d(Tensor::zeros({2, 3, 4, 4}, DType::Float64, gpu()), Tensor(), Tensor(), Tensor(), Tensor(),
                     Tensor(), BatchNormOptions{});
    }, {"batch_norm2d", "float64", "float32"});
    require_error([&] { batch_norm2d(x, Tensor::ones({3}), c3, c3, c3, Tensor(), BatchNormOptions{}); },
                  {"batch_norm2d", "different devices", "cpu", "cuda:0"});
    require_error([&] { batch_norm2d(x, c3, c3, Tensor::ones({3}), c3, Tensor(), BatchNormOptions{}); },
                  {"batch_norm2d", "running_mean", "different devices"});
    require_error([&] {
        batch_norm2d(x, c3, c3, c3, c3, Tensor::zeros({1}, DType::Float32, gpu()), BatchNormOptions{});
    }, {"batch_norm2d", "num_batches_tracked", "int64"});
}
