// conv2d: forward values worked out by hand, finite-difference gradients of x, weight and bias
// on awkward shapes (odd sizes, strides with padding, dilation, groups, depthwise, batch 1),
// the im2col fast path against the direct reference loops in float32 and float64 (including
// ResNet-sized layers and forced batch chunking), and the error messages for bad inputs.
#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include <cudagrad/cudagrad.hpp>

#include "catch.hpp"
#include "test_support.hpp"
#include "compare.hpp"
#include "cpu/conv2d.hpp"
#include "gradcheck.hpp"

using namespace cudagrad;
using cudagrad::testing::require_error;
using testing::require_close;

namespace {

Conv2dOptions make_options(std::int64_t stride, std::int64_t padding, std::int64_t dilation = 1,
                           std::int64_t groups = 1) {
    Conv2dOptions options;
    options.stride_h = options.stride_w = stride;
    options.padding_h = options.padding_w = padding;
    options.dilation_h = options.dilation_w = dilation;
    options.groups = groups;
    return options;
}

struct ConvCase {
    const char* name;
    std::int64_t batch, in_channels, height, width, out_channels, kernel_h, kernel_w;
    Conv2dOptions options;
    bool bias = true;
};

// The awkward shapes every gradient and fast-path test runs over. Between them they take
// every lowering path of the fast path: output planes of at most 16 pixels (offset table),
// stride 1 with Q == W (flat shifted copies), other strides (row by row), pointwise, and
// kernels with taps that only ever see padding.
std::vector<ConvCase> small_cases() {
    Conv2dOptions asymmetric = make_options(1, 0);
    asymmetric.stride_h = 2;
    asymmetric.padding_h = 1;
    asymmetric.dilation_w = 2;
    return {
        {"1x1 stride 1", 2, 3, 5, 5, 4, 1, 1, make_options(1, 0)},
        {"1x1 stride 1, plane >= 256 (GEMM straight on x)", 2, 3, 16, 17, 2, 1, 1, make_options(1, 0)},
        {"3x3 pad 1, no bias", 2, 3, 6, 5, 5, 3, 3, make_options(1, 1), false},
        {"7x7 stride 2 pad 3", 2, 3, 9, 9, 4, 7, 7, make_options(2, 3)},
        {"3x3 stride 2 pad 1 on 7x5", 2, 5, 7, 5, 7, 3, 3, make_options(2, 1)},
        {"1x1 stride 2", 2, 4, 7, 7, 3, 1, 1, make_options(2, 0)},
        {"3x3 dilation 2 pad 2", 2, 3, 8, 7, 5, 3, 3, make_options(1, 2, 2)},
        {"groups 2", 2, 4, 6, 6, 6, 3, 3, make_options(1, 1, 1, 2)},
        {"depthwise (groups == C), stride 2", 2, 5, 7, 6, 5, 3, 3, make_options(2, 1, 1, 5)},
        {"1x1 groups 3", 2, 6, 5, 4, 9, 1, 1, make_options(1, 0, 1, 3)},
        {"batch 1, C=7 K=5", 1, 7, 5, 6, 5, 3, 3, make_options(1, 1)},
        {"stride (2,1) pad (1,0) dilation (1,2), 3x2 kernel", 3, 3, 7, 8, 4, 3, 2, asymmetric},
        {"the same on 5x6: a 3x4 output, lowered through the offset table", 2, 3, 5, 6, 4, 3, 2, asymmetric},
        {"kernel covers the padded input (taps 0, 4 only see padding)", 2, 2, 3, 3, 3, 5, 5, make_options(1, 1)},
        {"3x3 pad 1 on a 1x1 image (8 of 9 taps only see padding)", 2, 4, 1, 1, 3, 3, 3, make_options(1, 1)},
        {"every tap lands in the padding: y is the bias", 2, 3, 1, 1, 4, 1, 1, make_options(2, 1)},
    };
}

cpu::ConvGeometry geometry_of(const ConvCase& c) {
    cpu::ConvGeometry g;
    g.batch = c.batch;
    g.in_channels = c.in_channels;
    g.in_height = c.height;
    g.in_width = c.width;
    g.out_channels = c.out_channels;
    g.kernel_height = c.kernel_h;
    g.kernel_width = c.kernel_w;
    g.stride_height = c.options.stride_h;
    g.stride_width = c.options.stride_w;
    g.padding_height = c.options.padding_h;
    g.padding_width = c.options.padding_w;
    g.dilation_height = c.options.dilation_h;
    g.dilation_width = c.options.dilation_w;
    g.groups = c.options.groups;
    g.out_height = cpu::conv_output_size(c.height, c.kernel_h, g.stride_height, g.padding_height, g.dilation_height);
    g.out_width = cpu::conv_output_size(c.width, c.kernel_w, g.stride_width, g.padding_width, g.dilation_width);
    return g;
}

// Restores the implementation and workspace limit a test changed, even when it fails.
struct ConvSettingsGuard {
    cpu::ConvImpl impl = cpu::conv_impl();
    std::int64_t limit = cpu::conv_workspace_limit_bytes();
    ~ConvSettingsGuard() {
        cpu::set_conv_impl(impl);
        cpu::set_conv_workspace_limit_bytes(limit);
    }
};

void gradcheck_case(const ConvCase& c) {
    INFO("case: " << c.name << " under " << cpu::conv_impl_name(cpu::conv_impl()));
    Generator generator(42);
    Tensor x = testing::random_input({c.batch, c.in_channels, c.height, c.width}, generator);
    Tensor weight = testing::random_input(
        {c.out_channels, c.in_channels / c.options.groups, c.kernel_h, c.kernel_w}, generator);
    Tensor bias = c.bias ? testing::random_input({c.out_channels}, generator) : Tensor();
    const Conv2dOptions options = c.options;
    auto function = [options](const std::vector<Tensor>& inputs) {
        return conv2d(inputs[0], inputs[1], inputs[2], options);
    };
    testing::GradcheckResult result = testing::gradcheck(function, {x, weight, bias});
    INFO(result.report);
    CHECK(result.passed);
    // Every element of every input was checked, so a missing gradient cannot pass silently.
    CHECK(result.checked == x.numel() + weight.numel() + (c.bias ? bias.numel() : 0));
}

Tensor random_tensor(const Shape& shape, DType dtype, Generator& generator) {
    Tensor tensor = Tensor::empty(shape, dtype);
    uniform_(tensor, -1.0, 1.0, generator);
    return tensor;
}

// Runs forward, dx and dweight/dbias through both implementations and compares. Outputs start
// as NaN, so an element a kernel forgets to write fails the comparison.
template <typename T>
void compare_fast_with_reference(const ConvCase& c, double rtol, double atol) {
    INFO("case: " << c.name << ", " << dtype_name(dtype_of<T>()) << ", workspace limit "
                  << cpu::conv_workspace_limit_bytes());
    const cpu::ConvGeometry g = geometry_of(c);
    const DType dtype = dtype_of<T>();
    Generator generator(7);
    Tensor x = random_tensor({g.batch, g.in_channels, g.in_height, g.in_width}, dtype, generator);
    Tensor weight = random_tensor({g.out_channels, g.in_channels_per_group(), g.kernel_height, g.kernel_width},
                                  dtype, generator);
    Tensor bias = random_tensor({g.out_channels}, dtype, generator);
    Tensor dy = random_tensor({g.batch, g.out_channels, g.out_height, g.out_width}, dtype, generator);
    const T* bias_data = c.bias ? bias.data<T>() : nullptr;
    const double nan = std::numeric_limits<double>::quiet_NaN();

    Tensor results[2][4];  // [reference, fast][y, dx, dweight, dbias]
    for (int fast = 0; fast < 2; ++fast) {
        Tensor& y = results[fast][0] = Tensor::full(dy.shape(), nan, dtype);
        Tensor& dx = results[fast][1] = Tensor::full(x.shape(), nan, dtype);
        Tensor& dweight = results[fast][2] = Tensor::full(weight.shape(), nan, dtype);
        Tensor& dbias = results[fast][3] = Tensor::full(bias.shape(), nan, dtype);
        T* dbias_data = c.bias ? dbias.data<T>() : nullptr;
        if (fast) {
            cpu::conv2d_forward_im2col<T>(g, x.data<T>(), weight.data<T>(), bias_data, y.data<T>());
            cpu::conv2d_backward_data_im2col<T>(g, dy.data<T>(), weight.data<T>(), dx.data<T>());
            cpu::conv2d_backward_weight_im2col<T>(g, x.data<T>(), dy.data<T>(), dweight.data<T>(), dbias_data);
        } else {
            cpu::conv2d_forward_reference<T>(g, x.data<T>(), weight.data<T>(), bias_data, y.data<T>());
            cpu::conv2d_backward_data_reference<T>(g, dy.data<T>(), weight.data<T>(), dx.data<T>());
            cpu::conv2d_backward_weight_reference<T>(g, x.data<T>(), dy.data<T>(), dweight.data<T>(), dbias_data);
        }
    }
    for (int which = 0; which < (c.bias ? 4 : 3); ++which) {
        static const char* const names[] = {"y", "dx", "dweight", "dbias"};
        INFO("output " << names[which]);
        require_close(results[1][which], results[0][which], rtol, atol);
    }
    // Without a bias the kernels must leave dbias alone (they were given a null pointer).
    if (!c.bias) CHECK(std::isnan(results[1][3].to_double_vector()[0]));
}

}  // namespace

