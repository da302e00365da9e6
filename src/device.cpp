// Choosing the device at run time.
#include <cstdio>
#include <mutex>
#include <sstream>

#include "cudagrad/device.hpp"
#include "cudagrad/error.hpp"
#include "cudagrad/registry.hpp"
#include "cpu/gemm.hpp"
#include "cpu/parallel.hpp"

#ifdef CUDAGRAD_WITH_CUDA
#include "cuda/runtime.hpp"
#endif

namespace cudagrad {

bool built_with_cuda() {
#ifdef CUDAGRAD_WITH_CUDA
    return true;
#else
    return false;
#endif
}

int cuda_device_count() {
    // Queried once: the answer cannot change while the process runs, and the notice about a
    // missing GPU should appear once, not per call.
    static const int count = [] {
        std::string reason = "cudagrad was built without CUDA";
#ifdef CUDAGRAD_WITH_CUDA
        int found = cuda::query_device_count(&reason);
#else
        int found = 0;
#endif
        if (found == 0) std::fprintf(stderr, "cudagrad: no usable GPU (%s); running on the CPU\n", reason.c_str());
        return found;
    }();
    return count;
}

bool cuda_available() { return cuda_device_count() > 0; }

Device default_device() { return cuda_available() ? Device::cuda(0) : Device::cpu(); }

Device parse_device(const std::string& text) {
    if (text == "cpu") return Device::cpu();
    if (text == "auto") return default_device();
    if (text.rfind("cuda", 0) == 0) {
        int index = 0;
        if (text.size() > 4) {
            check(text[4] == ':' && text.size() > 5 && text.find_first_not_of("0123456789", 5) == std::string::npos,
                  "parse_device", "cannot parse device '", text, "' (expected cpu, cuda, cuda:N or auto)");
            index = std::stoi(text.substr(5));
        }
        check(index < cuda_device_count(), "parse_device", "device '", text, "' requested but ", cuda_device_count(),
              " CUDA devices are available");
        return Device::cuda(index);
    }
    fail("parse_device", "unknown device '", text, "' (expected cpu, cuda, cuda:N or auto)");
}

std::string describe_devices() {
    std::ostringstream text;
    text << "cpu: " << cpu::num_threads() << " threads, GEMM " << cpu::gemm_impl_name(cpu::gemm_impl());
    if (cpu::gemm_impl() == cpu::GemmImpl::Blocked) text << " (" << cpu::gemm_kernel_name(cpu::gemm_kernel()) << " kernel)";
#ifdef CUDAGRAD_WITH_CUDA
    for (int i = 0; i < cuda_device_count(); ++i) text << "\ncuda:" << i << ": " << cuda::describe_device(i);
    if (cuda_available()) text << "\ncuda ops: " << describe_implementations();
#endif
    if (!cuda_available()) text << "\ncuda: none (" << (built_with_cuda() ? "no usable GPU" : "built without CUDA") << ")";
    return text.str();
}

void synchronize(Device device) {
    if (device.is_cpu()) return;
#ifdef CUDAGRAD_WITH_CUDA
    cuda::synchronize(device.index);
#endif
}

void make_device_current(Device device) {
    if (device.is_cpu()) return;
#ifdef CUDAGRAD_WITH_CUDA
    cuda::set_current_device(device.index);
#else
    fail("make_device_current", "cudagrad was built without CUDA, so ", device.str(), " does not exist");
#endif
}

}  // namespace cudagrad
