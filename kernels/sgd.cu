// The SGD-momentum step for every float32 parameter of an optimiser, in one kernel launch.
//
// For each parameter w with gradient g (contiguous, `count` floats), elementwise:
//     d = g
//     if weight_decay != 0:  d = d + weight_decay * w
//     if momentum != 0:
//         b = first_step ? d : buffer * momentum + (1 - dampening) * d;   buffer = b
//         d = nesterov ? d + momentum * b : b
//     w = w + (-lr) * d
// CPU reference: src/optim/sgd.cpp update_range, the same operations in the same order. Each
// one is written as a correctly rounded __fmul_rn / __fadd_rn so nvcc cannot fuse a multiply
// and an add into an FMA (the CPU build has no FMA either): the GPU weights and buffers are the
// same bits as the CPU's after any number of steps.
//
// Why one launch: ResNet-50 has 161 parameter tensors, many tiny (batch-norm scales of 64
// floats). One launch per tensor would cost ~161 x 3 us of launch overhead, more than the work
// itself. Here the host lists the parameters in a table and cuts each into chunks of
// sgd_chunk_elements; block b looks up which parameter its chunk belongs to (the chunk ->
// parameter map, built on the host) and updates that chunk. Table layout (int64 words):
//     [parameters x 8 words: weight, gradient, buffer, count, weight-decay bits, flags,
//      first chunk, 0] [chunks x 1 word: parameter index]
// The table (~30 KB for ResNet-50) is copied to the device each step: the gradients are new
// tensors every step, so their addresses change.
//
// Napkin math (H100, ~3.0 TB/s): per element it reads w, g and the buffer and writes w and the
// buffer, 5 x 4 = 20 bytes; ResNet-50's 25.6 M parameters move 0.51 GB: 0.17 ms per step. The
// first step reads no buffer (16 bytes per element); without momentum, 12 bytes.
#include <cuda_runtime.h>

#include <cstdint>
#include <cstring>

#include "cuda/check.hpp"
#include "cuda/context.hpp"
#include "cuda/sgd.hpp"