TEST_CASE("conv2d forward matches hand-computed values") {
    SECTION("2x2 kernel, no padding, with bias") {
        // y[p, q] = x[p, q] - x[p+1, q+1] + 0.5 = -4 + 0.5 for x = 1..9 laid out row by row.
        Tensor x = Tensor::from_vector(std::vector<double>{1, 2, 3, 4, 5, 6, 7, 8, 9}, {1, 1, 3, 3});
        Tensor weight = Tensor::from_vector(std::vector<double>{1, 0, 0, -1}, {1, 1, 2, 2});
        Tensor bias = Tensor::from_vector(std::vector<double>{0.5}, {1});
        Tensor y = conv2d(x, weight, bias);
        CHECK(y.shape() == Shape{1, 1, 2, 2});
        CHECK(y.to_double_vector() == std::vector<double>{-3.5, -3.5, -3.5, -3.5});
    }
    SECTION("3x3 ones, stride 2, padding 1 counts the taps inside a 4x4 image of ones") {
        Tensor x = Tensor::ones({1, 1, 4, 4}, DType::Float32);
        Tensor weight = Tensor::ones({1, 1, 3, 3}, DType::Float32);
        Tensor y = conv2d(x, weight, Tensor(), make_options(2, 1));
        CHECK(y.shape() == Shape{1, 1, 2, 2});
        CHECK(y.to_double_vector() == std::vector<double>{4, 6, 6, 9});
    }
    SECTION("groups keep channels apart; two output channels per group") {
        // x channels: 1s and 10s. Group 0 (channel 0) -> weights 2, 3; group 1 (channel 1) -> 5, 7.
        Tensor x = Tensor::from_vector(std::vector<double>{1, 1, 10, 10}, {1, 2, 1, 2});
        Tensor weight = Tensor::from_vector(std::vector<double>{2, 3, 5, 7}, {4, 1, 1, 1});
        Tensor y = conv2d(x, weight, Tensor(), make_options(1, 0, 1, 2));
        CHECK(y.to_double_vector() == std::vector<double>{2, 2, 3, 3, 50, 50, 70, 70});
    }
    SECTION("dilation 2 reads every other pixel") {
        // 1x2 kernel [1, 10] with dilation 2 on the row 1 2 3 4 5: y[q] = x[q] + 10 x[q+2].
        Tensor x = Tensor::from_vector(std::vector<double>{1, 2, 3, 4, 5}, {1, 1, 1, 5});
        Tensor weight = Tensor::from_vector(std::vector<double>{1, 10}, {1, 1, 1, 2});
        Tensor y = conv2d(x, weight, Tensor(), make_options(1, 0, 2));
        CHECK(y.to_double_vector() == std::vector<double>{31, 42, 53});
    }
    SECTION("a kernel that only ever reads padding outputs the bias") {
        // 1x1 kernel, stride 2, padding 1 on a 1x1 image: the taps land on rows/columns -1 and 1.
        Tensor x = Tensor::full({1, 1, 1, 1}, 5.0, DType::Float64);
        Tensor weight = Tensor::full({1, 1, 1, 1}, 3.0, DType::Float64);
        Tensor bias = Tensor::full({1}, 0.25, DType::Float64);
        Tensor y = conv2d(x, weight, bias, make_options(2, 1));
        CHECK(y.shape() == Shape{1, 1, 2, 2});
        CHECK(y.to_double_vector() == std::vector<double>(4, 0.25));
    }
    SECTION("the reference implementation gives the same hand-computed values") {
        ConvSettingsGuard guard;
        cpu::set_conv_impl(cpu::ConvImpl::Reference);
        Tensor x = Tensor::ones({1, 1, 4, 4}, DType::Float64);
        Tensor weight = Tensor::ones({1, 1, 3, 3}, DType::Float64);
        CHECK(conv2d(x, weight, Tensor(), make_options(2, 1)).to_double_vector() == std::vector<double>{4, 6, 6, 9});
    }
}

