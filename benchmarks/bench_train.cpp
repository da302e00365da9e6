// ResNet-50 training throughput on the CPU or a GPU: forward, backward and SGD step on
// synthetic data. benchmarks/train_vs_pytorch.py runs it beside the same loop in PyTorch.
//
//   build/benchmarks/bench_train [--device auto|cpu|cuda] [--batches 32,128,256]
//       [--precisions fp32,tf32,bf16] [--image-size PX] [--classes N] [--steps N] [--warmup N]
//       [--threads N] [--small-stem] [--json FILE]
//
// One case per (batch, precision). Defaults depend on the device (--device auto: a GPU when
// one is usable, else the CPU):
//   cpu   the CPU comparison's small configuration (224 px is far too slow on 2 cores):
//         batch 32, 3 x 32 x 32 inputs, 10 classes, fp32 only, 10 timed steps after 2 warm-up.
//   cuda  ResNet-50 as benchmarked everywhere: 3 x 224 x 224 inputs, 1000 classes, batches from
//         CUDAGRAD_BENCH_BATCHES (default 128), precisions fp32, tf32 and bf16 (set_math_mode:
//         the precision of the matrix products inside conv2d and gemm; tensors stay float32),
//         20 timed steps after 5 warm-up.
// Every value may also come from the environment: CUDAGRAD_BENCH_BATCHES (or the older
// CUDAGRAD_BENCH_BATCH), CUDAGRAD_BENCH_PRECISIONS, CUDAGRAD_BENCH_IMAGE_SIZE, _CLASSES, _STEPS,
// _WARMUP, _THREADS; flags win. Without a usable GPU the cuda cases are reported as skipped and
// the program exits 0.
//
// The model and the optimiser are the training program's: ResNet-50 v1.5 (standard stem unless
// --small-stem), weights from seed 0, SGD with momentum 0.9, Nesterov, lr 0.01 and weight decay
// 5e-4 on conv and linear weights only (nn::split_for_weight_decay). The data are one fixed batch
// of N(0, 1) images (seed 1) and labels i % classes, resident on the device.
//
// Each case measures twice, after the warm-up steps (cuDNN plans, allocator caches, lazy loading):
//   1. the step as training runs it: `steps` steps queued back to back, one synchronize(device)
//      at the end; step_ms = elapsed / steps, images_per_second = batch / step_ms.
//   2. the split: synchronize(device) before and after each phase (forward with the loss,
//      backward, optimiser step + zero_grad), which costs some overlap; forward_ms, backward_ms,
//      optimizer_ms are their means and split_step_ms their sum.
// On the CPU synchronize is a no-op, so one loop gives both. Peak memory: the device allocator's
// peak_bytes_in_use over the timed steps (reset_peak() after the warm-up), which counts the
// weights, gradients, momentum buffers, the data and the step's activations; PyTorch's
// equivalent is torch.cuda.max_memory_allocated().
//
// Output: a table, one `RESULT key=value ...` line per case for scripts, and with --json FILE
// every case (status ok / skipped / failed, with the reason) and the context (devices, date,
// commit from CUDAGRAD_COMMIT) as JSON. Exit status 1 when a case failed.
//
// What to expect on the CPU: ResNet-50 at 32 x 32 with the standard stem is 4.1 GFLOP x
// (32/224)^2 = 0.085 GFLOP per image forward, ~0.25 GFLOP forward + backward, so batch 32 is
// ~8 GFLOP per step; at the ~50-100 GFLOP/s two cores reach in GEMM that bounds a step near
// 0.1-0.2 s, ~200 img/s. On an H100 at 224 px a training image is ~24.5 GFLOP (3 x 8.2 forward),
// so at cuBLAS's ~51 TFLOP/s fp32 (no tensor cores) the bound is ~2,000 img/s and PyTorch
// reaches 944 (docs/ANCHORS: fp32 NCHW, batch 128); with TF32 ~1,800.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <exception>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include <cudagrad/cudagrad.hpp>
#include <cudagrad/nn/resnet.hpp>
#include <cudagrad/optim.hpp>
#include <cudagrad/registry.hpp>
#include <cudagrad/threads.hpp>

using namespace cudagrad;

