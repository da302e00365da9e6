// Tensor bookkeeping: creation, views sharing storage, copies, conversions, printing, and the
// allocator's counters.
#include <sstream>
#include <string>

#include <cudagrad/cudagrad.hpp>

#include "catch.hpp"
#include "test_support.hpp"

using namespace cudagrad;
using cudagrad::testing::require_error;

namespace {
Tensor arange(std::int64_t count, const Shape& shape) {
    std::vector<float> values(static_cast<std::size_t>(count));
    for (std::int64_t i = 0; i < count; ++i) values[static_cast<std::size_t>(i)] = static_cast<float>(i);
    return Tensor::from_vector(values, shape);
}
}  // namespace

TEST_CASE("creation fills and describes tensors") {
    Tensor zeros = Tensor::zeros({2, 3});
    CHECK(zeros.shape() == Shape{2, 3});
    CHECK(zeros.strides() == Shape{3, 1});
    CHECK(zeros.numel() == 6);
    CHECK(zeros.dtype() == DType::Float32);
    CHECK(zeros.device() == Device::cpu());
    CHECK(zeros.to_double_vector() == std::vector<double>(6, 0.0));
    CHECK(Tensor::full({4}, 2.5, DType::Float64).to_double_vector() == std::vector<double>(4, 2.5));
    CHECK(Tensor::scalar(3.0).item() == 3.0);
    CHECK(Tensor::scalar(3.0).dim() == 0);
    CHECK(zeros.description() == "Tensor([2, 3], float32, cpu)");
    std::ostringstream printed;
    printed << arange(3, {3});
    CHECK(printed.str() == "Tensor([3], float32, cpu) [0, 1, 2]");
}

TEST_CASE("reshape and flatten of a contiguous tensor are views") {
    Tensor base = arange(24, {2, 3, 4});
    Tensor reshaped = base.reshape({6, -1});
    CHECK(reshaped.shape() == Shape{6, 4});
    reshaped.data<float>()[5] = 100.0f;
    CHECK(base.at({0, 1, 1}) == 100.0);  // same storage
    CHECK(base.flatten(1).shape() == Shape{2, 12});
    CHECK(base.flatten(0).shape() == Shape{24});
    require_error([&] { (void)base.reshape({5, -1}); }, {"Tensor::view", "[5, -1]"});
    require_error([&] { (void)base.reshape({-1, -1}); }, {"only one size may be -1"});
}

TEST_CASE("slice and transpose are strided views; contiguous copies") {
    Tensor base = arange(12, {3, 4});
    Tensor rows = base.slice(0, 1, 3);
    CHECK(rows.shape() == Shape{2, 4});
    CHECK(rows.at({0, 0}) == 4.0);
    CHECK(rows.is_contiguous());
    Tensor columns = base.slice(1, 1, 3);
    CHECK_FALSE(columns.is_contiguous());
    CHECK(columns.to_double_vector() == std::vector<double>{1, 2, 5, 6, 9, 10});

    Tensor transposed = base.transpose(0, 1);
    CHECK(transposed.shape() == Shape{4, 3});
    CHECK_FALSE(transposed.is_contiguous());
    CHECK(transposed.at({1, 2}) == base.at({2, 1}));
    Tensor packed = transposed.contiguous();
    CHECK(packed.is_contiguous());
    CHECK(packed.to_double_vector() == transposed.to_double_vector());
    // A view of a non-contiguous tensor needs a copy: view() refuses, reshape() copies.
    require_error([&] { (void)transposed.view({12}); }, {"contiguous", "[4, 3]"});
    CHECK(transposed.reshape({12}).to_double_vector() == packed.to_double_vector());
    require_error([&] { (void)base.slice(0, 2, 5); }, {"Tensor::slice", "[2, 5)"});
}

TEST_CASE("copy_ converts dtypes and writes through views") {
    Tensor base = Tensor::zeros({3, 3}, DType::Float64);
    Tensor middle_column = base.slice(1, 1, 2);
    middle_column.copy_(Tensor::from_vector(std::vector<float>{1.5f, 2.5f, 3.5f}, {3, 1}));
    CHECK(base.to_double_vector() == std::vector<double>{0, 1.5, 0, 0, 2.5, 0, 0, 3.5, 0});
    Tensor labels = Tensor::from_vector(std::vector<double>{0, 7, 2}, {3}).to(DType::Int64);
    CHECK(labels.dtype() == DType::Int64);
    CHECK(labels.to_int64_vector() == std::vector<std::int64_t>{0, 7, 2});
    require_error([&] { base.copy_(Tensor::zeros({2})); }, {"Tensor::copy_", "[3, 3]", "[2]"});
    Tensor clone = base.clone();
    clone.fill_(9.0);
    CHECK(base.at({0, 0}) == 0.0);  // a clone owns its storage
}

TEST_CASE("typed access checks the dtype") {
    Tensor tensor = Tensor::zeros({2}, DType::Float64);
    CHECK(tensor.data<double>() != nullptr);
    require_error([&] { (void)tensor.data<float>(); }, {"float64", "float32"});
    require_error([&] { (void)Tensor::empty({2, -1}); }, {"negative size", "[2, -1]"});
    require_error([&] { (void)Tensor().shape(); }, {"undefined"});
    require_error([&] { (void)Tensor::zeros({2, 2}).item(); }, {"Tensor::item", "[2, 2]"});
}

TEST_CASE("the CPU allocator counts bytes in use and the peak") {
    Allocator& allocator = cpu_allocator();
    AllocatorStats before = allocator.stats();
    {
        Tensor big = Tensor::empty({1024, 256});  // 1 MiB
        AllocatorStats during = allocator.stats();
        CHECK(during.bytes_in_use - before.bytes_in_use == 1024 * 256 * 4);
        CHECK(during.peak_bytes_in_use >= during.bytes_in_use);
        CHECK(reinterpret_cast<std::uintptr_t>(big.raw_data()) % 64 == 0);
    }
    CHECK(allocator.stats().bytes_in_use == before.bytes_in_use);
}

TEST_CASE("large freed blocks are reused, not fetched from the system again") {
    Allocator& allocator = cpu_allocator();
    { Tensor warm = Tensor::empty({3, 1000, 100}); }  // 1.2 MB, now cached
    AllocatorStats cached = allocator.stats();
    CHECK(cached.bytes_cached >= 1200000);
    { Tensor again = Tensor::empty({1000, 300}); }  // same byte count, other shape
    CHECK(allocator.stats().system_allocations == cached.system_allocations);
    allocator.empty_cache();
    CHECK(allocator.stats().bytes_cached == 0);
    { Tensor fresh = Tensor::empty({1000, 300}); }
    CHECK(allocator.stats().system_allocations == cached.system_allocations + 1);
}

TEST_CASE("devices are parsed and queried at run time") {
    CHECK(parse_device("cpu") == Device::cpu());
    CHECK(Device::cuda(1).str() == "cuda:1");
    require_error([&] { (void)parse_device("tpu"); }, {"parse_device", "tpu"});
    if (!cuda_available()) {
        CHECK(default_device() == Device::cpu());
        require_error([&] { (void)parse_device("cuda"); }, {"cuda", "0 CUDA devices"});
        require_error([&] { (void)Tensor::zeros({2}).to(Device::cuda()); }, {"cuda:0"});
    }
    CHECK(describe_devices().find("cpu:") == 0);
}
