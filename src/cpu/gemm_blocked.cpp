// cudagrad CPU GEMM, our own fast version: packed, cache-blocked, threaded,
// with a micro-kernel chosen for the CPU at run time.
//
// What it computes: gemm.hpp's contract, C = alpha * op(A) * op(B) + beta * C
// (row-major; op(A) is M x K, op(B) is K x N, C is M x N). It must match
// gemm_reference to within rounding; tests/test_gemm.cpp checks every
// micro-kernel the CPU supports on all four transpose combinations, odd
// sizes, sub-matrices and the beta == 0 rule.
//
// Algorithm (Goto & van de Geijn 2008, as structured in BLIS):
//
//   for jc in N step NC:                 B panel: KC x NC
//     for pc in K step kc (<= KC):       pack op(B)[pc:+kc, jc:+NC]  -> packed_b
//       for ic in M step MC:             A block: MC x kc
//         pack op(A)[ic:+MC, pc:+kc]     -> packed_a
//         for ir in MC step MR:          one MR-tall micro-panel of packed_a (L1)
//           for jr in NC step NR:        one NR-wide micro-panel of packed_b (L2)
//             micro-kernel: MR x NR tile of C += a_panel * b_panel  (kc steps)
//
// Packing copies the operands into the exact order the micro-kernel reads
// them: contiguous, unit stride, zero-padded to whole MR / NR tiles. That is
// where transposes and leading dimensions are handled, so each micro-kernel
// exists only once; partial edge tiles run the kernel on a scratch tile.
//
// Micro-kernels (gemm_microkernel.hpp): portable 6 x 8 floats (plain C++
// that GCC vectorises for SSE2, below), AVX2+FMA 6 x 16 and AVX-512 16 x 16
// (gemm_microkernel_avx2.cpp, gemm_microkernel_avx512.cpp, compiled with
// target attributes). gemm_kernel() picks the best one the CPU has; this
// file is templated on the kernel's shape, so the packing follows its MR/NR.
//
// Napkin math (float, 2.1 GHz Xeon core; double halves the FLOP rates):
//   * Work 2*M*N*K FLOP; minimum traffic 4*(M*K + K*N + 2*M*N) bytes. For
//     512^3: 268 MFLOP over 4 MB, 64 FLOP/byte: compute bound once blocked.
//   * Kernel ceilings per core at base clock: portable ~25 GFLOP/s (SSE2
//     mulps + addps), AVX2 ~67 (two 8-wide FMA ports), AVX-512 ~134 (two
//     16-wide FMA ports); turbo lifts the measured rates above these.
//   * Cache fit (AVX-512 float; L1d 48 KB, L2 2 MB per core): the A
//     micro-panel MR x KC = 16*256*4 B = 16 KB stays in L1 while the jr loop
//     streams the B panel KC x NC = 256*1024*4 B = 1 MB past it from L2.
//     Each MR x NR tile of C is loaded and stored once per K block, so deep
//     blocks amortise the C traffic: K is cut into equal blocks of at most
//     KC rather than KC, KC, ..., remainder. The loop order puts the
//     broadcast operand (A) in L1 and the vector operand (B) in L2, as BLIS
//     does for its column-major kernels.
//   * Packing is O(M*K + K*N) copies against O(M*N*K) FMAs, but skinny
//     products (N = 49 in ResNet's last stage) use each packed A element only
//     a few times, so the transposing copies are vectorised too.

// Threads: C is cut into num_threads() slabs along its longer side (whole
// MR/NR tiles) and each slab runs the loops above on its own thread with its
// own pack buffers. A slab re-packs the operand it shares with the others;
// that costs ~1/(slab width) of the arithmetic, i.e. a few percent.
//
// Determinism: for a given kernel, every element of C is computed by the
// same operations in the same order (k ascending inside kc blocks, blocks
// ascending, block depth a function of K only) whatever the thread count, so
// results are bitwise identical for any num_threads(). Different kernels
// differ in the last bits (FMA rounds once, mulps + addps twice).
#include <algorithm>
#include <cstring>
#include <vector>

#if defined(__SSE2__)
#include <emmintrin.h>  // SSE2: part of every x86-64 CPU
#endif

#include "gemm.hpp"
#include "gemm_microkernel.hpp"
#include "parallel.hpp"

