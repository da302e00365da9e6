// CPU stand-in for <cuda_runtime.h>, used only by tools/cuda_emulation: it lets the translated
// kernels/*.cu sources (see generate.py) compile with g++ and run on the CPU.
//
// The model: a launch runs its blocks one after another; a block runs one OS thread per CUDA
// thread (threadIdx and blockIdx are thread_local); __syncthreads is a std::barrier of the block;
// warp shuffles and mma.sync go through a per-warp exchange (every lane deposits its value,
// waits for the others, reads what the PTX rules say it reads). __shared__ arrays are
// function-local statics (safe because blocks run one at a time).
//
// A thread that returns early leaves the block and warp barriers (arrive_and_drop), as exited
// threads do on sm_70 and later. A shuffle that reads an exited or missing lane, or a launch
// with a configuration the GPU refuses, aborts with a message.
#pragma once

#include <atomic>
#include <barrier>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <math.h>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

using std::isnan;

// ---- qualifiers and vector types ----
#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __launch_bounds__(...)
#define __restrict__
#define __shared__ alignas(16) static
#define __align__(n) __attribute__((aligned(n)))

struct dim3 {
    unsigned x, y, z;
    dim3(unsigned a = 1, unsigned b = 1, unsigned c = 1) : x(a), y(b), z(c) {}
};
struct alignas(16) float4 { float x, y, z, w; };
struct alignas(16) int4 { int x, y, z, w; };
struct alignas(16) uint4 { unsigned x, y, z, w; };
struct alignas(8) uint2 { unsigned x, y; };
inline float4 make_float4(float x, float y, float z, float w) { return {x, y, z, w}; }
inline int4 make_int4(int x, int y, int z, int w) { return {x, y, z, w}; }
inline uint4 make_uint4(unsigned x, unsigned y, unsigned z, unsigned w) { return {x, y, z, w}; }
inline uint2 make_uint2(unsigned x, unsigned y) { return {x, y}; }

inline thread_local dim3 threadIdx, blockIdx;
inline dim3 blockDim, gridDim;

// ---- the few runtime API calls the kernels' host code makes ----
typedef int cudaError_t;
typedef int cudaStream_t;
constexpr int cudaSuccess = 0;
struct cudaDeviceProp {
    int multiProcessorCount = 1;  // small: grid-stride loops then cover many elements per thread
    int maxThreadsPerMultiProcessor = 2048;
    int major = 9, minor = 0;
};
inline int cudaMemsetAsync(void* pointer, int value, std::size_t bytes, int) {
    std::memset(pointer, value, bytes);
    return cudaSuccess;
}

// ---- device functions ----
template <typename T> T min(T a, T b) { return a < b ? a : b; }
template <typename T> T max(T a, T b) { return a > b ? a : b; }
inline float __int_as_float(int i) { float f; std::memcpy(&f, &i, 4); return f; }
inline float __uint_as_float(unsigned u) { float f; std::memcpy(&f, &u, 4); return f; }
inline unsigned __float_as_uint(float f) { unsigned u; std::memcpy(&u, &f, 4); return u; }
inline float __fmul_rn(float a, float b) { return a * b; }
inline float __fadd_rn(float a, float b) { return a + b; }
inline float __fsub_rn(float a, float b) { return a - b; }
[[noreturn]] inline void __trap() {
    std::fprintf(stderr, "EMU: __trap() reached\n");
    std::abort();
}
inline std::mutex emu_atomic_mutex;
inline float atomicAdd(float* address, float value) {
    std::lock_guard<std::mutex> lock(emu_atomic_mutex);
    const float old = *address;
    *address = old + value;
    return old;
}

[[noreturn]] inline void emu_fail(const char* message) {
    std::fprintf(stderr, "EMU: %s (block %u,%u,%u thread %u)\n", message, blockIdx.x, blockIdx.y, blockIdx.z,
                 threadIdx.x);
    std::abort();
}

// ---- block and warp state of the block being run ----
// One exchange per warp: 32 slots for shuffles and the mma fragments, and a barrier sized to
// the lanes the warp really has.
struct EmuWarp {
    explicit EmuWarp(int lanes) : lanes(lanes), barrier(lanes) {}
    int lanes;
    std::barrier<> barrier;
    std::atomic<bool> exited[32] = {};
    std::uint64_t slot[32] = {};
    std::uint32_t a[32][4] = {}, b[32][2] = {};
    float c[32][4] = {};
};
inline std::barrier<>* emu_block_barrier = nullptr;
inline std::vector<std::unique_ptr<EmuWarp>> emu_warps;
inline long emu_launches = 0, emu_blocks_run = 0;