namespace cudagrad::cuda {
namespace {

constexpr int threads_per_block = 256;  // 8192 / 256 = 32 elements (8 float4) per thread
constexpr std::int64_t entry_words = 8;
constexpr std::int64_t flag_weight_decay = 1;
constexpr std::int64_t flag_first_step = 2;
constexpr std::int64_t flag_vectorized = 4;  // weight, gradient and buffer are 16-byte aligned

// The per-parameter settings a block reads from its table entry.
struct ParameterSettings {
    float weight_decay;
    bool use_weight_decay;
    bool first_step;
};

// One element, as update_range does it. `buffer` is read only after the first step.
__device__ void update_element(float& weight, float gradient, float& buffer, const ParameterSettings& p,
                               const SgdHyperparameters& h) {
    float d = gradient;
    if (p.use_weight_decay) d = __fadd_rn(d, __fmul_rn(p.weight_decay, weight));
    if (h.use_momentum) {
        const float b =
            p.first_step ? d : __fadd_rn(__fmul_rn(buffer, h.momentum), __fmul_rn(h.one_minus_dampening, d));
        buffer = b;
        d = h.nesterov ? __fadd_rn(d, __fmul_rn(h.momentum, b)) : b;
    }
    weight = __fadd_rn(weight, __fmul_rn(-h.lr, d));
}

__device__ void update_scalar(float* weight, const float* gradient, float* buffer, std::int64_t i,
                              const ParameterSettings& p, const SgdHyperparameters& h) {
    float w = weight[i];
    const bool reads_buffer = h.use_momentum && !p.first_step;
    float b = reads_buffer ? buffer[i] : 0.0f;
    update_element(w, gradient[i], b, p, h);
    weight[i] = w;
    if (h.use_momentum) buffer[i] = b;
}

template <typename T>
__device__ T* pointer_from(std::int64_t word) {
    return reinterpret_cast<T*>(static_cast<std::uintptr_t>(word));
}

__global__ void sgd_step_kernel(const std::int64_t* table, std::int64_t parameters, SgdHyperparameters h) {
    const std::int64_t chunk = blockIdx.x;
    const std::int64_t parameter = table[parameters * entry_words + chunk];
    const std::int64_t* entry = table + parameter * entry_words;
    float* weight = pointer_from<float>(entry[0]);
    const float* gradient = pointer_from<const float>(entry[1]);
    float* buffer = pointer_from<float>(entry[2]);
    const std::int64_t count = entry[3];
    const std::int64_t flags = entry[5];
    ParameterSettings p;
    p.weight_decay = __int_as_float(static_cast<int>(static_cast<std::uint32_t>(entry[4])));
    p.use_weight_decay = (flags & flag_weight_decay) != 0;
    p.first_step = (flags & flag_first_step) != 0;
    const std::int64_t begin = (chunk - entry[6]) * sgd_chunk_elements;  // a multiple of 4
    const std::int64_t end = begin + sgd_chunk_elements < count ? begin + sgd_chunk_elements : count;

    std::int64_t scalar_begin = begin;
    if (flags & flag_vectorized) {
        const bool reads_buffer = h.use_momentum && !p.first_step;
        float4* weight4 = reinterpret_cast<float4*>(weight);
        const float4* gradient4 = reinterpret_cast<const float4*>(gradient);
        float4* buffer4 = reinterpret_cast<float4*>(buffer);
        const std::int64_t vector_end = end / 4;
        for (std::int64_t v = begin / 4 + threadIdx.x; v < vector_end; v += blockDim.x) {
            float4 w = weight4[v];
            const float4 g = gradient4[v];
            float4 b = reads_buffer ? buffer4[v] : make_float4(0.0f, 0.0f, 0.0f, 0.0f);
            update_element(w.x, g.x, b.x, p, h);
            update_element(w.y, g.y, b.y, p, h);
            update_element(w.z, g.z, b.z, p, h);
            update_element(w.w, g.w, b.w, p, h);
            weight4[v] = w;
            if (h.use_momentum) buffer4[v] = b;
        }
        scalar_begin = vector_end * 4;  // the last chunk's count % 4 tail
    }
    for (std::int64_t i = scalar_begin + threadIdx.x; i < end; i += blockDim.x) {
        update_scalar(weight, gradient, buffer, i, p, h);
    }
}

std::int64_t word_from(const void* pointer) {
    return static_cast<std::int64_t>(reinterpret_cast<std::uintptr_t>(pointer));
}

bool aligned_16(const void* pointer) { return reinterpret_cast<std::uintptr_t>(pointer) % 16 == 0; }

}  // namespace

std::int64_t build_sgd_table(const std::vector<SgdParameterUpdate>& updates, std::vector<std::int64_t>& table) {
    const auto parameters = static_cast<std::int64_t>(updates.size());
    table.assign(static_cast<std::size_t>(parameters * entry_words), 0);
    std::int64_t chunks = 0;
    for (std::int64_t p = 0; p < parameters; ++p) {
        const SgdParameterUpdate& update = updates[static_cast<std::size_t>(p)];
        check(update.count >= 0, "SGD", "parameter ", p, " has a negative element count");
        std::int64_t* entry = table.data() + p * entry_words;
        entry[0] = word_from(update.weight);
        entry[1] = word_from(update.gradient);
        entry[2] = word_from(update.buffer);
        entry[3] = update.count;
        std::uint32_t bits = 0;
        std::memcpy(&bits, &update.weight_decay, sizeof bits);
        entry[4] = static_cast<std::int64_t>(bits);
        const bool vectorized = aligned_16(update.weight) && aligned_16(update.gradient) &&
                                (update.buffer == nullptr || aligned_16(update.buffer));
        entry[5] = (update.use_weight_decay ? flag_weight_decay : 0) | (update.first_step ? flag_first_step : 0) |
                   (vectorized ? flag_vectorized : 0);
        entry[6] = chunks;
        chunks += (update.count + sgd_chunk_elements - 1) / sgd_chunk_elements;
    }
    table.reserve(table.size() + static_cast<std::size_t>(chunks));
    for (std::int64_t p = 0; p < parameters; ++p) {
        const std::int64_t count = updates[static_cast<std::size_t>(p)].count;
        const std::int64_t parameter_chunks = (count + sgd_chunk_elements - 1) / sgd_chunk_elements;
        for (std::int64_t c = 0; c < parameter_chunks; ++c) table.push_back(p);
    }
    return chunks;
}

void sgd_step(const std::int64_t* device_table, std::int64_t parameters, std::int64_t chunks,
              const SgdHyperparameters& hyperparameters) {
    if (chunks == 0) return;
    check(chunks <= 0x7fffffff, "SGD", "too many chunks for one launch (", chunks, ")");
    sgd_step_kernel<<<static_cast<unsigned int>(chunks), threads_per_block, 0, current_stream()>>>(
        device_table, parameters, hyperparameters);
    CUDAGRAD_LAUNCH_CHECK("sgd_step_kernel");
}

}  // namespace cudagrad::cuda
