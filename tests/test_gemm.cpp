// Tests for src/cpu/gemm*.cpp (reference, blocked with each micro-kernel,
// OpenBLAS, the dispatch) and src/cpu/parallel.cpp.
//
// What is checked: gemm_blocked with every micro-kernel this CPU supports
// (portable, avx2, avx512; forced through set_gemm_kernel, the others are
// reported as skipped) and gemm_openblas against the triple-loop oracle
// gemm_reference, for float and double, all four transpose combinations,
// sizes that are not multiples of any tile (1, 7, 13, 33, 65, 129, 300, plus
// K deeper than two K blocks and M, N wider than one cache block),
// alpha/beta != 1, beta == 0 over a C full of NaN, and sub-matrices (leading
// dimension > columns, with NaN in the padding so that reading or writing
// outside the sub-matrix shows up). Agreement means
// |x - ref| <= atol + rtol * |ref| per element: the implementations sum in
// different orders and with or without FMA, so bitwise equality is not
// expected. Each kernel must give bitwise identical results for any thread
// count. The kernel and implementation selectors are checked against
// /proc/cpuinfo and for their error messages. parallel_for is checked for
// exact coverage, chunk sizes, deterministic chunks, exception propagation
// and nested calls.
#include "catch.hpp"

#include <atomic>
#include <cmath>
#include <cstdlib>
#include <fstream>
#include <limits>
#include <mutex>
#include <random>
#include <set>
#include <sstream>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "cpu/gemm.hpp"
#include "cpu/parallel.hpp"

namespace {

using cudagrad::cpu::GemmImpl;
using cudagrad::cpu::GemmKernel;
using cudagrad::cpu::Transpose;

const GemmKernel kAllKernels[] = {GemmKernel::Portable, GemmKernel::Avx2, GemmKernel::Avx512};

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

// Every size from {1, 7, 13, 33, 65, 129, 300} appears as M, as N and as K;
// most leave partial edge tiles for every kernel (MR = 6, 8 or 16, NR = 4 to
// 16). K=700 spans three K blocks, M=300 several MC blocks, N=800 two NC
// blocks for the portable kernel.
const Shape kShapes[] = {{1, 1, 1},     {7, 13, 33},   {13, 7, 1},    {33, 65, 7},   {65, 33, 129},
                         {129, 1, 13},  {1, 129, 65},  {300, 7, 13},  {7, 300, 33},  {13, 33, 300},
                         {129, 65, 7},  {33, 65, 700}, {129, 800, 13}, {300, 33, 65}, {2, 3, 300}};

template <typename T>
using GemmFunction = void (*)(Transpose, Transpose, int64_t, int64_t, int64_t, T, const T*, int64_t,
                              const T*, int64_t, T, T*, int64_t);

// One problem: inputs, the starting C and gemm_reference's answer.
template <typename T>
struct Problem {
  Transpose ta, tb;
  Shape s;
  T alpha, beta;
  Matrix<T> A, B, C, expected;

  Problem(Transpose ta_, Transpose tb_, Shape s_, T alpha_, T beta_, int64_t extra_ld, std::mt19937& rng)
      : ta(ta_), tb(tb_), s(s_), alpha(alpha_), beta(beta_),
        A(ta == Transpose::No ? s.M : s.K, ta == Transpose::No ? s.K : s.M,
          (ta == Transpose::No ? s.K : s.M) + extra_ld, rng),
        B(tb == Transpose::No ? s.K : s.N, tb == Transpose::No ? s.N : s.K,
          (tb == Transpose::No ? s.N : s.K) + extra_ld, rng),
        C(s.M, s.N, s.N + extra_ld, rng), expected(C) {
    // beta == 0 must overwrite a C full of NaN; with beta != 0 C is real data.
    if (beta == T(0)) {
      for (T& x : C.data) x = std::numeric_limits<T>::quiet_NaN();
    }
    expected = C;
    cudagrad::cpu::gemm_reference<T>(ta, tb, s.M, s.N, s.K, alpha, A.data.data(), A.ld, B.data.data(), B.ld, beta,
                                     expected.data.data(), expected.ld);
  }

  // C after running `gemm` on a fresh copy of the starting C.
  Matrix<T> run(GemmFunction<T> gemm) const {
    Matrix<T> out = C;
    gemm(ta, tb, s.M, s.N, s.K, alpha, A.data.data(), A.ld, B.data.data(), B.ld, beta, out.data.data(), out.ld);
    return out;
  }

