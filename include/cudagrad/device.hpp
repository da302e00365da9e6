// Where a tensor's memory lives. The device is chosen at run time: a binary built with CUDA
// support runs CPU-only on a machine without a GPU and says so once on standard error.
#pragma once

#include <string>

namespace cudagrad {

enum class DeviceType { CPU, CUDA };

struct Device {
    DeviceType type = DeviceType::CPU;
    int index = 0;

    static Device cpu() { return {DeviceType::CPU, 0}; }
    static Device cuda(int index = 0) { return {DeviceType::CUDA, index}; }

    bool is_cpu() const { return type == DeviceType::CPU; }
    bool is_cuda() const { return type == DeviceType::CUDA; }
    bool operator==(const Device& other) const { return type == other.type && index == other.index; }
    bool operator!=(const Device& other) const { return !(*this == other); }
    std::string str() const;  // "cpu" or "cuda:0"
};

// True when the library was compiled with CUDA sources (nvcc was found at build time).
bool built_with_cuda();

// Number of usable CUDA devices; 0 when built without CUDA or when the device query fails for
// any reason (no driver, no GPU). The first call that finds none prints one line saying why.
int cuda_device_count();
bool cuda_available();

// CUDA if a GPU is usable, else CPU.
Device default_device();

// Parses "cpu", "cuda", "cuda:1" or "auto"; throws cudagrad::Error naming the text otherwise.
Device parse_device(const std::string& text);

// One line per device and backend, for start-up banners; with CUDA, also the library versions
// and which implementation each GPU op uses (registry.hpp).
std::string describe_devices();

// Waits until all work queued on a CUDA device has finished (no-op for the CPU). Errors from
// earlier kernels surface here. Timing code and the progress bar call it; ops never do.
void synchronize(Device device);

// Makes a CUDA device the current one for the calling thread (ops do this for their inputs).
void make_device_current(Device device);

}  // namespace cudagrad
