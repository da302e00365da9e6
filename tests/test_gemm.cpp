// Tests for src/cpu/gemm*.cpp and src/cpu/parallel.cpp.
//
// What is checked: gemm_blocked and gemm_openblas against the triple-loop
// oracle gemm_reference, for float and double, all four transpose
// combinations, odd and tiny sizes, alpha/beta != 1, beta == 0 over a C full
// of NaN, and sub-matrices (leading dimension > columns, with NaN in the
// padding so that reading or writing outside the sub-matrix shows up).
// Agreement means |x - ref| <= atol + rtol * |ref| per element: the
// implementations sum in different orders, so bitwise equality is not
// expected. parallel_for is checked for exact coverage, chunk sizes,
// deterministic chunks, exception propagation and nested calls.
//
// No CATCH_CONFIG_MAIN here: the test binary links a shared main.
#if __has_include(<catch2/catch_all.hpp>)
#include <catch2/catch_all.hpp>
#else
#include <catch2/catch.hpp>
#endif

#include <atomic>
#include <cmath>
#include <limits>
#include <mutex>
#include <random>
#include <set>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "cpu/gemm.hpp"
#include "cpu/parallel.hpp"

namespace {

using cudagrad::cpu::GemmImpl;
using cudagrad::cpu::Transpose;

// A rows x cols row-major matrix stored with leading dimension ld >= cols;
// the ld - cols padding columns hold `padding` (NaN by default).
template <typename T>
struct Matrix {
  int64_t rows, cols, ld;
  std::vector<T> data;
  Matrix(int64_t rows_, int64_t cols_, int64_t ld_, std::mt19937& rng,
         T padding = std::numeric_limits<T>::quiet_NaN())
      : rows(rows_), cols(cols_), ld(ld_), data(static_cast<size_t>(std::max<int64_t>(1, rows_ * ld_)), padding) {
    std::uniform_real_distribution<T> uniform(T(-1), T(1));
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t c = 0; c < cols; ++c) data[r * ld + c] = uniform(rng);
  }
  T& at(int64_t r, int64_t c) { return data[r * ld + c]; }
};

struct Shape {
  int64_t M, N, K;
};

const Shape kShapes[] = {{1, 1, 1}, {7, 13, 5}, {1, 17, 3}, {19, 1, 8}, {65, 33, 129}, {128, 256, 64},
                         {2, 3, 300}};  // K=300 > KC: exercises the K-block loop of gemm_blocked

template <typename T>
using GemmFunction = void (*)(Transpose, Transpose, int64_t, int64_t, int64_t, T, const T*, int64_t,
                              const T*, int64_t, T, T*, int64_t);

// Runs `gemm` and gemm_reference on identical inputs and compares every
// element of C, including that the NaN padding of C was left alone.
template <typename T>
void check_against_reference(GemmFunction<T> gemm, Transpose ta, Transpose tb, Shape s, T alpha, T beta,
                             int64_t extra_ld, bool c_starts_nan) {
  std::mt19937 rng(1234);
  const bool a_no = ta == Transpose::No, b_no = tb == Transpose::No;
  Matrix<T> A(a_no ? s.M : s.K, a_no ? s.K : s.M, (a_no ? s.K : s.M) + extra_ld, rng);
  Matrix<T> B(b_no ? s.K : s.N, b_no ? s.N : s.K, (b_no ? s.N : s.K) + extra_ld, rng);
  Matrix<T> C(s.M, s.N, s.N + extra_ld, rng);
  if (c_starts_nan) {
    for (T& x : C.data) x = std::numeric_limits<T>::quiet_NaN();
  }
  Matrix<T> expected = C;
  cudagrad::cpu::gemm_reference<T>(ta, tb, s.M, s.N, s.K, alpha, A.data.data(), A.ld, B.data.data(), B.ld, beta,
                                   expected.data.data(), expected.ld);
  gemm(ta, tb, s.M, s.N, s.K, alpha, A.data.data(), A.ld, B.data.data(), B.ld, beta, C.data.data(), C.ld);

  // Rounding error of a length-K dot product of values in [-1, 1] grows
  // roughly like K * epsilon, hence atol proportional to K.
  const double eps = std::numeric_limits<T>::epsilon();
  const double atol = 4 * eps * static_cast<double>(s.K + 1) * (std::abs(alpha) + std::abs(beta));
  const double rtol = 16 * eps;
  int64_t mismatches = 0;
  for (int64_t i = 0; i < s.M; ++i) {
    for (int64_t j = 0; j < C.ld; ++j) {
      const double got = C.at(i, j), want = expected.at(i, j);
      const bool ok = (j < s.N) ? std::abs(got - want) <= atol + rtol * std::abs(want)  // NaN fails
                                : std::isnan(got);  // padding untouched
      if (!ok && ++mismatches <= 3) {
        INFO("C(" << i << ", " << j << ") = " << got << ", reference " << want << ", atol " << atol);
        CHECK(ok);
      }
    }
  }
  CHECK(mismatches == 0);
}

