// xoshiro256** (Blackman and Vigna, 2018): 256 bits of state, period 2^256 - 1, passes BigCrush.
// Seeding runs splitmix64, so nearby seeds give unrelated streams.
#include "cudagrad/random.hpp"

#include <cmath>

namespace cudagrad {
namespace {
std::uint64_t rotate_left(std::uint64_t value, int bits) { return (value << bits) | (value >> (64 - bits)); }

std::uint64_t splitmix64(std::uint64_t& state) {
    std::uint64_t z = (state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}
}  // namespace

void Generator::manual_seed(std::uint64_t seed) {
    std::uint64_t mix = seed;
    for (auto& word : state_) word = splitmix64(mix);
}

void Generator::set_state(const std::array<std::uint64_t, 4>& state) {
    check(state[0] | state[1] | state[2] | state[3], "Generator::set_state", "the all-zero state is invalid");
    state_ = state;
}

std::uint64_t Generator::next_u64() {
    const std::uint64_t result = rotate_left(state_[1] * 5, 7) * 9;
    const std::uint64_t shifted = state_[1] << 17;
    state_[2] ^= state_[0];
    state_[3] ^= state_[1];
    state_[1] ^= state_[2];
    state_[0] ^= state_[3];
    state_[2] ^= shifted;
    state_[3] = rotate_left(state_[3], 45);
    return result;
}

double Generator::uniform() { return static_cast<double>(next_u64() >> 11) * 0x1.0p-53; }

double Generator::normal() {
    // Box-Muller with 1 - u in the logarithm, so log(0) cannot occur. One of the pair is
    // discarded: keeping no cached value keeps the state four words.
    const double pi = 3.14159265358979323846;
    double u1 = uniform();
    double u2 = uniform();
    return std::sqrt(-2.0 * std::log(1.0 - u1)) * std::cos(2.0 * pi * u2);
}

std::uint64_t Generator::below(std::uint64_t bound) {
    check(bound > 0, "Generator::below", "bound must be positive");
    // Rejection sampling removes the modulo bias.
    const std::uint64_t limit = -bound % bound;  // 2^64 mod bound
    for (;;) {
        std::uint64_t value = next_u64();
        if (value >= limit) return value % bound;
    }
}

Generator& default_generator() {
    static Generator generator;
    return generator;
}

void manual_seed(std::uint64_t seed) { default_generator().manual_seed(seed); }

namespace {
template <typename Sample>
Tensor& fill_random(Tensor& tensor, const char* op, Sample&& sample) {
    check(tensor.defined() && is_floating(tensor.dtype()), op, "needs a floating tensor, got ", tensor.description());
    // Drawn on the host in float64 and copied (converting) into the tensor, wherever it lives:
    // the same seed gives the same values on the CPU and the GPU.
    Tensor values = Tensor::empty(tensor.shape(), DType::Float64);
    double* out = values.data<double>();
    for (std::int64_t i = 0; i < values.numel(); ++i) out[i] = sample();
    tensor.copy_(values);
    return tensor;
}
}  // namespace

Tensor& uniform_(Tensor& tensor, double low, double high, Generator& generator) {
    check(low <= high, "uniform_", "low ", low, " is above high ", high);
    return fill_random(tensor, "uniform_", [&] { return low + (high - low) * generator.uniform(); });
}

Tensor& normal_(Tensor& tensor, double mean, double stddev, Generator& generator) {
    check(stddev >= 0, "normal_", "standard deviation ", stddev, " is negative");
    return fill_random(tensor, "normal_", [&] { return mean + stddev * generator.normal(); });
}

Tensor randn(const Shape& shape, DType dtype, Generator& generator) {
    Tensor tensor = Tensor::empty(shape, dtype);
    return normal_(tensor, 0.0, 1.0, generator);
}

Tensor rand(const Shape& shape, DType dtype, Generator& generator) {
    Tensor tensor = Tensor::empty(shape, dtype);
    return uniform_(tensor, 0.0, 1.0, generator);
}

}  // namespace cudagrad