inline void __syncthreads() { emu_block_barrier->arrive_and_wait(); }
inline EmuWarp& emu_my_warp() { return *emu_warps[threadIdx.x / 32]; }

// Every lane of the warp deposits `value`; each gets the value of lane `source`.
template <typename T>
T emu_exchange(unsigned mask, T value, int source) {
    static_assert(sizeof(T) <= 8);
    EmuWarp& warp = emu_my_warp();
    if (mask != 0xffffffffu) emu_fail("shuffle with a partial mask (the emulation supports full warps only)");
    if (warp.lanes != 32) emu_fail("full-mask shuffle in a warp with fewer than 32 threads (undefined on the GPU)");
    std::memcpy(&warp.slot[threadIdx.x % 32], &value, sizeof(T));
    warp.barrier.arrive_and_wait();
    if (warp.exited[source]) emu_fail("shuffle reads a lane that has already returned");
    T result;
    std::memcpy(&result, &warp.slot[source], sizeof(T));
    warp.barrier.arrive_and_wait();
    return result;
}
template <typename T>
T __shfl_down_sync(unsigned mask, T value, unsigned delta, int width = 32) {
    if (width != 32) emu_fail("__shfl_down_sync with width != 32 is not emulated");
    const int lane = threadIdx.x % 32;
    const int source = lane + static_cast<int>(delta) < 32 ? lane + static_cast<int>(delta) : lane;
    return emu_exchange(mask, value, source);
}
template <typename T>
T __shfl_xor_sync(unsigned mask, T value, int lane_mask, int width = 32) {
    if (width != 32) emu_fail("__shfl_xor_sync with width != 32 is not emulated");
    return emu_exchange(mask, value, (threadIdx.x % 32) ^ lane_mask);
}

// ---- launches: kernel<<<grid, block, shared, stream>>>(args) becomes emu_launch(grid, block, body) ----
template <typename Body>
void emu_launch(dim3 grid, dim3 block, Body body) {
    if (grid.x == 0 || grid.y == 0 || grid.z == 0 || grid.x > 2147483647u || grid.y > 65535 || grid.z > 65535) {
        std::fprintf(stderr, "EMU: invalid grid %u x %u x %u\n", grid.x, grid.y, grid.z);
        std::abort();
    }
    if (block.x == 0 || block.y != 1 || block.z != 1 || block.x > 1024) {
        std::fprintf(stderr, "EMU: invalid or unsupported block %u x %u x %u (only 1-D blocks are emulated)\n",
                     block.x, block.y, block.z);
        std::abort();
    }
    ++emu_launches;
    gridDim = grid;
    blockDim = block;
    for (unsigned z = 0; z < grid.z; ++z)
        for (unsigned y = 0; y < grid.y; ++y)
            for (unsigned x = 0; x < grid.x; ++x) {
                std::barrier<> block_barrier(block.x);
                emu_block_barrier = &block_barrier;
                emu_warps.clear();
                for (unsigned first = 0; first < block.x; first += 32)
                    emu_warps.push_back(std::make_unique<EmuWarp>(static_cast<int>(std::min(32u, block.x - first))));
                std::vector<std::thread> threads;
                threads.reserve(block.x);
                for (unsigned t = 0; t < block.x; ++t)
                    threads.emplace_back([&, t] {
                        threadIdx = dim3(t);
                        blockIdx = dim3(x, y, z);
                        body();
                        // Leaving: later barriers of the block and the warp no longer wait for us.
                        EmuWarp& warp = emu_my_warp();
                        warp.exited[t % 32] = true;
                        warp.barrier.arrive_and_drop();
                        block_barrier.arrive_and_drop();
                    });
                for (auto& thread : threads) thread.join();
                ++emu_blocks_run;
            }
}

// ---- tensor cores: the inline PTX of the kernels becomes these calls (generate.py) ----
inline std::uint32_t emu_cvt_rna_tf32(float value) {  // round to nearest, ties away; keep 10 mantissa bits
    const std::uint32_t bits = __float_as_uint(value);
    if (!std::isfinite(value)) return bits;
    return (bits + 0x1000u) & 0xFFFFE000u;
}