namespace cudagrad::cpu {
namespace {

// Strided view of op(X): element (r, c) is data[r * row_stride + c * col_stride].
// A transpose just swaps the two strides.
template <typename T>
struct MatrixView {
  const T* data;
  int64_t row_stride;
  int64_t col_stride;
  const T& operator()(int64_t r, int64_t c) const { return data[r * row_stride + c * col_stride]; }
  MatrixView offset(int64_t r, int64_t c) const { return {&(*this)(r, c), row_stride, col_stride}; }
  MatrixView transposed() const { return {data, col_stride, row_stride}; }
};

template <typename T>
MatrixView<T> op_view(const T* data, int64_t ld, Transpose t) {
  return t == Transpose::No ? MatrixView<T>{data, ld, 1} : MatrixView<T>{data, 1, ld};
}

// Copies W full rows of x, each contiguous along k (x[w * ld + k]), into the
// k-major panel packed[k * W + w]: a W x kc transpose. Done in 4 x 4 (float)
// or 2 x 2 (double) SSE2 blocks, so that both the loads and the stores are
// whole 16-byte vectors; element by element this transpose costs about as
// much as the multiplications for skinny products (measured: half the time
// of a 512 x 49 x 4608 GEMM). The outer loop walks groups of rows, so only
// four input streams are live at a time. Every W here is even, so float rows
// come in fours plus at most one pair.
template <int W>
void pack_rows_transposed(const float* x, int64_t ld, int64_t kc, float* packed) {
  static_assert(W % 2 == 0);
  int64_t k_vector_end = 0;
#if defined(__SSE2__)
  k_vector_end = kc / 4 * 4;
  int w = 0;
  for (; w + 4 <= W; w += 4) {
    const float *x0 = x + w * ld, *x1 = x0 + ld, *x2 = x1 + ld, *x3 = x2 + ld;
    for (int64_t k = 0; k < k_vector_end; k += 4) {
      const __m128 r0 = _mm_loadu_ps(x0 + k), r1 = _mm_loadu_ps(x1 + k);
      const __m128 r2 = _mm_loadu_ps(x2 + k), r3 = _mm_loadu_ps(x3 + k);
      // (r0 r1) interleaved for k0-1 and k2-3, then (r2 r3) likewise.
      const __m128 r01_lo = _mm_unpacklo_ps(r0, r1), r01_hi = _mm_unpackhi_ps(r0, r1);
      const __m128 r23_lo = _mm_unpacklo_ps(r2, r3), r23_hi = _mm_unpackhi_ps(r2, r3);
      float* out = packed + k * W + w;
      _mm_storeu_ps(out + 0 * W, _mm_movelh_ps(r01_lo, r23_lo));  // k0: r0 r1 r2 r3
      _mm_storeu_ps(out + 1 * W, _mm_movehl_ps(r23_lo, r01_lo));  // k1
      _mm_storeu_ps(out + 2 * W, _mm_movelh_ps(r01_hi, r23_hi));  // k2
      _mm_storeu_ps(out + 3 * W, _mm_movehl_ps(r23_hi, r01_hi));  // k3
    }
  }
  if (w < W) {  // the last pair of rows
    const float *x0 = x + w * ld, *x1 = x0 + ld;
    for (int64_t k = 0; k < k_vector_end; k += 4) {
      const __m128 r0 = _mm_loadu_ps(x0 + k), r1 = _mm_loadu_ps(x1 + k);
      const __m128 lo = _mm_unpacklo_ps(r0, r1), hi = _mm_unpackhi_ps(r0, r1);
      float* out = packed + k * W + w;
      _mm_storel_pi(reinterpret_cast<__m64*>(out + 0 * W), lo);
      _mm_storeh_pi(reinterpret_cast<__m64*>(out + 1 * W), lo);
      _mm_storel_pi(reinterpret_cast<__m64*>(out + 2 * W), hi);
      _mm_storeh_pi(reinterpret_cast<__m64*>(out + 3 * W), hi);
    }
  }
#endif
  for (int64_t k = k_vector_end; k < kc; ++k) {
    for (int w = 0; w < W; ++w) packed[k * W + w] = x[w * ld + k];
  }
}

template <int W>
void pack_rows_transposed(const double* x, int64_t ld, int64_t kc, double* packed) {
  static_assert(W % 2 == 0);
  int64_t k_vector_end = 0;
#if defined(__SSE2__)
  k_vector_end = kc / 2 * 2;
  for (int w = 0; w < W; w += 2) {
    const double *x0 = x + w * ld, *x1 = x0 + ld;
    for (int64_t k = 0; k < k_vector_end; k += 2) {
      const __m128d r0 = _mm_loadu_pd(x0 + k), r1 = _mm_loadu_pd(x1 + k);
      _mm_storeu_pd(packed + k * W + w, _mm_unpacklo_pd(r0, r1));      // k0: r0 r1
      _mm_storeu_pd(packed + k * W + W + w, _mm_unpackhi_pd(r0, r1));  // k1
    }
  }
#endif
  for (int64_t k = k_vector_end; k < kc; ++k) {
    for (int w = 0; w < W; ++w) packed[k * W + w] = x[w * ld + k];
  }
}

// Packs `width` rows (W at a time) x kc columns of x into W-row panels,
// k-major: packed[p][k][w] = x(p*W + w, k), rows past `width` are zeros.
// op(A) is packed as pack_panels<MR>(a), op(B) as pack_panels<NR>(b^T).
// Full panels take a fast path for either memory layout; the last, partial
// panel goes element by element.
template <int W, typename T>
void pack_panels(MatrixView<T> x, int64_t width, int64_t kc, T* packed) {
  const int64_t full_panels = width / W;
  if (x.col_stride == 1) {  // rows contiguous along k: transpose each panel
    for (int64_t p = 0; p < full_panels; ++p) {
      pack_rows_transposed<W>(&x(p * W, 0), x.row_stride, kc, packed + p * W * kc);
    }
  } else {  // x.row_stride == 1, columns contiguous along w: plain copies
    // Eight columns k at a time across all panels: x is read as eight
    // sequential streams and each panel receives 8 * W contiguous values.
    // Walking down one panel at a time (all k) jumps a row of the source
    // matrix per step, which the prefetchers cannot follow; one column k
    // across all panels scatters single W-vectors at a stride of W * kc that
    // thrashes L1 sets (measured on 64 x 3136 x 576: packing took 40% and
    // 35% of the GEMM, respectively).
    constexpr int64_t k_chunk = 8;
    for (int64_t k0 = 0; k0 < kc; k0 += k_chunk) {
      const int64_t k_end = std::min(kc, k0 + k_chunk);
      for (int64_t p = 0; p < full_panels; ++p) {
        for (int64_t k = k0; k < k_end; ++k) {
          std::memcpy(packed + p * W * kc + k * W, &x(p * W, k), W * sizeof(T));  // fixed size: inlined
        }
      }
    }
  }
  const int64_t rows = width - full_panels * W;
  if (rows == 0) return;
  const int64_t w0 = full_panels * W;
  packed += full_panels * W * kc;
  for (int64_t k = 0; k < kc; ++k) {
    for (int64_t w = 0; w < W; ++w) packed[k * W + w] = (w < rows) ? x(w0 + w, k) : T(0);
  }
}

// The portable micro-kernel (contract: gemm_microkernel.hpp). Written as
// plain loops over compile-time bounds: GCC -O3 unrolls them, keeps acc in
// registers and turns the j loop into SSE mulps/addps. The sum over k stays
// in order (no -ffast-math), so it is IEEE exact and deterministic. One
// detail matters a lot for GCC 12 (measured, float): b_row is copied into a
// local array first; reading b_panel directly, GCC vectorised across i with
// shuffles instead: ~13x slower.
template <typename T>
void micro_kernel_portable(int64_t kc, const T* __restrict a_panel, const T* __restrict b_panel,
                           T* __restrict c, int64_t ldc, T alpha, T beta) {
  constexpr int MR = PortableKernelShape<T>::MR;
  constexpr int NR = PortableKernelShape<T>::NR;
  T acc[MR][NR] = {};
  for (int64_t k = 0; k < kc; ++k) {
    T b_row[NR];
    for (int j = 0; j < NR; ++j) b_row[j] = b_panel[k * NR + j];
    for (int i = 0; i < MR; ++i) {
      const T a_ik = a_panel[k * MR + i];
      for (int j = 0; j < NR; ++j) acc[i][j] += a_ik * b_row[j];
    }
  }
  for (int i = 0; i < MR; ++i) {
    T* c_row = c + i * ldc;
    if (beta == T(0)) {  // BLAS rule: C is not read, NaN in it cannot leak out
      for (int j = 0; j < NR; ++j) c_row[j] = alpha * acc[i][j];
    } else {
      for (int j = 0; j < NR; ++j) c_row[j] = alpha * acc[i][j] + beta * c_row[j];
    }
  }
}

// A micro-kernel with its tile and cache blocks, as a type: gemm_slab below
// is instantiated once per kernel, so packing and loops see MR/NR as
// compile-time constants.
template <typename T>
struct PortableKernel : PortableKernelShape<T> {
  static void compute(int64_t kc, const T* a, const T* b, T* c, int64_t ldc, T alpha, T beta) {
    micro_kernel_portable(kc, a, b, c, ldc, alpha, beta);
  }
};
template <typename T>
struct Avx2Kernel : Avx2KernelShape<T> {
  static void compute(int64_t kc, const T* a, const T* b, T* c, int64_t ldc, T alpha, T beta) {
    micro_kernel_avx2(kc, a, b, c, ldc, alpha, beta);
  }
};
template <typename T>
struct Avx512Kernel : Avx512KernelShape<T> {
  static void compute(int64_t kc, const T* a, const T* b, T* c, int64_t ldc, T alpha, T beta) {
    micro_kernel_avx512(kc, a, b, c, ldc, alpha, beta);
  }
};

int64_t round_up(int64_t x, int64_t multiple) { return (x + multiple - 1) / multiple * multiple; }

// Depth of each K block: K cut into the fewest blocks of depth <= KC, all of
// (nearly) equal depth. Depends on K only, never on the thread split.
int64_t k_block_depth(int64_t K, int64_t KC) {
  const int64_t num_blocks = (K + KC - 1) / KC;
  return (K + num_blocks - 1) / num_blocks;
}

// One MR x NR tile of C. A partial edge tile (rows < MR or cols < NR) runs
// the same kernel on a full-size scratch tile and copies the valid part, so
// edge elements go through exactly the arithmetic interior ones do.
template <typename T, typename Kernel>
void compute_tile(int64_t kc, const T* a_panel, const T* b_panel, int64_t rows, int64_t cols, T alpha, T beta,
                  T* c, int64_t ldc) {
  constexpr int MR = Kernel::MR;
  constexpr int NR = Kernel::NR;
  if (rows == MR && cols == NR) return Kernel::compute(kc, a_panel, b_panel, c, ldc, alpha, beta);
  alignas(64) T scratch[MR * NR] = {};
  if (beta != T(0)) {  // beta == 0: C is not read
    for (int64_t i = 0; i < rows; ++i) std::memcpy(scratch + i * NR, c + i * ldc, cols * sizeof(T));
  }
  Kernel::compute(kc, a_panel, b_panel, scratch, NR, alpha, beta);
  for (int64_t i = 0; i < rows; ++i) std::memcpy(c + i * ldc, scratch + i * NR, cols * sizeof(T));
}

// Single-threaded Goto loops for one slab of C: op(A) is m x K, op(B) is K x n.
template <typename T, typename Kernel>
void gemm_slab(int64_t m, int64_t n, int64_t K, T alpha, MatrixView<T> a, MatrixView<T> b, T beta, T* C,
               int64_t ldc) {
  constexpr int MR = Kernel::MR;
  constexpr int NR = Kernel::NR;
  static_assert(Kernel::MC % MR == 0 && Kernel::NC % NR == 0, "cache blocks must hold whole tiles");
  const int64_t depth = k_block_depth(K, Kernel::KC);

  // Reused across calls (thread_local): big GEMMs would otherwise pay page
  // faults on freshly allocated megabytes every time.
  thread_local std::vector<T> packed_a;
  thread_local std::vector<T> packed_b;
  const size_t a_size = round_up(std::min(m, Kernel::MC), MR) * depth;
  const size_t b_size = round_up(std::min(n, Kernel::NC), NR) * depth;
  if (packed_a.size() < a_size) packed_a.resize(a_size);
  if (packed_b.size() < b_size) packed_b.resize(b_size);

  for (int64_t jc = 0; jc < n; jc += Kernel::NC) {
    const int64_t nc = std::min(Kernel::NC, n - jc);
    for (int64_t pc = 0; pc < K; pc += depth) {
      const int64_t kc = std::min(depth, K - pc);
      // Later K blocks add onto what the first one wrote.
      const T beta_block = (pc == 0) ? beta : T(1);
      pack_panels<NR>(b.offset(pc, jc).transposed(), nc, kc, packed_b.data());
      for (int64_t ic = 0; ic < m; ic += Kernel::MC) {
        const int64_t mc = std::min(Kernel::MC, m - ic);
        pack_panels<MR>(a.offset(ic, pc), mc, kc, packed_a.data());
        for (int64_t ir = 0; ir < mc; ir += MR) {
          for (int64_t jr = 0; jr < nc; jr += NR) {
            compute_tile<T, Kernel>(kc, packed_a.data() + ir * kc, packed_b.data() + jr * kc,
                                    std::min<int64_t>(MR, mc - ir), std::min<int64_t>(NR, nc - jr), alpha,
                                    beta_block, C + (ic + ir) * ldc + (jc + jr), ldc);
          }
        }
      }
    }
  }
}

// The whole product with one kernel: split C into per-thread slabs.
template <typename T, typename Kernel>
void gemm_with_kernel(int64_t M, int64_t N, int64_t K, T alpha, MatrixView<T> a, MatrixView<T> b, T beta,
                      T* C, int64_t ldc) {
  // Split C along its longer side, in whole register tiles, so that skinny
  // shapes such as M=64, N=3136 (a ResNet conv) still use every thread.
  const bool split_rows = M > N;
  const int64_t tile = split_rows ? Kernel::MR : Kernel::NR;
  const int64_t split_length = split_rows ? M : N;
  const int64_t other_length = split_rows ? N : M;
  const int64_t num_tiles = (split_length + tile - 1) / tile;
  // Waking a worker costs microseconds; give each one at least ~2^18
  // multiply-adds (~5-20 us of kernel time) or keep the work on this thread.
  const int64_t work_per_tile = tile * other_length * K;
  const int64_t grain_tiles = std::max<int64_t>(1, (int64_t(1) << 18) / work_per_tile);

  parallel_for(0, num_tiles, grain_tiles, [&](int64_t first_tile, int64_t end_tile) {
    const int64_t lo = first_tile * tile;
    const int64_t hi = std::min(end_tile * tile, split_length);
    if (split_rows) {
      gemm_slab<T, Kernel>(hi - lo, N, K, alpha, a.offset(lo, 0), b, beta, C + lo * ldc, ldc);
    } else {
      gemm_slab<T, Kernel>(M, hi - lo, K, alpha, a, b.offset(0, lo), beta, C + lo, ldc);
    }
  });
}

// C = beta * C for the cases with no products (K == 0 or alpha == 0).
template <typename T>
void scale_c(int64_t M, int64_t N, T beta, T* C, int64_t ldc) {
  for (int64_t i = 0; i < M; ++i) {
    for (int64_t j = 0; j < N; ++j) C[i * ldc + j] = (beta == T(0)) ? T(0) : beta * C[i * ldc + j];
  }
}

}  // namespace

template <typename T>
void gemm_blocked(Transpose ta, Transpose tb, int64_t M, int64_t N, int64_t K, T alpha, const T* A,
                  int64_t lda, const T* B, int64_t ldb, T beta, T* C, int64_t ldc) {
  detail::check_gemm_args("gemm_blocked", ta, tb, M, N, K, A, lda, B, ldb, C, ldc);
  if (M == 0 || N == 0) return;
  if (K == 0 || alpha == T(0)) return scale_c(M, N, beta, C, ldc);  // A and B not read

  const MatrixView<T> a = op_view(A, lda, ta);
  const MatrixView<T> b = op_view(B, ldb, tb);
  switch (gemm_kernel()) {
    case GemmKernel::Portable:
      return gemm_with_kernel<T, PortableKernel<T>>(M, N, K, alpha, a, b, beta, C, ldc);
    case GemmKernel::Avx2:
      return gemm_with_kernel<T, Avx2Kernel<T>>(M, N, K, alpha, a, b, beta, C, ldc);
    case GemmKernel::Avx512:
      return gemm_with_kernel<T, Avx512Kernel<T>>(M, N, K, alpha, a, b, beta, C, ldc);
  }
}

template void gemm_blocked<float>(Transpose, Transpose, int64_t, int64_t, int64_t, float, const float*,
                                  int64_t, const float*, int64_t, float, float*, int64_t);
template void gemm_blocked<double>(Transpose, Transpose, int64_t, int64_t, int64_t, double, const double*,
                                   int64_t, const double*, int64_t, double, double*, int64_t);

}  // namespace cudagrad::cpu
