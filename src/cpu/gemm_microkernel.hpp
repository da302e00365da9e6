// cudagrad CPU GEMM micro-kernels: the innermost loop of gemm_blocked, one
// version per instruction set, chosen once at run time (gemm.hpp:
// gemm_kernel(), set_gemm_kernel()).
//
// What a micro-kernel computes: one MR x NR tile of C,
//     C[i][j] = alpha * sum_{k < kc} a_panel[k][i] * b_panel[k][j] + beta * C[i][j]
// for 0 <= i < MR, 0 <= j < NR, where
//     a_panel[k][i] = a_panel[k * MR + i]   (packed op(A): MR rows, k-major)
//     b_panel[k][j] = b_panel[k * NR + j]   (packed op(B): NR columns, k-major)
//     C[i][j]       = c[i * ldc + j]        (row-major, the whole tile is valid)
// and, as in BLAS, beta == 0 means C is only written, never read. The sum
// over k runs in order k = 0, 1, ..., kc - 1 in every version, so a given
// kernel is deterministic; versions differ from each other in the last bits
// (the AVX ones use fused multiply-add, the portable one cannot).
// gemm_blocked.cpp does the packing and handles partial edge tiles by
// running the kernel on a full-size scratch tile.
//
// The kernels (the napkin math for each is at its definition):
//   portable  MR x NR =  6 x 8 float,  6 x 4 double  plain C++, SSE2  (gemm_blocked.cpp)
//   avx2      MR x NR =  6 x 16 float, 6 x 8 double  AVX2 + FMA       (gemm_microkernel_avx2.cpp)
//   avx512    MR x NR = 16 x 16 float, 8 x 16 double AVX-512F         (gemm_microkernel_avx512.cpp)
// Each AVX kernel is compiled with a GCC target attribute, so the library as a
// whole stays plain x86-64 and runs on any x86-64 CPU; calling an AVX kernel on a CPU
// without the instructions would crash with SIGILL, which is why gemm.hpp's
// selector refuses kernels the CPU lacks.
//
// The KernelShape structs also carry each kernel's cache blocking (MC, KC,
// NC; see gemm_blocked.cpp for how they are chosen), so the packing and the
// loops around the kernel follow the kernel that was selected.
#pragma once

#include <cstdint>

namespace cudagrad::cpu {

// Cache blocks for this machine (2-core Xeon, model 207: L1d 48 KB, L2 2 MB
// per core, L3 shared and large); gemm_blocked.cpp explains the loop order.
//   MC  rows of op(A) packed per block (multiple of MR)
//   KC  largest depth per block; K is cut into equal blocks no deeper than
//       KC. The A micro-panel MR x KC (16 KB for AVX-512 float) stays in L1.
//   NC  columns of op(B) packed per panel (multiple of NR): KC x NC is 1 MB,
//       half the L2, which the jr loop streams once per A micro-panel.
// Tile shapes and KC were picked by measuring (docs/gemm-cpu.md): KC 256
// matched 320 and beat 384 and 512 by 5-25% (a deeper A micro-panel crowds
// the L1); NC with a 2.4 MB B panel (over the L2) lost 2.5x on
// 64 x 3136 x 576.

template <typename T>
struct PortableKernelShape {
  static constexpr int MR = 6;
  static constexpr int NR = 32 / sizeof(T);  // two SSE registers per row
  static constexpr int64_t MC = 96;
  static constexpr int64_t KC = 256;
  static constexpr int64_t NC = 1024;
};

template <typename T>
struct Avx2KernelShape {
  static constexpr int MR = 6;
  static constexpr int NR = 64 / sizeof(T);  // two 256-bit registers per row
  static constexpr int64_t MC = 96;
  static constexpr int64_t KC = 256;
  static constexpr int64_t NC = 4096 / sizeof(T);
};

// 16 x 16 float (one 512-bit register per row) and 8 x 16 double (two):
// 16 accumulators either way. Measured against 14 x 32, 12 x 32, 8 x 32,
// 8 x 48 and 6 x 64 float: as fast on large products, and faster where N is
// small (ResNet's 7 x 7 and 14 x 14 planes) because a 16-wide edge tile
// wastes less; MR = 16 also divides every ResNet channel count.
template <typename T>
struct Avx512KernelShape {
  static constexpr int MR = sizeof(T) == 4 ? 16 : 8;
  static constexpr int NR = 16;
  static constexpr int64_t MC = 128;
  static constexpr int64_t KC = 256;
  static constexpr int64_t NC = 4096 / sizeof(T);
};

// The kernels. Only call the AVX ones when gemm_kernel_supported() says the
// CPU has the instructions. On non-x86 builds they throw std::logic_error.
void micro_kernel_avx2(int64_t kc, const float* a_panel, const float* b_panel, float* c, int64_t ldc,
                       float alpha, float beta);
void micro_kernel_avx2(int64_t kc, const double* a_panel, const double* b_panel, double* c, int64_t ldc,
                       double alpha, double beta);
void micro_kernel_avx512(int64_t kc, const float* a_panel, const float* b_panel, float* c, int64_t ldc,
                         float alpha, float beta);
void micro_kernel_avx512(int64_t kc, const double* a_panel, const double* b_panel, double* c, int64_t ldc,
                         double alpha, double beta);

// What the CPU running us can execute (CPUID, and for AVX the OS saving the
// wide registers, as checked by GCC's __builtin_cpu_supports).
bool cpu_has_avx2_fma();
bool cpu_has_avx512f();

}  // namespace cudagrad::cpu