// mma.sync.aligned.m16n8k{8,16}.row.col.f32.{tf32,bf16}: D = A (16 x K) * B (K x 8) + C, with the
// PTX fragment layouts (g = lane / 4, t = lane % 4):
//   tf32 A: a0 (g, t), a1 (g+8, t), a2 (g, t+4), a3 (g+8, t+4); B: b0 (t, g), b1 (t+4, g)
//   bf16 A: a0 (g, 2t..2t+1), a1 (g+8, 2t..), a2 (g, 2t+8..), a3 (g+8, 2t+8..); B: b0 (2t.., g), b1 (2t+8.., g)
//   C/D: c0 (g, 2t), c1 (g, 2t+1), c2 (g+8, 2t), c3 (g+8, 2t+1)
// TF32 operands use their top 19 bits; products are summed in double (the hardware's summation
// order and rounding are not modelled).
template <bool Bf16>
inline void emu_mma(float (&d)[4], const std::uint32_t (&a)[4], const std::uint32_t (&b)[2]) {
    EmuWarp& warp = emu_my_warp();
    if (warp.lanes != 32) emu_fail("mma.sync in a warp with fewer than 32 threads");
    const int lane = threadIdx.x % 32;
    for (int i = 0; i < 4; ++i) { warp.a[lane][i] = a[i]; warp.c[lane][i] = d[i]; }
    for (int i = 0; i < 2; ++i) warp.b[lane][i] = b[i];
    warp.barrier.arrive_and_wait();
    for (int l = 0; l < 32; ++l)
        if (warp.exited[l]) emu_fail("mma.sync with a lane that has already returned");
    constexpr int K = Bf16 ? 16 : 8;
    double A[16][16] = {}, B[16][8] = {}, C[16][8] = {};
    auto tf32 = [](std::uint32_t word) { return static_cast<double>(__uint_as_float(word & 0xFFFFE000u)); };
    auto bf16 = [](std::uint32_t word, int high) {
        return static_cast<double>(__uint_as_float((high ? (word >> 16) : (word & 0xFFFFu)) << 16));
    };
    for (int l = 0; l < 32; ++l) {
        const int g = l / 4, t = l % 4;
        if constexpr (!Bf16) {
            A[g][t] = tf32(warp.a[l][0]);
            A[g + 8][t] = tf32(warp.a[l][1]);
            A[g][t + 4] = tf32(warp.a[l][2]);
            A[g + 8][t + 4] = tf32(warp.a[l][3]);
            B[t][g] = tf32(warp.b[l][0]);
            B[t + 4][g] = tf32(warp.b[l][1]);
        } else {
            for (int h = 0; h < 2; ++h) {
                A[g][2 * t + h] = bf16(warp.a[l][0], h);
                A[g + 8][2 * t + h] = bf16(warp.a[l][1], h);
                A[g][2 * t + 8 + h] = bf16(warp.a[l][2], h);
                A[g + 8][2 * t + 8 + h] = bf16(warp.a[l][3], h);
                B[2 * t + h][g] = bf16(warp.b[l][0], h);
                B[2 * t + 8 + h][g] = bf16(warp.b[l][1], h);
            }
        }
        C[g][2 * t] = warp.c[l][0];
        C[g][2 * t + 1] = warp.c[l][1];
        C[g + 8][2 * t] = warp.c[l][2];
        C[g + 8][2 * t + 1] = warp.c[l][3];
    }
    const int g = lane / 4, t = lane % 4;
    const int rows[4] = {g, g, g + 8, g + 8}, columns[4] = {2 * t, 2 * t + 1, 2 * t, 2 * t + 1};
    for (int i = 0; i < 4; ++i) {
        double sum = C[rows[i]][columns[i]];
        for (int k = 0; k < K; ++k) sum += A[rows[i]][k] * B[k][columns[i]];
        d[i] = static_cast<float>(sum);
    }
    warp.barrier.arrive_and_wait();
}
inline void emu_mma_m16n8k8_tf32(float (&d)[4], const std::uint32_t (&a)[4], const std::uint32_t (&b)[2]) {
    emu_mma<false>(d, a, b);
}
inline void emu_mma_m16n8k16_bf16(float (&d)[4], const std::uint32_t (&a)[4], const std::uint32_t (&b)[2]) {
    emu_mma<true>(d, a, b);
}
