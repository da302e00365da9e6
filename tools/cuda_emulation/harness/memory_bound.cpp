// Emulation harness for the memory-bound kernels: elementwise (relu, axpy), reduction (sum_all,
// sums/broadcast/argmax over a dimension, top-k hits), softmax / log-softmax (all three
// versions) and cross-entropy with label smoothing, batch norm (v1 and v2, training and eval,
// every combination of requested gradients), pooling (max with NaN and ties, avg with and
// without count_include_pad, adaptive, global) and the fused multi-tensor SGD step.
// Each is compared against a double-precision reference written from the CPU semantics
// (src/cpu/*), on odd sizes and misaligned pointers (offset by one float) so that the vector
// paths must fall back. `emulate_memory_bound NAME` runs one group (reduction, softmax, bn,
// pool, sgd, elementwise).
#include <algorithm>
#include <array>
#include <cmath>
#include <cstdio>
#include <random>
#include <string>
#include <vector>

#include "compare.hpp"
#include "cuda/batch_norm.hpp"
#include "cuda/context.hpp"
#include "cuda/elementwise.hpp"
#include "cuda/pooling.hpp"
#include "cuda/reduction.hpp"
#include "cuda/sgd.hpp"
#include "cuda/softmax_cross_entropy.hpp"

using namespace cudagrad::cuda;
using std::int64_t;

std::mt19937 rng(7);
std::vector<float> randv(int64_t n, int lo = -8, int hi = 8, float div = 4.0f) {
    return emulation::random_values(rng, n, lo, hi, div);
}
void set_sms(int sms) { current_context().properties.multiProcessorCount = sms; }
bool beats(float c, float b) { return c > b || (std::isnan(c) && !std::isnan(b)); }