namespace {

struct Settings {
    std::string device = "auto";
    std::vector<std::int64_t> batches;      // empty: the device's default
    std::vector<std::string> precisions;    // empty: the device's default
    std::int64_t image_size = 0, classes = 0, steps = 0, warmup = -1, threads = 0;  // 0 / -1: default
    bool small_stem = false;
    std::string json_path;
};

struct Case {
    std::string device, precision, status = "ok", message, stem;
    std::int64_t batch = 0, image_size = 0, classes = 0, steps = 0, warmup = 0;
    double images_per_second = 0, step_ms = 0, split_step_ms = 0, forward_ms = 0, backward_ms = 0, optimizer_ms = 0;
    double loss = 0;
    std::int64_t peak_memory_bytes = 0;
};

const char* environment(const char* name) {
    const char* text = std::getenv(name);
    return text && *text ? text : nullptr;
}

std::vector<std::string> split_list(const std::string& text) {
    std::vector<std::string> items;
    std::stringstream stream(text);
    std::string item;
    while (std::getline(stream, item, ',')) {
        if (!item.empty()) items.push_back(item);
    }
    return items;
}

std::vector<std::int64_t> parse_batches(const std::string& text) {
    std::vector<std::int64_t> batches;
    for (const std::string& item : split_list(text)) batches.push_back(std::atoll(item.c_str()));
    return batches;
}

void usage() {
    std::fprintf(stderr,
                 "usage: bench_train [--device auto|cpu|cuda] [--batches N,N,...] [--batch N] [--precisions fp32,tf32,bf16]\n"
                 "                   [--image-size PX] [--classes N] [--steps N] [--warmup N] [--threads N] [--small-stem]\n"
                 "                   [--json FILE]\n"
                 "  ResNet-50 training steps (forward, backward, SGD) on synthetic data, one case per batch and precision.\n"
                 "  Defaults on the CPU: batch 32, 32 px, 10 classes, fp32, 10 timed steps after 2 warm-up;\n"
                 "  on a GPU: batches from CUDAGRAD_BENCH_BATCHES (128), 224 px, 1000 classes, fp32,tf32,bf16, 20 after 5.\n");
}

// Returns false after printing the usage (--help: exit 0) or an error (exit 2).
bool parse(int argc, char** argv, Settings& settings, int& exit_code) {
    exit_code = 2;
    if (const char* text = environment("CUDAGRAD_BENCH_BATCHES")) settings.batches = parse_batches(text);
    else if (const char* single = environment("CUDAGRAD_BENCH_BATCH")) settings.batches = parse_batches(single);
    if (const char* text = environment("CUDAGRAD_BENCH_PRECISIONS")) settings.precisions = split_list(text);
    auto number_from_environment = [](const char* name, std::int64_t& target) {
        if (const char* text = environment(name)) target = std::atoll(text);
    };
    number_from_environment("CUDAGRAD_BENCH_IMAGE_SIZE", settings.image_size);
    number_from_environment("CUDAGRAD_BENCH_CLASSES", settings.classes);
    number_from_environment("CUDAGRAD_BENCH_STEPS", settings.steps);
    number_from_environment("CUDAGRAD_BENCH_WARMUP", settings.warmup);
    number_from_environment("CUDAGRAD_BENCH_THREADS", settings.threads);
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
        if (i + 1 >= argc) {
            std::fprintf(stderr, "bench_train: unknown flag or missing value: %s\n", flag.c_str());
            return false;
        }
        const std::string value = argv[++i];
        if (flag == "--device") settings.device = value;
        else if (flag == "--batches" || flag == "--batch") settings.batches = parse_batches(value);
        else if (flag == "--precisions" || flag == "--precision") settings.precisions = split_list(value);
        else if (flag == "--json") settings.json_path = value;
        else if (flag == "--image-size") settings.image_size = std::atoll(value.c_str());
        else if (flag == "--classes") settings.classes = std::atoll(value.c_str());
        else if (flag == "--steps") settings.steps = std::atoll(value.c_str());
        else if (flag == "--warmup") settings.warmup = std::atoll(value.c_str());
        else if (flag == "--threads") settings.threads = std::atoll(value.c_str());
        else {
            std::fprintf(stderr, "bench_train: unknown flag: %s\n", flag.c_str());
            return false;
        }
    }
    if (settings.device != "auto" && settings.device != "cpu" && settings.device != "cuda") {
        std::fprintf(stderr, "bench_train: --device must be auto, cpu or cuda, got '%s'\n", settings.device.c_str());
        return false;
    }
    for (std::int64_t batch : settings.batches) {
        if (batch < 1) {
            std::fprintf(stderr, "bench_train: every batch must be >= 1\n");
            return false;
        }
    }
    for (const std::string& precision : settings.precisions) {
        if (precision != "fp32" && precision != "tf32" && precision != "bf16") {
            std::fprintf(stderr, "bench_train: precisions are fp32, tf32 and bf16, got '%s'\n", precision.c_str());
            return false;
        }
    }
    if ((settings.image_size != 0 && settings.image_size < 8) || settings.classes < 0 || settings.steps < 0 ||
        settings.warmup < -1 || settings.threads < 0) {
        std::fprintf(stderr, "bench_train: need image size >= 8, classes >= 1, steps >= 1, warmup >= 0, threads >= 0\n");
        return false;
    }
    return true;
}