template <typename T>
void check_all_cases(GemmFunction<T> gemm) {
  const Transpose both[] = {Transpose::No, Transpose::Yes};
  const std::pair<T, T> alpha_betas[] = {{T(1), T(0)}, {T(1), T(1)}, {T(-1.5), T(0.75)}, {T(0.5), T(0)}};
  for (Transpose ta : both)
    for (Transpose tb : both)
      for (const Shape& s : kShapes)
        for (const auto& [alpha, beta] : alpha_betas)
          for (int64_t extra_ld : {0, 3}) {
            // beta == 0 must overwrite a C full of NaN; with beta != 0 C is real data.
            const bool c_starts_nan = beta == T(0);
            INFO("ta=" << (ta == Transpose::Yes) << " tb=" << (tb == Transpose::Yes) << " M=" << s.M
                       << " N=" << s.N << " K=" << s.K << " alpha=" << alpha << " beta=" << beta
                       << " extra_ld=" << extra_ld);
            check_against_reference<T>(gemm, ta, tb, s, alpha, beta, extra_ld, c_starts_nan);
          }
}

// The message of the std::invalid_argument that `call` throws, or a marker.
template <typename Call>
std::string invalid_argument_message(Call call) {
  try {
    call();
  } catch (const std::invalid_argument& error) {
    return error.what();
  }
  return "<no std::invalid_argument thrown>";
}

bool contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

// Restores the thread count a test changed.
struct ThreadCountGuard {
  int saved = cudagrad::cpu::num_threads();
  ~ThreadCountGuard() { cudagrad::cpu::set_num_threads(saved); }
};

}  // namespace

TEMPLATE_TEST_CASE("gemm_blocked matches gemm_reference", "[gemm]", float, double) {
  ThreadCountGuard guard;
  for (int threads : {1, 2, 3}) {
    INFO("threads=" << threads);
    cudagrad::cpu::set_num_threads(threads);
    check_all_cases<TestType>(&cudagrad::cpu::gemm_blocked<TestType>);
  }
}

TEMPLATE_TEST_CASE("gemm_openblas matches gemm_reference", "[gemm]", float, double) {
  if (!cudagrad::cpu::openblas_available()) {
    CHECK_THROWS_AS(cudagrad::cpu::gemm_openblas<TestType>(Transpose::No, Transpose::No, 1, 1, 1, 1, nullptr, 1,
                                                           nullptr, 1, 0, nullptr, 1),
                    std::runtime_error);
    return;
  }
  check_all_cases<TestType>(&cudagrad::cpu::gemm_openblas<TestType>);
}

TEMPLATE_TEST_CASE("gemm dispatch follows set_gemm_impl", "[gemm]", float, double) {
  const GemmImpl saved = cudagrad::cpu::gemm_impl();
  for (GemmImpl impl : {GemmImpl::Reference, GemmImpl::Blocked, GemmImpl::OpenBlas}) {
    if (impl == GemmImpl::OpenBlas && !cudagrad::cpu::openblas_available()) {
      CHECK_THROWS_AS(cudagrad::cpu::set_gemm_impl(impl), std::runtime_error);
      continue;
    }
    cudagrad::cpu::set_gemm_impl(impl);
    CHECK(cudagrad::cpu::gemm_impl() == impl);
    check_against_reference<TestType>(&cudagrad::cpu::gemm<TestType>, Transpose::Yes, Transpose::No,
                                      {7, 13, 5}, TestType(2), TestType(0), 1, true);
  }
  cudagrad::cpu::set_gemm_impl(saved);
}

