// Trains one step of a tiny linear model through the installed library's public headers and
// checks that the loss went down; exits non-zero otherwise.
#include <cstdio>

#include <cudagrad/cudagrad.hpp>

int main() {
    using namespace cudagrad;
    Generator generator(7);
    Tensor x = randn({8, 4}, DType::Float32, generator);
    Tensor labels = Tensor::from_vector(std::vector<std::int64_t>{0, 1, 2, 0, 1, 2, 0, 1}, {8});
    Tensor weight = Tensor::zeros({3, 4});
    Tensor bias = Tensor::zeros({3});
    weight.set_requires_grad(true);
    bias.set_requires_grad(true);
    linear_default_init_(weight, bias, generator);

    double first = 0.0, last = 0.0;
    for (int step = 0; step < 20; ++step) {
        Tensor loss = cross_entropy(linear(x, weight, bias), labels);
        weight.zero_grad();
        bias.zero_grad();
        loss.backward();
        {
            NoGradGuard no_grad;
            weight.copy_(sub(weight, scale(weight.grad(), 0.5)));
            bias.copy_(sub(bias, scale(bias.grad(), 0.5)));
        }
        if (step == 0) first = loss.item();
        last = loss.item();
    }
    std::printf("consumer: loss %.4f -> %.4f\n", first, last);
    return last < first ? 0 : 1;
}
