// What the two implicit-GEMM convolution kernels share (conv2d_implicit_gemm.cu, v2 fp32, and
// conv2d_tensor_core.cu, v3 tf32/bf16): the convolution seen as three GEMMs, and how each
// pass finds its operands A[m][j] and B[j][n] in x, w and dy (the table is at the top of
// conv2d_implicit_gemm.cu). The kernels differ in tiles and arithmetic, not in addressing.
//
// The index arithmetic (divisions by P*Q, Q, R*S, S) is done once per tile row, column and
// reduction step, not per element: a kernel stores a "record" (four ints) for each row m,
// column n and reduction index j of its tile in shared memory, and an element's address is
// then a few adds of two records:
//   row_record(m), col_record(n), reduction_record(j): what the addresses need from each index;
//   a() and b() combine them into A[m][j] and B[j][n]; store() writes out[m][n].
// Out-of-range taps (padding, and in backward data the outputs a stride skips) read as 0.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

#include "cuda/conv2d.hpp"

namespace cudagrad::cuda::conv2d_detail {

// Sizes as 32-bit ints: implicit_gemm_supports() has checked that every offset fits.
struct Geometry {
    int N, C, H, W, K, R, S, P, Q, stride_h, stride_w, pad_h, pad_w;
};

inline Geometry geometry_of(const ConvProblem& p) {
    auto i = [](std::int64_t value) { return static_cast<int>(value); };
    return Geometry{i(p.N), i(p.C), i(p.H), i(p.W), i(p.K), i(p.R), i(p.S), i(p.P), i(p.Q),
                    i(p.stride_h), i(p.stride_w), i(p.pad_h), i(p.pad_w)};
}

// ---- the three passes as GEMM operands ----
struct ForwardPass {
    Geometry g;
    const float* x;
    const float* w;
    float* y;
    __device__ int4 row_record(int m) const {  // m = (image, p, q)
        const int plane = g.P * g.Q, image = m / plane, pq = m - image * plane, p = pq / g.Q, q = pq - p * g.Q;
        return make_int4(image * g.C * g.H * g.W, p * g.stride_h - g.pad_h, q * g.stride_w - g.pad_w,
                         image * g.K * plane + pq);
    }
    __device__ int4 col_record(int k) const { return make_int4(k * g.C * g.R * g.S, k * g.P * g.Q, 0, 0); }
    __device__ int4 reduction_record(int j) const {  // j = (c, r, s)
        const int taps = g.R * g.S, c = j / taps, rs = j - c * taps, r = rs / g.S, s = rs - r * g.S;
        return make_int4(c * g.H * g.W, r, s, j);
    }
    __device__ float a(int4 row, int4 red) const {
        const int h = row.y + red.y, col = row.z + red.z;
        return h >= 0 && h < g.H && col >= 0 && col < g.W ? x[row.x + red.x + h * g.W + col] : 0.0f;
    }
    __device__ float b(int4 red, int4 col) const { return w[col.x + red.w]; }
    __device__ void store(int4 row, int4 col, float value, int) const { y[row.w + col.y] = value; }
};

struct BackwardDataPass {
    Geometry g;
    const float* dy;
    const float* w;
    float* dx;
    __device__ int4 row_record(int m) const {  // m = (image, h, w)
        const int plane = g.H * g.W, image = m / plane, hw = m - image * plane, h = hw / g.W, col = hw - h * g.W;
        return make_int4(image * g.K * g.P * g.Q, h + g.pad_h, col + g.pad_w, image * g.C * plane + hw);
    }
    __device__ int4 col_record(int c) const { return make_int4(c * g.R * g.S, c * g.H * g.W, 0, 0); }
    __device__ int4 reduction_record(int j) const {  // j = (k, r, s)
        const int taps = g.R * g.S, k = j / taps, rs = j - k * taps, r = rs / g.S, s = rs - r * g.S;
        return make_int4(k * g.P * g.Q, r, s, k * g.C * taps + rs);
    }
    __device__ float a(int4 row, int4 red) const {
        const int p_scaled = row.y - red.y, q_scaled = row.z - red.z;  // p*stride_h, q*stride_w
        if (p_scaled < 0 || q_scaled < 0 || p_scaled % g.stride_h != 0 || q_scaled % g.stride_w != 0) return 0.0f;
        const int p = p_scaled / g.stride_h, q = q_scaled / g.stride_w;
        return p < g.P && q < g.Q ? dy[row.x + red.x + p * g.Q + q] : 0.0f;
    }
    __device__ float b(int4 red, int4 col) const { return w[red.w + col.x]; }
    __device__ void store(int4 row, int4 col, float value, int) const { dx[row.w + col.y] = value; }
};

struct BackwardWeightPass {
    Geometry g;
    const float* x;
    const float* dy;
    float* out;  // dw, or the partial buffers (one K*C*R*S slice per split)
    __device__ int4 row_record(int k) const { return make_int4(k * g.P * g.Q, k * g.C * g.R * g.S, 0, 0); }
    __device__ int4 col_record(int j) const {  // j = (c, r, s)
        const int taps = g.R * g.S, c = j / taps, rs = j - c * taps, r = rs / g.S, s = rs - r * g.S;
        return make_int4(c * g.H * g.W, r, s, j);
    }
    __device__ int4 reduction_record(int j) const {  // j = (image, p, q)
        const int plane = g.P * g.Q, image = j / plane, pq = j - image * plane, p = pq / g.Q, q = pq - p * g.Q;
        return make_int4(image * g.K * plane + pq, image * g.C * g.H * g.W, p * g.stride_h - g.pad_h,
                         q * g.stride_w - g.pad_w);
    }
    __device__ float a(int4 row, int4 red) const { return dy[red.x + row.x]; }
    __device__ float b(int4 red, int4 col) const {
        const int h = red.z + col.y, c = red.w + col.z;
        return h >= 0 && h < g.H && c >= 0 && c < g.W ? x[red.y + col.x + h * g.W + c] : 0.0f;
    }
    __device__ void store(int4 row, int4 col, float value, int split) const {
        out[static_cast<std::int64_t>(split) * g.K * g.C * g.R * g.S + row.y + col.w] = value;
    }
};

// ---- the records of one tile, written to shared memory by the first threads of the block ----
// Threads 0 .. TileM-1 write the records of rows m0 .., the next TileN threads those of columns
// n0 .. (so the block needs at least TileM + TileN threads). A row or column past the end of the
// GEMM gets a zero record, never used for an address: the loaders check m0 + m < M first.
// The caller synchronises before the records are read.
template <int TileM, int TileN, typename Pass>
__device__ void write_row_and_col_records(const Pass& pass, int tid, int m0, int M, int n0, int N,
                                          int4 (&rows)[TileM], int4 (&cols)[TileN]) {
    const int4 zero = make_int4(0, 0, 0, 0);
    if (tid < TileM) rows[tid] = m0 + tid < M ? pass.row_record(m0 + tid) : zero;
    else if (tid < TileM + TileN) {
        const int n = tid - TileM;
        cols[n] = n0 + n < N ? pass.col_record(n0 + n) : zero;
    }
}

// Threads 0 .. TileK-1 write the records of reduction indices j0 .. (zero past j_end).
template <int TileK, typename Pass>
__device__ void write_step_records(const Pass& pass, int tid, int j0, int j_end, int4 (&steps)[TileK]) {
    if (tid < TileK) steps[tid] = j0 + tid < j_end ? pass.reduction_record(j0 + tid) : make_int4(0, 0, 0, 0);
}

}  // namespace cudagrad::cuda::conv2d_detail
