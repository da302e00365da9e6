// Device discovery, host/device copies, pinned memory and events. Any error from the device
// query means "no GPU": on a machine without a driver cudaGetDeviceCount returns
// cudaErrorInsufficientDriver (35) and leaves the count untouched, so the count starts at 0.
#include <cublas_v2.h>
#include <cuda_runtime.h>
#include <cudnn.h>

#include <sstream>

#include "cuda/check.hpp"
#include "cuda/context.hpp"
#include "cuda/runtime.hpp"

static_assert(CUDNN_MAJOR >= 9, "cudagrad needs cuDNN 9 or newer");

namespace cudagrad::cuda {

int query_device_count(std::string* reason) {
    int count = 0;
    cudaError_t status = cudaGetDeviceCount(&count);
    if (status != cudaSuccess) {
        if (reason) *reason = std::string(cudaGetErrorName(status)) + ": " + cudaGetErrorString(status);
        cudaGetLastError();  // clear the sticky error so later queries start clean
        return 0;
    }
    if (count == 0 && reason) *reason = "the driver reports no CUDA devices";
    return count;
}

std::string describe_device(int index) {
    cudaDeviceProp properties{};
    CUDAGRAD_CUDA_CHECK(cudaGetDeviceProperties(&properties, index));
    int driver = 0;
    int runtime = 0;
    CUDAGRAD_CUDA_CHECK(cudaDriverGetVersion(&driver));
    CUDAGRAD_CUDA_CHECK(cudaRuntimeGetVersion(&runtime));
    int cublas_version = 0;
    CUDAGRAD_CUBLAS_CHECK(cublasGetVersion(context(index).cublas, &cublas_version));
    std::ostringstream text;
    text << properties.name << " (sm_" << properties.major << properties.minor << ", "
         << properties.multiProcessorCount << " SMs, " << properties.totalGlobalMem / (1024 * 1024) << " MiB), driver "
         << driver / 1000 << '.' << (driver % 1000) / 10 << ", runtime " << runtime / 1000 << '.'
         << (runtime % 1000) / 10 << ", cuDNN " << cudnnGetVersion() << " (built with " << CUDNN_MAJOR << '.'
         << CUDNN_MINOR << "), cuBLAS " << cublas_version;
    return text.str();
}

void set_current_device(int index) {
    int current = -1;
    CUDAGRAD_CUDA_CHECK(cudaGetDevice(&current));
    if (current != index) CUDAGRAD_CUDA_CHECK(cudaSetDevice(index));
}

int current_device() {
    int current = 0;
    CUDAGRAD_CUDA_CHECK(cudaGetDevice(&current));
    return current;
}

void synchronize(int device) {
    set_current_device(device);
    CUDAGRAD_CUDA_CHECK(cudaStreamSynchronize(context(device).stream));
    CUDAGRAD_CUDA_CHECK(cudaGetLastError());
}

void copy_host_to_device(void* destination, const void* source, std::size_t bytes) {
    if (bytes == 0) return;
    CUDAGRAD_CUDA_CHECK(cudaMemcpyAsync(destination, source, bytes, cudaMemcpyHostToDevice, current_stream()));
}

void copy_device_to_host(void* destination, const void* source, std::size_t bytes) {
    if (bytes == 0) return;
    cudaStream_t stream = current_stream();
    CUDAGRAD_CUDA_CHECK(cudaMemcpyAsync(destination, source, bytes, cudaMemcpyDeviceToHost, stream));
    CUDAGRAD_CUDA_CHECK(cudaStreamSynchronize(stream));
}

void copy_device_to_device(void* destination, const void* source, std::size_t bytes) {
    if (bytes == 0) return;
    CUDAGRAD_CUDA_CHECK(cudaMemcpyAsync(destination, source, bytes, cudaMemcpyDeviceToDevice, current_stream()));
}

void* allocate_pinned(std::size_t bytes) {
    void* pointer = nullptr;
    CUDAGRAD_CUDA_CHECK(cudaMallocHost(&pointer, bytes));
    return pointer;
}

void free_pinned(void* pointer) {
    if (pointer) CUDAGRAD_CUDA_CHECK(cudaFreeHost(pointer));
}

StreamEvent::StreamEvent(int device) : event_(nullptr), device_(device) {
    set_current_device(device);
    cudaEvent_t event = nullptr;
    CUDAGRAD_CUDA_CHECK(cudaEventCreateWithFlags(&event, cudaEventDisableTiming));
    event_ = event;
}

StreamEvent::~StreamEvent() {
    if (event_) cudaEventDestroy(static_cast<cudaEvent_t>(event_));  // no throw from a destructor
}

void StreamEvent::record() {
    set_current_device(device_);
    CUDAGRAD_CUDA_CHECK(cudaEventRecord(static_cast<cudaEvent_t>(event_), context(device_).stream));
}

bool StreamEvent::done() const {
    cudaError_t status = cudaEventQuery(static_cast<cudaEvent_t>(event_));
    if (status == cudaErrorNotReady) {
        cudaGetLastError();  // not an error: clear it
        return false;
    }
    CUDAGRAD_CUDA_CHECK(status);
    return true;
}

void StreamEvent::wait() const { CUDAGRAD_CUDA_CHECK(cudaEventSynchronize(static_cast<cudaEvent_t>(event_))); }

StreamTimer::StreamTimer(int device) : start_(nullptr), stop_(nullptr), device_(device) {
    set_current_device(device);
    cudaEvent_t start = nullptr, stop = nullptr;
    CUDAGRAD_CUDA_CHECK(cudaEventCreate(&start));
    CUDAGRAD_CUDA_CHECK(cudaEventCreate(&stop));
    start_ = start;
    stop_ = stop;
}

StreamTimer::~StreamTimer() {
    if (start_) cudaEventDestroy(static_cast<cudaEvent_t>(start_));
    if (stop_) cudaEventDestroy(static_cast<cudaEvent_t>(stop_));
}

void StreamTimer::start() {
    CUDAGRAD_CUDA_CHECK(cudaEventRecord(static_cast<cudaEvent_t>(start_), context(device_).stream));
}

void StreamTimer::stop() {
    CUDAGRAD_CUDA_CHECK(cudaEventRecord(static_cast<cudaEvent_t>(stop_), context(device_).stream));
}

double StreamTimer::milliseconds() const {
    CUDAGRAD_CUDA_CHECK(cudaEventSynchronize(static_cast<cudaEvent_t>(stop_)));
    float elapsed = 0.0f;
    CUDAGRAD_CUDA_CHECK(
        cudaEventElapsedTime(&elapsed, static_cast<cudaEvent_t>(start_), static_cast<cudaEvent_t>(stop_)));
    return static_cast<double>(elapsed);
}

void flush_l2_cache(int device) {
    set_current_device(device);
    Context& target = context(device);
    static void* buffer = nullptr;  // kept: one per process is enough for one benchmarked device
    static std::size_t buffer_bytes = 0;
    const std::size_t needed = static_cast<std::size_t>(target.properties.l2CacheSize) * 2;
    if (buffer_bytes < needed) {
        if (buffer) CUDAGRAD_CUDA_CHECK(cudaFree(buffer));
        CUDAGRAD_CUDA_CHECK(cudaMalloc(&buffer, needed));
        buffer_bytes = needed;
    }
    CUDAGRAD_CUDA_CHECK(cudaMemsetAsync(buffer, 0, buffer_bytes, target.stream));
}

DeviceFacts device_facts(int device) {
    const cudaDeviceProp& properties = context(device).properties;
    DeviceFacts facts;
    facts.name = properties.name;
    int sm_clock_khz = 0, memory_clock_khz = 0, bus_width_bits = 0;
    CUDAGRAD_CUDA_CHECK(cudaDeviceGetAttribute(&sm_clock_khz, cudaDevAttrClockRate, device));
    CUDAGRAD_CUDA_CHECK(cudaDeviceGetAttribute(&memory_clock_khz, cudaDevAttrMemoryClockRate, device));
    CUDAGRAD_CUDA_CHECK(cudaDeviceGetAttribute(&bus_width_bits, cudaDevAttrGlobalMemoryBusWidth, device));
    facts.sm_clock_mhz = sm_clock_khz / 1000;
    facts.memory_clock_mhz = memory_clock_khz / 1000;
    facts.l2_bytes = properties.l2CacheSize;
    // Double data rate: two transfers per clock on each bus line.
    facts.theoretical_bandwidth_gb_s = 2.0 * memory_clock_khz * 1e3 * (bus_width_bits / 8.0) / 1e9;
    facts.multiprocessors = properties.multiProcessorCount;
    facts.compute_capability = properties.major * 10 + properties.minor;
    return facts;
}

}  // namespace cudagrad::cuda