void test_reduction() {
    for (int64_t count : {1L, 3L, 4L, 5L, 1000L, 4097L, 70001L}) for (int offset : {0, 1}) {
        std::vector<float> storage = randv(count + 4);
        const float* x = storage.data() + offset;
        std::vector<double> partials(sum_all_partial_count(count), NAN);
        float result = NAN;
        sum_all(x, count, 2.0, partials.data(), &result);
        double s = 0; for (int64_t i = 0; i < count; ++i) s += x[i];
        emulation::compare("sum_all n=" + std::to_string(count) + " off=" + std::to_string(offset), &result, {s / 2.0}, 1e-12, 0);
    }
    { float v = 3.0f; std::vector<float> y(1000, NAN); fill_with_scalar(&v, 4.0, y.data(), 1000); emulation::compare("fill", y.data(), std::vector<double>(1000, 0.75), 0, 0); }
    struct S { int64_t o, e, i; };
    for (S s : {S{3, 5, 1}, S{2, 3000, 1}, S{3, 7, 33}, S{1, 1, 1}, S{5, 40, 2}, S{70, 33, 1}, S{2, 9, 64}, S{1, 2049, 1}}) {
        std::vector<float> x = randv(s.o * s.e * s.i);
        std::vector<float> y(s.o * s.i, NAN);
        sum_over_dimension(x.data(), y.data(), s.o, s.e, s.i);
        std::vector<double> want(s.o * s.i, 0);
        for (int64_t o = 0; o < s.o; ++o) for (int64_t r = 0; r < s.e; ++r) for (int64_t i = 0; i < s.i; ++i) want[o * s.i + i] += x[(o * s.e + r) * s.i + i];
        std::string name = "(" + std::to_string(s.o) + "," + std::to_string(s.e) + "," + std::to_string(s.i) + ")";
        emulation::compare("sum_over_dimension " + name, y.data(), want, 1e-7, 0);
        std::vector<float> dx(x.size(), NAN);
        broadcast_over_dimension(y.data(), dx.data(), s.o, s.e, s.i);
        std::vector<double> wb(x.size());
        for (int64_t o = 0; o < s.o; ++o) for (int64_t r = 0; r < s.e; ++r) for (int64_t i = 0; i < s.i; ++i) wb[(o * s.e + r) * s.i + i] = y[o * s.i + i];
        emulation::compare("broadcast " + name, dx.data(), wb, 0, 0);
        // argmax with many ties and some NaNs
        std::vector<float> a = randv(x.size(), 0, 3, 1.0f);
        for (size_t k = 0; k < a.size(); k += 17) if (k % 3 == 0) a[k] = NAN;
        std::vector<int64_t> idx(s.o * s.i, -7), widx(s.o * s.i);
        argmax_over_dimension(a.data(), idx.data(), s.o, s.e, s.i);
        for (int64_t o = 0; o < s.o; ++o) for (int64_t i = 0; i < s.i; ++i) {
            const float* v = a.data() + o * s.e * s.i + i; float best = v[0]; int64_t bi = 0;
            for (int64_t r = 1; r < s.e; ++r) if (beats(v[r * s.i], best)) { best = v[r * s.i]; bi = r; }
            widx[o * s.i + i] = bi;
        }
        emulation::compare_integers("argmax float " + name, idx.data(), widx);
        std::vector<int64_t> ai(x.size()); for (size_t k = 0; k < ai.size(); ++k) ai[k] = (int64_t)(a[k] == a[k] ? a[k] : 5);
        argmax_over_dimension(ai.data(), idx.data(), s.o, s.e, s.i);
        for (int64_t o = 0; o < s.o; ++o) for (int64_t i = 0; i < s.i; ++i) {
            const int64_t* v = ai.data() + o * s.e * s.i + i; int64_t best = v[0]; int64_t bi = 0;
            for (int64_t r = 1; r < s.e; ++r) if (v[r * s.i] > best) { best = v[r * s.i]; bi = r; }
            widx[o * s.i + i] = bi;
        }
        emulation::compare_integers("argmax int64 " + name, idx.data(), widx);
    }
    for (int64_t rows : {1L, 37L, 300L}) for (int64_t classes : {1L, 13L, 40L}) for (int64_t k : {1L, 5L}) {
        std::vector<float> logits = randv(rows * classes, 0, 4, 1.0f);
        for (size_t q = 5; q < logits.size(); q += 23) logits[q] = NAN;
        std::vector<int64_t> labels(rows);
        for (int64_t r = 0; r < rows; ++r) labels[r] = (r * 7) % classes;
        if (rows > 3) labels[2] = classes;  // invalid: a miss
        std::vector<int64_t> partials(top_k_partial_count(rows), -1); int64_t count = -1;
        count_top_k_hits(logits.data(), labels.data(), rows, classes, k, partials.data(), &count);
        int64_t want = 0;
        for (int64_t r = 0; r < rows; ++r) {
            int64_t l = labels[r]; if (l < 0 || l >= classes) continue;
            const float* v = logits.data() + r * classes; int64_t ahead = 0;
            for (int64_t c = 0; c < classes; ++c) ahead += beats(v[c], v[l]) || (!beats(v[l], v[c]) && c < l);
            want += ahead < k;
        }
        emulation::compare_integers("top_k rows=" + std::to_string(rows) + " classes=" + std::to_string(classes) + " k=" + std::to_string(k), &count, {want});
    }
}