  // Compares every element of `got` with the reference, including that the
  // NaN padding of C was left alone.
  void check(Matrix<T>& got) {
    // Rounding error of a length-K dot product of values in [-1, 1] grows
    // roughly like K * epsilon, hence atol proportional to K.
    const double eps = std::numeric_limits<T>::epsilon();
    const double atol = 4 * eps * static_cast<double>(s.K + 1) * (std::abs(alpha) + std::abs(beta));
    const double rtol = 16 * eps;
    int64_t mismatches = 0;
    for (int64_t i = 0; i < s.M; ++i) {
      for (int64_t j = 0; j < got.ld; ++j) {
        const double value = got.at(i, j), want = expected.at(i, j);
        const bool ok = (j < s.N) ? std::abs(value - want) <= atol + rtol * std::abs(want)  // NaN fails
                                  : std::isnan(value);  // padding untouched
        if (!ok && ++mismatches <= 3) {
          INFO("C(" << i << ", " << j << ") = " << value << ", reference " << want << ", atol " << atol);
          CHECK(ok);
        }
      }
    }
    CHECK(mismatches == 0);
  }
};

// Calls visit(problem) for every transpose combination, shape, alpha/beta
// pair and leading-dimension padding.
template <typename T, typename Visit>
void for_each_problem(Visit visit) {
  std::mt19937 rng(1234);
  const Transpose both[] = {Transpose::No, Transpose::Yes};
  const std::pair<T, T> alpha_betas[] = {{T(1), T(0)}, {T(1), T(1)}, {T(-1.5), T(0.75)}, {T(0.5), T(0)}};
  for (Transpose ta : both)
    for (Transpose tb : both)
      for (const Shape& s : kShapes)
        for (const auto& [alpha, beta] : alpha_betas)
          for (int64_t extra_ld : {0, 3}) {
            INFO("ta=" << (ta == Transpose::Yes) << " tb=" << (tb == Transpose::Yes) << " M=" << s.M
                       << " N=" << s.N << " K=" << s.K << " alpha=" << alpha << " beta=" << beta
                       << " extra_ld=" << extra_ld);
            Problem<T> problem(ta, tb, s, alpha, beta, extra_ld, rng);
            visit(problem);
          }
}

// The kernels this CPU can run; the others are reported as skipped.
std::vector<GemmKernel> supported_kernels() {
  std::vector<GemmKernel> kernels;
  for (GemmKernel kernel : kAllKernels) {
    if (cudagrad::cpu::gemm_kernel_supported(kernel)) {
      kernels.push_back(kernel);
    } else {
      WARN("skipping the " << cudagrad::cpu::gemm_kernel_name(kernel) << " GEMM kernel: this CPU lacks it");
    }
  }
  return kernels;
}

// The message of the exception of type Error that `call` throws, or a marker.
template <typename Error, typename Call>
std::string error_message(Call call) {
  try {
    call();
  } catch (const Error& error) {
    return error.what();
  }
  return "<no exception of the expected type thrown>";
}

bool contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

// The "flags" line of /proc/cpuinfo, padded with spaces; empty if unreadable.
std::string cpu_flags() {
  std::ifstream cpuinfo("/proc/cpuinfo");
  std::string line;
  while (std::getline(cpuinfo, line)) {
    if (line.rfind("flags", 0) == 0) return line.substr(line.find(':') + 1) + " ";
  }
  return "";
}

// Restore the thread count / kernel / implementation a test changed.
struct ThreadCountGuard {
  int saved = cudagrad::cpu::num_threads();
  ~ThreadCountGuard() { cudagrad::cpu::set_num_threads(saved); }
};
struct KernelGuard {
  GemmKernel saved = cudagrad::cpu::gemm_kernel();
  ~KernelGuard() { cudagrad::cpu::set_gemm_kernel(saved); }
};

}  // namespace

TEMPLATE_TEST_CASE("gemm_blocked matches gemm_reference with every supported micro-kernel", "[gemm]", float,
                   double) {
  ThreadCountGuard thread_guard;
  KernelGuard kernel_guard;
  const std::vector<GemmKernel> kernels = supported_kernels();
  REQUIRE(!kernels.empty());
  for_each_problem<TestType>([&](Problem<TestType>& problem) {
    for (GemmKernel kernel : kernels) {
      cudagrad::cpu::set_gemm_kernel(kernel);
      for (int threads : {1, 2, 3}) {
        INFO("kernel=" << cudagrad::cpu::gemm_kernel_name(kernel) << " threads=" << threads);
        cudagrad::cpu::set_num_threads(threads);
        Matrix<TestType> got = problem.run(&cudagrad::cpu::gemm_blocked<TestType>);
        problem.check(got);
      }
    }
  });
}