// Fills in what the flags left at "default" for the device the cases run on.
void apply_device_defaults(Settings& settings, bool on_gpu) {
    if (settings.batches.empty()) settings.batches = on_gpu ? std::vector<std::int64_t>{128} : std::vector<std::int64_t>{32};
    if (settings.precisions.empty()) {
        settings.precisions = on_gpu ? std::vector<std::string>{"fp32", "tf32", "bf16"} : std::vector<std::string>{"fp32"};
    }
    if (settings.image_size == 0) settings.image_size = on_gpu ? 224 : 32;
    if (settings.classes == 0) settings.classes = on_gpu ? 1000 : 10;
    if (settings.steps == 0) settings.steps = on_gpu ? 20 : 10;
    if (settings.warmup < 0) settings.warmup = on_gpu ? 5 : 2;
}

using Clock = std::chrono::steady_clock;
double milliseconds(Clock::time_point from, Clock::time_point to) {
    return std::chrono::duration<double, std::milli>(to - from).count();
}

double mean(const std::vector<double>& values) {
    double total = 0;
    for (double value : values) total += value;
    return values.empty() ? 0.0 : total / static_cast<double>(values.size());
}

// One case: builds a fresh model (same seed every case), warms up, then measures as described
// at the top. Throws what the library throws (an op without a GPU path, out of memory, ...).
void run_case(const Settings& settings, Device device, Case& result) {
    set_math_mode(parse_math_mode(result.precision));
    nn::ResNetConfig config;
    config.depth = 50;
    config.num_classes = settings.classes;
    config.in_channels = 3;
    config.small_stem = settings.small_stem;
    config.seed = 0;
    nn::ResNet model(config);
    model.to(device);  // before the optimiser takes the parameters: to() replaces the tensors
    model.train();

    Generator generator(1);
    Tensor images = randn({result.batch, 3, settings.image_size, settings.image_size}, DType::Float32, generator).to(device);
    std::vector<std::int64_t> label_values(static_cast<std::size_t>(result.batch));
    for (std::int64_t i = 0; i < result.batch; ++i) label_values[static_cast<std::size_t>(i)] = i % settings.classes;
    Tensor labels = Tensor::from_vector(label_values, {result.batch}).to(device);

    nn::WeightDecaySplit split = nn::split_for_weight_decay(model);
    SgdOptions options;
    options.lr = 0.01;
    options.momentum = 0.9;
    options.nesterov = true;
    options.weight_decay = 5e-4;
    SGD optimizer({named_parameter_group(split.decay), named_parameter_group(split.no_decay, 0.0)}, options);

    auto check_loss = [&](const Tensor& loss, const char* where) {
        result.loss = loss.item();
        if (!std::isfinite(result.loss)) {
            throw std::runtime_error("the loss is " + std::to_string(result.loss) + " after the " + where +
                                     " steps; not timing a broken model");
        }
    };
    auto train_step = [&]() -> Tensor {
        Tensor loss = cross_entropy(model(images), labels);
        loss.backward();
        optimizer.step();
        optimizer.zero_grad();
        return loss;
    };

    Tensor loss;
    for (std::int64_t step = 0; step < settings.warmup; ++step) loss = train_step();
    if (loss.defined()) check_loss(loss, "warm-up");
    synchronize(device);
    Allocator& allocator = allocator_for(device);
    allocator.reset_peak();

    std::vector<double> forward_ms, backward_ms, optimizer_ms, step_ms;
    if (device.is_cuda()) {
        // 1. Unsplit: the steps back to back, as training queues them.
        const auto start = Clock::now();
        for (std::int64_t step = 0; step < settings.steps; ++step) loss = train_step();
        synchronize(device);
        result.step_ms = milliseconds(start, Clock::now()) / static_cast<double>(settings.steps);
        check_loss(loss, "timed");
    }
    // 2. Split: a synchronize around each phase (no-ops on the CPU, where this loop is also the
    // unsplit measurement).
    for (std::int64_t step = 0; step < settings.steps; ++step) {
        synchronize(device);
        const auto start = Clock::now();
        loss = cross_entropy(model(images), labels);
        synchronize(device);
        const auto forward_done = Clock::now();
        loss.backward();
        synchronize(device);
        const auto backward_done = Clock::now();
        optimizer.step();
        optimizer.zero_grad();
        synchronize(device);
        const auto step_done = Clock::now();
        forward_ms.push_back(milliseconds(start, forward_done));
        backward_ms.push_back(milliseconds(forward_done, backward_done));
        optimizer_ms.push_back(milliseconds(backward_done, step_done));
        step_ms.push_back(milliseconds(start, step_done));
    }
    check_loss(loss, "split");
    result.peak_memory_bytes = allocator.stats().peak_bytes_in_use;
    result.forward_ms = mean(forward_ms);
    result.backward_ms = mean(backward_ms);
    result.optimizer_ms = mean(optimizer_ms);
    result.split_step_ms = mean(step_ms);
    if (!device.is_cuda()) result.step_ms = result.split_step_ms;
    result.images_per_second = 1000.0 * static_cast<double>(result.batch) / result.step_ms;
}