void test_softmax() {
    struct S { int64_t o, e, i; };
    for (S s : {S{3, 5, 1}, S{20, 1500, 1}, S{5, 200, 1}, S{70, 33, 1}, S{2, 7, 9}, S{1, 1, 1}, S{9, 1, 1}}) {
        std::vector<float> x = randv(s.o * s.e * s.i, -40, 40, 4.0f), g = randv(x.size());
        std::vector<double> y(x.size()), ly(x.size()), dx(x.size()), ldx(x.size());
        for (int64_t o = 0; o < s.o; ++o) for (int64_t i = 0; i < s.i; ++i) {
            auto at = [&](int64_t r) { return (o * s.e + r) * s.i + i; };
            double m = -INFINITY; for (int64_t r = 0; r < s.e; ++r) m = std::max(m, (double)x[at(r)]);
            double t = 0; for (int64_t r = 0; r < s.e; ++r) t += std::exp(x[at(r)] - m);
            double sg = 0, sgy = 0;
            for (int64_t r = 0; r < s.e; ++r) { y[at(r)] = std::exp(x[at(r)] - m) / t; ly[at(r)] = x[at(r)] - m - std::log(t); sg += g[at(r)]; sgy += g[at(r)] * y[at(r)]; }
            for (int64_t r = 0; r < s.e; ++r) { dx[at(r)] = y[at(r)] * (g[at(r)] - sgy); ldx[at(r)] = g[at(r)] - y[at(r)] * sg; }
        }
        std::string name = "(" + std::to_string(s.o) + "," + std::to_string(s.e) + "," + std::to_string(s.i) + ")";
        for (bool lg : {false, true}) {
            std::vector<float> out(x.size(), NAN), back(x.size(), NAN);
            softmax_forward(x.data(), out.data(), SoftmaxShape{s.o, s.e, s.i}, lg);
            emulation::compare(std::string(lg ? "log_" : "") + "softmax " + name, out.data(), lg ? ly : y, 1e-5, 1e-6);
            softmax_backward(out.data(), g.data(), back.data(), SoftmaxShape{s.o, s.e, s.i}, lg);
            emulation::compare(std::string(lg ? "log_" : "") + "softmax backward " + name, back.data(), lg ? ldx : dx, 1e-4, 1e-5);
            if (s.i == 1) {
                using F = void (*)(const float*, float*, int64_t, int64_t, bool);
                using B = void (*)(const float*, const float*, float*, int64_t, int64_t, bool);
                F fs[3] = {softmax_forward_v1_thread_per_row, softmax_forward_v2_warp_per_row, softmax_forward_v3_block_per_row};
                B bs[3] = {softmax_backward_v1_thread_per_row, softmax_backward_v2_warp_per_row, softmax_backward_v3_block_per_row};
                for (int v = 0; v < 3; ++v) {
                    std::fill(out.begin(), out.end(), NAN); std::fill(back.begin(), back.end(), NAN);
                    fs[v](x.data(), out.data(), s.o, s.e, lg);
                    emulation::compare("v" + std::to_string(v + 1) + (lg ? " log" : "") + " fwd " + name, out.data(), lg ? ly : y, 1e-5, 1e-6);
                    bs[v](out.data(), g.data(), back.data(), s.o, s.e, lg);
                    emulation::compare("v" + std::to_string(v + 1) + (lg ? " log" : "") + " bwd " + name, back.data(), lg ? ldx : dx, 1e-4, 1e-5);
                }
            }
        }
    }
    for (int64_t batch : {1L, 3L, 300L, 20L}) for (int64_t classes : {1L, 10L, 1000L, 2000L}) for (double e : {0.0, 0.1}) {
        if (batch * classes > 700000) continue;
        std::vector<float> logits = randv(batch * classes, -40, 40, 4.0f);
        std::vector<int64_t> labels(batch); for (int64_t n = 0; n < batch; ++n) labels[n] = (n * 13) % classes;
        std::vector<float> stats(2 * batch, NAN); std::vector<double> row_loss(batch, NAN); float loss = NAN;
        cross_entropy_forward(logits.data(), labels.data(), batch, classes, e, stats.data(), stats.data() + batch, row_loss.data(), &loss);
        double total = 0; std::vector<double> want_grad(logits.size()); float upstream = 1.5f;
        for (int64_t n = 0; n < batch; ++n) {
            const float* r = logits.data() + n * classes; double m = -INFINITY, t = 0, lt = 0;
            for (int64_t c = 0; c < classes; ++c) m = std::max(m, (double)r[c]);
            for (int64_t c = 0; c < classes; ++c) { t += std::exp(r[c] - m); lt += r[c]; }
            double lse = m + std::log(t);
            total += (1 - e) * (lse - r[labels[n]]) + e * (lse - lt / classes);
            for (int64_t c = 0; c < classes; ++c) want_grad[n * classes + c] = upstream / batch * (std::exp(r[c] - lse) - e / classes - (1 - e) * (c == labels[n]));
        }
        std::string name = "ce b=" + std::to_string(batch) + " c=" + std::to_string(classes) + " e=" + std::to_string(e);
        emulation::compare(name + " loss", &loss, {total / batch}, 1e-5, 1e-6);
        std::vector<float> grad(logits.size(), NAN);
        cross_entropy_backward(logits.data(), labels.data(), stats.data(), stats.data() + batch, batch, classes, e, &upstream, grad.data());
        emulation::compare(name + " grad", grad.data(), want_grad, 1e-4, 1e-6);
    }
}

