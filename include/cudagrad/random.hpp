// A seeded, reproducible random generator (xoshiro256**, seeded through splitmix64).
// Its whole state is four 64-bit words, so checkpoints can save and restore it exactly.
// Sequences are the same on every platform: no std:: distributions, whose output differs
// between standard libraries.
#pragma once

#include <array>
#include <cstdint>

#include "cudagrad/tensor.hpp"

namespace cudagrad {

class Generator {
public:
    explicit Generator(std::uint64_t seed = 0x5eed) { manual_seed(seed); }
    void manual_seed(std::uint64_t seed);

    std::uint64_t next_u64();
    double uniform();                    // [0, 1), 53 random bits
    double normal();                     // standard normal, Box-Muller
    std::uint64_t below(std::uint64_t bound);  // uniform integer in [0, bound), unbiased

    std::array<std::uint64_t, 4> state() const { return state_; }
    void set_state(const std::array<std::uint64_t, 4>& state);

private:
    std::array<std::uint64_t, 4> state_{};
};

// The process-wide generator used when none is passed.
Generator& default_generator();
void manual_seed(std::uint64_t seed);

// Fill a floating tensor in place (CPU). The element order is the tensor's logical order.
Tensor& uniform_(Tensor& tensor, double low, double high, Generator& generator = default_generator());
Tensor& normal_(Tensor& tensor, double mean, double stddev, Generator& generator = default_generator());
Tensor randn(const Shape& shape, DType dtype = DType::Float32, Generator& generator = default_generator());
Tensor rand(const Shape& shape, DType dtype = DType::Float32, Generator& generator = default_generator());

}  // namespace cudagrad
