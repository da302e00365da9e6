// ResNet-50 training throughput on the CPU: forward, backward and SGD step on synthetic data,
// timed per phase. benchmarks/train_cpu_vs_pytorch.py runs it beside the same loop in PyTorch.
//
//   build/benchmarks/bench_train [--batch 32] [--image-size 32] [--steps 10] [--warmup 2]
//                                [--threads 0] [--small-stem]
//
// The defaults are the CPU comparison's: ResNet-50 v1.5 with the standard stem (7x7/2 conv and
// max-pool), 3 x 32 x 32 inputs, 10 classes, batch 32, SGD with momentum 0.9 and weight decay
// 5e-4. Each flag may also come from the environment (CUDAGRAD_BENCH_BATCH, _IMAGE_SIZE, _STEPS,
// _WARMUP, _THREADS); flags win. Warm-up steps (allocator caches, OpenBLAS buffers, page faults)
// are not timed.
//
// Output: a table of the timed steps (mean and median milliseconds per phase), and one last line
// for scripts:
//   RESULT images_per_second=... step_ms=... forward_ms=... backward_ms=... optimizer_ms=... threads=...
// (means over the timed steps; images_per_second = batch / mean step time).
//
// What to expect: ResNet-50 at 32 x 32 with the standard stem is 4.1 GFLOP x (32/224)^2 = 0.085
// GFLOP per image forward, ~0.25 GFLOP forward + backward, so batch 32 is ~8 GFLOP per step; at
// the ~50-100 GFLOP/s two cores reach in GEMM that bounds a step near 0.1-0.2 s, ~200 img/s.
// The many small layers (layer4 runs at 1 x 1 pixels) make batch norm, im2col and per-op
// overheads a large share, so real numbers sit well below that bound.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include <cudagrad/cudagrad.hpp>
#include <cudagrad/nn/resnet.hpp>
#include <cudagrad/optim.hpp>
#include <cudagrad/threads.hpp>

using namespace cudagrad;

namespace {

struct Settings {
    std::int64_t batch = 32, image_size = 32, steps = 10, warmup = 2, threads = 0;
    bool small_stem = false;
};

std::int64_t environment_or(const char* name, std::int64_t fallback) {
    const char* text = std::getenv(name);
    return text && *text ? std::atoll(text) : fallback;
}

void usage() {
    std::fprintf(stderr,
                 "usage: bench_train [--batch N] [--image-size PX] [--steps N] [--warmup N] [--threads N] [--small-stem]\n"
                 "  ResNet-50 training steps (forward, backward, SGD) on synthetic data; defaults: batch 32,\n"
                 "  32 px, 10 timed steps after 2 warm-up steps, all cores (--threads 0).\n");
}

// Returns false after printing the usage (--help: exit 0) or an error (exit 2).
bool parse(int argc, char** argv, Settings& settings, int& exit_code) {
    exit_code = 2;
    settings.batch = environment_or("CUDAGRAD_BENCH_BATCH", settings.batch);
    settings.image_size = environment_or("CUDAGRAD_BENCH_IMAGE_SIZE", settings.image_size);
    settings.steps = environment_or("CUDAGRAD_BENCH_STEPS", settings.steps);
    settings.warmup = environment_or("CUDAGRAD_BENCH_WARMUP", settings.warmup);
    settings.threads = environment_or("CUDAGRAD_BENCH_THREADS", settings.threads);
    for (int i = 1; i < argc; ++i) {
        std::string flag = argv[i];
        if (flag == "--help" || flag == "-h") {
            exit_code = 0;
            return false;
        }
        if (flag == "--small-stem") {
            settings.small_stem = true;
            continue;
        }
        std::int64_t* target = flag == "--batch"        ? &settings.batch
                               : flag == "--image-size" ? &settings.image_size
                               : flag == "--steps"      ? &settings.steps
                               : flag == "--warmup"     ? &settings.warmup
                               : flag == "--threads"    ? &settings.threads
                                                        : nullptr;
        if (!target || i + 1 >= argc) {
            std::fprintf(stderr, "bench_train: unknown flag or missing value: %s\n", flag.c_str());
            return false;
        }
        *target = std::atoll(argv[++i]);
    }
    if (settings.batch < 1 || settings.image_size < 8 || settings.steps < 1 || settings.warmup < 0 || settings.threads < 0) {
        std::fprintf(stderr, "bench_train: need batch >= 1, image size >= 8, steps >= 1, warmup >= 0, threads >= 0\n");
        return false;
    }
    return true;
}

using Clock = std::chrono::steady_clock;
double milliseconds(Clock::time_point from, Clock::time_point to) {
    return std::chrono::duration<double, std::milli>(to - from).count();
}

double mean(const std::vector<double>& values) {
    double total = 0;
    for (double value : values) total += value;
    return total / static_cast<double>(values.size());
}

double median(std::vector<double> values) {
    std::sort(values.begin(), values.end());
    std::size_t middle = values.size() / 2;
    return values.size() % 2 ? values[middle] : 0.5 * (values[middle - 1] + values[middle]);
}

}  // namespace