struct BnCase { int64_t n, c, plane; int offset; int sms; };
void test_batch_norm() {
    for (BnCase t : {BnCase{2, 3, 25, 0, 1}, BnCase{2, 3, 16, 0, 1}, BnCase{2, 3, 16, 1, 1}, BnCase{2, 3, 4100, 0, 2},
                     BnCase{3, 2, 4096, 0, 4}, BnCase{1, 40, 9, 0, 3}, BnCase{4, 5, 1, 0, 1}, BnCase{2, 1, 3000, 2, 8}}) {
        const int64_t count = t.n * t.c * t.plane, m = t.n * t.plane;
        set_sms(t.sms);
        std::vector<float> xs = randv(count + 4, -40, 40, 8.0f), dys = randv(count + 4);
        for (auto& v : xs) v += 100.0f;
        const float* x = xs.data() + t.offset; const float* dy = dys.data() + t.offset;
        std::vector<float> w = randv(t.c), b = randv(t.c);
        std::vector<double> mean(t.c, 0), var(t.c, 0);
        for (int64_t c = 0; c < t.c; ++c) {
            for (int64_t n = 0; n < t.n; ++n) for (int64_t i = 0; i < t.plane; ++i) mean[c] += x[(n * t.c + c) * t.plane + i];
            mean[c] /= m;
            for (int64_t n = 0; n < t.n; ++n) for (int64_t i = 0; i < t.plane; ++i) { double d = x[(n * t.c + c) * t.plane + i] - mean[c]; var[c] += d * d; }
            var[c] /= m;
        }
        std::string name = "bn (" + std::to_string(t.n) + "," + std::to_string(t.c) + "," + std::to_string(t.plane) + ") off " + std::to_string(t.offset);
        for (int version : {1, 2}) for (bool affine : {true, false}) {
            std::vector<float> ys(count + 4, NAN), sm(t.c, NAN), si(t.c, NAN), rm(2 * t.c, 0.5f), rv(2 * t.c, 2.0f);
            float* y = ys.data() + t.offset;
            BatchNormForward a; a.x = x; a.y = y; a.weight = affine ? w.data() : nullptr; a.bias = affine ? b.data() : nullptr;
            a.saved_mean = sm.data(); a.saved_inverse_std = si.data(); a.running_mean = rm.data(); a.running_mean_stride = 2;
            a.running_var = rv.data(); a.running_var_stride = 1; a.momentum = 0.1; a.eps = 1e-5; a.batch = t.n; a.channels = t.c; a.plane = t.plane;
            std::vector<float> scratch((batch_norm_scratch_bytes(t.n, t.c, t.plane) + 3) / 4 + 4, NAN);
            if (version == 1) batch_norm_forward_training_v1_block_per_channel(a);
            else batch_norm_forward_training_v2_split_channels(a, scratch.data(), (int64_t)scratch.size() * 4);
            std::vector<double> wy(count), wsm(t.c), wsi(t.c), wrm(t.c), wrv(t.c);
            for (int64_t c = 0; c < t.c; ++c) {
                wsm[c] = mean[c]; wsi[c] = 1 / std::sqrt(var[c] + 1e-5);
                wrm[c] = 0.9 * 0.5 + 0.1 * mean[c]; wrv[c] = 0.9 * 2.0 + 0.1 * var[c] * m / (m - 1.0);
                for (int64_t n = 0; n < t.n; ++n) for (int64_t i = 0; i < t.plane; ++i) { int64_t k = (n * t.c + c) * t.plane + i; wy[k] = (x[k] - mean[c]) * wsi[c] * (affine ? w[c] : 1) + (affine ? b[c] : 0); }
            }
            std::string vn = name + " v" + std::to_string(version) + (affine ? " affine" : "");
            emulation::compare(vn + " y", y, wy, 1e-4, 1e-4); emulation::compare(vn + " mean", sm.data(), wsm, 1e-6, 0); emulation::compare(vn + " inv", si.data(), wsi, 1e-5, 0);
            std::vector<float> rmc(t.c); for (int64_t c = 0; c < t.c; ++c) rmc[c] = rm[2 * c];
            emulation::compare(vn + " running mean", rmc.data(), wrm, 1e-6, 0); emulation::compare(vn + " running var", rv.data(), wrv, 1e-5, 0);
            if (!std::isnan(ys[0]) && t.offset > 0) { ++emulation::failures; std::printf("FAIL wrote before y\n"); }
            for (bool training : {true, false}) for (int mask = 1; mask < 8; ++mask) {
                std::vector<float> dxs(count + 4, NAN), dw(t.c, NAN), db(t.c, NAN);
                float* dx = dxs.data() + t.offset;
                BatchNormBackward g; g.dy = dy; g.x = x; g.saved_mean = sm.data(); g.saved_inverse_std = si.data(); g.weight = affine ? w.data() : nullptr;
                g.batch_statistics = training; g.dx = mask & 1 ? dx : nullptr; g.dweight = mask & 2 ? dw.data() : nullptr; g.dbias = mask & 4 ? db.data() : nullptr;
                g.batch = t.n; g.channels = t.c; g.plane = t.plane;
                if (version == 1) batch_norm_backward_v1_block_per_channel(g);
                else batch_norm_backward_v2_split_channels(g, scratch.data(), (int64_t)scratch.size() * 4);
                std::vector<double> wdx(count), wdw(t.c), wdb(t.c);
                for (int64_t c = 0; c < t.c; ++c) {
                    double sdy = 0, sdyc = 0; double mu = sm[c], inv = si[c];
                    for (int64_t n = 0; n < t.n; ++n) for (int64_t i = 0; i < t.plane; ++i) { int64_t k = (n * t.c + c) * t.plane + i; sdy += dy[k]; sdyc += dy[k] * (x[k] - mu); }
                    wdb[c] = sdy; wdw[c] = sdyc * inv; double kk = (affine ? w[c] : 1) * inv;
                    for (int64_t n = 0; n < t.n; ++n) for (int64_t i = 0; i < t.plane; ++i) { int64_t k = (n * t.c + c) * t.plane + i;
                        wdx[k] = kk * dy[k] + (training ? -kk * inv * (sdyc * inv) / m * (x[k] - mu) - kk * sdy / m : 0.0); }
                }
                std::string bn = vn + (training ? " train" : " eval") + " mask " + std::to_string(mask);
                if (mask & 1) emulation::compare(bn + " dx", dx, wdx, 1e-3, 1e-4);
                if (mask & 2) emulation::compare(bn + " dw", dw.data(), wdw, 1e-5, 1e-5);
                if (mask & 4) emulation::compare(bn + " db", db.data(), wdb, 1e-6, 1e-6);
            }
        }
        // eval forward
        {
            std::vector<float> ys(count + 4, NAN), sm(t.c, NAN), si(t.c, NAN), rm = randv(t.c), rv = randv(t.c, 1, 9, 2.0f);
            float* y = ys.data() + t.offset;
            BatchNormForward a; a.x = x; a.y = y; a.weight = w.data(); a.bias = b.data(); a.saved_mean = sm.data(); a.saved_inverse_std = si.data();
            a.running_mean = rm.data(); a.running_var = rv.data(); a.eps = 1e-5; a.batch = t.n; a.channels = t.c; a.plane = t.plane;
            std::vector<float> scratch((batch_norm_scratch_bytes(t.n, t.c, t.plane) + 3) / 4 + 4, NAN);
            batch_norm_forward_inference(a, scratch.data(), (int64_t)scratch.size() * 4);
            std::vector<double> wy(count);
            for (int64_t c = 0; c < t.c; ++c) for (int64_t n = 0; n < t.n; ++n) for (int64_t i = 0; i < t.plane; ++i) { int64_t k = (n * t.c + c) * t.plane + i;
                wy[k] = (x[k] - rm[c]) / std::sqrt(rv[c] + 1e-5) * w[c] + b[c]; }
            emulation::compare(name + " eval y", y, wy, 1e-4, 1e-4);
        }
    }
    set_sms(1);
}