TEST_CASE("gemm_blocked gives bitwise identical results for any thread count", "[gemm]") {
  ThreadCountGuard guard;
  std::mt19937 rng(7);
  Matrix<float> A(100, 300, 300, rng), B(300, 90, 90, rng);
  std::vector<std::vector<float>> results;
  for (int threads : {1, 2, 4}) {
    cudagrad::cpu::set_num_threads(threads);
    std::vector<float> C(100 * 90);
    cudagrad::cpu::gemm_blocked<float>(Transpose::No, Transpose::No, 100, 90, 300, 1.0f, A.data.data(), 300,
                                       B.data.data(), 90, 0.0f, C.data(), 90);
    results.push_back(C);
  }
  CHECK(results[0] == results[1]);
  CHECK(results[0] == results[2]);
}

TEST_CASE("gemm with alpha == 0 or K == 0 only scales C", "[gemm]") {
  const float nan = std::numeric_limits<float>::quiet_NaN();
  std::vector<float> A(6, nan), B(6, nan);  // must not be read
  for (auto gemm : {&cudagrad::cpu::gemm_reference<float>, &cudagrad::cpu::gemm_blocked<float>}) {
    std::vector<float> C = {1, 2, 3, 4};
    gemm(Transpose::No, Transpose::No, 2, 2, 3, 0.0f, A.data(), 3, B.data(), 2, 2.0f, C.data(), 2);
    CHECK(C == std::vector<float>{2, 4, 6, 8});
    std::vector<float> D = {nan, nan, nan, nan};
    gemm(Transpose::No, Transpose::No, 2, 2, 0, 1.0f, A.data(), 1, B.data(), 2, 0.0f, D.data(), 2);
    CHECK(D == std::vector<float>{0, 0, 0, 0});
  }
}

TEST_CASE("gemm rejects bad arguments with messages naming them", "[gemm]") {
  std::vector<double> buffer(64, 0.0);
  const double* a = buffer.data();
  double* c = buffer.data();
  auto blocked = cudagrad::cpu::gemm_blocked<double>;

  std::string message = invalid_argument_message(
      [&] { blocked(Transpose::No, Transpose::No, -1, 2, 3, 1.0, a, 3, a, 2, 0.0, c, 2); });
  CHECK(contains(message, "gemm_blocked"));
  CHECK(contains(message, "M=-1"));

  // A is 4 x 5 (no transpose): lda must be >= 5.
  message = invalid_argument_message(
      [&] { blocked(Transpose::No, Transpose::No, 4, 2, 5, 1.0, a, 4, a, 2, 0.0, c, 2); });
  CHECK(contains(message, "lda=4"));
  CHECK(contains(message, ">= 5"));

  // Transposed A is stored K x M = 5 x 4: lda=4 is fine there, but B^T is
  // stored N x K = 2 x 5, so ldb must be >= 5.
  message = invalid_argument_message(
      [&] { cudagrad::cpu::gemm_reference<double>(Transpose::Yes, Transpose::Yes, 4, 2, 5, 1.0, a, 4, a, 2, 0.0, c, 2); });
  CHECK(contains(message, "gemm_reference"));
  CHECK(contains(message, "ldb=2"));

  message = invalid_argument_message(
      [&] { blocked(Transpose::No, Transpose::No, 2, 3, 2, 1.0, a, 2, a, 3, 0.0, c, 2); });
  CHECK(contains(message, "ldc=2"));

  message = invalid_argument_message(
      [&] { blocked(Transpose::No, Transpose::No, 2, 2, 2, 1.0, a, 2, a, 2, 0.0, nullptr, 2); });
  CHECK(contains(message, "C is null"));

  message = invalid_argument_message([] { cudagrad::cpu::gemm_impl_from_name("fastest"); });
  CHECK(contains(message, "'fastest'"));
  CHECK(cudagrad::cpu::gemm_impl_from_name("blocked") == GemmImpl::Blocked);

  // Empty problems are fine and touch nothing.
  CHECK_NOTHROW(blocked(Transpose::No, Transpose::No, 0, 0, 0, 1.0, nullptr, 1, nullptr, 1, 0.0, nullptr, 1));
}