TEMPLATE_TEST_CASE("gemm_openblas matches gemm_reference", "[gemm]", float, double) {
  if (!cudagrad::cpu::openblas_available()) {
    CHECK_THROWS_AS(cudagrad::cpu::gemm_openblas<TestType>(Transpose::No, Transpose::No, 1, 1, 1, 1, nullptr, 1,
                                                           nullptr, 1, 0, nullptr, 1),
                    std::runtime_error);
    return;
  }
  for_each_problem<TestType>([](Problem<TestType>& problem) {
    Matrix<TestType> got = problem.run(&cudagrad::cpu::gemm_openblas<TestType>);
    problem.check(got);
  });
}

TEMPLATE_TEST_CASE("gemm dispatch follows set_gemm_impl", "[gemm]", float, double) {
  const GemmImpl saved = cudagrad::cpu::gemm_impl();
  std::mt19937 rng(5);
  Problem<TestType> problem(Transpose::Yes, Transpose::No, {7, 13, 5}, TestType(2), TestType(0), 1, rng);
  for (GemmImpl impl : {GemmImpl::Reference, GemmImpl::Blocked, GemmImpl::OpenBlas}) {
    if (impl == GemmImpl::OpenBlas && !cudagrad::cpu::openblas_available()) {
      CHECK_THROWS_AS(cudagrad::cpu::set_gemm_impl(impl), std::runtime_error);
      continue;
    }
    cudagrad::cpu::set_gemm_impl(impl);
    CHECK(cudagrad::cpu::gemm_impl() == impl);
    Matrix<TestType> got = problem.run(&cudagrad::cpu::gemm<TestType>);
    problem.check(got);
  }
  cudagrad::cpu::set_gemm_impl(saved);
}

TEST_CASE("each micro-kernel gives bitwise identical results for any thread count", "[gemm]") {
  ThreadCountGuard thread_guard;
  KernelGuard kernel_guard;
  std::mt19937 rng(7);
  // M > N splits C by rows, M < N by columns; neither divides into whole tiles.
  for (const Shape& s : {Shape{100, 90, 300}, Shape{50, 333, 700}}) {
    Matrix<float> A(s.M, s.K, s.K, rng), B(s.K, s.N, s.N, rng);
    for (GemmKernel kernel : supported_kernels()) {
      cudagrad::cpu::set_gemm_kernel(kernel);
      INFO("kernel=" << cudagrad::cpu::gemm_kernel_name(kernel) << " M=" << s.M << " N=" << s.N);
      std::vector<std::vector<float>> results;
      for (int threads : {1, 2, 4}) {
        cudagrad::cpu::set_num_threads(threads);
        std::vector<float> C(static_cast<size_t>(s.M * s.N));
        cudagrad::cpu::gemm_blocked<float>(Transpose::No, Transpose::No, s.M, s.N, s.K, 1.0f, A.data.data(), s.K,
                                           B.data.data(), s.N, 0.0f, C.data(), s.N);
        results.push_back(C);
      }
      CHECK(results[0] == results[1]);
      CHECK(results[0] == results[2]);
    }
  }
}