void test_pooling() {
    struct P { int64_t planes, h, w, kh, kw, sh, sw, ph, pw; };
    for (P p : {P{2, 9, 9, 3, 3, 2, 2, 1, 1}, P{3, 7, 8, 2, 2, 2, 2, 0, 0}, P{1, 10, 7, 3, 2, 1, 3, 1, 1}, P{2, 5, 5, 5, 5, 1, 1, 2, 2},
                P{2, 11, 6, 3, 3, 4, 1, 1, 0}, P{1, 1, 1, 1, 1, 1, 1, 0, 0}}) {
        PoolGeometry g; g.batch = p.planes; g.channels = 1; g.input_h = p.h; g.input_w = p.w; g.kernel_h = p.kh; g.kernel_w = p.kw;
        g.stride_h = p.sh; g.stride_w = p.sw; g.padding_h = p.ph; g.padding_w = p.pw;
        g.output_h = (p.h + 2 * p.ph - p.kh) / p.sh + 1; g.output_w = (p.w + 2 * p.pw - p.kw) / p.sw + 1;
        const int64_t P_ = g.output_h, Q = g.output_w, nin = p.planes * p.h * p.w, nout = p.planes * P_ * Q;
        std::vector<float> x = randv(nin, 0, 3, 1.0f), dy = randv(nout);
        x[3 % nin] = NAN;
        std::vector<double> wy(nout), wdx(nin, 0), wavg[2], wadx[2];
        std::vector<int32_t> warg(nout);
        for (int ci = 0; ci < 2; ++ci) { wavg[ci].assign(nout, 0); wadx[ci].assign(nin, 0); }
        for (int64_t pl = 0; pl < p.planes; ++pl) for (int64_t a = 0; a < P_; ++a) for (int64_t q = 0; q < Q; ++q) {
            int64_t hs = a * p.sh - p.ph, ws = q * p.sw - p.pw; int64_t he = std::min(hs + p.kh, p.h + p.ph), we = std::min(ws + p.kw, p.w + p.pw);
            int64_t padded = (he - hs) * (we - ws);
            int64_t h0 = std::max<int64_t>(hs, 0), h1 = std::min(he, p.h), w0 = std::max<int64_t>(ws, 0), w1 = std::min(we, p.w);
            float best = -INFINITY; int64_t bi = h0 * p.w + w0; double s = 0;
            for (int64_t h = h0; h < h1; ++h) for (int64_t w = w0; w < w1; ++w) { float v = x[pl * p.h * p.w + h * p.w + w]; if (v > best || std::isnan(v)) { best = v; bi = h * p.w + w; } s += v; }
            int64_t o = (pl * P_ + a) * Q + q; wy[o] = best; warg[o] = (int32_t)bi;
            wdx[pl * p.h * p.w + bi] += dy[o];
            for (int ci = 0; ci < 2; ++ci) {
                double d = ci ? padded : (h1 - h0) * (w1 - w0); wavg[ci][o] = s / d;
                float share = (float)(dy[o] / d);
                for (int64_t h = h0; h < h1; ++h) for (int64_t w = w0; w < w1; ++w) wadx[ci][pl * p.h * p.w + h * p.w + w] = (float)(wadx[ci][pl * p.h * p.w + h * p.w + w] + share);
            }
        }
        std::string name = "pool " + std::to_string(p.h) + "x" + std::to_string(p.w) + " k" + std::to_string(p.kh) + "x" + std::to_string(p.kw) + " s" + std::to_string(p.sh) + "x" + std::to_string(p.sw) + " p" + std::to_string(p.ph) + "x" + std::to_string(p.pw);
        std::vector<float> y(nout, NAN); std::vector<int32_t> arg(nout, -5);
        max_pool2d_forward(x.data(), y.data(), arg.data(), g);
        emulation::compare(name + " max y", y.data(), wy, 0, 0);
        int bad = 0; for (int64_t o = 0; o < nout; ++o) bad += arg[o] != warg[o];
        if (bad) { ++emulation::failures; std::printf("FAIL %s argmax %d bad\n", name.c_str(), bad); }
        std::vector<float> dx(nin, NAN);
        max_pool2d_backward_v2_gather(dy.data(), arg.data(), dx.data(), g); emulation::compare(name + " max dx gather", dx.data(), wdx, 0, 0);
        max_pool2d_backward_v1_atomic_scatter(dy.data(), arg.data(), dx.data(), g); emulation::compare(name + " max dx scatter", dx.data(), wdx, 1e-6, 1e-6);
        for (int ci = 0; ci < 2; ++ci) {
            std::fill(y.begin(), y.end(), NAN); std::fill(dx.begin(), dx.end(), NAN);
            avg_pool2d_forward(x.data(), y.data(), g, ci); emulation::compare(name + " avg y cip=" + std::to_string(ci), y.data(), wavg[ci], 1e-7, 0);
            avg_pool2d_backward(dy.data(), dx.data(), g, ci); emulation::compare(name + " avg dx cip=" + std::to_string(ci), dx.data(), wadx[ci], 0, 0);
        }
    }
    for (auto [planes, H, W, P_, Q] : std::vector<std::array<int64_t, 5>>{{2, 7, 7, 1, 1}, {2, 10, 9, 3, 4}, {1, 5, 3, 7, 6}, {3, 13, 8, 5, 8}}) {
        std::vector<float> x = randv(planes * H * W), dy = randv(planes * P_ * Q);
        std::vector<double> wy(planes * P_ * Q), wdx(planes * H * W, 0);
        for (int64_t pl = 0; pl < planes; ++pl) for (int64_t a = 0; a < P_; ++a) for (int64_t q = 0; q < Q; ++q) {
            int64_t h0 = a * H / P_, h1 = ((a + 1) * H + P_ - 1) / P_, w0 = q * W / Q, w1 = ((q + 1) * W + Q - 1) / Q; double s = 0;
            for (int64_t h = h0; h < h1; ++h) for (int64_t w = w0; w < w1; ++w) s += x[pl * H * W + h * W + w];
            int64_t o = (pl * P_ + a) * Q + q; double area = (h1 - h0) * (w1 - w0); wy[o] = s / area; float share = (float)(dy[o] / area);
            for (int64_t h = h0; h < h1; ++h) for (int64_t w = w0; w < w1; ++w) wdx[pl * H * W + h * W + w] = (float)(wdx[pl * H * W + h * W + w] + share);
        }
        std::string name = "adaptive " + std::to_string(H) + "x" + std::to_string(W) + "->" + std::to_string(P_) + "x" + std::to_string(Q);
        std::vector<float> y(wy.size(), NAN), dx(wdx.size(), NAN);
        adaptive_avg_pool2d_forward(x.data(), y.data(), planes, H, W, P_, Q); emulation::compare(name + " y", y.data(), wy, 1e-7, 0);
        adaptive_avg_pool2d_backward(dy.data(), dx.data(), planes, H, W, P_, Q); emulation::compare(name + " dx", dx.data(), wdx, 0, 0);
    }
    for (auto [planes, size] : std::vector<std::array<int64_t, 2>>{{1, 1}, {9, 49}, {17, 100}, {8, 3}}) {
        std::vector<float> x = randv(planes * size), dy = randv(planes);
        std::vector<double> wy(planes), wdx(planes * size);
        for (int64_t pl = 0; pl < planes; ++pl) { double s = 0; for (int64_t i = 0; i < size; ++i) { s += x[pl * size + i]; wdx[pl * size + i] = (float)((double)dy[pl] / size); } wy[pl] = s / size; }
        std::vector<float> y(planes, NAN), dx(planes * size, NAN);
        global_avg_pool2d_forward(x.data(), y.data(), planes, size); emulation::compare("global y " + std::to_string(planes) + "x" + std::to_string(size), y.data(), wy, 1e-7, 0);
        global_avg_pool2d_backward(dy.data(), dx.data(), planes, size); emulation::compare("global dx", dx.data(), wdx, 0, 0);
    }
}