TEST_CASE("parallel_for covers the range exactly once in deterministic chunks", "[parallel]") {
  ThreadCountGuard guard;
  for (int threads : {1, 2, 3, 8}) {
    cudagrad::cpu::set_num_threads(threads);
    for (int64_t length : {0, 1, 2, 7, 100, 1001}) {
      for (int64_t grain : {1, 4, 64, 5000}) {
        INFO("threads=" << threads << " length=" << length << " grain=" << grain);
        const int64_t begin = 10;  // a non-zero start catches offset bugs
        std::vector<std::atomic<int>> visits(static_cast<size_t>(length));
        std::mutex chunks_mutex;
        std::set<std::pair<int64_t, int64_t>> chunks;
        cudagrad::cpu::parallel_for(begin, begin + length, grain, [&](int64_t lo, int64_t hi) {
          for (int64_t i = lo; i < hi; ++i) visits[static_cast<size_t>(i - begin)]++;
          std::lock_guard<std::mutex> lock(chunks_mutex);
          chunks.insert({lo, hi});
        });
        for (const std::atomic<int>& count : visits) REQUIRE(count == 1);
        CHECK(static_cast<int64_t>(chunks.size()) <= threads);
        for (const auto& [lo, hi] : chunks) CHECK((hi - lo >= grain || hi - lo == length));

        std::set<std::pair<int64_t, int64_t>> chunks_again;
        cudagrad::cpu::parallel_for(begin, begin + length, grain, [&](int64_t lo, int64_t hi) {
          std::lock_guard<std::mutex> lock(chunks_mutex);
          chunks_again.insert({lo, hi});
        });
        CHECK(chunks == chunks_again);
      }
    }
  }
}

TEST_CASE("parallel_for rethrows the exception of the lowest failing chunk", "[parallel]") {
  ThreadCountGuard guard;
  cudagrad::cpu::set_num_threads(4);
  std::atomic<int> chunks_run{0};
  auto body = [&](int64_t lo, int64_t) {
    ++chunks_run;
    if (lo > 0) throw std::runtime_error("chunk starting at " + std::to_string(lo));
  };
  // Chunks start at 0, 25, 50, 75; the ones at 25, 50 and 75 throw.
  CHECK_THROWS_WITH(cudagrad::cpu::parallel_for(0, 100, 1, body), "chunk starting at 25");
  CHECK(chunks_run == 4);  // every chunk still ran
  // The pool survives a failed job.
  std::atomic<int64_t> sum{0};
  cudagrad::cpu::parallel_for(0, 100, 1, [&](int64_t lo, int64_t hi) { sum += hi - lo; });
  CHECK(sum == 100);
}

TEST_CASE("nested parallel_for runs serially inside the worker", "[parallel]") {
  ThreadCountGuard guard;
  cudagrad::cpu::set_num_threads(2);
  std::atomic<int64_t> total{0};
  std::atomic<int> inner_chunks_outside_region{0};
  cudagrad::cpu::parallel_for(0, 4, 1, [&](int64_t lo, int64_t hi) {
    for (int64_t outer = lo; outer < hi; ++outer) {
      cudagrad::cpu::parallel_for(0, 1000, 1, [&](int64_t inner_lo, int64_t inner_hi) {
        if (!cudagrad::cpu::in_parallel_region()) ++inner_chunks_outside_region;
        total += inner_hi - inner_lo;
      });
    }
  });
  CHECK(total == 4000);
  CHECK(inner_chunks_outside_region == 0);
  CHECK_FALSE(cudagrad::cpu::in_parallel_region());
  // A GEMM inside a parallel_for body also works (serially).
  std::vector<float> A(64, 1.0f), C(2 * 64 * 64);
  cudagrad::cpu::parallel_for(0, 2, 1, [&](int64_t lo, int64_t hi) {
    for (int64_t i = lo; i < hi; ++i)
      cudagrad::cpu::gemm_blocked<float>(Transpose::No, Transpose::No, 64, 64, 1, 1.0f, A.data(), 1, A.data(),
                                         64, 0.0f, C.data() + i * 64 * 64, 64);
  });
  CHECK(C == std::vector<float>(2 * 64 * 64, 1.0f));
}

TEST_CASE("thread count settings validate their input", "[parallel]") {
  CHECK(cudagrad::cpu::parse_num_threads("3") == 3);
  for (const char* bad : {"", "0", "-2", "two", "4x", "99999999999"}) {
    INFO("text='" << bad << "'");
    const std::string message = invalid_argument_message([&] { cudagrad::cpu::parse_num_threads(bad); });
    CHECK(contains(message, std::string("'") + bad + "'"));
  }
  CHECK_THROWS_AS(cudagrad::cpu::set_num_threads(0), std::invalid_argument);
  CHECK(cudagrad::cpu::num_threads() >= 1);
}