TEST_CASE("conv2d gradients match finite differences (im2col path)") {
    ConvSettingsGuard guard;
    cpu::set_conv_impl(cpu::ConvImpl::Im2col);
    for (const ConvCase& c : small_cases()) gradcheck_case(c);
}

TEST_CASE("conv2d gradients match finite differences (reference path)") {
    ConvSettingsGuard guard;
    cpu::set_conv_impl(cpu::ConvImpl::Reference);
    for (const ConvCase& c : small_cases()) gradcheck_case(c);
}

TEST_CASE("conv2d gradients stay right when the batch is split into chunks") {
    ConvSettingsGuard guard;
    cpu::set_conv_impl(cpu::ConvImpl::Im2col);
    cpu::set_conv_workspace_limit_bytes(1);  // one image per GEMM
    gradcheck_case({"3x3 pad 1, one image per chunk", 3, 3, 5, 5, 4, 3, 3, make_options(1, 1)});
    gradcheck_case({"1x1, one image per chunk", 3, 4, 5, 4, 3, 1, 1, make_options(1, 0)});
}

TEST_CASE("conv2d im2col path matches the reference loops") {
    ConvSettingsGuard guard;
    std::vector<ConvCase> cases = small_cases();
    // ResNet-like layers, batch 2.
    cases.push_back({"ResNet 3x3 64->64 on 14x14", 2, 64, 14, 14, 64, 3, 3, make_options(1, 1)});
    cases.push_back({"ResNet 1x1 256->64 on 7x7", 2, 256, 7, 7, 64, 1, 1, make_options(1, 0)});
    cases.push_back({"ResNet stem 7x7/2 3->64 on 32x32", 2, 3, 32, 32, 64, 7, 7, make_options(2, 3)});
    cases.push_back({"ResNet 1x1 64->256 on 16x16 (GEMM straight on x)", 2, 64, 16, 16, 256, 1, 1, make_options(1, 0)});
    cases.push_back({"ResNeXt-like 1x1 groups 2 on 16x16 (GEMM straight on x)", 2, 32, 16, 16, 16, 1, 1,
                     make_options(1, 0, 1, 2)});
    cases.push_back({"ResNet downsample 1x1/2 128->256 on 8x8", 3, 128, 8, 8, 256, 1, 1, make_options(2, 0), false});
    for (const ConvCase& c : cases) {
        cpu::set_conv_workspace_limit_bytes(guard.limit);
        compare_fast_with_reference<float>(c, 1e-4, 1e-4);
        compare_fast_with_reference<double>(c, 1e-10, 1e-10);
    }
    cpu::set_conv_workspace_limit_bytes(1);  // every small case again, one image per GEMM
    for (const ConvCase& c : small_cases()) compare_fast_with_reference<double>(c, 1e-10, 1e-10);
    // Chunked batches: one image per GEMM, and chunks of 2, 2, 1 for a batch of 5.
    ConvCase batch5{"3x3 stride 2 pad 1, batch 5", 5, 6, 9, 7, 4, 3, 3, make_options(2, 1)};
    ConvCase pointwise5{"1x1, batch 5", 5, 6, 5, 5, 4, 1, 1, make_options(1, 0)};
    for (const ConvCase& c : {batch5, pointwise5}) {
        const cpu::ConvGeometry g = geometry_of(c);
        const std::int64_t bytes_per_image = (g.patch_size() + g.out_channels_per_group()) * g.out_plane() * 8;
        for (std::int64_t limit : {std::int64_t{1}, 2 * bytes_per_image}) {
            cpu::set_conv_workspace_limit_bytes(limit);
            compare_fast_with_reference<double>(c, 1e-10, 1e-10);
        }
        cpu::set_conv_workspace_limit_bytes(bytes_per_image);  // float32 images take half: chunks of 2 again
        compare_fast_with_reference<float>(c, 1e-4, 1e-4);
    }
}

