// top_k_hits (src/ops/accuracy.cpp): hand-computed cases, the tie and NaN rules, and errors.
#include "catch.hpp"
#include "test_support.hpp"

using namespace cudagrad;
using cudagrad::testing::require_error;

TEST_CASE("top_k_hits counts rows whose label is among the k largest logits") {
    const Tensor logits = Tensor::from_vector(std::vector<float>{0.1f, 0.7f, 0.2f,    // best 1, then 2, 0
                                                                 0.5f, 0.4f, 0.3f,    // best 0, then 1, 2
                                                                 0.0f, 0.0f, 0.9f},   // best 2, then a tie 0/1
                                              {3, 3});
    const Tensor labels = Tensor::from_vector(std::vector<std::int64_t>{1, 2, 1}, {3});
    CHECK(top_k_hits(logits, labels, 1).item() == 1);  // only row 0
    CHECK(top_k_hits(logits, labels, 2).item() == 1);  // row 2: class 0 wins the tie, label 1 is third
    CHECK(top_k_hits(logits, labels, 3).item() == 3);
    CHECK(top_k_hits(logits.to(DType::Float64), labels, 1).item() == 1);
    CHECK(top_k_hits(logits, labels, 1).dtype() == DType::Int64);
}

TEST_CASE("top_k_hits ranks NaN above every number") {
    const Tensor logits = Tensor::from_vector(std::vector<float>{NAN, 5.0f, 1.0f, 2.0f}, {2, 2});
    const Tensor labels = Tensor::from_vector(std::vector<std::int64_t>{1, 1}, {2});
    CHECK(top_k_hits(logits, labels, 1).item() == 1);  // row 0: NaN beats 5; row 1: 2 > 1
}

TEST_CASE("top_k_hits rejects bad labels, shapes and k") {
    const Tensor logits = Tensor::zeros({2, 4});
    require_error([&] { top_k_hits(logits, Tensor::from_vector(std::vector<std::int64_t>{0, 4}, {2}), 1); },
                  {"top_k_hits", "label 4", "[0, 4)"});
    require_error([&] { top_k_hits(logits, Tensor::from_vector(std::vector<std::int64_t>{0}, {1}), 1); },
                  {"top_k_hits", "[2]"});
    require_error([&] { top_k_hits(logits, Tensor::from_vector(std::vector<std::int64_t>{0, 1}, {2}), 0); },
                  {"top_k_hits", "k must be at least 1"});
    require_error([&] { top_k_hits(Tensor::zeros({2}), Tensor::from_vector(std::vector<std::int64_t>{0, 1}, {2}), 1); },
                  {"top_k_hits", "2 dimensions"});
}
