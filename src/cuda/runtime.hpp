// The host-side face of the CUDA runtime, free of CUDA headers so plain C++ files can call it.
// Compiled only when the library is built with CUDA (CUDAGRAD_WITH_CUDA).
#pragma once

#include <cstddef>
#include <string>

#include "cudagrad/allocator.hpp"

namespace cudagrad::cuda {

// Number of CUDA devices; 0 when the query fails, with the reason in *reason.
int query_device_count(std::string* reason);

// "NVIDIA H100 80GB HBM3 (sm_90, 132 SMs, 81008 MiB), driver 13.0, runtime 13.0, cuDNN 91400,
// cuBLAS 130000".
std::string describe_device(int index);

// Makes `index` the calling thread's current device (cheap when it already is).
void set_current_device(int index);
int current_device();

// Waits until everything queued on the device's stream has finished; reports any error a
// kernel raised since the last check.
void synchronize(int device);

// Copies between host and the current device's memory, in stream order. Host-to-device from
// pageable memory returns once the host bytes are staged (the source may be reused at once);
// from pinned memory it returns at once and the DMA runs later, so the source must not be
// rewritten until the stream has passed the copy (free it instead: pinned_host_allocator only
// reuses a block after that). Device-to-host waits for the stream, so the bytes are there when
// it returns.
void copy_host_to_device(void* destination, const void* source, std::size_t bytes);
void copy_device_to_host(void* destination, const void* source, std::size_t bytes);
void copy_device_to_device(void* destination, const void* source, std::size_t bytes);

// Page-locked host memory: copies from it run asynchronously by DMA.
void* allocate_pinned(std::size_t bytes);
void free_pinned(void* pointer);

// An event recorded on the device stream; done() asks without blocking whether the work queued
// before it has finished. Used to know when a pinned staging buffer may be refilled.
class StreamEvent {
public:
    explicit StreamEvent(int device);
    ~StreamEvent();
    StreamEvent(const StreamEvent&) = delete;
    StreamEvent& operator=(const StreamEvent&) = delete;
    void record();
    bool done() const;
    void wait() const;  // blocks the host until the event has completed

private:
    void* event_;  // cudaEvent_t
    int device_;
};

// Times work on the device stream with CUDA events (for benchmarks): start(), queue work,
// stop(); milliseconds() waits for the stop event and returns the time between the two.
class StreamTimer {
public:
    explicit StreamTimer(int device);
    ~StreamTimer();
    StreamTimer(const StreamTimer&) = delete;
    StreamTimer& operator=(const StreamTimer&) = delete;
    void start();
    void stop();
    double milliseconds() const;

private:
    void* start_;  // cudaEvent_t
    void* stop_;
    int device_;
};

// Evicts the L2 cache by writing a buffer twice its size, queued on the device stream, so the
// next timed kernel reads its inputs from device memory as in a real step.
void flush_l2_cache(int device);

// Device facts for benchmark contexts: "NVIDIA H100 80GB HBM3", SM clock and memory clock in
// MHz, L2 size in bytes, peak memory bandwidth from the bus width and clock in GB/s.
struct DeviceFacts {
    std::string name;
    int sm_clock_mhz = 0;
    int memory_clock_mhz = 0;
    int l2_bytes = 0;
    double theoretical_bandwidth_gb_s = 0.0;
    int multiprocessors = 0;
    int compute_capability = 0;  // 90 for sm_90
};
DeviceFacts device_facts(int device);

// Page-locked host memory whose freed blocks are reused only after the copies queued before
// the free have finished (pinned_allocator.cu).
Allocator& pinned_host_allocator();

// The caching allocator of one device (cuda_allocator.cu).
Allocator& device_allocator(int device);

// Debug aid for tests: when on, every block the device allocator hands out is first filled
// with 0xFF bytes, a NaN in float32 and float64, so an output element a kernel forgets to
// write shows up as NaN. Also on when CUDAGRAD_POISON_DEVICE_MEMORY=1.
void set_poison_new_memory(bool enabled);

}  // namespace cudagrad::cuda