TEST_CASE("conv2d autograd: gradients only where required, strided inputs accepted") {
    Generator generator(3);
    Tensor x = testing::random_input({2, 3, 6, 5}, generator);
    Tensor weight = Tensor::empty({4, 3, 3, 3}, DType::Float64);
    uniform_(weight, -1, 1, generator);  // no requires_grad
    Tensor bias = testing::random_input({4}, generator);
    Tensor y = conv2d(x, weight, bias, make_options(1, 1));
    y.backward(Tensor::ones(y.shape(), DType::Float64));
    CHECK(x.grad().defined());
    CHECK(bias.grad().defined());
    CHECK_FALSE(weight.grad().defined());
    // dbias of sum(y) counts the outputs per channel: N*P*Q = 2*6*5.
    CHECK(bias.grad().to_double_vector() == std::vector<double>(4, 60.0));

    // A transposed (non-contiguous) input gives the result of its contiguous copy.
    Tensor base = Tensor::empty({2, 3, 5, 6}, DType::Float64);
    uniform_(base, -1, 1, generator);
    Tensor strided = base.transpose(2, 3);
    REQUIRE_FALSE(strided.is_contiguous());
    require_close(conv2d(strided, weight, bias.detach(), make_options(1, 1)),
                  conv2d(strided.contiguous(), weight, bias.detach(), make_options(1, 1)), 0.0, 0.0);
}

