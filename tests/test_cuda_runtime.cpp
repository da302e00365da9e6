// The CUDA runtime pieces under every GPU op: host/device copies of every dtype and layout, the
// caching allocator (reuse, statistics, the out-of-memory message), pinned memory, the loader's
// pinned batches, timers, and the device description. Skipped without a GPU (see catch_main.cpp).
#include <cstdint>
#include <vector>

#include "catch.hpp"
#include "cuda_test_support.hpp"
#include "test_support.hpp"

#ifdef CUDAGRAD_WITH_CUDA
#include "cuda/runtime.hpp"
#endif

using namespace cudagrad;
using namespace cudagrad::testing;

TEST_CASE("round trips host -> device -> host keep every value, for each dtype") {
    const Tensor floats = random_cpu({3, 5, 7}, 1);
    CHECK(floats.to(gpu()).device() == gpu());
    require_close(floats.to(gpu()).to(Device::cpu()), floats, 0.0, 0.0);
    const Tensor doubles = floats.to(DType::Float64);
    require_close(doubles.to(gpu()).to(Device::cpu()), doubles, 0.0, 0.0);
    const Tensor integers = Tensor::from_vector(std::vector<std::int64_t>{-3, 0, 7, 1LL << 40}, {4});
    CHECK(integers.to(gpu()).to_int64_vector() == integers.to_int64_vector());
}

TEST_CASE("non-contiguous views copy correctly in every direction") {
    const Tensor base = random_cpu({4, 6, 5}, 2);
    const Tensor view = base.transpose(0, 2).slice(1, 1, 5);  // strided, offset
    require_close(view.to(gpu()), view.contiguous(), 0.0, 0.0);  // host view -> device
    const Tensor on_gpu = base.to(gpu());
    const Tensor gpu_view = on_gpu.transpose(0, 2).slice(1, 1, 5);
    require_close(gpu_view.contiguous(), view.contiguous(), 0.0, 0.0);  // device strided copy
    require_close(gpu_view.to(Device::cpu()), view.contiguous(), 0.0, 0.0);  // device view -> host
    Tensor target = Tensor::zeros({5, 6, 4}, DType::Float32, gpu());
    Tensor target_view = target.slice(1, 1, 5);  // a strided device view, written from a strided host view
    target_view.copy_(view);
    require_close(target.slice(1, 1, 5), view, 0.0, 0.0);
    require_close(target.slice(1, 0, 1), Tensor::zeros({5, 1, 4}), 0.0, 0.0);  // untouched
}

TEST_CASE("dtype conversion and fill run on the device") {
    const Tensor values = random_cpu({17, 3}, 3, -100.0, 100.0);
    const Tensor on_gpu = values.to(gpu());
    require_close(on_gpu.to(DType::Float64), values.to(DType::Float64), 0.0, 0.0);
    CHECK(on_gpu.to(DType::Int64).to_int64_vector() == values.to(DType::Int64).to_int64_vector());
    Tensor filled = Tensor::empty({9, 11}, DType::Float32, gpu());
    filled.fill_(2.5);
    for (float v : filled.to_float_vector()) REQUIRE(v == 2.5f);
    Tensor strided = Tensor::zeros({4, 4}, DType::Float64, gpu());
    Tensor column = strided.slice(1, 2, 3);
    column.fill_(-1.0);
    const std::vector<double> result = strided.to_double_vector();
    for (int row = 0; row < 4; ++row) {
        for (int col = 0; col < 4; ++col) CHECK(result[static_cast<std::size_t>(row * 4 + col)] == (col == 2 ? -1.0 : 0.0));
    }
    CHECK(Tensor::full({}, 3.0, DType::Float32, gpu()).item() == 3.0);
}

TEST_CASE("the caching allocator reuses freed blocks and keeps consistent statistics") {
    Allocator& allocator = allocator_for(gpu());
    { Tensor warm = Tensor::empty({1 << 20}, DType::Float32, gpu()); }  // 4 MiB, now cached
    const AllocatorStats before = allocator.stats();
    for (int i = 0; i < 10; ++i) {
        Tensor again = Tensor::empty({1 << 20}, DType::Float32, gpu());
        Tensor small = Tensor::empty({1000}, DType::Float32, gpu());
    }
    const AllocatorStats after = allocator.stats();
    CHECK(after.allocation_count >= before.allocation_count + 20);
    CHECK(after.system_allocations <= before.system_allocations + 1);  // at most the small block, once
    CHECK(after.bytes_in_use == before.bytes_in_use);
    CHECK(after.bytes_reserved >= after.bytes_in_use);
    CHECK(after.peak_bytes_in_use >= after.bytes_in_use + (4 << 20));
    allocator.empty_cache();
    CHECK(allocator.stats().bytes_cached == 0);
}

TEST_CASE("an impossible allocation is an error stating requested, allocated, reserved and free bytes") {
    require_error([] { Tensor::empty({std::int64_t{1} << 48}, DType::Float32, gpu()); },
                  {"out of memory", "requested", "allocated", "reserved", "free"});
    Tensor still_works = Tensor::ones({8}, DType::Float32, gpu());
    CHECK(still_works.to_float_vector()[7] == 1.0f);
}

TEST_CASE("pinned host tensors copy to the device and are reused only after their copies") {
    Allocator& pinned = pinned_allocator();
    Tensor staged = Tensor::empty_in({256, 1, 28, 28}, DType::Float32, pinned);
    CHECK(staged.device().is_cpu());
    Tensor fresh = Tensor::empty_in({256, 1, 28, 28}, DType::Float32, pinned);
    fresh.fill_(0.25);
    Tensor copied = fresh.to(gpu());
    fresh = Tensor();  // freed while the copy may be in flight
    Tensor reused = Tensor::empty_in({256, 1, 28, 28}, DType::Float32, pinned);
    reused.fill_(9.0);  // if the allocator handed the block back too early, `copied` would see 9
    for (float v : copied.to_float_vector()) REQUIRE(v == 0.25f);
}

TEST_CASE("describe_devices names the GPU and the library versions") {
    const std::string text = describe_devices();
    CHECK(text.find("cuda:0") != std::string::npos);
    CHECK(text.find("cuDNN") != std::string::npos);
    CHECK(text.find("cuBLAS") != std::string::npos);
    CHECK(text.find("conv2d=") != std::string::npos);
}

#ifdef CUDAGRAD_WITH_CUDA
TEST_CASE("the stream timer measures queued work") {
    cuda::StreamTimer timer(0);
    Tensor big = Tensor::empty({1 << 24}, DType::Float32, gpu());
    timer.start();
    for (int i = 0; i < 5; ++i) big.fill_(static_cast<double>(i));
    timer.stop();
    CHECK(timer.milliseconds() > 0.0);
    cuda::flush_l2_cache(0);
    const cuda::DeviceFacts facts = cuda::device_facts(0);
    CHECK(facts.l2_bytes > 0);
    CHECK(facts.theoretical_bandwidth_gb_s > 100.0);
}
#endif