TEST_CASE("the GEMM kernel selector follows the CPU and names bad choices", "[gemm]") {
  KernelGuard kernel_guard;
  CHECK(cudagrad::cpu::gemm_kernel_supported(GemmKernel::Portable));
  CHECK(cudagrad::cpu::gemm_kernel_supported(cudagrad::cpu::best_gemm_kernel()));
  CHECK(cudagrad::cpu::gemm_kernel_supported(cudagrad::cpu::gemm_kernel()));

  // The run-time CPU check agrees with what the kernel reports (Linux only).
  const std::string flags = cpu_flags();
  if (flags.empty()) {
    WARN("no /proc/cpuinfo: not cross-checking the CPU feature detection");
  } else {
    const bool avx2_fma = contains(flags, " avx2 ") && contains(flags, " fma ");
    const bool avx512 = contains(flags, " avx512f ");
    INFO("cpuinfo flags:" << flags);
    CHECK(cudagrad::cpu::gemm_kernel_supported(GemmKernel::Avx2) == avx2_fma);
    CHECK(cudagrad::cpu::gemm_kernel_supported(GemmKernel::Avx512) == avx512);
    CHECK(cudagrad::cpu::best_gemm_kernel() ==
          (avx512 ? GemmKernel::Avx512 : avx2_fma ? GemmKernel::Avx2 : GemmKernel::Portable));
  }

  for (GemmKernel kernel : kAllKernels) {
    const std::string name = cudagrad::cpu::gemm_kernel_name(kernel);
    INFO("kernel=" << name);
    CHECK(cudagrad::cpu::gemm_kernel_from_name(name) == kernel);
    if (cudagrad::cpu::gemm_kernel_supported(kernel)) {
      cudagrad::cpu::set_gemm_kernel(kernel);
      CHECK(cudagrad::cpu::gemm_kernel() == kernel);
    } else {  // refused up front rather than dying later on an illegal instruction
      const std::string message =
          error_message<std::runtime_error>([&] { cudagrad::cpu::set_gemm_kernel(kernel); });
      CHECK(contains(message, name));
      CHECK(contains(message, "does not support"));
    }
  }

  // CUDAGRAD_GEMM_KERNEL goes through gemm_kernel_from_name.
  for (const char* bad : {"sse9", "", "AVX2", "avx-512"}) {
    INFO("name='" << bad << "'");
    const std::string message =
        error_message<std::invalid_argument>([&] { cudagrad::cpu::gemm_kernel_from_name(bad); });
    CHECK(contains(message, std::string("'") + bad + "'"));
    CHECK(contains(message, "CUDAGRAD_GEMM_KERNEL"));
  }
}

TEST_CASE("the default GEMM is ours when the CPU has AVX2 and FMA", "[gemm]") {
  const GemmImpl automatic = cudagrad::cpu::automatic_gemm_impl();
  if (cudagrad::cpu::gemm_kernel_supported(GemmKernel::Avx2)) {
    CHECK(automatic == GemmImpl::Blocked);
  } else {
    CHECK(automatic == (cudagrad::cpu::openblas_available() ? GemmImpl::OpenBlas : GemmImpl::Blocked));
  }
  if (std::getenv("CUDAGRAD_GEMM") == nullptr) {
    // gemm_impl() may have been changed by set_gemm_impl in an earlier test
    // case, but every such test restores it.
    CHECK(cudagrad::cpu::gemm_impl() == automatic);
  }
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
  auto message_of = [](auto call) { return error_message<std::invalid_argument>(call); };

  std::string message =
      message_of([&] { blocked(Transpose::No, Transpose::No, -1, 2, 3, 1.0, a, 3, a, 2, 0.0, c, 2); });
  CHECK(contains(message, "gemm_blocked"));
  CHECK(contains(message, "M=-1"));

  // A is 4 x 5 (no transpose): lda must be >= 5.
  message = message_of([&] { blocked(Transpose::No, Transpose::No, 4, 2, 5, 1.0, a, 4, a, 2, 0.0, c, 2); });
  CHECK(contains(message, "lda=4"));
  CHECK(contains(message, ">= 5"));

  // Transposed A is stored K x M = 5 x 4: lda=4 is fine there, but B^T is
  // stored N x K = 2 x 5, so ldb must be >= 5.
  message = message_of([&] {
    cudagrad::cpu::gemm_reference<double>(Transpose::Yes, Transpose::Yes, 4, 2, 5, 1.0, a, 4, a, 2, 0.0, c, 2);
  });
  CHECK(contains(message, "gemm_reference"));
  CHECK(contains(message, "ldb=2"));

  message = message_of([&] { blocked(Transpose::No, Transpose::No, 2, 3, 2, 1.0, a, 2, a, 3, 0.0, c, 2); });
  CHECK(contains(message, "ldc=2"));

  message = message_of([&] { blocked(Transpose::No, Transpose::No, 2, 2, 2, 1.0, a, 2, a, 2, 0.0, nullptr, 2); });
  CHECK(contains(message, "C is null"));

  message = message_of([] { cudagrad::cpu::gemm_impl_from_name("fastest"); });
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
    const std::string message =
        error_message<std::invalid_argument>([&] { cudagrad::cpu::parse_num_threads(bad); });
    CHECK(contains(message, std::string("'") + bad + "'"));
  }
  CHECK_THROWS_AS(cudagrad::cpu::set_num_threads(0), std::invalid_argument);
  CHECK(cudagrad::cpu::num_threads() >= 1);
}