TEST_CASE("conv2d implementation switch") {
    ConvSettingsGuard guard;
    CHECK(cpu::conv_impl_from_name("reference") == cpu::ConvImpl::Reference);
    CHECK(cpu::conv_impl_from_name("im2col") == cpu::ConvImpl::Im2col);
    try {
        cpu::conv_impl_from_name("winograd");
        FAIL("no throw");
    } catch (const std::invalid_argument& error) {
        CHECK(std::string(error.what()).find("winograd") != std::string::npos);
    }
    CHECK_THROWS_AS(cpu::set_conv_workspace_limit_bytes(0), std::invalid_argument);
    // The switch really changes the code that runs: both give the same values.
    Generator generator(5);
    Tensor x = random_tensor({2, 3, 7, 7}, DType::Float64, generator);
    Tensor weight = random_tensor({4, 3, 3, 3}, DType::Float64, generator);
    cpu::set_conv_impl(cpu::ConvImpl::Reference);
    Tensor reference = conv2d(x, weight, Tensor(), make_options(2, 1));
    cpu::set_conv_impl(cpu::ConvImpl::Im2col);
    require_close(conv2d(x, weight, Tensor(), make_options(2, 1)), reference, 1e-12, 1e-12);
}

TEST_CASE("conv2d rejects bad inputs with messages naming the op and the shapes") {
    const Tensor x = Tensor::zeros({2, 3, 8, 8});
    const Tensor weight = Tensor::zeros({4, 3, 3, 3});
    const Tensor bias = Tensor::zeros({4});
    SECTION("input not 4-D") {
        require_error([&] { conv2d(Tensor::zeros({2, 3, 8}), weight, bias); }, {"conv2d", "[2, 3, 8]"});
    }
    SECTION("weight not 4-D") {
        require_error([&] { conv2d(x, Tensor::zeros({4, 27}), bias); }, {"conv2d", "[4, 27]"});
    }
    SECTION("channel mismatch") {
        require_error([&] { conv2d(x, Tensor::zeros({4, 5, 3, 3}), bias); },
                      {"conv2d", "3 channels", "[2, 3, 8, 8]", "[4, 5, 3, 3]"});
    }
    SECTION("groups not dividing the input channels") {
        require_error([&] { conv2d(x, Tensor::zeros({4, 1, 3, 3}), bias, make_options(1, 0, 1, 2)); },
                      {"conv2d", "groups=2", "3 input channels", "[2, 3, 8, 8]"});
    }
    SECTION("groups not dividing the output channels") {
        require_error([&] { conv2d(Tensor::zeros({2, 6, 8, 8}), Tensor::zeros({4, 2, 3, 3}), bias,
                                   make_options(1, 0, 1, 3)); },
                      {"conv2d", "groups=3", "4 output channels", "[4, 2, 3, 3]"});
    }
    SECTION("bias of the wrong length") {
        require_error([&] { conv2d(x, weight, Tensor::zeros({3})); }, {"conv2d", "bias", "[4]", "[3]"});
    }
    SECTION("negative padding, zero stride, zero dilation, zero groups") {
        require_error([&] { conv2d(x, weight, bias, make_options(1, -1)); },
                      {"conv2d", "padding", "-1", "[2, 3, 8, 8]"});
        require_error([&] { conv2d(x, weight, bias, make_options(0, 1)); }, {"conv2d", "stride", "[4, 3, 3, 3]"});
        require_error([&] { conv2d(x, weight, bias, make_options(1, 1, 0)); }, {"conv2d", "dilation"});
        require_error([&] { conv2d(x, weight, bias, make_options(1, 1, 1, 0)); }, {"conv2d", "groups"});
    }
    SECTION("kernel larger than the padded input") {
        const Tensor small = Tensor::zeros({1, 3, 4, 4});
        require_error([&] { conv2d(small, Tensor::zeros({4, 3, 7, 7}), bias, make_options(1, 1)); },
                      {"conv2d", "larger than the padded input", "6x6", "[1, 3, 4, 4]", "[4, 3, 7, 7]"});
        // A span of -1 must not round up to one output: 5 taps over 4 pixels with stride 2.
        require_error([&] { conv2d(small, Tensor::zeros({4, 3, 5, 5}), bias, make_options(2, 0)); },
                      {"conv2d", "larger than the padded input", "4x4"});
        // Dilation enlarges the kernel: 3 taps with dilation 4 span 9 pixels.
        require_error([&] { conv2d(x, weight, bias, make_options(1, 0, 4)); }, {"conv2d", "larger"});
    }
    SECTION("int64 input") {
        require_error([&] { conv2d(Tensor::zeros({2, 3, 8, 8}, DType::Int64), weight, bias); },
                      {"conv2d", "int64", "[2, 3, 8, 8]"});
    }
    SECTION("dtypes differ") {
        require_error([&] { conv2d(x, Tensor::zeros({4, 3, 3, 3}, DType::Float64), bias); },
                      {"conv2d", "float64", "[4, 3, 3, 3]"});
        require_error([&] { conv2d(x, weight, Tensor::zeros({4}, DType::Float64)); }, {"conv2d", "bias", "float64"});
    }
    SECTION("empty input") {
        require_error([&] { conv2d(Tensor::zeros({0, 3, 8, 8}), weight, bias); }, {"conv2d", "empty", "[0, 3, 8, 8]"});
    }
    SECTION("undefined input") {
        require_error([&] { conv2d(Tensor(), weight, bias); }, {"conv2d", "undefined"});
    }
}