std::string json_string(const std::string& text) {
    std::string quoted = "\"";
    for (char c : text) {
        switch (c) {
            case '"': quoted += "\\\""; break;
            case '\\': quoted += "\\\\"; break;
            case '\n': quoted += "\\n"; break;
            case '\t': quoted += "\\t"; break;
            default:
                if (static_cast<unsigned char>(c) < 0x20) {
                    char escaped[8];
                    std::snprintf(escaped, sizeof escaped, "\\u%04x", static_cast<unsigned char>(c));
                    quoted += escaped;
                } else {
                    quoted += c;
                }
        }
    }
    return quoted + "\"";
}

std::string json_number(double value) {
    if (!std::isfinite(value)) return "null";
    char text[64];
    std::snprintf(text, sizeof text, "%.6g", value);
    return text;
}

std::string utc_now() {
    std::time_t now = std::time(nullptr);
    char text[32];
    std::strftime(text, sizeof text, "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&now));
    return text;
}

bool write_json(const std::string& path, const std::vector<Case>& cases) {
    std::ofstream out(path);
    if (!out) return false;
    const char* commit = environment("CUDAGRAD_COMMIT");
    out << "{\n  \"kind\": \"cudagrad_train_benchmark\",\n  \"context\": {\n";
    out << "    \"date\": " << json_string(utc_now()) << ",\n";
    out << "    \"cudagrad_devices\": " << json_string(describe_devices()) << ",\n";
    out << "    \"threads\": " << num_threads() << ",\n";
    out << "    \"commit\": " << json_string(commit ? commit : "") << "\n  },\n  \"cases\": [";
    for (std::size_t i = 0; i < cases.size(); ++i) {
        const Case& c = cases[i];
        out << (i ? ",\n" : "\n") << "    {\"implementation\": \"cudagrad\", \"device\": " << json_string(c.device)
            << ", \"precision\": " << json_string(c.precision) << ", \"batch\": " << c.batch
            << ", \"image_size\": " << c.image_size << ", \"classes\": " << c.classes
            << ", \"stem\": " << json_string(c.stem) << ", \"steps\": " << c.steps << ", \"warmup\": " << c.warmup
            << ", \"status\": " << json_string(c.status) << ", \"message\": " << json_string(c.message);
        if (c.status == "ok") {
            out << ", \"images_per_second\": " << json_number(c.images_per_second)
                << ", \"step_ms\": " << json_number(c.step_ms) << ", \"split_step_ms\": " << json_number(c.split_step_ms)
                << ", \"forward_ms\": " << json_number(c.forward_ms) << ", \"backward_ms\": " << json_number(c.backward_ms)
                << ", \"optimizer_ms\": " << json_number(c.optimizer_ms)
                << ", \"peak_memory_bytes\": " << c.peak_memory_bytes << ", \"loss\": " << json_number(c.loss);
        }
        out << "}";
    }
    out << "\n  ]\n}\n";
    return static_cast<bool>(out);
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

    const bool gpu_usable = cuda_available();
    const bool on_gpu = settings.device == "cuda" || (settings.device == "auto" && gpu_usable);
    apply_device_defaults(settings, on_gpu);
    const Device device = on_gpu ? Device::cuda(0) : Device::cpu();

    std::printf("cudagrad ResNet-50 training benchmark on %s: %s stem, %lld x %lld px, %lld classes, %lld timed steps "
                "(after %lld warm-up), SGD momentum 0.9 nesterov, weight decay 5e-4\n%s\n",
                on_gpu ? "cuda" : "cpu", settings.small_stem ? "small" : "standard",
                static_cast<long long>(settings.image_size), static_cast<long long>(settings.image_size),
                static_cast<long long>(settings.classes), static_cast<long long>(settings.steps),
                static_cast<long long>(settings.warmup), describe_devices().c_str());
    std::printf("  %-6s %-5s %-7s %10s %9s %10s %10s %10s %10s %11s\n", "batch", "math", "status", "images/s", "step ms",
                "split ms", "forward", "backward", "optimizer", "peak MiB");
    std::fflush(stdout);

    std::vector<Case> cases;
    bool any_failed = false;
    for (std::int64_t batch : settings.batches) {
        for (const std::string& precision : settings.precisions) {
            Case result;
            result.device = on_gpu ? "cuda" : "cpu";
            result.precision = precision;
            result.batch = batch;
            result.image_size = settings.image_size;
            result.classes = settings.classes;
            result.stem = settings.small_stem ? "small" : "standard";
            result.steps = settings.steps;
            result.warmup = settings.warmup;
            if (on_gpu && !gpu_usable) {
                result.status = "skipped";
                result.message = built_with_cuda() ? "no usable GPU on this machine" : "cudagrad was built without CUDA";
            } else if (!on_gpu && precision != "fp32") {
                result.status = "skipped";
                result.message = "the math mode applies to GPU matrix products only; the CPU computes in fp32";
            } else {
                try {
                    run_case(settings, device, result);
                } catch (const std::exception& error) {
                    result.status = "failed";
                    result.message = error.what();
                    any_failed = true;
                }
                set_math_mode(MathMode::FP32);
                if (on_gpu) {
                    try {
                        allocator_for(device).empty_cache();
                    } catch (const std::exception&) {
                    }
                }
            }
            if (result.status == "ok") {
                std::printf("  %-6lld %-5s %-7s %10.1f %9.2f %10.2f %10.2f %10.2f %10.2f %11.1f\n",
                            static_cast<long long>(batch), precision.c_str(), "ok", result.images_per_second,
                            result.step_ms, result.split_step_ms, result.forward_ms, result.backward_ms,
                            result.optimizer_ms, static_cast<double>(result.peak_memory_bytes) / (1024.0 * 1024.0));
                std::printf("RESULT device=%s batch=%lld precision=%s images_per_second=%.2f step_ms=%.3f "
                            "split_step_ms=%.3f forward_ms=%.3f backward_ms=%.3f optimizer_ms=%.3f "
                            "peak_memory_bytes=%lld threads=%d loss=%.4f\n",
                            result.device.c_str(), static_cast<long long>(batch), precision.c_str(),
                            result.images_per_second, result.step_ms, result.split_step_ms, result.forward_ms,
                            result.backward_ms, result.optimizer_ms, static_cast<long long>(result.peak_memory_bytes),
                            num_threads(), result.loss);
            } else {
                std::printf("  %-6lld %-5s %-7s %s\n", static_cast<long long>(batch), precision.c_str(),
                            result.status.c_str(), result.message.c_str());
            }
            std::fflush(stdout);
            cases.push_back(result);
        }
    }
    if (!settings.json_path.empty() && !write_json(settings.json_path, cases)) {
        std::fprintf(stderr, "bench_train: cannot write %s\n", settings.json_path.c_str());
        return 1;
    }
    return any_failed ? 1 : 0;
}