void test_sgd() {
    std::vector<int64_t> counts = {5, 8192, 8193, 20000, 0, 3, 16385};
    for (int variant = 0; variant < 4; ++variant) {
        std::vector<std::vector<float>> W, G, B, W0, B0; std::vector<SgdParameterUpdate> ups;
        SgdHyperparameters h; h.lr = 0.1f; h.momentum = 0.9f; h.one_minus_dampening = 0.75f; h.use_momentum = variant != 3; h.nesterov = variant == 1;
        for (size_t p = 0; p < counts.size(); ++p) {
            W.push_back(randv(counts[p] + 4)); G.push_back(randv(counts[p] + 4)); B.push_back(randv(counts[p] + 4));
        }
        W0 = W; B0 = B;
        for (size_t p = 0; p < counts.size(); ++p) {
            int off = p % 3 == 2 ? 1 : 0;
            SgdParameterUpdate u; u.weight = W[p].data() + off; u.gradient = G[p].data() + off; u.buffer = h.use_momentum ? B[p].data() + off : nullptr;
            u.count = counts[p]; u.weight_decay = p % 2 ? 0.01f : 0.0f; u.use_weight_decay = p % 2; u.first_step = variant == 2 && p % 2 == 0;
            ups.push_back(u);
        }
        std::vector<int64_t> table; int64_t chunks = build_sgd_table(ups, table);
        sgd_step(table.data(), (int64_t)ups.size(), chunks, h);
        for (size_t p = 0; p < counts.size(); ++p) {
            int off = p % 3 == 2 ? 1 : 0; const SgdParameterUpdate& u = ups[p];
            std::vector<double> ww(counts[p]), wb(counts[p]);
            for (int64_t i = 0; i < counts[p]; ++i) {
                float w = W0[p][i + off], g = G[p][i + off], b = B0[p][i + off], d = g;
                if (u.use_weight_decay) d = d + u.weight_decay * w;
                if (h.use_momentum) { b = u.first_step ? d : b * h.momentum + h.one_minus_dampening * d; d = h.nesterov ? d + h.momentum * b : b; }
                ww[i] = w + (-h.lr) * d; wb[i] = b;
            }
            std::string name = "sgd variant " + std::to_string(variant) + " param " + std::to_string(p);
            emulation::compare(name + " w", W[p].data() + off, ww, 0, 0);
            if (h.use_momentum) emulation::compare(name + " b", B[p].data() + off, wb, 0, 0);
        }
    }
}