int main(int argc, char** argv) {
    Settings settings;
    int exit_code = 0;
    if (!parse(argc, argv, settings, exit_code)) {
        usage();
        return exit_code;
    }
    if (settings.threads > 0) set_num_threads(static_cast<int>(settings.threads));

    nn::ResNetConfig config;
    config.depth = 50;
    config.num_classes = 10;
    config.in_channels = 3;
    config.small_stem = settings.small_stem;
    nn::ResNet model(config);
    model.train();

    Generator generator(1);
    Tensor images = randn({settings.batch, 3, settings.image_size, settings.image_size}, DType::Float32, generator);
    std::vector<std::int64_t> label_values(settings.batch);
    for (std::int64_t i = 0; i < settings.batch; ++i) label_values[i] = i % config.num_classes;
    Tensor labels = Tensor::from_vector(label_values, {settings.batch});

    SgdOptions options;
    options.lr = 0.01;
    options.momentum = 0.9;
    options.weight_decay = 5e-4;
    SGD optimizer({ParameterGroup{model.parameters(), std::nullopt, {}}}, options);

    std::vector<double> forward_ms, backward_ms, optimizer_ms, step_ms;
    double last_loss = 0;
    for (std::int64_t step = 0; step < settings.warmup + settings.steps; ++step) {
        auto start = Clock::now();
        Tensor loss = cross_entropy(model(images), labels);
        auto forward_done = Clock::now();
        loss.backward();
        auto backward_done = Clock::now();
        optimizer.step();
        optimizer.zero_grad();
        auto step_done = Clock::now();
        last_loss = loss.item();
        if (!std::isfinite(last_loss)) {
            std::fprintf(stderr, "bench_train: the loss is %g at step %lld; not timing a broken model\n", last_loss,
                         static_cast<long long>(step));
            return 1;
        }
        if (step < settings.warmup) continue;
        forward_ms.push_back(milliseconds(start, forward_done));
        backward_ms.push_back(milliseconds(forward_done, backward_done));
        optimizer_ms.push_back(milliseconds(backward_done, step_done));
        step_ms.push_back(milliseconds(start, step_done));
    }

    const double images_per_second = 1000.0 * static_cast<double>(settings.batch) / mean(step_ms);
    std::printf("cudagrad ResNet-50 training, %s stem, batch %lld, %lld x %lld px, %d threads, %lld timed steps "
                "(after %lld warm-up), loss %.4f\n",
                settings.small_stem ? "small" : "standard", static_cast<long long>(settings.batch),
                static_cast<long long>(settings.image_size), static_cast<long long>(settings.image_size), num_threads(),
                static_cast<long long>(settings.steps), static_cast<long long>(settings.warmup), last_loss);
    std::printf("  %-10s %10s %10s %8s\n", "phase", "mean ms", "median ms", "share");
    const double step_mean = mean(step_ms);
    auto row = [&](const char* name, const std::vector<double>& values) {
        std::printf("  %-10s %10.1f %10.1f %7.1f%%\n", name, mean(values), median(values), 100.0 * mean(values) / step_mean);
    };
    row("forward", forward_ms);
    row("backward", backward_ms);
    row("optimizer", optimizer_ms);
    row("step", step_ms);
    std::printf("  throughput %.1f images/s\n", images_per_second);
    std::printf("RESULT images_per_second=%.2f step_ms=%.2f forward_ms=%.2f backward_ms=%.2f optimizer_ms=%.2f threads=%d\n",
                images_per_second, step_mean, mean(forward_ms), mean(backward_ms), mean(optimizer_ms), num_threads());
    return 0;
}