void test_elementwise() {
    for (int64_t n : {1L, 3L, 4L, 7L, 1000L, 100003L}) for (int off : {0, 1}) {
        std::vector<float> xs = randv(n + 4), ys(n + 4, NAN); float* y = ys.data() + off; const float* x = xs.data() + off;
        std::vector<double> w(n); for (int64_t i = 0; i < n; ++i) w[i] = x[i] < 0 ? 0 : x[i];
        relu_forward(x, y, n); emulation::compare("relu n=" + std::to_string(n), y, w, 0, 0);
        std::fill(ys.begin(), ys.end(), NAN); relu_forward_v1_one_per_thread(x, y, n); emulation::compare("relu v1", y, w, 0, 0);
        std::vector<float> acc = randv(n + 4); std::vector<double> wa(n); for (int64_t i = 0; i < n; ++i) wa[i] = acc[i] + 0.5f * x[i];
        axpy(0.5f, x, acc.data(), n); emulation::compare("axpy", acc.data(), wa, 0, 0);
    }
}

int main(int argc, char** argv) {
    std::string only = argc > 1 ? argv[1] : "";
    if (only.empty() || only == "reduction") test_reduction();
    if (only.empty() || only == "softmax") test_softmax();
    if (only.empty() || only == "bn") test_batch_norm();
    if (only.empty() || only == "pool") test_pooling();
    if (only.empty() || only == "sgd") test_sgd();
    if (only.empty() || only == "elementwise") test_elementwise();
    return emulation::finish("memory_bound");
}
